"""How things move: the target's path, size, aspect and pose over time, out-of-view excursions, the
occluder's sweep, and the camera's own motion (pan, zoom, shake).

All paths are arrays over the n rendered frames (frame -1 included: the event camera needs a
predecessor), drawn from the sequence's Generator only, so a sequence is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def walk(rng: np.random.Generator, n: int, step: float, lo: float, hi: float, inertia: float = 0.9,
         start: float | None = None) -> np.ndarray:
    """A smooth bounded random walk (velocity with inertia, reflected at the bounds)."""
    out = np.empty(n, np.float64)
    x = rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo)) if start is None else float(start)
    v = 0.0
    noise = rng.normal(0, 3 * step, n)
    for t in range(n):
        v = inertia * v + (1 - inertia) * noise[t]
        x += v
        if x < lo or x > hi:
            x, v = float(np.clip(x, lo, hi)), -v
        out[t] = x
    return out


def trajectory(rng: np.random.Generator, n: int, w: int, h: int, speed: float, half: np.ndarray) -> np.ndarray:
    """Centres (n, 2) moving with inertia at about `speed` px/frame, bouncing off the frame borders.

    `half` (n, 2) is the object's half size per frame, so it stays inside the frame.
    """
    c = np.empty((n, 2), np.float64)
    pos = np.array([rng.uniform(half[0, 0] + 2, max(half[0, 0] + 3, w - half[0, 0] - 2)),
                    rng.uniform(half[0, 1] + 2, max(half[0, 1] + 3, h - half[0, 1] - 2))])
    heading = rng.uniform(0, 2 * np.pi)
    turn, jitter = rng.normal(0, 0.15, n), rng.normal(0, 0.1 * speed, n)
    s = speed
    for t in range(n):
        heading += turn[t]
        s = float(np.clip(0.9 * s + 0.1 * speed + jitter[t], 0.3 * speed, 1.7 * speed))
        v = s * np.array([np.cos(heading), np.sin(heading)])
        lo, hi = half[t] + 2, np.array([w, h]) - half[t] - 2
        nxt = pos + v
        for k in range(2):
            if nxt[k] < lo[k] or nxt[k] > hi[k]:
                v[k] = -v[k]
        heading = float(np.arctan2(v[1], v[0]))
        pos = np.clip(pos + v, lo, np.maximum(lo, hi))
        c[t] = pos
    return c


def out_of_view(rng: np.random.Generator, centre: np.ndarray, frames: int, w: int, h: int,
                extent: float) -> tuple[int, int]:
    """Push the target past the nearest border and back (a smooth bump); returns (first frame, length)."""
    n = len(centre)
    length = int(np.clip(round(frames * rng.uniform(0.08, 0.14)), 5, 24))
    t0 = int(rng.integers(int(frames * 0.5), max(int(frames * 0.5) + 1, frames - length))) + 1
    tm = min(t0 + length // 2, n - 1)
    edges = [centre[tm, 0], w - centre[tm, 0], centre[tm, 1], h - centre[tm, 1]]
    e = int(np.argmin(edges))
    direction = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]][e], np.float64)
    amp = edges[e] + 1.5 * extent
    for t in range(t0, min(t0 + length, n)):
        centre[t] += direction * amp * np.sin(np.pi * (t - t0 + 0.5) / length) ** 2
    return t0, length


@dataclass
class Occlusion:
    """A scene object sweeping across the target: partial (smaller than it) or full (larger, slower)."""

    t1: int
    length: int
    w: int
    h: int
    horizontal: bool
    sign: float
    full: bool

    def active(self, t: int) -> bool:
        return self.t1 <= t < self.t1 + self.length

    def centre(self, t: int, target_centre: np.ndarray, tw: int, th: int) -> tuple[float, float]:
        """Where the occluder is at frame t: from one side of the target to the other."""
        u = 1 - 2 * (t - self.t1) / max(self.length - 1, 1)  # +1 -> -1 across the span
        reach = ((self.w + tw) / 2 + 2) if self.horizontal else ((self.h + th) / 2 + 2)
        off = self.sign * u * reach
        if self.horizontal:
            return target_centre[0] + off, target_centre[1] + (0 if self.full else 0.35 * th * self.sign)
        return target_centre[0] + (0 if self.full else 0.35 * tw * self.sign), target_centre[1] + off


def occlusion(rng: np.random.Generator, frames: int, tw: int, th: int, full: bool) -> Occlusion:
    length = int(np.clip(round(frames * rng.uniform(0.14, 0.22) * (1.4 if full else 1.0)), 6, 40))
    t1 = int(rng.integers(max(3, int(frames * 0.15)), max(4, int(frames * 0.45)))) + 1
    k = rng.uniform(1.5, 2.0) if full else rng.uniform(0.6, 0.9)
    return Occlusion(t1, length, int(np.ceil(k * tw)), int(np.ceil(k * th)), bool(rng.random() < 0.5),
                     1.0 if rng.random() < 0.5 else -1.0, full)


@dataclass
class CameraPath:
    """Per-frame camera: offset of the view's centre on the background canvas (px) and zoom factor."""

    centre: np.ndarray  # (n, 2)
    zoom: np.ndarray  # (n,)
    moving: bool


def camera_path(rng: np.random.Generator, n: int, margin: float, mode: str) -> CameraPath:
    """mode: static | pan | shake | zoom | strong (event clutter: fast pan with shake)."""
    centre = np.zeros((n, 2))
    zoom = np.ones(n)
    if mode in ("pan", "strong"):
        step = rng.uniform(0.5, 1.0) if mode == "pan" else rng.uniform(1.5, 2.5)
        centre[:, 0] = walk(rng, n, step, -margin, margin, inertia=0.95, start=0.0)
        centre[:, 1] = walk(rng, n, step * 0.5, -margin / 2, margin / 2, inertia=0.95, start=0.0)
    if mode in ("shake", "strong"):
        centre += rng.normal(0, 1.2 if mode == "shake" else 1.8, (n, 2))
    if mode == "zoom":
        zoom = np.exp(walk(rng, n, 0.006, -0.12, 0.18, inertia=0.97, start=0.0))
    return CameraPath(centre, zoom, mode != "static")
