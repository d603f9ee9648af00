"""Per-pixel random fields for the sensors, drawn once per sequence and read at a random shift each frame.

Drawing fresh Gaussian noise for every 320x240 frame costs more than rendering it; a bank a little
larger than the frame, read at a new random offset each frame, gives noise that is independent between
neighbouring pixels and changes every frame, at the cost of an array view.
"""

from __future__ import annotations

import numpy as np

PAD = 32


class NoiseBank:
    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], kind: str = "normal"):
        h, w, *c = shape
        full = (h + PAD, w + PAD, *c)
        self.rng, self.h, self.w = rng, h, w
        self.bank = (rng.standard_normal(full, dtype=np.float32) if kind == "normal"
                     else rng.random(full, dtype=np.float32))

    def draw(self) -> np.ndarray:
        """A fresh-looking field of the frame's shape (a view: do not write into it)."""
        y, x = self.rng.integers(0, PAD, 2)
        return self.bank[y:y + self.h, x:x + self.w]
