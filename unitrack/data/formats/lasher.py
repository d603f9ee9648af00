"""LasHeR (RGB+Thermal): <seq>/visible/, <seq>/infrared/, <seq>/visible.txt; '0,0,0,0' = target absent.

Releases place sequences directly in the root or one or two folders down (train/, TrainingSet/...), so
they are discovered by layout; the split lists at the root say which split each belongs to.
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

SPLIT_LISTS = {"train": "trainingsetList.txt", "test": "testingsetList.txt"}


def _is_sequence(p: Path) -> bool:
    return (p / "visible").is_dir() and (p / "infrared").is_dir()


def read_sequence(seq_dir: Path, name: str | None = None) -> Sequence:
    rgb_dir, x_dir = seq_dir / "visible", seq_dir / "infrared"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt = seq_dir / "visible.txt"
    if not gt.is_file() and (seq_dir / "init.txt").is_file():
        gt = seq_dir / "init.txt"
    boxes = read_boxes(gt)
    check_lengths(seq_dir, rgb, x, boxes, rgb_dir, x_dir, gt)
    return Sequence(name or seq_dir.name, "rgbt", "lasher", rgb, x, boxes, "thermal")


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    """All sequences (split=None) or those of the train/test split list; `sequences` keeps only those."""
    check_split(split)
    root = require_dir(Path(root))
    found = discover(root, _is_sequence)
    list_file = root / SPLIT_LISTS[split] if split else None
    if list_file is not None and not list_file.is_file():
        raise DatasetError(list_file, f"split list for split '{split}' not found")
    return [read_sequence(p, n) for n, p in keep_only(select(found, list_file, root), sequences)]
