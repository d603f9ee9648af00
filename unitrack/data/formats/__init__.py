"""Native dataset readers, one module per layout, all returning `list[Sequence]`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unitrack.data.formats import depthtrack, got10k, gtot, lasher, manifest, rgbd1k, rgbt234, visevent
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError

READERS: dict[str, Callable[..., list[Sequence]]] = {
    "lasher": lasher.load,
    "rgbt234": rgbt234.load,
    "gtot": gtot.load,
    "depthtrack": depthtrack.load,
    "rgbd1k": rgbd1k.load,
    "visevent": visevent.load,
    "got10k": got10k.load,
    "manifest": manifest.load,
}


def load_dataset(name: str, root: str | Path, split: str | None = None, **options) -> list[Sequence]:
    """Read dataset `name` from its native layout at `root` (for 'manifest', root is the manifest file)."""
    reader = READERS.get(str(name).lower())
    if reader is None:
        raise ConfigError("dataset", f"unknown dataset {name!r}; valid: {', '.join(READERS)}")
    return reader(root, split, **options)
