"""One-pass evaluation of many sequences (of all tasks together) with a batched online tracker.

Up to `batch_size` sequences are tracked at once: every step batches the current frame of each active
sequence, and when one finishes the next starts in its slot (longest sequences first, so the batch does
not run nearly empty at the end). Frames are decoded ahead in background threads (OpenCV releases the
GIL). Each sequence's results are written the moment it finishes, so an interrupted run resumes.
Also here: the speed measurements trackers report (model-only FPS and end-to-end FPS).
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from unitrack.data.sequence import Sequence, load_frame
from unitrack.errors import ResultsError, UnitrackError
from unitrack.eval.tracker import OnlineTracker, TrackState, resolve_device

#: Frames decoded ahead of the one being tracked, per active sequence.
PREFETCH = 3


@dataclass
class _Active:
    seq: Sequence
    state: TrackState
    next_frame: int = 0
    pending: deque = field(default_factory=deque)  # futures of the frames next_frame, next_frame+1, ...
    boxes: list = field(default_factory=list)
    confidences: list = field(default_factory=list)


def check_unique_names(sequences: list[Sequence], results_dir: Path) -> None:
    """The pytracking layout is flat (<dir>/<name>.txt): two sequences with one name would overwrite."""
    seen: dict[str, Sequence] = {}
    for s in sequences:
        if s.name in seen:
            raise ResultsError(Path(results_dir) / f"{s.name}.txt",
                               f"sequences {seen[s.name].uid} and {s.uid} share the name '{s.name}'; "
                               "the flat result layout needs unique names: evaluate these datasets into "
                               "separate results directories")
        seen[s.name] = s


def is_finished(results_dir: Path, seq: Sequence) -> bool:
    """A sequence is done when its boxes and confidences both exist with one line per frame."""
    from unitrack.eval.results import read_sequence_results

    try:
        boxes, conf = read_sequence_results(results_dir, seq.name, expected_frames=len(seq))
    except (UnitrackError, OSError):
        return False
    return conf is not None and len(boxes) == len(conf) == len(seq)


def _write(results_dir: Path, seq: Sequence, boxes, confidences) -> None:
    from unitrack.eval.results import write_results

    write_results(results_dir, seq.name, np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                  np.asarray(confidences, dtype=np.float64))


def _init_box(seq: Sequence) -> np.ndarray:
    if len(seq) == 0:
        raise ResultsError(seq.uid, "sequence has no frames")
    if not seq.visible[0]:
        raise ResultsError(seq.uid, f"frame 0 has no valid box ({seq.boxes[0].tolist()}); tracking needs "
                                    "an initial box")
    return seq.boxes[0]


def _todo(sequences, results_dir, resume) -> tuple[list[Sequence], int]:
    check_unique_names(sequences, results_dir)
    todo = [s for s in sequences if not (resume and is_finished(results_dir, s))]
    for s in todo:
        _init_box(s)
    return todo, len(sequences) - len(todo)


class _Progress:
    """A Rich bar of frames done / total, or nothing."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("frames"), TimeElapsedColumn(), TimeRemainingColumn())
            self.task = self.bar.add_task(label, total=total)

    def __enter__(self):
        if self.bar:
            self.bar.start()
        return self

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()


def _stats(frames: int, seconds: float, sequences: int, skipped: int) -> dict:
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds > 0 else 0.0,
            "sequences": sequences, "skipped": skipped}


def run_benchmark(model, sequences: list[Sequence], results_dir, batch_size: int = 8, workers: int = 2,
                  tracker_kwargs: dict | None = None, progress: bool = True, resume: bool = True) -> dict:
    """Track every sequence once, batching across sequences; write <results_dir>/<name>.txt per sequence."""
    if batch_size < 1:
        raise ResultsError(results_dir, f"batch_size must be >= 1, got {batch_size}")
    results_dir = Path(results_dir)
    todo, skipped = _todo(sequences, results_dir, resume)
    todo.sort(key=len, reverse=True)  # longest first: the tail of the run stays batched
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    queue = deque(todo)
    active: list[_Active] = []
    frames_done = 0
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode")

    def prefetch(a: _Active) -> None:
        while len(a.pending) < PREFETCH and a.next_frame + len(a.pending) < len(a.seq):
            a.pending.append(pool.submit(load_frame, a.seq, a.next_frame + len(a.pending)))

    t0 = time.perf_counter()
    try:
        with _Progress(progress, sum(len(s) for s in todo), "tracking") as bar:
            while queue or active:
                while queue and len(active) < batch_size:
                    s = queue.popleft()
                    active.append(_Active(s, TrackState(s.x_modality, key=s.uid)))
                    prefetch(active[-1])
                frames = []
                for a in active:
                    fut: Future = a.pending.popleft()
                    frames.append(fut.result())
                    a.next_frame += 1
                    prefetch(a)
                new = [i for i, a in enumerate(active) if a.next_frame == 1]
                old = [i for i, a in enumerate(active) if a.next_frame > 1]
                if new:
                    b, c = tracker.init([active[i].state for i in new], [frames[i] for i in new],
                                        [_init_box(active[i].seq) for i in new])
                    for j, i in enumerate(new):
                        active[i].boxes.append(b[j]), active[i].confidences.append(c[j])
                if old:
                    b, c = tracker.step([active[i].state for i in old], [frames[i] for i in old])
                    for j, i in enumerate(old):
                        active[i].boxes.append(b[j]), active[i].confidences.append(c[j])
                frames_done += len(active)
                bar.advance(len(active))
                still = []
                for a in active:
                    if a.next_frame == len(a.seq):
                        _write(results_dir, a.seq, a.boxes, a.confidences)
                    else:
                        still.append(a)
                active = still
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return _stats(frames_done, time.perf_counter() - t0, len(sequences), skipped)


def run_sequential(model, sequences: list[Sequence], results_dir, tracker_kwargs: dict | None = None,
                   progress: bool = True, resume: bool = True) -> dict:
    """The conventional loop, for comparison: one sequence at a time, batch 1, decoding inline."""
    results_dir = Path(results_dir)
    todo, skipped = _todo(sequences, results_dir, resume)
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    frames_done = 0
    t0 = time.perf_counter()
    with _Progress(progress, sum(len(s) for s in todo), "tracking (sequential)") as bar:
        for s in todo:
            boxes, conf = _track_one(tracker, s, len(s))
            _write(results_dir, s, boxes, conf)
            frames_done += len(s)
            bar.advance(len(s))
    return _stats(frames_done, time.perf_counter() - t0, len(sequences), skipped)


def _track_one(tracker: OnlineTracker, seq: Sequence, n: int) -> tuple[np.ndarray, np.ndarray]:
    st = TrackState(seq.x_modality, key=seq.uid)
    b, c = tracker.init([st], [load_frame(seq, 0)], [_init_box(seq)])
    boxes, conf = [b[0]], [c[0]]
    for i in range(1, n):
        b, c = tracker.step([st], [load_frame(seq, i)])
        boxes.append(b[0]), conf.append(c[0])
    return np.array(boxes), np.array(conf)


# -- speed ------------------------------------------------------------------------------------------
def measure_e2e_fps(model, sequence: Sequence, tracker_kwargs: dict | None = None,
                    max_frames: int | None = None) -> dict:
    """End-to-end FPS of one sequence: frames / wall time including decode, crop, model and decoding.

    The merged model is built (and one frame tracked) before the clock starts: merging is set-up cost.
    """
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    n = len(sequence) if max_frames is None else min(max_frames, len(sequence))
    _track_one(tracker, sequence, min(2, n))  # warm-up: merge weights, first kernels
    t0 = time.perf_counter()
    _track_one(tracker, sequence, n)
    if tracker.device.type == "cuda":
        torch.cuda.synchronize(tracker.device)
    sec = time.perf_counter() - t0
    return {"frames": n, "seconds": sec, "fps": n / sec if sec > 0 else 0.0}


def measure_model_fps(model, modality: str = "thermal", device: str = "cpu", warmup: int = 10,
                      iters: int = 100, amp: bool = False) -> dict:
    """Model-only FPS (LoRAT protocol): batch 1, merged weights, warm-up then timed forwards.

    CUDA is timed with events around the region; CPU with perf_counter. FPS = 1000 / mean ms.
    """
    dev = resolve_device(device)
    net = (model.merge(modality) if hasattr(model, "merge") else model).to(dev).eval()
    T, S = int(model.template_size), int(model.search_size)
    g = torch.Generator().manual_seed(0)
    z, zx = torch.rand(1, 3, T, T, generator=g).to(dev), torch.rand(1, 3, T, T, generator=g).to(dev)
    x, xx = torch.rand(1, 3, S, S, generator=g).to(dev), torch.rand(1, 3, S, S, generator=g).to(dev)
    z_box = torch.tensor([[0.25, 0.25, 0.75, 0.75]], device=dev)
    amp = amp and dev.type == "cuda"

    def fwd():
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return net(z, zx, x, xx, z_box, [modality])

    for _ in range(warmup):
        fwd()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fwd()
        end.record()
        torch.cuda.synchronize(dev)
        ms = start.elapsed_time(end) / iters
    else:
        t0 = time.perf_counter()
        for _ in range(iters):
            fwd()
        ms = (time.perf_counter() - t0) * 1000.0 / iters
    return {"ms": ms, "fps": 1000.0 / ms if ms > 0 else 0.0, "iters": iters}


def speed_report(model, sequences: list[Sequence], work_dir, batch_size: int = 8, workers: int = 2,
                 tracker_kwargs: dict | None = None, model_iters: int = 100, progress: bool = False) -> dict:
    """model_fps, e2e_fps (first sequence), eval_sequential_fps and eval_batched_fps in one call.

    Both evaluation passes write into fresh sub-folders of `work_dir` (no resume), so they time the
    same work.
    """
    kw = dict(tracker_kwargs or {})
    device = kw.get("device", "cpu")
    modality = sequences[0].x_modality
    work_dir = Path(work_dir)
    model_fps = measure_model_fps(model, modality, device, iters=model_iters, amp=kw.get("amp", False))
    e2e = measure_e2e_fps(model, sequences[0], kw)
    seq = run_sequential(model, sequences, work_dir / "sequential", kw, progress=progress, resume=False)
    bat = run_benchmark(model, sequences, work_dir / "batched", batch_size, workers, kw,
                        progress=progress, resume=False)
    return {"model_fps": model_fps["fps"], "model_ms": model_fps["ms"], "e2e_fps": e2e["fps"],
            "eval_sequential_fps": seq["fps"], "eval_batched_fps": bat["fps"],
            "batch_size": batch_size, "frames": bat["frames"]}
