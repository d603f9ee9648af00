"""GOT-10k (RGB only): <split>/<seq>/00000001.jpg ..., groundtruth.txt, absence.label, cover.label.

Layout as released: `train/`, `val/` and `test/` folders under the root, each with a `list.txt` naming
its sequences (GOT-10k_Train_000001, ...). `absence.label` holds one 0/1 a frame (1 = target absent) and
`cover.label` the visible share in eighths (0 = fully covered); pytracking's loader treats a frame as
visible only when it is not absent and its cover is > 0, and so do we (NaN box otherwise).
`cut_by_image.label` (1 = the target is cut by the image border) is counted, not used: the box is still
the visible part. `meta_info.ini` (class, motion, url) is not read: nothing here needs it. The test
split's ground truth holds the first frame only: the remaining frames are unannotated (NaN). `val` is
the dataset's own validation split (`data.val_split: val`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack import NO_X, RGB_TASK
from unitrack.data.formats.common import (
    build_sequence,
    check_box_format,
    check_split,
    keep_only,
    list_frames,
    read_boxes,
    read_table,
    require_dir,
    require_found,
    select,
)
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

SPLITS = ("train", "val", "test")
LAYOUT = "<root>/{train,val,test}/<seq>/ with groundtruth.txt and frames 00000001.jpg ..."


def _labels(path: Path, n: int) -> np.ndarray | None:
    """One integer a frame, or None when the file is absent (older releases lack cover.label)."""
    if not path.is_file():
        return None
    v = read_table(path, 1)[:, 0]
    if len(v) != n:
        raise DatasetError(path, f"{len(v)} label lines but {n} frames")
    return v


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    frames = list_frames(seq_dir)
    gt = read_boxes(seq_dir / "groundtruth.txt", box_format)
    n = len(frames)
    if len(gt) == 1 and n > 1 and split == "test":
        gt = gt.pad(n)  # test gt: first frame only
    if len(gt) != n:
        raise DatasetError(gt.path, f"{len(gt)} box lines but {n} frames in {seq_dir.name}/")
    absent = _labels(seq_dir / "absence.label", n)
    cover = _labels(seq_dir / "cover.label", n)
    cut = _labels(seq_dir / "cut_by_image.label", n)
    if absent is not None:
        gt.mark("absence label", absent == 1, seq_dir / "absence.label")
    if cover is not None:
        gt.mark("cover 0", cover == 0, seq_dir / "cover.label")
    seq = build_sequence(name or seq_dir.name, RGB_TASK, "got10k", frames, frames, gt, NO_X, split, tolerance)
    if cut is not None:
        seq.stats["cut by image"] = int((cut == 1).sum())
    return seq


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    """The sequences of one split (its `list.txt`), or of every split folder present when split=None."""
    check_split(split, SPLITS)
    check_box_format(box_format)
    root = require_dir(Path(root))
    out = []
    for sp in [split] if split else [s for s in SPLITS if (root / s).is_dir()]:
        folder = require_dir(root / sp, f"GOT-10k {sp} folder")
        found = {p.name: p for p in folder.iterdir() if p.is_dir() and (p / "groundtruth.txt").is_file()}
        list_file = folder / "list.txt"
        items = select(found, list_file if list_file.is_file() else None, folder)
        require_found(items, folder, f"GOT-10k {sp}", LAYOUT)
        out += [read_sequence(p, nm, sp, box_format, outside_tolerance) for nm, p in keep_only(items, sequences)]
    if split is None:
        require_found([sp for sp in SPLITS if (root / sp).is_dir()], root, "GOT-10k", LAYOUT)
    return out
