"""GOT-10k (RGB only): <split>/<seq>/00000001.jpg ..., groundtruth.txt, absence.label, cover.label.

Layout as released: `train/`, `val/` and `test/` folders under the root, each with a `list.txt` naming
its sequences (GOT-10k_Train_000001, ...). `absence.label` holds one 0/1 a frame (1 = target absent) and
`cover.label` the visible share in eighths (0 = fully covered); pytracking's loader treats a frame as
visible only when it is not absent and its cover is > 0, and so do we (NaN box otherwise). The test
split's ground truth holds the first frame only: the remaining frames are unannotated (NaN).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack import NO_X, RGB_TASK
from unitrack.data.formats.common import (
    check_split,
    keep_only,
    list_frames,
    read_boxes,
    read_table,
    require_dir,
    select,
)
from unitrack.data.sequence import Sequence
from unitrack.errors import DatasetError

SPLITS = ("train", "val", "test")


def _labels(path: Path, n: int) -> np.ndarray | None:
    """One integer a frame, or None when the file is absent (older releases lack cover.label)."""
    if not path.is_file():
        return None
    v = read_table(path, 1)[:, 0]
    if len(v) != n:
        raise DatasetError(path, f"{len(v)} label lines but {n} frames")
    return v


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None) -> Sequence:
    frames = list_frames(seq_dir)
    gt = seq_dir / "groundtruth.txt"
    boxes = read_boxes(gt)
    n = len(frames)
    if len(boxes) == 1 and n > 1 and split == "test":
        boxes = np.vstack([boxes, np.full((n - 1, 4), np.nan)])  # test gt: first frame only
    if len(boxes) != n:
        raise DatasetError(gt, f"{len(boxes)} box lines but {n} frames in {seq_dir.name}/")
    absent = _labels(seq_dir / "absence.label", n)
    cover = _labels(seq_dir / "cover.label", n)
    hidden = np.zeros(n, bool)
    if absent is not None:
        hidden |= absent == 1
    if cover is not None:
        hidden |= cover == 0
    boxes[hidden] = np.nan
    return Sequence(name or seq_dir.name, RGB_TASK, "got10k", frames, frames, boxes, NO_X)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    """The sequences of one split (its `list.txt`), or of every split folder present when split=None."""
    check_split(split, SPLITS)
    root = require_dir(Path(root))
    out = []
    for sp in [split] if split else [s for s in SPLITS if (root / s).is_dir()]:
        folder = require_dir(root / sp, f"GOT-10k {sp} folder")
        found = {p.name: p for p in folder.iterdir() if p.is_dir() and (p / "groundtruth.txt").is_file()}
        list_file = folder / "list.txt"
        items = select(found, list_file if list_file.is_file() else None, folder)
        out += [read_sequence(p, nm, sp) for nm, p in keep_only(items, sequences)]
    if not out:
        raise DatasetError(root, "no GOT-10k sequences found (expected <root>/{train,val,test}/<seq>/"
                                 "groundtruth.txt with frames 00000001.jpg ...)")
    return out
