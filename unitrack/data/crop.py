"""SiamFC-style context crops and the box transforms between frame and crop coordinates.

A crop is a square window of side sqrt((w + p)(h + p)), p = (f - 1)(w + h) / 2, centred on the box and
resized to `out_size`; pixels outside the frame are padded with the frame's per-channel mean (`frame_pad`).
Boxes here are x,y,w,h in pixels unless a name says `xyxy` or `norm`.
A window's `side` may also be a pair (side_x, side_y): a stretched crop (LoRAT's training crops scale the
two axes independently); `frame_pad`, `crop_image` and `box_to_crop` then map each axis with its own
scale (`box_from_crop`, used by the tracker's square windows, takes square sides only).
"""

from __future__ import annotations

import cv2
import numpy as np


def crop_window(box_xywh, factor: float) -> tuple[float, float, float]:
    """Centre and side of the context window around a box (side >= 1 px)."""
    cx, cy, side = crop_windows(np.reshape(np.asarray(box_xywh, dtype=np.float64), (1, 4)), factor)[0]
    return float(cx), float(cy), float(side)


def crop_windows(boxes_xywh: np.ndarray, factor: float) -> np.ndarray:
    """Context windows of a batch: (B,4) boxes x,y,w,h -> (B,3) rows cx, cy, side (side >= 1 px).

    Side = sqrt((w + p)(h + p)), p = (factor - 1)(w + h) / 2 (SiamFC's context)."""
    x, y, w, h = np.asarray(boxes_xywh, dtype=np.float64).T
    p = (factor - 1.0) * (w + h) / 2.0
    side = np.sqrt(np.maximum((w + p) * (h + p), 1.0))
    return np.stack([x + w / 2.0, y + h / 2.0, side], axis=1)


def _sides(side) -> tuple[float, float]:
    """(side_x, side_y) of a square (one number) or stretched (a pair) window."""
    if np.ndim(side) == 0:
        return float(side), float(side)
    sx, sy = side
    return float(sx), float(sy)


def frame_pad(img: np.ndarray, cx: float, cy: float, side) -> tuple:
    """The padding colour of a crop: the frame's per-channel mean, computed only when the window
    leaves the frame (otherwise every bilinear tap lies inside and the border value is never read)."""
    h, w = img.shape[:2]
    channels = img.shape[-1] if img.ndim == 3 else 1
    rx, ry = (v / 2.0 for v in _sides(side))
    if cx - rx >= 1.0 and cy - ry >= 1.0 and cx + rx <= w - 1.0 and cy + ry <= h - 1.0:
        return (0.0,) * channels
    return frame_mean(img)


def frame_mean(img: np.ndarray) -> tuple:
    """The frame's per-channel mean (LoRAT pads every search crop with frame 0's: eval.pad=frame0)."""
    channels = img.shape[-1] if img.ndim == 3 else 1
    return tuple(cv2.mean(img)[:channels])  # 50x cheaper than ndarray.mean on a full frame


def crop_image(img: np.ndarray, cx: float, cy: float, side, out_size: int,
               pad: np.ndarray | tuple | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Resample the window (cx, cy, side) of `img` to out_size x out_size with one affine warp.

    `out`: a contiguous (out_size, out_size, C) array of img's dtype to write into (a slot of a batch).
    """
    sx, sy = (out_size / v for v in _sides(side))
    # Continuous coordinates (pixel i spans [i, i+1)) -> cv2's pixel-centre indices: + 0.5 (s - 1).
    m = np.array([[sx, 0.0, out_size / 2.0 - sx * cx + 0.5 * (sx - 1.0)],
                  [0.0, sy, out_size / 2.0 - sy * cy + 0.5 * (sy - 1.0)]], dtype=np.float64)
    if pad is None:
        pad = frame_pad(img, cx, cy, side)
    border = pad if isinstance(pad, tuple) else tuple(float(v) for v in np.atleast_1d(pad))
    res = cv2.warpAffine(img, m, (out_size, out_size), dst=out, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    if out is not None and res is not out and not np.shares_memory(res, out):
        out[...] = res  # OpenCV allocated anew (dst not usable as is): still fill the caller's slot
    return res


def box_to_crop(box_xywh, cx: float, cy: float, side, out_size: int) -> np.ndarray:
    """A frame box in the crop's pixel coordinates."""
    sx, sy = (out_size / v for v in _sides(side))
    b = np.asarray(box_xywh, dtype=np.float64)
    return np.array([(b[0] - cx) * sx + out_size / 2.0, (b[1] - cy) * sy + out_size / 2.0, b[2] * sx, b[3] * sy])


def box_from_crop(box_xywh, cx, cy, side, out_size: int) -> np.ndarray:
    """A crop box (pixels) back in frame coordinates; (..., 4) boxes with matching (...) windows."""
    s = np.asarray(side, dtype=np.float64) / out_size
    b = np.asarray(box_xywh, dtype=np.float64)
    return np.stack([(b[..., 0] - out_size / 2.0) * s + cx, (b[..., 1] - out_size / 2.0) * s + cy,
                     b[..., 2] * s, b[..., 3] * s], axis=-1)


def xywh_to_norm_xyxy(box_xywh, size: int) -> np.ndarray:
    """Crop-pixel x,y,w,h to x1,y1,x2,y2 normalised by the crop side (what the model uses)."""
    b = np.asarray(box_xywh, dtype=np.float64)
    return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]]) / float(size)


def norm_xyxy_to_xywh(box, size: int) -> np.ndarray:
    """Normalised x1,y1,x2,y2 (the model's) to crop-pixel x,y,w,h; (..., 4) boxes."""
    b = np.asarray(box, dtype=np.float64) * float(size)
    return np.stack([b[..., 0], b[..., 1], b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)
