"""GTOT (RGB+Thermal): <seq>/v/, <seq>/i/, groundTruth_v.txt / groundTruth_i.txt as corners x1 y1 x2 y2.

Corners are converted to x,y,w,h with w = x2 - x1 (no +1), like the other readers' pixel boxes. Both
ground truths are kept for the best-of-two RGBT metrics. Test-only: 'test' and None return everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    check_lengths,
    check_split,
    discover,
    keep_only,
    list_frames,
    read_boxes,
    require_dir,
    select,
)
from unitrack.data.sequence import Sequence
from unitrack.errors import DatasetError


def _is_sequence(p: Path) -> bool:
    return (p / "v").is_dir() and (p / "i").is_dir()


def read_sequence(seq_dir: Path, name: str | None = None) -> Sequence:
    rgb_dir, x_dir = seq_dir / "v", seq_dir / "i"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt_v, gt_i = seq_dir / "groundTruth_v.txt", seq_dir / "groundTruth_i.txt"
    boxes, boxes_x = read_boxes(gt_v, corners=True), read_boxes(gt_i, corners=True)
    check_lengths(seq_dir, rgb, x, boxes, rgb_dir, x_dir, gt_v)
    check_lengths(seq_dir, rgb, x, boxes_x, rgb_dir, x_dir, gt_i)
    return Sequence(name or seq_dir.name, "rgbt", "gtot", rgb, x, boxes, "thermal", boxes_x=boxes_x)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    check_split(split)
    root = require_dir(Path(root))
    if split == "train":
        raise DatasetError(root, "GTOT is a test-only benchmark: it has no 'train' split")
    found = discover(root, _is_sequence)
    return [read_sequence(p, n) for n, p in keep_only(select(found, None, root), sequences)]
