"""One-pass evaluation of many sequences (of all tasks together) with a batched online tracker.

Up to `batch_size` sequences are tracked at once: every step batches the current frame of each active
sequence, and when one finishes the next starts in its slot (longest sequences first, so the batch does
not run nearly empty at the end). Frames are decoded ahead by a decoder of `unitrack.eval.decode`
(inline, threads, worker processes over shared memory, or nvJPEG). Each sequence's results are written
the moment it finishes, so an interrupted run resumes.

A bad sequence does not end the pass: before a sequence starts, its frame and box counts, its initial
box and its first frame (decodes, box inside the image) are checked, and a frame that fails to decode
later drops that sequence alone. Each such sequence is listed in the returned `failed` (uid and the
error naming the file) and gets no result file; the caller must not present the score as complete.
Speed measurements live in `unitrack.eval.bench`; this module only tracks.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unitrack.data.sequence import Sequence
from unitrack.errors import DatasetError, ResultsError, UnitrackError
from unitrack.eval.decode import PREFETCH, Handle, decode_ahead, load_checked, make_decoder
from unitrack.eval.tracker import OnlineTracker, TrackState

log = logging.getLogger(__name__)


@dataclass
class _Active:
    seq: Sequence
    state: TrackState
    next_frame: int = 0
    pending: deque = field(default_factory=deque)  # decoder handles of frames next_frame, next_frame+1, ...
    boxes: list = field(default_factory=list)
    confidences: list = field(default_factory=list)
    size: tuple | None = None  # (h, w) of frame 0: every later frame must match



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


def sequence_problem(seq: Sequence) -> str | None:
    """What makes a sequence untrackable before any decoding (None: nothing found)."""
    if len(seq) == 0:
        return "sequence has no frames"
    if len(seq.x_frames) != len(seq.rgb_frames):
        return f"{len(seq.rgb_frames)} RGB frames but {len(seq.x_frames)} {seq.x_modality} frames"
    if len(seq.boxes) != len(seq.rgb_frames):
        return f"{len(seq.rgb_frames)} frames but {len(seq.boxes)} ground-truth boxes"
    if not seq.visible[0]:
        return f"frame 0 has no valid box ({seq.boxes[0].tolist()}); tracking needs an initial box"
    return None


def first_frame_problem(seq: Sequence, frame: tuple[np.ndarray, np.ndarray]) -> str | None:
    """The decoded first frame must hold the initial box (a box off the image means wrong annotations
    or frames of another size)."""
    h, w = frame[0].shape[:2]
    x, y, bw, bh = seq.boxes[0]
    if h == 0 or w == 0:
        return "first frame is empty"
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        return f"initial box {seq.boxes[0].tolist()} lies outside the {w}x{h} first frame"
    return None


def _failure(seq: Sequence, err: str | Exception) -> dict:
    msg = str(err)
    log.warning("sequence %s skipped: %s", seq.uid, msg)
    return {"uid": seq.uid, "name": seq.name, "error": msg}


def _todo(sequences, results_dir, resume) -> tuple[list[Sequence], int, list[dict]]:
    """(sequences to track, number already finished, failures found before decoding)."""
    check_unique_names(sequences, results_dir)
    todo = [s for s in sequences if not (resume and is_finished(results_dir, s))]
    failed = []
    for s in list(todo):
        if (p := sequence_problem(s)) is not None:
            failed.append(_failure(s, p))
            todo.remove(s)
    return todo, len(sequences) - len(todo) - len(failed), failed


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


def _stats(frames: int, seconds: float, sequences: int, skipped: int, failed: list[dict]) -> dict:
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds > 0 else 0.0,
            "sequences": sequences, "skipped": skipped, "failed": failed}


def _discard(handles) -> None:
    """Wait for (a worker may still be writing its slot) and free frames that will not be tracked."""
    for h in handles:
        try:
            h.result()
        except Exception:  # noqa: BLE001 - the sequence is dropped already; its later frames do not matter
            pass
        h.release()
    handles.clear()


def run_benchmark(model, sequences: list[Sequence], results_dir, batch_size: int = 8, workers: int = 1,
                  tracker_kwargs: dict | None = None, progress: bool = True, resume: bool = True,
                  decode: str = "thread", label: str = "tracking") -> dict:
    """Track every sequence once, batching across sequences; write <results_dir>/<name>.txt per sequence.

    Returns frames, seconds, fps, sequences, skipped (already finished) and failed (see module doc).
    """
    if batch_size < 1:
        raise ResultsError(results_dir, f"batch_size must be >= 1, got {batch_size}")
    results_dir = Path(results_dir)
    todo, skipped, failed = _todo(sequences, results_dir, resume)
    todo.sort(key=len, reverse=True)  # longest first: the tail of the run stays batched
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    waiting = deque(todo)
    active: list[_Active] = []
    frames_done = 0
    decoder = make_decoder(decode, workers, slots=batch_size * (PREFETCH + 1), device=str(tracker.device))

    def prefetch(a: _Active) -> None:
        while len(a.pending) < PREFETCH and a.next_frame + len(a.pending) < len(a.seq):
            a.pending.append(decoder.submit(a.seq, a.next_frame + len(a.pending)))

    t0 = time.perf_counter()
    try:
        with _Progress(progress, sum(len(s) for s in todo), label) as bar:
            while waiting or active:
                while waiting and len(active) < batch_size:
                    s = waiting.popleft()
                    active.append(_Active(s, TrackState(s.x_modality, key=s.uid)))
                    prefetch(active[-1])
                frames, held, live = [], [], []
                for a in active:
                    h: Handle = a.pending.popleft()
                    try:
                        f = h.result()
                        if a.next_frame == 0 and (p := first_frame_problem(a.seq, f)) is not None:
                            raise DatasetError(a.seq.rgb_frames[0], p)
                        if a.next_frame == 0:
                            a.size = f[0].shape[:2]
                        elif f[0].shape[:2] != a.size:  # crops of a resized frame would be silently off
                            raise DatasetError(a.seq.rgb_frames[a.next_frame], f"frame size {f[0].shape[1]}x"
                                               f"{f[0].shape[0]} differs from frame 0's {a.size[1]}x{a.size[0]}; "
                                               "frame sizes must be constant in a sequence")
                    except DatasetError as e:  # this sequence only: reported, the pass goes on
                        h.release()
                        _discard(a.pending)
                        failed.append(_failure(a.seq, e))
                        bar.advance(len(a.seq) - a.next_frame)
                        continue
                    frames.append(f), held.append(h), live.append(a)
                    a.next_frame += 1
                    prefetch(a)  # decoding of later frames overlaps this step
                active = live
                new = [i for i, a in enumerate(active) if a.next_frame == 1]
                old = [i for i, a in enumerate(active) if a.next_frame > 1]
                if new:
                    b, c = tracker.init([active[i].state for i in new], [frames[i] for i in new],
                                        [active[i].seq.boxes[0] for i in new])
                    for j, i in enumerate(new):
                        active[i].boxes.append(b[j]), active[i].confidences.append(c[j])
                if old:
                    b, c = tracker.step([active[i].state for i in old], [frames[i] for i in old])
                    for j, i in enumerate(old):
                        active[i].boxes.append(b[j]), active[i].confidences.append(c[j])
                del frames
                for h in held:  # the tracker keeps no reference to a frame after its step
                    h.release()
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
        decoder.close()
    return _stats(frames_done, time.perf_counter() - t0, len(sequences), skipped, failed)


def run_sequential(model, sequences: list[Sequence], results_dir, tracker_kwargs: dict | None = None,
                   progress: bool = True, resume: bool = True) -> dict:
    """The conventional loop, for comparison: one sequence at a time, batch 1, decoding inline."""
    results_dir = Path(results_dir)
    todo, skipped, failed = _todo(sequences, results_dir, resume)
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    frames_done = 0
    t0 = time.perf_counter()
    with _Progress(progress, sum(len(s) for s in todo), "tracking (sequential)") as bar:
        for s in todo:
            try:
                boxes, conf = track_one(tracker, s, len(s))
            except DatasetError as e:
                failed.append(_failure(s, e))
                continue
            _write(results_dir, s, boxes, conf)
            frames_done += len(s)
            bar.advance(len(s))
    return _stats(frames_done, time.perf_counter() - t0, len(sequences), skipped, failed)


def track_one(tracker: OnlineTracker, seq: Sequence, n: int, ahead: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Track frames 0..n-1 of one sequence; `ahead` > 0 decodes that many frames early in a thread."""
    if (p := sequence_problem(seq)) is not None:
        raise ResultsError(seq.uid, p)
    load = lambda i: load_checked(seq, i)  # noqa: E731
    frames = decode_ahead(range(n), load, ahead) if ahead > 0 else map(load, range(n))
    frames = iter(frames)
    first = next(frames)
    if (p := first_frame_problem(seq, first)) is not None:
        raise DatasetError(seq.rgb_frames[0], p)
    st = TrackState(seq.x_modality, key=seq.uid)
    b, c = tracker.init([st], [first], [seq.boxes[0]])
    boxes, conf = [b[0]], [c[0]]
    for frame in frames:
        b, c = tracker.step([st], [frame])
        boxes.append(b[0]), conf.append(c[0])
    return np.array(boxes), np.array(conf)


def failure_summary(failed: list[dict], total: int) -> str:
    """One line for the user: how many sequences were skipped and the first reason."""
    first = failed[0]
    more = f" (and {len(failed) - 1} more, listed in metrics.json 'failed')" if len(failed) > 1 else ""
    return (f"{len(failed)} of {total} sequences could not be tracked and are not scored: "
            f"{first['uid']}: {first['error']}{more}")
