"""Thermal: the scene's surface temperatures imaged by an uncooled microbolometer.

Scene side: the background's temperature follows the photo (bright, sunlit surfaces a little warmer)
around an ambient temperature, props and objects carry their own temperatures (warm living things and
engines, cool boards). Thermal crossover = the target at the temperature of what is behind it.

Camera side (per sequence): emissivity mixes each surface with the reflected ambient, optics blur,
a fixed-pattern non-uniformity (column offsets and a gain map with vignetting, which a real camera's
shutter calibration never removes fully), temporal noise, and an automatic gain control that maps a
smoothed percentile range of each frame to 8 bits, so a hot object elsewhere in view dims the target.
"""

from __future__ import annotations

import cv2
import numpy as np

from unitrack.data.synth.noise import NoiseBank

EMISSIVITY = (0.88, 0.98)


def scene_temperature(rng: np.random.Generator, bgr: np.ndarray, ambient: float) -> np.ndarray:
    """Background temperature (deg C): ambient, a few degrees of smooth variation, luminance-following."""
    h, w = bgr.shape[:2]
    lum = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    lum = cv2.GaussianBlur(lum, (0, 0), 2.0)
    grid = rng.normal(0, 1, (4, 5)).astype(np.float32)
    slow = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return (ambient + 1.8 * slow + 4.0 * (lum - lum.mean()) / 64.0).astype(np.float32)


class ThermalCamera:
    """Renders temperature fields to 8-bit grey frames (3-channel BGR, as LasHeR stores infrared)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], ambient: float):
        h, w = shape
        self.rng = rng
        self.ambient = float(ambient)
        self.emissivity = float(rng.uniform(*EMISSIVITY))
        self.blur = float(rng.uniform(0.9, 1.5))
        self.noise = float(rng.uniform(0.8, 1.6))  # DN, temporal
        cols = rng.normal(0, rng.uniform(0.8, 2.0), w).astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
        self.offset = np.broadcast_to(cols, (h, w)) + rng.uniform(4, 10) * (0.25 - r2)  # DN: stripes + vignette
        self.gain = (1 + rng.normal(0, 0.015, (h, w))).astype(np.float32)
        self.range: tuple[float, float] | None = None  # AGC state (deg C)
        self.bank = NoiseBank(rng, (h, w))

    def capture(self, temp: np.ndarray) -> np.ndarray:
        e = self.emissivity
        apparent = e * temp + (1 - e) * (self.ambient - 10.0)
        apparent = cv2.GaussianBlur(apparent, (0, 0), self.blur)
        sample = apparent[::4, ::4]
        lo, hi = np.percentile(sample, (1.0, 99.7))
        hi = max(hi, lo + 6.0)  # a real AGC never stretches less than a few degrees to full scale
        if self.range is None:
            self.range = (float(lo), float(hi))
        else:  # AGC adapts over a few frames, not instantly
            self.range = (0.8 * self.range[0] + 0.2 * lo, 0.8 * self.range[1] + 0.2 * hi)
        lo, hi = self.range
        dn = (apparent - lo) * (235.0 / (hi - lo)) + 10.0
        dn = dn * self.gain + self.offset + self.bank.draw() * np.float32(self.noise)
        g = cv2.convertScaleAbs(np.maximum(dn, 0))  # rounds, saturates at 255
        return cv2.merge([g, g, g])


def contrast(frame: np.ndarray, box, ring: int = 6) -> float:
    """Target minus surround mean grey level of a thermal frame (box x,y,w,h; surround = ring of px)."""
    g = frame[..., 0].astype(np.float32) if frame.ndim == 3 else frame.astype(np.float32)
    x, y, w, h = (int(v) for v in box)
    H, W = g.shape
    xa, ya, xb, yb = max(x - ring, 0), max(y - ring, 0), min(x + w + ring, W), min(y + h + ring, H)
    inner = g[max(y, 0):y + h, max(x, 0):x + w]
    outer = g[ya:yb, xa:xb]
    n_out = outer.size - inner.size
    if inner.size == 0 or n_out <= 0:
        return 0.0
    return float(inner.mean() - (outer.sum() - inner.sum()) / n_out)
