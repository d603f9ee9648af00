"""Events: a DVS pixel array simulated from the RGB render itself (the ESIM / v2e model).

Each pixel keeps the log intensity at which it last fired; between two rendered frames the log
intensity is interpolated linearly over `substeps` (v2e's frame interpolation), and a pixel fires one
event each time its log intensity moves a contrast threshold away from that reference (ON above, OFF
below). Thresholds vary per pixel (fixed-pattern mismatch), a pixel that fired is blind for a
refractory period, and shot-noise events fire at random. So a static scene fires only noise, while
camera motion over a textured photo fires everywhere, like a real event camera.

Events between two frames are accumulated into one frame as VisEvent stores them: a white canvas with
the pixels of net positive polarity red and of net negative polarity blue.
"""

from __future__ import annotations

import cv2
import numpy as np

from unitrack.data.synth.noise import NoiseBank

#: Event frame colours (BGR as written by cv2): white canvas, ON red, OFF blue.
EVENT_BG = (255, 255, 255)
EVENT_POS = (0, 0, 255)
EVENT_NEG = (255, 0, 0)
LOG_EPS = 15.0  # lin-log offset (grey levels): dark pixels do not fire on tiny changes


def log_intensity(bgr: np.ndarray) -> np.ndarray:
    lum = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.float32), cv2.COLOR_BGR2GRAY)
    return np.log(lum + LOG_EPS)


class EventCamera:
    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], threshold: float = 0.2,
                 threshold_sigma: float = 0.03, refractory: int = 1, substeps: int = 3,
                 noise_rate: float = 0.0015):
        self.rng = rng
        self.c_pos = np.maximum(0.05, rng.normal(threshold, threshold_sigma, shape)).astype(np.float32)
        self.c_neg = np.maximum(0.05, rng.normal(threshold, threshold_sigma, shape)).astype(np.float32)
        self.inv_pos, self.inv_neg = 1 / self.c_pos, 1 / self.c_neg
        self.refractory, self.substeps, self.noise_rate = int(refractory), int(substeps), float(noise_rate)
        self.ref: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.last = np.full(shape, -10**6, np.int32)
        self.clock = 0
        self.bank = NoiseBank(rng, shape, "uniform")

    def reset(self, log_frame: np.ndarray) -> None:
        self.ref = log_frame.copy()
        self.prev = log_frame.copy()

    def capture(self, log_frame: np.ndarray) -> np.ndarray:
        """Signed event count per pixel since the previous frame (int16)."""
        if self.ref is None:
            self.reset(log_frame)
            return np.zeros(log_frame.shape, np.int16)
        net = np.zeros(log_frame.shape, np.float32)
        step = (log_frame - self.prev) / np.float32(self.substeps)
        cur = self.prev.copy()
        for _ in range(self.substeps):
            self.clock += 1
            cur += step
            ready = (self.clock - self.last) > self.refractory
            d = cur - self.ref
            n_on = np.floor(d * self.inv_pos)
            n_off = np.floor(-d * self.inv_neg)
            np.maximum(n_on, 0, out=n_on)
            np.maximum(n_off, 0, out=n_off)
            n_on *= ready
            n_off *= ready
            self.ref += n_on * self.c_pos - n_off * self.c_neg
            net += n_on - n_off
            self.last[(n_on + n_off) > 0] = self.clock
        self.prev = log_frame.copy()
        u = self.bank.draw()
        net[u < self.noise_rate / 2] += 1
        net[(u >= self.noise_rate / 2) & (u < self.noise_rate)] -= 1
        return net.astype(np.int16)


_PALETTE = np.zeros((1, 256, 3), np.uint8)
_PALETTE[0, 0], _PALETTE[0, 1], _PALETTE[0, 2] = EVENT_NEG, EVENT_BG, EVENT_POS


def event_frame(net: np.ndarray) -> np.ndarray:
    """VisEvent-style frame of a signed event count map: white, red where net ON, blue where net OFF."""
    idx = (np.sign(net) + 1).astype(np.uint8)  # 0 OFF, 1 none, 2 ON
    return cv2.LUT(cv2.merge([idx, idx, idx]), _PALETTE)


def event_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels of an event frame that hold an event (anything not the white canvas)."""
    return (frame != np.array(EVENT_BG, np.uint8)).any(2)
