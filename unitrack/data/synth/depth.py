"""Depth: a layered scene depth imaged by a structured-light / stereo depth camera (Kinect, RealSense).

Scene side: a far wall with a floor plane in perspective (near at the bottom of the frame), or the real
disparity map of skimage's motorcycle pair converted to millimetres where that photo is the
background; every object stands at its own depth (the target's follows its scale: nearer = bigger).

Sensor side: depth noise that grows with the square of the distance, missing depth (0) beyond the
working range, at depth edges (the projector's shadow beside near objects) and in patches (dark or
shiny surfaces), optionally on the target itself, and 16-bit millimetre output as DepthTrack stores it.
"""

from __future__ import annotations

import cv2
import numpy as np

from unitrack.data.synth.noise import NoiseBank

MIN_RANGE_MM = 400.0
MAX_RANGE_MM = 9000.0
NOISE_K = 1.5e-6  # sigma(z) = k z^2 (mm): ~1.5 mm at 1 m, ~24 mm at 4 m, as Kinect-class sensors


def scene_depth(rng: np.random.Generator, h: int, w: int, horizon: float, disparity: np.ndarray | None) -> np.ndarray:
    """Background depth in mm: the real disparity map when there is one, else a wall and a floor plane."""
    if disparity is not None:
        d = np.nan_to_num(disparity, nan=0.0, posinf=0.0, neginf=0.0)
        valid = d > 1.0
        z = np.zeros((h, w), np.float32)
        fb = rng.uniform(1.6e5, 2.4e5)  # focal x baseline (px mm): the motorcycle at about 2-3 m
        z[valid] = fb / d[valid]
        return z  # invalid disparity stays 0: the sensor's own holes
    wall = rng.uniform(4500, 8000)
    z = np.full((h, w), wall, np.float32)
    relief = cv2.resize(rng.normal(0, 1, (3, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    z += 0.03 * wall * relief
    top = int(horizon * h)
    if top < h:
        near = rng.uniform(900, 1600)
        rows = np.arange(top, h, dtype=np.float32)
        # inverse depth is linear in the image row on a ground plane
        inv = 1 / wall + (1 / near - 1 / wall) * (rows - top) / max(h - 1 - top, 1)
        z[top:] = np.minimum(z[top:], (1 / inv)[:, None])
    return z


class DepthSensor:
    """Renders true depth (mm) to uint16 millimetres with the sensor's noise and holes."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int]):
        h, w = shape
        self.rng = rng
        self.shadow = int(rng.integers(2, 5))  # px of projector shadow beside near edges
        self.dropout = float(rng.uniform(0.002, 0.006))  # share of random missing pixels per frame
        blobs = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(2, 6))):  # dark / shiny patches that return nothing
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ax = (int(rng.integers(4, max(5, w // 12))), int(rng.integers(3, max(4, h // 14))))
            cv2.ellipse(blobs, c, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        self.patches = blobs.astype(bool)
        self.gauss, self.uniform = NoiseBank(rng, (h, w)), NoiseBank(rng, (h, w), "uniform")

    def capture(self, depth: np.ndarray, extra_holes: np.ndarray | None = None) -> np.ndarray:
        z = depth.astype(np.float32)
        z = z + np.float32(NOISE_K) * z * z * self.gauss.draw()
        invalid = (depth <= MIN_RANGE_MM) | (depth >= MAX_RANGE_MM) | self.patches
        # projector shadow: pixels just right of a near-to-far step see no pattern
        step = depth[:, :-1] < 0.85 * depth[:, 1:]
        shadow = np.zeros_like(invalid)
        for k in range(1, self.shadow + 1):
            shadow[:, k:] |= step[:, : depth.shape[1] - k]
        u = self.uniform.draw()
        invalid |= shadow & (u < 0.8)
        invalid |= (u > 0.5) & (u < 0.5 + self.dropout)
        if extra_holes is not None:
            invalid |= extra_holes
        z[invalid] = 0
        return np.clip(np.rint(z), 0, 65535).astype(np.uint16)


def target_holes(rng: np.random.Generator, alpha: np.ndarray, share: float) -> np.ndarray:
    """A reflective/dark part of the target that returns no depth: `share` of its area, in the patch."""
    h, w = alpha.shape
    m = np.zeros((h, w), np.uint8)
    c = (int(rng.integers(w // 4, max(w // 4 + 1, 3 * w // 4))), int(rng.integers(h // 4, max(h // 4 + 1, 3 * h // 4))))
    r = np.sqrt(share * h * w / np.pi)
    cv2.ellipse(m, c, (max(1, int(r * 1.2)), max(1, int(r / 1.2))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return (m > 0) & (alpha > 0.5)
