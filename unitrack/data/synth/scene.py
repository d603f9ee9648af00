"""The scene: a photo background larger than the frame (with a textured floor and props cut from
photos), the cut-out objects that move in front of it, and the camera that looks at it.

A scene is rendered as physical fields, not as per-task pictures: colour (BGR), temperature (deg C) and
depth (mm) per pixel, composited layer by layer with each object's alpha. Each sensor (rgb.py,
thermal.py, depth.py, events.py) then images the same fields, so what a modality shows follows from
the scene: a warm prop is warm whichever object the tracker follows, a near floor is near.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unitrack.data.synth.photos import Cutout, Library

#: Fields a task needs besides colour ('temp' for thermal, 'depth' for depth).
TASK_FIELDS = {"rgbt": ("temp",), "rgbd": ("depth",), "rgbe": (), "rgb": ()}


@dataclass
class Fields:
    """One frame's (or the canvas's) physical fields; temp/depth are None when no sensor reads them."""

    bgr: np.ndarray  # HxWx3 float32 0..255
    temp: np.ndarray | None = None  # HxW float32 deg C
    depth: np.ndarray | None = None  # HxW float32 mm


@dataclass
class Look:
    """An object as it appears this sequence: colour/alpha at full resolution plus its materials."""

    cut: Cutout
    bgr: np.ndarray
    alpha: np.ndarray
    temp: float  # deg C at the surface
    temp_texture: float  # deg C of surface temperature variation following the photo's luminance


def recolour(rng: np.random.Generator, bgr: np.ndarray, strength: float) -> np.ndarray:
    """Shift hue and saturation (a differently coloured instance of the same object)."""
    hsv = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + strength * rng.uniform(-90, 90)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - 0.5 * strength, 1 + 0.8 * strength) + 40 * strength, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)


def tint(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    """A grey photo texture coloured by a random pair of colours (dark -> c0, bright -> c1)."""
    g = grey[..., None] / 255.0
    c0, c1 = rng.uniform(10, 120, 3), rng.uniform(110, 250, 3)
    return (c0 + (c1 - c0) * g).astype(np.float32)


def make_look(rng: np.random.Generator, cut: Cutout, lib: Library, recolour_strength: float, temp: float,
              temp_texture: float = 1.5) -> Look:
    bgr = cut.bgr
    if cut.group in ("coin", "face") or cut.name in ("cameraman",):
        bgr = bgr * rng.uniform(0.75, 1.2, 3).astype(np.float32)  # grey photos: a tint of their own
    if recolour_strength > 0:
        bgr = recolour(rng, bgr, recolour_strength)
    if rng.random() < 0.5:
        bgr, alpha = bgr[:, ::-1], cut.alpha[:, ::-1]
    else:
        alpha = cut.alpha
    return Look(cut, np.ascontiguousarray(np.clip(bgr, 0, 255)), np.ascontiguousarray(alpha), temp, temp_texture)


def pose(look: Look, w: int, h: int, angle: float = 0.0, deform: float = 0.0,
         phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The object at size w x h (its alpha box), rotated by `angle` degrees and non-rigidly bent.

    Deformation bends the patch with a smooth sinusoidal displacement (amplitude `deform` x size), the
    cheap stand-in for a walking or flexing body. The returned patch may be larger than w x h when
    rotated (its bounding square); the caller centres it.
    """
    bgr = cv2.resize(look.bgr, (w, h), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(look.alpha, (w, h), interpolation=cv2.INTER_AREA)
    if deform > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dx = deform * w * np.sin(2 * np.pi * yy / max(h, 1) + phase)
        dy = 0.5 * deform * h * np.sin(2 * np.pi * xx / max(w, 1) + 1.3 * phase)
        mx, my = (xx + dx).astype(np.float32), (yy + dy).astype(np.float32)
        bgr = cv2.remap(bgr, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if abs(angle) > 0.5:
        side = int(np.ceil(np.hypot(w, h))) + 2
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[:, 2] += ((side - w) / 2, (side - h) / 2)
        bgr = cv2.warpAffine(bgr, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, m, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
    return bgr, alpha


def patch_box(alpha: np.ndarray, x0: int, y0: int) -> tuple[int, int, int, int] | None:
    """Tight x0,y0,x1,y1 (exclusive) of the patch's alpha > 0.5, in frame coordinates; None if empty."""
    rows, cols = np.flatnonzero((alpha > 0.5).any(1)), np.flatnonzero((alpha > 0.5).any(0))
    if rows.size == 0:
        return None
    return x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1


def composite(f: Fields, bgr: np.ndarray, alpha: np.ndarray, x0: int, y0: int, temp: float | np.ndarray | None,
              depth: float | np.ndarray | None) -> np.ndarray:
    """Blend a patch over the fields at (x0, y0); returns the patch's alpha as placed in the frame (HxW view).

    Colour and temperature mix with alpha (a thermal camera also integrates over the pixel); depth is
    replaced where alpha > 0.5 (a depth sensor returns one surface, not an average).
    """
    H, W = f.bgr.shape[:2]
    h, w = alpha.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    placed = np.zeros((H, W), np.float32)
    if xa >= xb or ya >= yb:
        return placed
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0]
    placed[ya:yb, xa:xb] = a
    sub = f.bgr[ya:yb, xa:xb]
    sub += (bgr[ya - y0:yb - y0, xa - x0:xb - x0] - sub) * a[..., None]
    if f.temp is not None and temp is not None:
        st = f.temp[ya:yb, xa:xb]
        t = temp if np.isscalar(temp) else temp[ya - y0:yb - y0, xa - x0:xb - x0]
        st += (t - st) * a
    if f.depth is not None and depth is not None:
        sd = f.depth[ya:yb, xa:xb]
        d = depth if np.isscalar(depth) else depth[ya - y0:yb - y0, xa - x0:xb - x0]
        front = a > 0.5
        sd[front] = d if np.isscalar(d) else d[front]
    return placed


def object_temperature(look: Look, patch_bgr: np.ndarray, patch_alpha: np.ndarray) -> np.ndarray:
    """Surface temperature over a posed patch: the object's temperature, warmer at its core, with a
    faint texture following the photo's luminance (emissivity varies with the surface)."""
    lum = cv2.cvtColor(np.clip(patch_bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    core = cv2.GaussianBlur(patch_alpha, (0, 0), max(1.0, 0.2 * min(patch_alpha.shape)))
    core = core / max(float(core.max()), 1e-6)
    return (look.temp + 1.5 * (core - 0.5) + look.temp_texture * (lum - lum.mean()) / 64.0).astype(np.float32)


def view(canvas: Fields, cx: float, cy: float, zoom: float, W: int, H: int) -> Fields:
    """The camera's frame: the canvas around (cx, cy) (offsets from its centre), magnified by `zoom`."""
    Hc, Wc = canvas.bgr.shape[:2]
    m = np.array([[zoom, 0, W / 2 - zoom * (Wc / 2 + cx)], [0, zoom, H / 2 - zoom * (Hc / 2 + cy)]], np.float32)
    warp = lambda a, interp: cv2.warpAffine(a, m, (W, H), flags=interp, borderMode=cv2.BORDER_REFLECT)  # noqa: E731
    out = Fields(warp(canvas.bgr, cv2.INTER_LINEAR))
    if canvas.temp is not None:
        out.temp = warp(canvas.temp, cv2.INTER_LINEAR)
    if canvas.depth is not None:
        out.depth = warp(canvas.depth, cv2.INTER_NEAREST) / np.float32(zoom)  # zooming in = moving closer
    return out


def background(rng: np.random.Generator, lib: Library, Wc: int, Hc: int, avoid: str | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, float, str]:
    """A photo cropped/resized to the canvas, sometimes with a textured floor below a horizon.

    Returns (bgr, disparity or None, horizon row fraction (1.0 = no floor), photo name).
    """
    choices = [b for b in lib.backgrounds if b.name != avoid]
    bg = choices[int(rng.integers(len(choices)))]
    img, disp = bg.bgr, bg.disparity
    h, w = img.shape[:2]
    s = max(Wc / w, Hc / h) * rng.uniform(1.0, 1.4)
    cw, ch = min(w, int(np.ceil(Wc / s))), min(h, int(np.ceil(Hc / s)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (Wc, Hc), interpolation=cv2.INTER_AREA)
    if disp is not None:
        disp = cv2.resize(disp[y0:y0 + ch, x0:x0 + cw], (Wc, Hc), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.5:
        out = recolour(rng, out, 0.3)
    horizon = 1.0
    if disp is None and rng.random() < 0.6:  # a floor: a photo texture in perspective
        horizon = rng.uniform(0.5, 0.75)
        top = int(horizon * Hc)
        grey = np.tile(lib.textures[int(rng.integers(len(lib.textures)))], (3, 3))
        th, tw = grey.shape
        src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
        dst = np.float32([[0.2 * Wc, 0], [0.8 * Wc, 0], [1.8 * Wc, Hc - top], [-0.8 * Wc, Hc - top]])
        floor = cv2.warpPerspective(grey, cv2.getPerspectiveTransform(src, dst), (Wc, Hc - top),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out[top:] = 0.15 * out[top:] + 0.85 * tint(rng, floor)
    return out.astype(np.float32), disp, horizon, bg.name
