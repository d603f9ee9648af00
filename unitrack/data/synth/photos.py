"""The real photographs the world is made of: scikit-image's bundled images (no download), cut into
backgrounds, textures and objects with alpha.

Only images that ship inside the scikit-image wheel are used (checked with the network unreachable):
``skimage.data`` fetches the others through pooch, which would make generation depend on a download.
Objects get their alpha from what the image offers: the horse silhouette, the RGBA logo, the coins and
the cameraman segmented by thresholds, the motorcycle by its real disparity map, faces and the cup by
ellipses. Everything is deterministic (no random numbers here) and built once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: Longest side of a stored cut-out: large enough for the biggest target at 320x240, small to resize.
OBJECT_SIDE = 112


@dataclass(frozen=True)
class Cutout:
    """An object cut from a photo: BGR float32 0..255 colour, float32 0..1 alpha (same HxW)."""

    name: str
    group: str  # look-alikes share a group (coins, faces, horses ...)
    bgr: np.ndarray
    alpha: np.ndarray
    warm: bool  # a living thing or an engine: warm in thermal by default


@dataclass(frozen=True)
class Background:
    name: str
    bgr: np.ndarray  # float32 0..255
    disparity: np.ndarray | None = None  # the real disparity map (pixels; NaN/inf invalid), if the photo has one


@dataclass(frozen=True)
class Library:
    backgrounds: tuple[Background, ...]
    textures: tuple[np.ndarray, ...]  # grey float32 0..255 textures (brick, grass, gravel ...)
    objects: tuple[Cutout, ...]

    def group(self, name: str) -> list[Cutout]:
        return [o for o in self.objects if o.group == name]


def _bgr(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR).astype(np.float32)


def _fit(bgr: np.ndarray, alpha: np.ndarray, side: int = OBJECT_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Crop to the alpha's bounding box (+1 px) and scale so the longer side is `side`."""
    ys, xs = np.nonzero(alpha > 0.05)
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, alpha.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, alpha.shape[1])
    bgr, alpha = bgr[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    s = side / max(bgr.shape[:2])
    size = (max(4, round(bgr.shape[1] * s)), max(4, round(bgr.shape[0] * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return (np.ascontiguousarray(cv2.resize(bgr, size, interpolation=interp)),
            np.clip(cv2.resize(alpha, size, interpolation=interp), 0, 1).astype(np.float32))


def _soft(mask: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma), 0, 1)


def _ellipse(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (w // 2, h // 2), (w // 2 - 2, h // 2 - 2), 0, 0, 360, 1.0, -1)
    return _soft(m, 1.5)


def _largest(mask: np.ndarray, k: int = 1) -> list[np.ndarray]:
    """The k largest connected components of a binary mask, as uint8 masks."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:k] + 1
    return [(lab == i).astype(np.uint8) for i in order]


def _crop_ellipse(name: str, group: str, img: np.ndarray, x0: int, y0: int, x1: int, y1: int,
                  warm: bool) -> Cutout:
    patch = _bgr(img)[y0:y1, x0:x1]
    return Cutout(name, group, *_fit(patch, _ellipse(*patch.shape[:2])), warm)


def _coins(img: np.ndarray) -> list[Cutout]:
    """Each coin of skimage's coins photo, segmented by Otsu's threshold (the coins are brighter)."""
    g = cv2.GaussianBlur(img, (0, 0), 1.5)
    _, m = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    out = []
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area < 300 or w > 80 or h > 80:
            continue
        comp = (lab[y:y + h, x:x + w] == i).astype(np.float32)
        comp = cv2.morphologyEx(comp, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        out.append(Cutout(f"coin{len(out)}", "coin", *_fit(_bgr(img[y:y + h, x:x + w]), _soft(comp)), False))
    return out


def _horse(sil: np.ndarray, fill: np.ndarray) -> Cutout:
    """The horse silhouette (skimage ships it as a mask) filled with a real texture (wood grain)."""
    m = (~np.asarray(sil)).astype(np.float32)
    h, w = m.shape
    tex = cv2.resize(fill, (w, h), interpolation=cv2.INTER_LINEAR)
    return Cutout("horse", "horse", *_fit(tex, _soft(m, 1.2)), True)


def _cameraman(img: np.ndarray) -> Cutout:
    """The cameraman (and his camera) are the dark pixels of skimage's camera photo."""
    region = img[40:480, 0:340]
    m = (cv2.GaussianBlur(region, (0, 0), 2.0) < 60).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    m = _largest(m)[0]
    return Cutout("cameraman", "person", *_fit(_bgr(region), _soft(m, 1.2)), True)


def _motorcycle(left: np.ndarray, disp: np.ndarray) -> Cutout:
    """The motorcycle from the stereo pair: the near pixels of its real disparity map."""
    d = np.nan_to_num(disp.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    region = (slice(140, 445), slice(40, 690))
    dm = d[region]
    m = (dm > np.percentile(dm[dm > 0], 70)).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((11, 11), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    m = _largest(m)[0]
    return Cutout("motorcycle", "vehicle", *_fit(_bgr(left[region]), _soft(m, 1.2)), True)


def _logo(rgba: np.ndarray) -> Cutout:
    """The logo's disc (its alpha channel is opaque over a white square, so the disc is cut by shape)."""
    h, w = rgba.shape[:2]
    a = _ellipse(h - 20, w - 20)
    return Cutout("logo", "logo", *_fit(_bgr(rgba[10:h - 10, 10:w - 10, :3]), a), False)


def _faces(faces: np.ndarray, n: int = 24) -> list[Cutout]:
    """Labelled Faces in the Wild (25x25 grey): upscaled, skin-tinted, ellipse-masked look-alikes."""
    out = []
    tints = np.array([[0.78, 0.86, 1.0], [0.70, 0.80, 0.95], [0.62, 0.72, 0.86], [0.86, 0.92, 1.0]], np.float32)
    for i in range(n):
        g = cv2.resize((faces[i * 8] * 255).astype(np.float32), (75, 90), interpolation=cv2.INTER_CUBIC)
        bgr = np.clip(np.stack([g] * 3, -1) * tints[i % len(tints)], 0, 255)
        out.append(Cutout(f"face{i}", "face", *_fit(bgr, _ellipse(90, 75)), True))
    return out


@lru_cache(maxsize=1)
def library() -> Library:
    """Every background, texture and object, built once per process from skimage.data."""
    import skimage.data as sd

    astro, coffee, cat, rocket = sd.astronaut(), sd.coffee(), sd.chelsea(), sd.rocket()
    left, _right, disp = sd.stereo_motorcycle()
    camera = sd.camera()
    backgrounds = (
        Background("astronaut", _bgr(astro)), Background("coffee", _bgr(coffee)), Background("chelsea", _bgr(cat)),
        Background("rocket", _bgr(rocket)), Background("motorcycle", _bgr(left), disp.astype(np.float32)),
        Background("immunohistochemistry", _bgr(sd.immunohistochemistry())),
        Background("hubble", _bgr(sd.hubble_deep_field()[:600, :800])),
        Background("camera", _bgr(camera)), Background("coins", _bgr(sd.coins())),
    )
    textures = tuple(np.asarray(f(), np.float32) for f in (sd.brick, sd.grass, sd.gravel, sd.moon, sd.text, sd.page))
    fur = _bgr(coffee)[300:400, 0:260]  # the wooden table
    objects = [
        _horse(sd.horse(), fur), _cameraman(camera), _motorcycle(left, disp), _logo(sd.logo()),
        _crop_ellipse("astronaut_face", "person", astro, 150, 10, 290, 210, True),
        _crop_ellipse("helmet", "helmet", astro, 270, 320, 480, 505, False),
        _crop_ellipse("shuttle", "vehicle", astro, 335, 0, 430, 250, False),
        _crop_ellipse("cup", "cup", coffee, 100, 5, 470, 290, False),
        _crop_ellipse("cat", "cat", cat, 80, 0, 400, 290, True),
        _crop_ellipse("rocket", "vehicle", rocket, 270, 100, 330, 390, False),
        _crop_ellipse("flag", "flag", astro, 0, 0, 110, 260, False),
        *_coins(sd.coins()), *_faces(sd.lfw_subset()),
    ]
    return Library(backgrounds, textures, tuple(objects))
