"""Contact sheets of a world (docs/synth_*.png): a few test sequences per task, RGB over X as the model
sees X (depth colour-mapped), the ground-truth box drawn, read back through the dataset readers.

    python -m unitrack.data.synth.sheet DATA_ROOT OUT_PREFIX [--sequences 3] [--frames 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from unitrack.data.formats import load_dataset
from unitrack.data.sequence import load_frame
from unitrack.data.synth.writers import TASK_DATASET


def _tile(img: np.ndarray, box, width: int) -> np.ndarray:
    s = width / img.shape[1]
    out = cv2.resize(img, (width, int(round(img.shape[0] * s))), interpolation=cv2.INTER_AREA)
    if np.isfinite(box).all() and box[2] > 0:
        x, y, w, h = (int(round(v * s)) for v in box)
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 1)
    return out


def task_sheet(root: Path, task: str, sequences: int = 2, frames: int = 4, width: int = 200) -> np.ndarray:
    seqs = load_dataset(TASK_DATASET[task], root / TASK_DATASET[task], "test")
    special = [s for s in seqs if "_night_" in s.name or "_fast_" in s.name]  # show a night / fast one too
    seqs = (special[:1] + [s for s in seqs if s not in special[:1]])[:sequences]
    rows = []
    for s in seqs:
        idx = np.linspace(0, len(s) - 1, frames).round().astype(int)
        top, bottom = [], []
        for i in idx:
            rgb, x = load_frame(s, int(i))
            top.append(_tile(rgb, s.boxes[i], width))
            bottom.append(_tile(x, s.boxes[i], width))
        band = np.vstack([np.hstack(top), np.hstack(bottom)])
        label = np.full((18, band.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{s.name} ({task}): RGB over {s.x_modality}, frames {', '.join(map(str, idx))}",
                    (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [label, band]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("prefix", type=str)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--frames", type=int, default=4)
    a = ap.parse_args(argv)
    for task in TASK_DATASET:
        sheet = task_sheet(a.root, task, a.sequences, a.frames)
        path = f"{a.prefix}_{task}.png"
        cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(path)


if __name__ == "__main__":
    main()
