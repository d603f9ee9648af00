"""`unitrack inspect`: read a dataset in its native layout, validate every sequence, write inspect.json."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.atomic import write_text_atomic
from unitrack.commands import run_dir
from unitrack.data.inspect import inspect_dataset, print_table
from unitrack.data.synth import ensure_default
from unitrack.errors import DatasetError


def run(cfg: DictConfig) -> dict:
    """Read and validate a dataset, print the summary and write inspect.json; bad frames exit with code 2."""
    root = Path(cfg.root)
    default_manifest = Path(cfg.paths.data_dir) / "unibench.txt"
    if cfg.dataset == "manifest" and root == default_manifest and not root.exists():
        ensure_default(default_manifest.parent)
    options = OmegaConf.to_container(cfg.options, resolve=True) or {}
    report = inspect_dataset(cfg.dataset, root, split=cfg.split, deep=bool(cfg.get("deep", False)), **options)
    print_table(report, max_rows=int(cfg.get("max_rows", 40)))
    out = write_text_atomic(run_dir() / "inspect.json", json.dumps(report, indent=2))
    print(f"wrote {out}")
    if report["errors"]:
        first = report["errors"][0]
        raise DatasetError(root, f"{len(report['errors'])} frame(s) failed to decode, first: {first} "
                           f"(all listed in {out})")
    return report
