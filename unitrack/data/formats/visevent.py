"""VisEvent (RGB+Event): <seq>/vis_imgs/*.bmp, <seq>/event_imgs/*.bmp, groundtruth.txt, absent_label.txt.

The raw absent_label.txt marks 1 = target PRESENT, while the MATLAB kit's annos/absent files use
1 = absent; the polarity is therefore an explicit option (`absent_polarity`), never inferred. Frames
labelled absent get NaN boxes. Without absent_label.txt visibility comes from the boxes alone.

A flipped polarity is caught after reading (`polarity_warnings`): the labels then call (almost) every
frame absent, and the frames whose box is zero or NaN (absent by their box) carry the PRESENT label.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack.data.formats.common import (
    build_sequence,
    check_box_format,
    check_lengths,
    check_split,
    discover,
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
from unitrack.errors import ConfigError, DatasetError

POLARITIES = ("present", "absent")
LABEL = "absent label"
#: Split list candidates relative to the root, first found wins.
SPLIT_LISTS = {
    "train": ("train/trainlist.txt",),
    "test": ("test/testlist.txt", "VisEvent_testing_subset.txt", "test/VisEvent_testing_subset.txt"),
}
LAYOUT = "<root>[/train|test]/<seq>/{vis_imgs,event_imgs}/ with groundtruth.txt"
#: Polarity warning thresholds: labels marking at least this share of all frames absent ...
ALMOST_ALL = 0.9
#: ... or this share of the frames whose box is absent (zero / NaN) labelled present.
MOSTLY = 0.5


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


def read_sequence(seq_dir: Path, name: str | None = None, absent_polarity: str = "present",
                  split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    rgb_dir, x_dir = seq_dir / "vis_imgs", seq_dir / "event_imgs"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt = read_boxes(seq_dir / "groundtruth.txt", box_format)
    check_lengths(seq_dir, rgb, x, len(gt), rgb_dir, x_dir, gt.path)
    by_box = gt.absent
    label_file = seq_dir / "absent_label.txt"
    stats = {}
    if label_file.is_file():
        absent = read_absent(label_file, absent_polarity)
        if len(absent) != len(rgb):
            raise DatasetError(label_file, f"{len(absent)} label lines but {len(rgb)} frames in vis_imgs/")
        if split != "train" and absent[0] and not by_box[0]:
            other = POLARITIES[1 - POLARITIES.index(absent_polarity)]
            raise DatasetError(label_file, f"frame 0 is labelled absent (absent_polarity={absent_polarity}) but "
                               "has a box; tracking starts from frame 0. If every sequence says so, the "
                               f"polarity is flipped: options.absent_polarity={other}", line=1)
        gt.mark(LABEL, absent, label_file)
        stats = {"labelled frames": len(absent), "labelled absent": int(absent.sum()),
                 "box absent": int(by_box.sum()), "box absent, labelled present": int((by_box & ~absent).sum())}
    seq = build_sequence(name or seq_dir.name, "rgbe", "visevent", rgb, x, gt, "event", split, tolerance)
    seq.stats.update(stats)
    return seq


def polarity_warnings(seqs: list[Sequence], polarity: str) -> list[str]:
    """Warnings when the labels look flipped for the chosen `absent_polarity` (see the module docstring)."""
    tot = {k: sum(s.stats.get(k, 0) for s in seqs)
           for k in ("labelled frames", "labelled absent", "box absent", "box absent, labelled present")}
    if not tot["labelled frames"]:
        return []
    other = POLARITIES[1 - POLARITIES.index(polarity)]
    hint = f"absent_polarity={polarity} may be flipped (try options.absent_polarity={other})"
    out = []
    share = tot["labelled absent"] / tot["labelled frames"]
    if share >= ALMOST_ALL:
        out.append(f"absent_label.txt marks {tot['labelled absent']} of {tot['labelled frames']} frames "
                   f"({share:.0%}) absent: {hint}")
    if tot["box absent"] and tot["box absent, labelled present"] / tot["box absent"] >= MOSTLY:
        out.append(f"{tot['box absent, labelled present']} of the {tot['box absent']} frames whose box is zero "
                   f"or NaN are labelled PRESENT in absent_label.txt: {hint}")
    return out


def load(root, split: str | None = None, sequences: Iterable[str] | None = None,
         absent_polarity: str = "present", box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    """`absent_polarity`: 'present' when a 1 in absent_label.txt means present (the raw release)."""
    check_split(split)
    check_box_format(box_format)
    if absent_polarity not in POLARITIES:
        raise ConfigError("absent_polarity", f"expected 'present' or 'absent', got {absent_polarity!r}")
    root = require_dir(Path(root))
    found = require_found(discover(root, _is_sequence), root, "VisEvent", LAYOUT)
    list_file = None
    if split is not None:
        candidates = [root / c for c in SPLIT_LISTS[split]]
        list_file = next((c for c in candidates if c.is_file()), None)
        if list_file is None:
            also = f" (nor {', '.join(c.name for c in candidates[1:])})" if len(candidates) > 1 else ""
            raise DatasetError(candidates[0], f"split list for split '{split}' not found{also}")
    items = keep_only(select(found, list_file, root), sequences)
    return [read_sequence(p, n, absent_polarity, split, box_format, outside_tolerance) for n, p in items]
