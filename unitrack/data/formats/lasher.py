"""LasHeR (RGB+Thermal): <seq>/visible/, <seq>/infrared/, <seq>/visible.txt (comma x,y,w,h).

Releases place sequences directly in the root or one or two folders down (TrainingSet/trainingset/...),
so they are discovered by layout; the split lists at the root (trainingsetList.txt / testingsetList.txt,
from the toolkit's List_for_Protocol2/) say which split each belongs to, or, without them, the split
folder a sequence sits in. Quirks of the real files (all read): CRLF line ends, no final newline,
`0,0,0,0` rows, rows with w or h = 0, visible boxes at x or y <= 0, the training sequence
`right2ndfarboytakinglight2left` with w = -1..-3 (absent frames: the toolkit scores any value <= 0 as
invalid) and `cameraman_1202`, which ships init.txt but no visible.txt.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    build_sequence,
    check_box_format,
    check_lengths,
    check_split,
    discover,
    keep_only,
    list_frames,
    read_boxes,
    require_dir,
    require_found,
    select,
    split_by_folder,
)
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

SPLIT_LISTS = {"train": "trainingsetList.txt", "test": "testingsetList.txt"}
LAYOUT = "<root>[/<split folder>]/<seq>/{visible,infrared}/ with visible.txt (or init.txt)"


def _is_sequence(p: Path) -> bool:
    return (p / "visible").is_dir() and (p / "infrared").is_dir()


def gt_file(seq_dir: Path) -> Path:
    """visible.txt, or init.txt where a sequence ships only that (cameraman_1202)."""
    gt = seq_dir / "visible.txt"
    if not gt.is_file() and (seq_dir / "init.txt").is_file():
        return seq_dir / "init.txt"
    return gt


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE, dataset: str = "lasher") -> Sequence:
    rgb_dir, x_dir = seq_dir / "visible", seq_dir / "infrared"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt = read_boxes(gt_file(seq_dir), box_format)
    check_lengths(seq_dir, rgb, x, len(gt), rgb_dir, x_dir, gt.path)
    return build_sequence(name or seq_dir.name, "rgbt", dataset, rgb, x, gt, "thermal", split, tolerance)


def split_items(root: Path, found: dict[str, Path], split: str | None, lists: dict[str, str]) -> list:
    """The split list's sequences; without a list, those under a folder naming the split."""
    if split is None:
        return select(found, None, root)
    list_file = root / lists[split]
    if list_file.is_file():
        return select(found, list_file, root)
    items = split_by_folder(found, root, split)
    if not items:
        raise DatasetError(list_file, f"split list for split '{split}' not found (nor a folder naming the "
                           f"split, e.g. {'TrainingSet' if split == 'train' else 'TestingSet'}/, above the "
                           "sequences)")
    return items


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    """All sequences (split=None) or those of the train/test split; `sequences` keeps only those."""
    check_split(split)
    check_box_format(box_format)
    root = require_dir(Path(root))
    found = require_found(discover(root, _is_sequence), root, "LasHeR", LAYOUT)
    items = split_items(root, found, split, SPLIT_LISTS)
    return [read_sequence(p, n, split, box_format, outside_tolerance) for n, p in keep_only(items, sequences)]
