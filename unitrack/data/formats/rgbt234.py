"""RGBT234 (RGB+Thermal): <seq>/visible/, <seq>/infrared/ and a ground truth for EACH modality.

Both ground truths are kept (boxes, boxes_x) because the benchmark's MPR/MSR score each frame against
the better of the two. The dataset is test-only: 'test' and None return every sequence. The real files
(CRLF, some without a final newline, visible boxes at x = 0 or y = 0) read as they are.
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
)
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

LAYOUT = "<root>/<seq>/{visible,infrared}/ with visible.txt and infrared.txt"


def is_rgbt_sequence(p: Path) -> bool:
    return (p / "visible").is_dir() and (p / "infrared").is_dir()


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    rgb_dir, x_dir = seq_dir / "visible", seq_dir / "infrared"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt_v, gt_i = read_boxes(seq_dir / "visible.txt", box_format), read_boxes(seq_dir / "infrared.txt", box_format)
    check_lengths(seq_dir, rgb, x, len(gt_v), rgb_dir, x_dir, gt_v.path)
    check_lengths(seq_dir, rgb, x, len(gt_i), rgb_dir, x_dir, gt_i.path)
    return build_sequence(name or seq_dir.name, "rgbt", "rgbt234", rgb, x, gt_v, "thermal", split, tolerance,
                          gt_x=gt_i)


def load_test_only(root, split: str | None, sequences: Iterable[str] | None, box_format: str | None,
                   tolerance: float | None, name: str, is_sequence, layout: str, read) -> list[Sequence]:
    """The shared body of the test-only RGBT benchmarks' readers (RGBT234, RGBT210, GTOT): every sequence
    found is the test split; 'train' is an error."""
    check_split(split)
    check_box_format(box_format)
    root = require_dir(Path(root))
    if split == "train":
        raise DatasetError(root, f"{name} is a test-only benchmark: it has no 'train' split")
    found = require_found(discover(root, is_sequence), root, name, layout)
    return [read(p, n, split, box_format, tolerance) for n, p in keep_only(select(found, None, root), sequences)]


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    return load_test_only(root, split, sequences, box_format, outside_tolerance, "RGBT234", is_rgbt_sequence,
                          LAYOUT, read_sequence)
