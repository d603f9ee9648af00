"""Photometric and flip augmentation of a template/search crop pair, RGB and X together.

Geometry is shared between the modalities: a flip mirrors an image's RGB and X crops and its box together,
so the two modalities stay registered. `flip="pair"` (the default): one coin flips the whole pair;
`flip="image"` (LoRAT's `horizontal_flip`, joint: false): the template and the search image each get a coin. Colour is not shared:
brightness/contrast/saturation jitter and grayscale only make sense for the RGB image; the X image
(thermal, rendered depth, event frame) is not a photograph, so at most a mild brightness change touches it.
`three_augment` (LoRAT's `DeiT_3_aug`, joint: true): one of grayscale / solarise (v >= 128 -> 255 - v) /
Gaussian blur (sigma ~ U(0.1, 2)) always, the same choice and sigma for both RGB crops of the pair; X untouched.
Every random draw comes from the caller's `np.random.Generator`, and the draws happen in a fixed order
whatever the settings, so a sample is reproducible from its seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from unitrack.errors import ConfigError


@dataclass(frozen=True)
class PairAugment:
    """Settings of the pair augmentation; factors are drawn from uniform(1 - v, 1 + v)."""

    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    grayscale_p: float = 0.05
    x_brightness: float = 0.1
    flip: str = "pair"  # pair: one coin for the pair | image: one coin per image (template, search)
    three_augment: bool = False  # DeiT-III: grayscale / solarise / blur, one always (RGB only)

    def __post_init__(self) -> None:
        if self.flip not in FLIPS:
            raise ConfigError("data.augment.flip", f"must be one of {', '.join(FLIPS)}, got {self.flip!r}")

    @classmethod
    def off(cls) -> PairAugment:
        return cls(flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, grayscale_p=0.0, x_brightness=0.0)

    @classmethod
    def from_config(cls, node: Any) -> PairAugment | None:
        """`data.augment`: a bool (true = the defaults) or a mapping {enabled, flip, grayscale_p, three_augment};
        None when augmentation is off."""
        if isinstance(node, bool) or node is None:
            return cls() if node else None
        node = dict(node)
        if not node.pop("enabled", True):
            return None
        unknown = set(node) - set(CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"data.augment.{sorted(unknown)[0]}", f"unknown key (known: {', '.join(CONFIG_KEYS)})")
        return cls(**node)


FLIPS = ("pair", "image")
#: the keys of a `data.augment` mapping besides `enabled` (conf/augment/*.yaml)
CONFIG_KEYS = ("flip", "grayscale_p", "three_augment")
BLUR_SIGMA = (0.1, 2.0)  # DeiT-III / LoRAT GaussianBlur radius range
SOLARIZE_THRESHOLD = 128  # PIL ImageOps.solarize's default


def _factor(rng: np.random.Generator, v: float) -> float:
    # Always draw, so the stream of draws does not depend on which settings are zero.
    u = rng.uniform(-1.0, 1.0)
    return 1.0 + v * u


def color_jitter(img: np.ndarray, rng: np.random.Generator, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> np.ndarray:
    """Brightness, contrast and saturation changes in a random order (as torchvision's ColorJitter).

    uint8 in, uint8 out, saturating after each step like torchvision on uint8 tensors; cv2's blends keep
    it well under a millisecond on a 224 px crop.
    """
    factors = (_factor(rng, brightness), _factor(rng, contrast), _factor(rng, saturation))
    order = rng.permutation(3)
    out = img
    for k in order:
        f = factors[k]
        if f == 1.0:
            continue
        if k == 0:
            out = cv2.addWeighted(out, f, out, 0.0, 0.0)
        elif k == 1:  # blend towards the mean luma
            m = float(cv2.mean(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY))[0])
            out = cv2.addWeighted(out, f, out, 0.0, m * (1.0 - f))
        else:  # blend towards the per-pixel luma
            out = cv2.addWeighted(out, f, to_grayscale(out), 1.0 - f, 0.0)
    return out


def to_grayscale(img: np.ndarray) -> np.ndarray:
    """Luma replicated to three channels, so the network input keeps its shape."""
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def scale_brightness(img: np.ndarray, f: float) -> np.ndarray:
    return img if f == 1.0 else cv2.addWeighted(img, f, img, 0.0, 0.0)


def solarize(img: np.ndarray, threshold: int = SOLARIZE_THRESHOLD) -> np.ndarray:
    """PIL's ImageOps.solarize on uint8: values >= threshold are inverted."""
    return np.where(img >= threshold, 255 - img, img).astype(img.dtype)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` px (PIL's GaussianBlur radius), edges replicated."""
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def three_augment(img: np.ndarray, k: int, sigma: float) -> np.ndarray:
    """DeiT-III's 3-augment, choice k: 0 grayscale, 1 solarise, 2 Gaussian blur."""
    return to_grayscale(img) if k == 0 else solarize(img) if k == 1 else gaussian_blur(img, sigma)


def hflip_box(box_norm_xyxy: np.ndarray) -> np.ndarray:
    """Mirror a normalised x1,y1,x2,y2 box about the crop's vertical axis: x1' = 1 - x2, x2' = 1 - x1."""
    b = np.asarray(box_norm_xyxy, dtype=np.float64)
    return np.array([1.0 - b[2], b[1], 1.0 - b[0], b[3]])


def augment_pair(crops: dict[str, np.ndarray], boxes: dict[str, np.ndarray], rng: np.random.Generator,
                 cfg: PairAugment = PairAugment()) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Augment one training pair.

    crops: uint8 HxWx3 images keyed "z" (RGB template), "zx" (X template), "x" (RGB search), "xx" (X search).
    boxes: normalised xyxy boxes keyed e.g. "z_box" (template: keys starting with "z"), "box" (search); a box
    is mirrored with its image. Returns new dicts (inputs are not modified).
    """
    flip = rng.random() < cfg.flip_p
    gray = rng.random() < cfg.grayscale_p
    out = dict(crops)
    for key in ("z", "x"):  # RGB crops: each frame gets its own illumination change
        img = color_jitter(out[key], rng, cfg.brightness, cfg.contrast, cfg.saturation)
        out[key] = to_grayscale(img) if gray else img
    for key in ("zx", "xx"):
        out[key] = scale_brightness(out[key], _factor(rng, cfg.x_brightness))
    # Drawn after every earlier draw and whatever the settings: the stream above is today's, unchanged.
    flip_search = rng.random() < cfg.flip_p
    choice, sigma = int(rng.integers(3)), float(rng.uniform(*BLUR_SIGMA))
    if cfg.three_augment:  # one choice (and sigma) for both RGB crops, as LoRAT's joint DeiT_3_aug
        for key in ("z", "x"):
            out[key] = three_augment(out[key], choice, sigma)
    if cfg.flip == "pair":
        flip_search = flip
    flips = {"z": flip, "x": flip_search}  # the image (template, search) a crop or box belongs to
    new_boxes = dict(boxes)
    # last, so a flipped sample is exactly the mirror of the unflipped one
    out = {k: cv2.flip(v, 1) if flips[k[0]] else v for k, v in out.items()}
    new_boxes = {k: hflip_box(v) if flips["z" if k.startswith("z") else "x"] else v for k, v in boxes.items()}
    return out, new_boxes
