"""DepthTrack (RGB+Depth): <seq>/color/*.jpg, <seq>/depth/*.png (16-bit mm), <seq>/groundtruth.txt.

Accepted wrappers: plain root/<seq>, root/train|test/<seq> (split picks the folder), and VOT workspaces
root[/train|test]/sequences/<seq> whose optional `sequence` file names the channel patterns and whose
optional list.txt names the sequences. RGBD1K shares this layout and this reader (see rgbd1k.py).
Only the first depth frame is decoded at load time (16-bit check); decoding all would be too slow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    SPLITS,
    check_lengths,
    check_split,
    keep_only,
    list_frames,
    natural_key,
    read_boxes,
    read_names,
    require_dir,
)
from unitrack.data.sequence import Sequence, read_depth_raw
from unitrack.errors import DatasetError

DEFAULT_CHANNELS = {"color": "color", "depth": "depth"}


def _is_sequence(p: Path) -> bool:
    return (p / "sequence").is_file() or (p / "color").is_dir()


def _metadata(seq_dir: Path) -> dict[str, str]:
    """key=value pairs of a VOT `sequence` file (empty when the file is absent)."""
    meta_file = seq_dir / "sequence"
    if not meta_file.is_file():
        return {}
    meta = {}
    for i, line in enumerate(meta_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise DatasetError(meta_file, f"expected key=value, got {line!r}", line=i)
        k, v = line.split("=", 1)
        meta[k.strip()] = v.strip()
    return meta


def _pattern_frames(seq_dir: Path, pattern: str, meta_file: Path) -> list[Path]:
    """Frames matching a printf-style channel pattern such as 'color/%08d.jpg', in numeric order."""
    full = seq_dir / pattern
    folder, fname = full.parent, full.name
    if not folder.is_dir():
        raise DatasetError(folder, f"frame folder of channel pattern {pattern!r} ({meta_file}) not found")
    parts = re.split(r"%0?\d*d", fname)
    if len(parts) != 2:
        raise DatasetError(meta_file, f"channel pattern {pattern!r} must contain one %d-style field")
    rx = re.compile(re.escape(parts[0]) + r"(\d+)" + re.escape(parts[1]))
    names = [e.name for e in os.scandir(folder) if e.is_file() and rx.fullmatch(e.name)]
    if not names:
        raise DatasetError(folder, f"empty sequence: no frames match {pattern!r}")
    names.sort(key=natural_key)
    return [folder / n for n in names]


def read_sequence(seq_dir: Path, dataset: str = "depthtrack", name: str | None = None) -> Sequence:
    meta = _metadata(seq_dir)
    color_pat = meta.get("channels.color") or meta.get("channels.rgb")
    depth_pat = meta.get("channels.depth")
    if color_pat:
        rgb = _pattern_frames(seq_dir, color_pat, seq_dir / "sequence")
    else:
        rgb = list_frames(seq_dir / DEFAULT_CHANNELS["color"])
    if depth_pat:
        x = _pattern_frames(seq_dir, depth_pat, seq_dir / "sequence")
    else:
        x = list_frames(seq_dir / DEFAULT_CHANNELS["depth"])
    gt = seq_dir / "groundtruth.txt"
    boxes = read_boxes(gt)
    check_lengths(seq_dir, rgb, x, boxes, rgb[0].parent, x[0].parent, gt)
    read_depth_raw(x[0])  # raises DatasetError naming the file unless it is a 16-bit PNG
    return Sequence(name or seq_dir.name, "rgbd", dataset, rgb, x, boxes, "depth")


def _containers(root: Path, split: str | None) -> list[Path]:
    """Folders whose children are sequences, given the split."""
    if split is not None:
        bases = [require_dir(root / split, f"split folder for split '{split}'")]
    else:
        bases = [root] + [root / s for s in SPLITS if (root / s).is_dir()]
    return [b / "sequences" if (b / "sequences").is_dir() else b for b in bases]


def _sequences_in(container: Path) -> list[tuple[str, Path]]:
    """Children that are sequences, or those a VOT list.txt names (in its order)."""
    candidates = [container / "list.txt"]
    if container.name == "sequences":
        candidates.append(container.parent / "list.txt")
    list_file = next((f for f in candidates if f.is_file()), None)
    if list_file is not None:
        out = []
        for line, name in read_names(list_file):
            if not _is_sequence(container / name):
                raise DatasetError(list_file, f"sequence {name!r} not found in {container}", line=line)
            out.append((name, container / name))
        return out
    kids = [Path(e.path) for e in os.scandir(container) if e.is_dir() and not e.name.startswith(".")]
    return sorted(((p.name, p) for p in kids if _is_sequence(p)), key=lambda kv: natural_key(kv[0]))


def load_rgbd(root, split: str | None, dataset: str,
              sequences: Iterable[str] | None = None) -> list[Sequence]:
    check_split(split)
    root = require_dir(Path(root))
    found: dict[str, Path] = {}
    items = []
    for container in _containers(root, split):
        for name, p in _sequences_in(container):
            if name in found:
                raise DatasetError(p, f"sequence {name!r} found twice (also at {found[name]})")
            found[name] = p
            items.append((name, p))
    return [read_sequence(p, dataset, n) for n, p in keep_only(items, sequences)]


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    return load_rgbd(root, split, "depthtrack", sequences)
