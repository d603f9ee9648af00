"""`unitrack inspect`: read a dataset in its native layout, validate every sequence, write inspect.json."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import run_dir
from unitrack.data.inspect import inspect_dataset, print_table
from unitrack.data.synth import ensure_default


def run(cfg: DictConfig) -> dict:
    root = Path(cfg.root)
    default_manifest = Path(cfg.paths.data_dir) / "unibench.txt"
    if cfg.dataset == "manifest" and root == default_manifest and not root.exists():
        ensure_default(default_manifest.parent)
    options = OmegaConf.to_container(cfg.options, resolve=True) or {}
    report = inspect_dataset(cfg.dataset, root, split=cfg.split, **options)
    print_table(report)
    out = run_dir() / "inspect.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return report
