"""One-pass evaluation of many sequences (of all tasks together) with a batched online tracker.

Up to `batch_size` sequences are tracked at once: every step batches the current frame of each active
sequence, and when one finishes the next starts in its slot (longest sequences first, so the batch does
not run nearly empty at the end). Frames are decoded ahead in background threads (OpenCV releases the
GIL). Each sequence's results are written the moment it finishes, so an interrupted run resumes.
Also here: the speed measurements trackers report (model-only FPS and end-to-end FPS).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from unitrack.data.sequence import Sequence, load_frame
from unitrack.errors import ResultsError, UnitrackError
from unitrack.eval.tracker import OnlineTracker, TrackState, amp_autocast, resolve_device

#: Frames decoded ahead of the one being tracked, per active sequence.
PREFETCH = 3
T, R = TypeVar("T"), TypeVar("R")


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


class _Inline:
    """The executor interface without threads (`workers=0`): decodes when a frame is submitted."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - raised by .result(), like a pool's future
            fut.set_exception(e)
        return fut

    def shutdown(self, **_) -> None:
        pass


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
    waiting = deque(todo)
    active: list[_Active] = []
    frames_done = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") if workers > 0 else _Inline()

    def prefetch(a: _Active) -> None:
        while len(a.pending) < PREFETCH and a.next_frame + len(a.pending) < len(a.seq):
            a.pending.append(pool.submit(load_frame, a.seq, a.next_frame + len(a.pending)))

    t0 = time.perf_counter()
    try:
        with _Progress(progress, sum(len(s) for s in todo), "tracking") as bar:
            while waiting or active:
                while waiting and len(active) < batch_size:
                    s = waiting.popleft()
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


def decode_ahead(items: Iterable[T], load: Callable[[T], R] | None = None, ahead: int = PREFETCH
                 ) -> Iterator[R]:
    """Iterate `items` (applying `load`) in one background thread, up to `ahead` results early.

    Overlaps decoding with the model's work on the frame before (OpenCV releases the GIL), which pays
    when the model runs on a GPU (see `frames_ahead`). The iteration itself runs in the thread too, so
    a video reader's `read()` is overlapped as well. An error in the thread is raised
    here, at the item that failed; closing the generator early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((load(item) if load is not None else item, None)):
                    return
            put((end, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put((end, e))

    thread = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    thread.start()
    try:
        while True:
            value, err = q.get()
            if value is end:
                if err is not None:
                    raise err
                return
            yield value
    finally:
        stop.set()
        thread.join()


def _track_one(tracker: OnlineTracker, seq: Sequence, n: int, ahead: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Track frames 0..n-1 of one sequence; `ahead` > 0 decodes that many frames early in a thread."""
    load = lambda i: load_frame(seq, i)  # noqa: E731
    frames = decode_ahead(range(n), load, ahead) if ahead > 0 else map(load, range(n))
    frames = iter(frames)
    st = TrackState(seq.x_modality, key=seq.uid)
    b, c = tracker.init([st], [next(frames)], [_init_box(seq)])
    boxes, conf = [b[0]], [c[0]]
    for frame in frames:
        b, c = tracker.step([st], [frame])
        boxes.append(b[0]), conf.append(c[0])
    return np.array(boxes), np.array(conf)


# -- speed ------------------------------------------------------------------------------------------
def frames_ahead(device: torch.device) -> int:
    """How many frames single-sequence tracking decodes early in a thread: PREFETCH when the model runs
    on a GPU (the CPU is free to decode meanwhile), 0 on a CPU, where torch's threads already occupy
    every core and a decode thread only preempts them (measured: e2e 0.82 vs 0.87 x model_fps)."""
    return PREFETCH if torch.device(device).type == "cuda" else 0


def measure_e2e_fps(model, sequence: Sequence, tracker_kwargs: dict | None = None,
                    max_frames: int | None = None, ahead: int | None = None) -> dict:
    """End-to-end FPS of one sequence as `unitrack track` runs it: frames / wall time including decode
    (`ahead` frames early in a thread; default `frames_ahead`), crop, model and box decoding.

    The merged model is built (and two frames tracked) before the clock starts: merging is set-up cost.
    """
    tracker = OnlineTracker(model, **(tracker_kwargs or {}))
    n = len(sequence) if max_frames is None else min(max_frames, len(sequence))
    _track_one(tracker, sequence, min(2, n))  # warm-up: merge weights, first kernels
    t0 = time.perf_counter()
    _track_one(tracker, sequence, n, frames_ahead(tracker.device) if ahead is None else ahead)
    if tracker.device.type == "cuda":
        torch.cuda.synchronize(tracker.device)
    sec = time.perf_counter() - t0
    return {"frames": n, "seconds": sec, "fps": n / sec if sec > 0 else 0.0}


def _model_forward(model, modality: str, device, amp: bool, batch: int, per_frame: bool = False
                   ) -> Callable[[], object]:
    """A zero-argument forward of the merged model on fixed random inputs.

    per_frame=False: LoRAT's model-only protocol, the whole `forward` on template and search crops
    (for our model that includes the two pooled features the continual-learning losses read).
    per_frame=True: what the online tracker runs each frame, the template embedded once beforehand
    (`embed_template`) and only `forward_search` timed; the same as the protocol for a model without it.
    """
    dev = resolve_device(device)
    net = (model.merge(modality) if hasattr(model, "merge") else model).to(dev).eval()
    T, S = int(model.template_size), int(model.search_size)
    g = torch.Generator().manual_seed(0)
    z, zx = torch.rand(batch, 3, T, T, generator=g).to(dev), torch.rand(batch, 3, T, T, generator=g).to(dev)
    x, xx = torch.rand(batch, 3, S, S, generator=g).to(dev), torch.rand(batch, 3, S, S, generator=g).to(dev)
    z_box = torch.tensor([[0.25, 0.25, 0.75, 0.75]] * batch, device=dev)
    tags = [modality] * batch
    if per_frame and hasattr(net, "forward_search"):
        with torch.inference_mode(), amp_autocast(dev, amp):
            tz, tzx = net.embed_template(z, zx, z_box)

        def fwd():
            with torch.inference_mode(), amp_autocast(dev, amp):
                return net.forward_search(tz, tzx, x, xx, tags, features=False)
    else:
        def fwd():
            with torch.inference_mode(), amp_autocast(dev, amp):
                return net(z, zx, x, xx, z_box, tags)

    return fwd


def measure_model_fps(model, modality: str = "thermal", device: str = "cpu", warmup: int = 10,
                      iters: int = 100, amp: bool = False, batch: int = 1, per_frame: bool = False) -> dict:
    """Model-only FPS (LoRAT protocol at batch 1): merged weights, warm-up then timed forwards.

    CUDA is timed with events around the region; CPU with perf_counter. FPS = batch * 1000 / mean ms.
    `batch` > 1 gives the ceiling of any batched runner on this device: frames/s of the forward alone.
    `per_frame` times the tracker's per-frame forward (template embedded once, see `_model_forward`).
    """
    dev = resolve_device(device)
    fwd = _model_forward(model, modality, dev, amp, batch, per_frame)
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
    return {"ms": ms, "fps": batch * 1000.0 / ms if ms > 0 else 0.0, "iters": iters, "batch": batch}


def measure_e2e_paired(model, sequence: Sequence, tracker_kwargs: dict | None = None, block: int = 10,
                       blocks: int = 12) -> dict:
    """e2e and model-only time per frame, in alternating blocks so that all see the same machine.

    On a shared CPU the speed drifts by tens of percent within seconds. Each round times `block`
    forwards of LoRAT's protocol (template + search), `block` of the tracker's per-frame forward
    (template embedded once) and `block` tracked frames (decoded inline, cropped, forwarded, boxed),
    back to back; the ratios are taken within a round and their median is reported. Blocks, not single
    frames, alternate: a forward timed right after a tracked frame inherits its cold caches, which
    flatters the ratio a little (tiny model, one process, 4 rounds: frame-by-frame pairing read
    0.838 / 0.784 / 0.868 for thermal / depth / event where blocks read 0.812 / 0.775 / 0.860).
    e2e_over_per_frame is what decoding, cropping and box mapping cost the tracker.
    """
    kw = dict(tracker_kwargs or {})
    tracker = OnlineTracker(model, **kw)
    fwds = [_model_forward(model, sequence.x_modality, tracker.device, tracker.amp, 1, per_frame=pf)
            for pf in (False, True)]
    sync = (lambda: torch.cuda.synchronize(tracker.device)) if tracker.device.type == "cuda" else (lambda: None)
    if len(sequence) < 2:
        raise ResultsError(sequence.uid, "speed needs a sequence of at least 2 frames")
    _track_one(tracker, sequence, min(2, len(sequence)))  # warm-up: merge weights, first kernels
    st, nxt = TrackState(sequence.x_modality, key=sequence.uid), len(sequence)
    skipped = 0.0  # seconds of track restarts inside the current block, taken off its time

    def tracked_block() -> None:
        nonlocal st, nxt, skipped
        for _ in range(block):
            if nxt >= len(sequence):  # (re)start the track: init is set-up, not timed per frame
                sync()
                t = time.perf_counter()
                st = TrackState(sequence.x_modality, key=sequence.uid)
                tracker.init([st], [load_frame(sequence, 0)], [_init_box(sequence)])
                nxt, skipped = 1, skipped + time.perf_counter() - t
            tracker.step([st], [load_frame(sequence, nxt)])
            nxt += 1
        sync()

    def model_block(f) -> None:
        for _ in range(block):
            f()
        sync()

    tracked_block()
    times = []  # per round: seconds of (protocol, per-frame, e2e) blocks
    for _ in range(blocks):
        row = []
        for run in (lambda: model_block(fwds[0]), lambda: model_block(fwds[1]), tracked_block):
            skipped = 0.0
            t0 = time.perf_counter()
            run()
            row.append(time.perf_counter() - t0 - skipped)
        times.append(row)
    tm, tf, te = (np.array(c) / block for c in zip(*times))
    return {"frames": block * blocks, "block": block, "model_ms": 1e3 * float(np.median(tm)),
            "per_frame_ms": 1e3 * float(np.median(tf)), "e2e_ms": 1e3 * float(np.median(te)),
            "e2e_over_model": float(np.median(tm / te)), "e2e_over_per_frame": float(np.median(tf / te))}


def speed_report(model, sequences: list[Sequence], work_dir, batch_size: int = 8, workers: int = 2,
                 tracker_kwargs: dict | None = None, model_iters: int = 100, progress: bool = False,
                 repeats: int = 1) -> dict:
    """model_fps, e2e_fps, eval_sequential_fps and eval_batched_fps, all in one call.

    The figures are also measured in these ways:
    - e2e_fps is measured on the first sequence of each X modality and pooled (frames / seconds).
    - model_fps is LoRAT's protocol (the whole network at batch 1); model_per_frame_fps is the
      forward the tracker runs each frame (template embedded once at init).
    - model_batched_fps is that per-frame forward alone at `batch_size`: the ceiling of the batched
      runner.
    - Each figure is the best of `repeats` interleaved rounds. A shared CPU's background load only
      ever slows a run down, so the best round is the least disturbed, and every figure gets the
      same chance at one.
    - e2e_over_model_paired (vs the protocol forward) and e2e_over_per_frame_paired (vs the
      per-frame forward: what decoding, cropping and box mapping cost) are immune to drift: they come
      from `measure_e2e_paired`, pooled over all rounds and modalities (not a best-of).
    - Evaluation passes write into fresh sub-folders of `work_dir` (no resume), so every pass times
      the same work. The sequential pass tracks every third sequence (see `sequential_set`).
    - batched_over_sequential_paired: the median over rounds of the two passes' ratio within a round
      (back to back, so they share the machine's state; best-of figures come from different rounds).
    """
    kw = dict(tracker_kwargs or {})
    device, amp = kw.get("device", "cpu"), kw.get("amp", False)
    modality = sequences[0].x_modality
    firsts = list({s.x_modality: s for s in reversed(sequences)}.values())[::-1]  # first of each modality
    # One sequence at a time runs at the same frames/s whatever the count; every 3rd sequence (all
    # tasks still in) makes its pass about as long as the batched one, so best-of-N favours neither.
    sequential_set = sequences[::3] if len(sequences) >= 6 else sequences
    work_dir = Path(work_dir)
    best: dict[str, float] = {}
    paired: dict[str, list[dict]] = {}  # modality -> measure_e2e_paired of every round
    rounds: list[float] = []  # batched / sequential fps, each pair measured back to back

    def keep(key: str, fps: float) -> None:
        best[key] = max(best.get(key, 0.0), fps)

    for r in range(max(1, repeats)):
        keep("model_fps", measure_model_fps(model, modality, device, iters=model_iters, amp=amp)["fps"])
        keep("model_per_frame_fps", measure_model_fps(model, modality, device, iters=model_iters, amp=amp,
                                                      per_frame=True)["fps"])
        keep("model_batched_fps", measure_model_fps(model, modality, device, iters=max(1, model_iters // 4),
                                                    amp=amp, batch=batch_size, per_frame=True)["fps"])
        frames = seconds = 0.0
        for s in firsts:
            e = measure_e2e_fps(model, s, kw)
            keep(f"e2e_fps_{s.x_modality}", e["fps"])
            frames, seconds = frames + e["frames"], seconds + e["seconds"]
            p = measure_e2e_paired(model, s, kw)
            paired.setdefault(s.x_modality, []).append(p)
        keep("e2e_fps", frames / seconds)
        seq = run_sequential(model, sequential_set, work_dir / f"sequential{r}", kw, progress=progress,
                             resume=False)
        bat = run_benchmark(model, sequences, work_dir / f"batched{r}", batch_size, workers, kw,
                            progress=progress, resume=False)
        keep("eval_sequential_fps", seq["fps"])
        keep("eval_batched_fps", bat["fps"])
        rounds.append(bat["fps"] / seq["fps"])
    # per modality: the median round; pooled: time-weighted, sum of model ms / sum of (model ms / ratio)
    for key, ms in (("e2e_over_model", "model_ms"), ("e2e_over_per_frame", "per_frame_ms")):
        med = {m: (float(np.median([p[key] for p in ps])), float(np.median([p[ms] for p in ps])))
               for m, ps in paired.items()}
        for m, (r, _) in med.items():
            best[f"{key}_paired_{m}"] = r
        best[f"{key}_paired"] = sum(t for _, t in med.values()) / sum(t / r for r, t in med.values())
    best["batched_over_sequential_paired"] = float(np.median(rounds))
    return {**best, "model_ms": 1000.0 / best["model_fps"], "eval_batch_size": batch_size,
            "eval_frames": bat["frames"], "repeats": max(1, repeats)}
