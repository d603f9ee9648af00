"""Which sequences a `score`/`eval` run covers: a dataset by name + root, a manifest file, or the default
synthetic unified benchmark (generated on first use)."""

from __future__ import annotations

from pathlib import Path

from unitrack.data.formats import READERS, load_dataset
from unitrack.data.formats.attributes import attach
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError


def load_benchmark(name: str, root: str | None, split: str | None, options: dict | None,
                   data_dir: str | Path) -> list[Sequence]:
    """`unibench` = the synthetic manifest in data_dir (made if missing); a dataset name needs `root`;
    `manifest` or a path ending in .txt reads a UniBench300-style manifest. Challenge attributes are
    attached where the datasets ship attribute files (per-attribute scores)."""
    return attach(_load(name, root, split, options, data_dir))


def _load(name: str, root: str | None, split: str | None, options: dict | None,
          data_dir: str | Path) -> list[Sequence]:
    options = dict(options or {})
    if name == "unibench" and not root:
        from unitrack.data.synth import ensure_default

        ensure_default(Path(data_dir))
        return load_dataset("manifest", Path(data_dir) / "unibench.txt", split=split, **options)
    if str(name).endswith(".txt"):
        return load_dataset("manifest", Path(name), split=split, **options)
    if name == "unibench":
        name = "manifest"
    if name not in READERS:
        raise ConfigError("benchmark", f"'{name}' is not one of unibench, {', '.join(READERS)} or a manifest .txt")
    if not root:
        raise ConfigError("root", f"benchmark '{name}' needs root=PATH (its folder, or the manifest file)")
    return load_dataset(name, Path(root), split=split, **options)
