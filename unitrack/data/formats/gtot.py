"""GTOT (RGB+Thermal): <seq>/v/, <seq>/i/, groundTruth_v.txt / groundTruth_i.txt as corners x1 y1 x2 y2.

Corners are converted to x,y,w,h with w = x2 - x1 (no +1), as the GTOT toolkit does. Both ground
truths are kept for the best-of-two RGBT metrics. Test-only: 'test' and None return everything.
`options.box_format` may override the corner format (the real files are all corners).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    build_sequence,
    check_lengths,
    list_frames,
    read_boxes,
)
from unitrack.data.formats.rgbt234 import load_test_only
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE

LAYOUT = "<root>/<seq>/{v,i}/ with groundTruth_v.txt and groundTruth_i.txt"


def _is_sequence(p: Path) -> bool:
    return (p / "v").is_dir() and (p / "i").is_dir()


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str = "corners",
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    rgb_dir, x_dir = seq_dir / "v", seq_dir / "i"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    gt_v = read_boxes(seq_dir / "groundTruth_v.txt", box_format)
    gt_i = read_boxes(seq_dir / "groundTruth_i.txt", box_format)
    check_lengths(seq_dir, rgb, x, len(gt_v), rgb_dir, x_dir, gt_v.path)
    check_lengths(seq_dir, rgb, x, len(gt_i), rgb_dir, x_dir, gt_i.path)
    return build_sequence(name or seq_dir.name, "rgbt", "gtot", rgb, x, gt_v, "thermal", split, tolerance,
                          gt_x=gt_i)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str = "corners",
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    return load_test_only(root, split, sequences, box_format, outside_tolerance, "GTOT", _is_sequence, LAYOUT,
                          read_sequence)
