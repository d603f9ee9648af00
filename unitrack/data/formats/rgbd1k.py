"""RGBD1K (RGB+Depth): the same per-sequence layout as DepthTrack (color/, depth/, groundtruth.txt)."""

from __future__ import annotations

from collections.abc import Iterable

from unitrack.data.formats.depthtrack import load_rgbd
from unitrack.data.sequence import Sequence


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, **options) -> list[Sequence]:
    return load_rgbd(root, split, "rgbd1k", sequences)
