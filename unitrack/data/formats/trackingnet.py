"""TrackingNet (RGB only): chunks TRAIN_0 ... TRAIN_11 and TEST, each with frames/ and anno/.

    <root>/TRAIN_<k>/frames/<seq>/0.jpg 1.jpg ...   (0-based, not zero-padded: sorted numerically)
    <root>/TRAIN_<k>/anno/<seq>.txt                 comma x,y,w,h, a line a frame
    <root>/TEST/frames/<seq>/...  TEST/anno/<seq>.txt   (the first frame only)

split=train reads the TRAIN chunks (`options.chunks=[0,1,...]` picks some, as pytracking's set_ids do),
split=test the TEST chunk, None all. Sequence names are unique over the chunks (twice is an error).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from unitrack import NO_X, RGB_TASK
from unitrack.data.formats.common import (
    build_sequence,
    check_box_format,
    check_split,
    keep_only,
    list_frames,
    natural_key,
    read_boxes,
    require_dir,
    require_found,
)
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import ConfigError, DatasetError

LAYOUT = "<root>/TRAIN_<k>/ and/or <root>/TEST/, each with frames/<seq>/<i>.jpg and anno/<seq>.txt"
_TRAIN = re.compile(r"TRAIN_(\d+)$", re.IGNORECASE)


def chunk_dirs(root: Path, split: str | None, chunks: Iterable[int] | None) -> list[tuple[str, Path]]:
    """(split, chunk folder) pairs present under the root, TRAIN_k in k order, then TEST."""
    train, test = [], []
    for e in os.scandir(root):
        if not e.is_dir():
            continue
        m = _TRAIN.match(e.name)
        if m:
            train.append((int(m.group(1)), Path(e.path)))
        elif e.name.upper() == "TEST":
            test.append(("test", Path(e.path)))
    train.sort()
    if chunks is not None:
        try:
            want = {int(c) for c in chunks}
        except (TypeError, ValueError):
            raise ConfigError("options.chunks", f"expected a list of TRAIN chunk numbers, got {chunks!r}") from None
        missing = want - {k for k, _ in train}
        if missing:
            raise ConfigError("options.chunks", f"TRAIN_{min(missing)} not found under {root}")
        train = [(k, p) for k, p in train if k in want]
    out = [("train", p) for _, p in train] + test
    return [(s, p) for s, p in out if split is None or s == split]


def read_sequence(frames_dir: Path, anno: Path, split: str | None, box_format: str | None = None,
                  tolerance: float | None = DEFAULT_TOLERANCE) -> Sequence:
    frames = list_frames(frames_dir)
    gt = read_boxes(anno, box_format)
    if len(gt) == 1 and len(frames) > 1 and split == "test":
        gt = gt.pad(len(frames))  # TEST publishes the first frame's box only
    if len(gt) != len(frames):
        raise DatasetError(anno, f"{len(gt)} box lines but {len(frames)} frames in {frames_dir}")
    return build_sequence(frames_dir.name, RGB_TASK, "trackingnet", frames, frames, gt, NO_X, split, tolerance)


def load(root, split: str | None = None, sequences: Iterable[str] | None = None, box_format: str | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, chunks: Iterable[int] | None = None,
         **options) -> list[Sequence]:
    check_split(split)
    check_box_format(box_format)
    root = require_dir(Path(root))
    items: list[tuple[str, str, Path, Path]] = []
    seen: dict[str, Path] = {}
    for sp, chunk in chunk_dirs(root, split, chunks):
        anno_dir, frames_root = chunk / "anno", chunk / "frames"
        if not anno_dir.is_dir() or not frames_root.is_dir():
            raise DatasetError(chunk, "expected anno/ and frames/ folders in a TrackingNet chunk")
        names = sorted((e.name[:-4] for e in os.scandir(anno_dir) if e.name.endswith(".txt")), key=natural_key)
        for n in names:
            if n in seen:
                raise DatasetError(anno_dir / f"{n}.txt", f"sequence {n!r} found twice (also in {seen[n]})")
            seen[n] = anno_dir
            items.append((sp, n, frames_root / n, anno_dir / f"{n}.txt"))
    require_found(items, root, "TrackingNet" if split is None else f"TrackingNet {split}", LAYOUT)
    keep = {n for n, _ in keep_only([(n, f) for _, n, f, _ in items], sequences)}
    return [read_sequence(f, a, sp, box_format, outside_tolerance) for sp, n, f, a in items if n in keep]
