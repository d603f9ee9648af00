"""Track one target through an arbitrary video (file or image folder) and write an annotated mp4.

The X stream is a second video/folder of the same length (thermal, depth or event frames); without one
the RGB frames also serve as X, which runs the tracker in a degraded but usable RGB-only mode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from unitrack.atomic import write_text_atomic
from unitrack.data.sequence import read_rgb, read_x
from unitrack.errors import ConfigError, DatasetError
from unitrack.eval.decode import decode_ahead, frames_ahead
from unitrack.eval.tracker import OnlineTracker, TrackState

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _folder_frames(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DatasetError(path, f"folder holds no image files ({', '.join(IMAGE_EXTS)})")
    return files


def open_frames(path, modality: str | None = None) -> tuple[Iterator[np.ndarray], int, float]:
    """Frames of a video file or a sorted image folder as uint8 HxWx3 RGB, with the count and the fps.

    `modality` selects the X decoding of folder images (depth: 16-bit PNG rendered with JET).
    """
    path = Path(path)
    if path.is_dir():
        files = _folder_frames(path)
        read = (lambda p: read_x(p, modality)) if modality else read_rgb
        return (read(p) for p in files), len(files), 30.0
    if not path.is_file():
        raise DatasetError(path, "no such video file or image folder")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DatasetError(path, "cannot open as a video file (unsupported or corrupt)")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0

    def gen():
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()

    return gen(), n, fps if math.isfinite(fps) and fps > 0 else 30.0


def _check_init(init, width: int, height: int) -> np.ndarray:
    try:
        box = np.asarray([float(v) for v in init], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("init", f"expected four numbers x,y,w,h, got {init!r}") from None
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ConfigError("init", f"expected four finite numbers x,y,w,h with w,h > 0, got {list(init)}")
    x, y, w, h = box
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ConfigError("init", f"box {box.tolist()} lies outside the {width}x{height} first frame")
    return box


def _draw(rgb: np.ndarray, box, conf: float) -> np.ndarray:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
    cv2.putText(bgr, f"{conf:.2f}", (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 0), 1,
                cv2.LINE_AA)
    return bgr


def track_video(model, input, init, out, boxes_out=None, x_input=None, modality: str = "thermal",
                tracker_kwargs: dict | None = None) -> dict:
    """Track from `init` (x,y,w,h in frame 0), write the annotated mp4 `out` and x,y,w,h lines to
    `boxes_out` (default: `out` with .txt). Returns frames, seconds, fps and the output paths."""
    out = Path(out)
    boxes_out = Path(boxes_out) if boxes_out is not None else out.with_suffix(".txt")
    frames, n, fps = open_frames(input)
    x_frames, nx = (None, n) if x_input is None else open_frames(x_input, modality)[:2]
    if x_input is not None and nx != n:
        raise DatasetError(x_input, f"has {nx} frames but the RGB input {input} has {n}")
    first = next(frames, None)
    if first is None:
        raise DatasetError(input, "contains no decodable frame")
    height, width = first.shape[:2]
    box0 = _check_init(init, width, height)

    out.parent.mkdir(parents=True, exist_ok=True)
    boxes_out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise DatasetError(out, "cannot open for writing as an mp4 video")
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    state = TrackState(modality, key=str(input))

    def x_of(rgb: np.ndarray) -> np.ndarray:
        x = next(x_frames, None) if x_frames is not None else rgb
        if x is None:
            raise DatasetError(x_input, "ended before the RGB input")
        return x if x.shape[:2] == rgb.shape[:2] else cv2.resize(x, (rgb.shape[1], rgb.shape[0]))

    ahead = frames_ahead(tracker.device)  # on a GPU: read the next frames while the model works
    if ahead:
        frames = decode_ahead(frames, ahead=ahead)
        x_frames = None if x_frames is None else decode_ahead(x_frames, ahead=ahead)
    t0 = time.perf_counter()
    lines, conf_lines, count = [], [], 0
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(f"tracking {Path(str(input)).name}", total=n or None)
    bar.start()
    try:
        b, c = tracker.init([state], [(first, x_of(first))], [box0])
        rgb = first
        while True:
            if rgb.shape[:2] != (height, width):
                raise DatasetError(input, f"frame {count} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                          f"frame 0 is {width}x{height}")
            writer.write(_draw(rgb, b[0], float(c[0])))
            lines.append(",".join(f"{v:.2f}" for v in b[0]))
            conf_lines.append(f"{float(c[0]):.6f}")
            count += 1
            bar.advance(task)
            rgb = next(frames, None)
            if rgb is None:
                break
            b, c = tracker.step([state], [(rgb, x_of(rgb))])
    finally:
        bar.stop()
        writer.release()
        for it in (frames, x_frames):
            if hasattr(it, "close"):
                it.close()
    seconds = time.perf_counter() - t0
    tmp = boxes_out.with_name(boxes_out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(boxes_out)
    conf_out = boxes_out.with_name(boxes_out.stem + "_confidence.txt")  # pytracking's name for it
    write_text_atomic(conf_out, "\n".join(conf_lines) + "\n")
    return {"frames": count, "seconds": seconds, "fps": count / seconds if seconds > 0 else 0.0,
            "video": str(out), "boxes": str(boxes_out), "confidences": str(conf_out)}
