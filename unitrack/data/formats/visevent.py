"""VisEvent (RGB+Event): <seq>/vis_imgs/*.bmp, <seq>/event_imgs/*.bmp, groundtruth.txt, absent_label.txt.

The raw absent_label.txt marks 1 = target PRESENT, while the MATLAB kit's annos/absent files use
1 = absent; the polarity is therefore an explicit option (`absent_polarity`), never inferred.
Frames labelled absent get NaN boxes. Without absent_label.txt visibility comes from the boxes alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack.data.formats.common import (
    check_lengths,
    check_split,
    discover,
    keep_only,
    list_frames,
    read_boxes,
    read_table,
    require_dir,
    select,
)
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError, DatasetError

POLARITIES = ("present", "absent")
#: Split list candidates relative to the root, first found wins.
SPLIT_LISTS = {
    "train": ("train/trainlist.txt",),
    "test": ("test/testlist.txt", "VisEvent_testing_subset.txt", "test/VisEvent_testing_subset.txt"),
}


def _is_sequence(p: Path) -> bool:
    return (p / "vis_imgs").is_dir()


def read_absent(path: Path, polarity: str) -> np.ndarray:
    """(N,) bool, True where the label file says the target is absent under the given polarity."""
    v = read_table(path, 1)[:, 0]
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(path, f"expected 0 or 1, got {v[i]:g}", line=i + 1)
    return v == (0.0 if polarity == "present" else 1.0)


def read_sequence(seq_dir: Path, name: str | None = None, absent_polarity: str = "present") -> Sequence:
    rgb_dir, x_dir = seq_dir / "vis_imgs", seq_dir / "event_imgs"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt = seq_dir / "groundtruth.txt"
    boxes = read_boxes(gt)
    check_lengths(seq_dir, rgb, x, boxes, rgb_dir, x_dir, gt)
    label_file = seq_dir / "absent_label.txt"
    if label_file.is_file():
        absent = read_absent(label_file, absent_polarity)
        if len(absent) != len(rgb):
            raise DatasetError(label_file, f"{len(absent)} label lines but {len(rgb)} frames in vis_imgs/")
        boxes[absent] = np.nan
    return Sequence(name or seq_dir.name, "rgbe", "visevent", rgb, x, boxes, "event")


def load(root, split: str | None = None, sequences: Iterable[str] | None = None,
         absent_polarity: str = "present", **options) -> list[Sequence]:
    """`absent_polarity`: 'present' when a 1 in absent_label.txt means present (the raw release)."""
    check_split(split)
    if absent_polarity not in POLARITIES:
        raise ConfigError("absent_polarity", f"expected 'present' or 'absent', got {absent_polarity!r}")
    root = require_dir(Path(root))
    found = discover(root, _is_sequence)
    list_file = None
    if split is not None:
        candidates = [root / c for c in SPLIT_LISTS[split]]
        list_file = next((c for c in candidates if c.is_file()), None)
        if list_file is None:
            also = f" (nor {', '.join(c.name for c in candidates[1:])})" if len(candidates) > 1 else ""
            raise DatasetError(candidates[0], f"split list for split '{split}' not found{also}")
    items = keep_only(select(found, list_file, root), sequences)
    return [read_sequence(p, n, absent_polarity) for n, p in items]
