"""Photometric and flip augmentation of a template/search crop pair, RGB and X together.

Geometry is shared: one coin flips every crop of the pair (RGB and X, template and search) and both boxes,
so the two modalities stay registered and the template still matches the search. Colour is not shared:
brightness/contrast/saturation jitter and grayscale only make sense for the RGB image; the X image
(thermal, rendered depth, event frame) is not a photograph, so at most a mild brightness change touches it.
Every random draw comes from the caller's `np.random.Generator`, and the draws happen in a fixed order
whatever the settings, so a sample is reproducible from its seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PairAugment:
    """Settings of the pair augmentation; factors are drawn from uniform(1 - v, 1 + v)."""

    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    grayscale_p: float = 0.05
    x_brightness: float = 0.1

    @classmethod
    def off(cls) -> PairAugment:
        return cls(flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, grayscale_p=0.0, x_brightness=0.0)


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


def hflip_box(box_norm_xyxy: np.ndarray) -> np.ndarray:
    """Mirror a normalised x1,y1,x2,y2 box about the crop's vertical axis: x1' = 1 - x2, x2' = 1 - x1."""
    b = np.asarray(box_norm_xyxy, dtype=np.float64)
    return np.array([1.0 - b[2], b[1], 1.0 - b[0], b[3]])


def augment_pair(crops: dict[str, np.ndarray], boxes: dict[str, np.ndarray], rng: np.random.Generator,
                 cfg: PairAugment = PairAugment()) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Augment one training pair.

    crops: uint8 HxWx3 images keyed "z" (RGB template), "zx" (X template), "x" (RGB search), "xx" (X search).
    boxes: normalised xyxy boxes keyed e.g. "z_box", "box"; all are mirrored when the pair is flipped.
    Returns new dicts (inputs are not modified).
    """
    flip = rng.random() < cfg.flip_p
    gray = rng.random() < cfg.grayscale_p
    out = dict(crops)
    for key in ("z", "x"):  # RGB crops: each frame gets its own illumination change
        img = color_jitter(out[key], rng, cfg.brightness, cfg.contrast, cfg.saturation)
        out[key] = to_grayscale(img) if gray else img
    for key in ("zx", "xx"):
        out[key] = scale_brightness(out[key], _factor(rng, cfg.x_brightness))
    new_boxes = dict(boxes)
    if flip:  # last, so a flipped sample is exactly the mirror of the unflipped one
        out = {k: cv2.flip(v, 1) for k, v in out.items()}
        new_boxes = {k: hflip_box(v) for k, v in boxes.items()}
    return out, new_boxes
