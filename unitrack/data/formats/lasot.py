"""LaSOT (RGB only, 1,400 sequences in 70 classes): class folders of sequences.

    <root>/<class>/<class>-<n>/img/00000001.jpg ...
                               groundtruth.txt        comma x,y,w,h
                               full_occlusion.txt     one comma-separated line of 0/1, a value a frame
                               out_of_view.txt        the same
    <root>/testing_set.txt     the 280 test sequences (4 a class); the other 1,120 train

As pytracking's LaSOT loader does, a frame is visible when it is neither fully occluded nor out of view
and its box has positive size. `training_set.txt`, where present, lists the training split; otherwise
training is every sequence not in testing_set.txt. The extension subset (LaSOT_ext) has the same layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack import NO_X, RGB_TASK
from unitrack.data.formats.common import (
    _read_lines,
    build_sequence,
    check_box_format,
    check_split,
    discover,
    keep_only,
    list_frames,
    natural_key,
    read_boxes,
    read_names,
    require_dir,
    require_found,
    select,
)
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

LAYOUT = "<root>/<class>/<class>-<n>/img/ with groundtruth.txt"
FLAGS = {"full occlusion": "full_occlusion.txt", "out of view": "out_of_view.txt"}


def _is_sequence(p: Path) -> bool:
    return (p / "img").is_dir() and (p / "groundtruth.txt").is_file()


def read_flags(path: Path, n: int) -> np.ndarray | None:
    """One line of n comma-separated 0/1 values (None when the file is absent)."""
    if not path.is_file():
        return None
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    fields = [f.strip() for ln in lines for f in ln.split(",")]
    if any(f not in ("0", "1") for f in fields):
        bad = next(f for f in fields if f not in ("0", "1"))
        raise DatasetError(path, f"expected comma-separated 0/1 values, got {bad!r}")
    if len(fields) != n:
        raise DatasetError(path, f"{len(fields)} values but {n} frames")
    return np.asarray(fields) == "1"


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    frames = list_frames(seq_dir / "img")
    gt = read_boxes(seq_dir / "groundtruth.txt", box_format)
    if len(gt) != len(frames):
        raise DatasetError(gt.path, f"{len(gt)} box lines but {len(frames)} frames in img/")
    for reason, fname in FLAGS.items():
        flags = read_flags(seq_dir / fname, len(frames))
        if flags is not None:
            gt.mark(reason, flags, seq_dir / fname)
    return build_sequence(name or seq_dir.name, RGB_TASK, "lasot", frames, frames, gt, NO_X, split, tolerance)


def split_items(root: Path, found: dict[str, Path], split: str | None) -> list[tuple[str, Path]]:
    if split is None:
        return select(found, None, root)
    test_list, train_list = root / "testing_set.txt", root / "training_set.txt"
    if split == "train" and train_list.is_file():
        return select(found, train_list, root)
    if not test_list.is_file():
        raise DatasetError(test_list, f"split list not found (LaSOT's {split} split is defined by it)")
    test = select(found, test_list, root)
    if split == "test":
        return test
    held = {n for _, n in read_names(test_list)}
    return sorted(((n, p) for n, p in found.items() if n not in held), key=lambda kv: natural_key(kv[0]))


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    check_split(split)
    check_box_format(box_format)
    root = require_dir(Path(root))
    found = require_found(discover(root, _is_sequence), root, "LaSOT", LAYOUT)
    items = require_found(split_items(root, found, split), root, f"LaSOT {split}", LAYOUT)
    return [read_sequence(p, n, split, box_format, outside_tolerance) for n, p in keep_only(items, sequences)]
