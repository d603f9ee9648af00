"""The RGB camera: exposure of the scene's colour field, with what real video has.

Illumination (a global gain that changes abruptly or slowly, and a moving light gradient), night (a
dark, low-contrast, noisy exposure), motion blur of moving objects during the exposure (the event
sensor sees the sharp scene), and sensor noise; JPEG compression comes from the writers.
"""

from __future__ import annotations

import cv2
import numpy as np

from unitrack.data.synth.noise import NoiseBank


def line_kernel(vx: float, vy: float) -> np.ndarray:
    """Normalised motion-blur kernel: a line along the motion, as long as the displacement in one frame."""
    length = max(2.0, float(np.hypot(vx, vy)))
    k = int(np.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    norm = max(float(np.hypot(vx, vy)), 1e-6)
    ux, uy = vx / norm, vy / norm
    c = k // 2
    p0 = (int(round(c - ux * length / 2)), int(round(c - uy * length / 2)))
    p1 = (int(round(c + ux * length / 2)), int(round(c + uy * length / 2)))
    cv2.line(ker, p0, p1, 1.0, 1)
    return ker / ker.sum()


def blur_patch(bgr: np.ndarray, alpha: np.ndarray, vx: float, vy: float) -> tuple[np.ndarray, np.ndarray, int]:
    """A moving object's patch smeared along its motion: (colour, alpha, padding added on each side)."""
    ker = line_kernel(vx, vy)
    p = ker.shape[0]
    a = cv2.copyMakeBorder(alpha, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
    c = cv2.copyMakeBorder(bgr * alpha[..., None], p, p, p, p, cv2.BORDER_CONSTANT, value=0)
    a_bl = cv2.filter2D(a, -1, ker, borderType=cv2.BORDER_CONSTANT)
    c_bl = cv2.filter2D(c, -1, ker, borderType=cv2.BORDER_CONSTANT)
    return c_bl / np.maximum(a_bl, 1e-4)[..., None], a_bl, p


def illumination(rng: np.random.Generator, n: int, change: bool) -> np.ndarray:
    """Per-frame global gain: about 1, with an abrupt or gradual change (lights off/on, a cloud) if `change`."""
    g = np.ones(n)
    if change:
        t0 = int(rng.integers(n // 5, max(n // 5 + 1, 3 * n // 4)))
        length = int(rng.integers(1, max(2, n // 6)))
        level = rng.choice([rng.uniform(0.35, 0.6), rng.uniform(1.35, 1.7)])
        ramp = np.clip((np.arange(n) - t0) / length, 0, 1)
        back = rng.random() < 0.5
        if back:
            t1 = int(min(n - 1, t0 + length + rng.integers(n // 8, max(n // 8 + 1, n // 3))))
            ramp = ramp * (1 - np.clip((np.arange(n) - t1) / length, 0, 1))
        g = 1 + (level - 1) * ramp
    return g


class RGBCamera:
    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], night: bool):
        h, w = shape
        self.rng = rng
        self.night = night
        dark, noise_day, noise_night = rng.uniform(0.14, 0.25), rng.uniform(1.5, 3.0), rng.uniform(3.0, 5.0)
        self.gain = dark if night else 1.0  # (both drawn: day and night of one seed share everything else)
        self.noise = noise_night if night else noise_day
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.grid = (xx / w - 0.5, yy / h - 0.5)
        self.light = rng.uniform(-1, 1, 2)  # direction of the light gradient
        self.light_amp = rng.uniform(0.0, 0.25)
        self.bank = NoiseBank(rng, (h, w, 3))
        self.bank.bank *= np.float32(self.noise)
        if night:
            self.bank.bank += np.float32(6.0)  # lifted black level

    def capture(self, bgr: np.ndarray, t: int, gain: float) -> np.ndarray:
        gx, gy = self.grid
        a = 2 * np.pi * t / 200.0
        k = gain * self.gain * (0.8 if self.night else 1.0)  # night: crushed contrast over a lifted black
        ramp = cv2.addWeighted(gx, k * self.light_amp * np.cos(a + self.light[0]),
                               gy, k * self.light_amp * np.sin(a + self.light[1]), k)
        img = bgr * ramp[..., None]
        return cv2.add(img, self.bank.draw(), dtype=cv2.CV_8U)  # rounds and saturates to 0..255
