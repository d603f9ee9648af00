"""RGBT234 (RGB+Thermal): <seq>/visible/, <seq>/infrared/ and a ground truth for EACH modality.

Both ground truths are kept (boxes, boxes_x) because the benchmark's MPR/MSR score each frame against
the better of the two. The dataset is test-only: 'test' and None return every sequence.
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
    return (p / "visible").is_dir() and (p / "infrared").is_dir()


def read_sequence(seq_dir: Path, name: str | None = None) -> Sequence:
    rgb_dir, x_dir = seq_dir / "visible", seq_dir / "infrared"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt_v, gt_i = seq_dir / "visible.txt", seq_dir / "infrared.txt"
    boxes, boxes_x = read_boxes(gt_v), read_boxes(gt_i)
    check_lengths(seq_dir, rgb, x, boxes, rgb_dir, x_dir, gt_v)
    check_lengths(seq_dir, rgb, x, boxes_x, rgb_dir, x_dir, gt_i)
    return Sequence(name or seq_dir.name, "rgbt", "rgbt234", rgb, x, boxes, "thermal", boxes_x=boxes_x)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    check_split(split)
    root = require_dir(Path(root))
    if split == "train":
        raise DatasetError(root, "RGBT234 is a test-only benchmark: it has no 'train' split")
    found = discover(root, _is_sequence)
    return [read_sequence(p, n) for n, p in keep_only(select(found, None, root), sequences)]
