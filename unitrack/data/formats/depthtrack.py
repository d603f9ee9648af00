"""DepthTrack (RGB+Depth): <seq>/color/*.jpg, <seq>/depth/*.png (16-bit mm), <seq>/groundtruth.txt.

As released and as its authors' loaders read it, the TRAINING set is a flat folder of sequences
(`DepthTrackTraining/<seq>/`) and the TEST set a VOT workspace (`Depthtrack_workspace/sequences/<seq>/`
with `sequences/list.txt` and per-sequence `sequence` files naming the channels). Both are found from
the root the user points at: the root itself, or its sub-folders, each classed as training (a name
containing 'train'), test (a VOT workspace, or a name containing 'test') or unknown (read with
split=None only). `root/train` and `root/test` (the synthetic layout) fit the same rule.

Ground truth lines are VOT regions: x,y,w,h rectangles, 8-value (or longer) polygons converted to their
axis-aligned bounding box as the VOT toolkit does, and one-value lines (no region). Negative or zero
sizes mean the target is absent (DepthTrack's authors: e.g. `x,y,1,-1` rows in the training set).
Only the first depth frame is decoded at load time (16-bit check); `inspect deep=true` decodes all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    build_sequence,
    check_lengths,
    check_split,
    keep_only,
    list_frames,
    natural_key,
    read_boxes,
    read_names,
    require_dir,
    require_found,
    sort_natural,
)
from unitrack.data.sequence import FrameList, Sequence, read_depth_raw
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

DEFAULT_CHANNELS = {"color": "color", "depth": "depth"}
LAYOUT = ("a training folder of <seq>/{color,depth,groundtruth.txt} (e.g. DepthTrackTraining/ or train/) "
          "and/or a VOT workspace <workspace>/sequences/<seq>/ (e.g. Depthtrack_workspace/) under the root")


def is_sequence(p: Path) -> bool:
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


def _pattern_frames(seq_dir: Path, pattern: str, meta_file: Path) -> FrameList:
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
    return FrameList(folder, sort_natural(names))


def read_sequence(seq_dir: Path, dataset: str = "depthtrack", name: str | None = None, split: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE, gt_names: tuple[str, ...] = ("groundtruth.txt",),
                  ) -> Sequence:
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
    path = next((seq_dir / g for g in gt_names if (seq_dir / g).is_file()), seq_dir / gt_names[0])
    gt = read_boxes(path, "vot")
    check_lengths(seq_dir, rgb, x, len(gt), rgb[0].parent, x[0].parent, gt.path)
    read_depth_raw(x[0])  # raises DatasetError naming the file unless it is a 16-bit PNG
    return build_sequence(name or seq_dir.name, "rgbd", dataset, rgb, x, gt, "depth", split, tolerance)


def _split_of(name: str) -> str | None:
    n = name.lower()
    if "train" in n:
        return "train"
    if "test" in n or "workspace" in n:
        return "test"
    return None


def _has_sequences(folder: Path) -> bool:
    try:
        return any(e.is_dir() and is_sequence(Path(e.path)) for e in os.scandir(folder))
    except OSError:
        return False


def containers(root: Path) -> list[tuple[str | None, Path]]:
    """(split or None, folder whose children are sequences) found at the root or one level below."""
    out: list[tuple[str | None, Path]] = []
    if (root / "sequences").is_dir():  # the root is a VOT workspace
        out.append((_split_of(root.name) or "test", root / "sequences"))
    if _has_sequences(root):  # the root is a flat sequence folder
        out.append((_split_of(root.name), root))
    for e in sorted(os.scandir(root), key=lambda e: natural_key(e.name)):
        p = Path(e.path)
        if not e.is_dir() or e.name.startswith(".") or e.name == "sequences" or is_sequence(p):
            continue
        if (p / "sequences").is_dir():
            out.append((_split_of(e.name) or "test", p / "sequences"))
        elif _has_sequences(p):
            out.append((_split_of(e.name), p))
    rank = {"train": 0, "test": 1, None: 2}
    return sorted(out, key=lambda c: rank[c[0]])  # stable: training first, as the release is read


def _sequences_in(container: Path) -> list[tuple[str, Path]]:
    """Children that are sequences, or those a VOT list.txt names (in its order)."""
    candidates = [container / "list.txt"]
    if container.name == "sequences":
        candidates.append(container.parent / "list.txt")
    list_file = next((f for f in candidates if f.is_file()), None)
    if list_file is not None:
        out = []
        for line, name in read_names(list_file):
            if not is_sequence(container / name):
                raise DatasetError(list_file, f"sequence {name!r} not found in {container}", line=line)
            out.append((name, container / name))
        return out
    kids = [Path(e.path) for e in os.scandir(container) if e.is_dir() and not e.name.startswith(".")]
    return sorted(((p.name, p) for p in kids if is_sequence(p)), key=lambda kv: natural_key(kv[0]))


def load(root, split: str | None = None, sequences: Iterable[str] | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    """The training folder(s) (split=train), the VOT workspace(s) (split=test) or all (None)."""
    check_split(split)
    root = require_dir(Path(root))
    found: dict[str, Path] = {}
    items = []
    for kind, container in containers(root):
        if split is not None and kind != split:
            continue
        for name, p in _sequences_in(container):
            if name in found:
                raise DatasetError(p, f"sequence {name!r} found twice (also at {found[name]})")
            found[name] = p
            items.append((name, p))
    what = "DepthTrack" if split is None else f"DepthTrack {split}"
    require_found(items, root, what, LAYOUT)
    return [read_sequence(p, "depthtrack", n, split, outside_tolerance) for n, p in keep_only(items, sequences)]
