"""Frame decoding for tracking: inline, threads, worker processes over shared memory, or nvJPEG.

The one-pass runner asks for frames ahead (`submit(seq, i)`) and takes them in its own order
(`handle.result()`), so every decoder returns frame i of a sequence exactly as `load_frame` makes it,
whatever order its workers finish in. A frame that cannot be decoded raises a `DatasetError` naming the
file at `result()`, i.e. when the runner reaches that frame.

- ``inline``: decode at `submit` (no overlap; the fastest on a 2-core CPU where torch owns both cores).
- ``thread``: a thread pool (OpenCV releases the GIL while decoding).
- ``process``: worker processes (decode + X rendering off the main interpreter). Each worker writes the
  frame into a slot of one shared-memory arena and sends back only shapes, so the main process reads
  the pixels in place instead of unpickling megabytes per frame. A frame larger than a slot (or an
  arena that /dev/shm has no room for) comes back pickled instead: slower, never wrong. Workers start
  by forkserver (spawn elsewhere): like torch's DataLoader workers, a script that uses this decoder
  must guard its entry point with `if __name__ == "__main__":` (the `unitrack` CLI does).
- ``gpu``: JPEGs decoded in batches by nvJPEG (`torchvision.io.decode_jpeg(device=...)`), other files
  (16-bit depth PNG, BMP) on the CPU; the pixels come back to the host, where the crops are cut. Another
  JPEG decoder than OpenCV's: pixels may differ by a grey level or two, so results are close to, not
  identical with, the CPU decoders'.

Also here, for tracking one video: `decode_ahead` (a background thread a few frames ahead) and
`frames_ahead` (when that pays).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import connection
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from unitrack.data.sequence import Sequence, load_frame, read_rgb, read_x
from unitrack.errors import ConfigError, DatasetError

#: Frames decoded ahead of the one being tracked, per active sequence.
PREFETCH = 3
KINDS = ("inline", "thread", "process", "gpu")
#: A shared-memory slot holds one RGB + X pair up to this size (two 1280x720 RGB frames); larger
#: frames are pickled. The arena never takes more than SHM_BUDGET nor half of /dev/shm's free space.
SLOT_BYTES = 2 * 1280 * 720 * 3
SHM_BUDGET = 1 << 30
T, R = TypeVar("T"), TypeVar("R")


def decode_error(path, err: BaseException) -> DatasetError:
    """A decoding failure as our one-line error naming the file (a DatasetError passes through)."""
    return err if isinstance(err, DatasetError) else DatasetError(path, f"cannot decode ({type(err).__name__}: {err})")


def _load(seq_paths: tuple[str, str, str, int]) -> tuple[np.ndarray, np.ndarray]:
    """load_frame from plain paths (what a worker process receives); errors name the file."""
    rgb_path, x_path, modality, _ = seq_paths
    try:
        rgb = read_rgb(Path(rgb_path))
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes one error naming the file
        raise decode_error(rgb_path, e) from None
    try:
        x = read_x(Path(x_path), modality)
    except Exception as e:  # noqa: BLE001
        raise decode_error(x_path, e) from None
    if x.shape[:2] != rgb.shape[:2]:
        x = cv2.resize(x, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return rgb, x


def _paths(seq: Sequence, i: int) -> tuple[str, str, str, int]:
    return str(seq.rgb_frames[i]), str(seq.x_frames[i]), seq.x_modality, i


def load_checked(seq: Sequence, i: int) -> tuple[np.ndarray, np.ndarray]:
    """`load_frame`, with any decoder failure (not only an unreadable file) as an error naming the file."""
    try:
        return load_frame(seq, i)
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001
        raise decode_error(f"{seq.rgb_frames[i]} (or {seq.x_frames[i]})", e) from None


class Handle:
    """One submitted frame: `result()` gives (rgb, x) or raises the decoding error; `release()` hands
    its memory back once the tracker is done with the frame (the arrays must not be used after)."""

    def __init__(self, fut: Future, release: Callable[[], None] | None = None):
        self._fut, self._release = fut, release

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self._fut.result()

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class InlineDecoder:
    """Decodes at `submit`."""

    def submit(self, seq: Sequence, i: int) -> Handle:
        fut: Future = Future()
        try:
            fut.set_result(load_checked(seq, i))
        except Exception as e:  # noqa: BLE001 - raised by .result(), like a pool's future
            fut.set_exception(e)
        return Handle(fut)

    def close(self) -> None:
        pass


class ThreadDecoder:
    """A pool of decode threads."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode")

    def submit(self, seq: Sequence, i: int) -> Handle:
        return Handle(self.pool.submit(load_checked, seq, i))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _worker(conn, shm_name: str | None, slot_bytes: int) -> None:
    """A decode process: (tid, paths, slot) in, (tid, 'shm', shapes) / (tid, 'pickle', frames) /
    (tid, 'error', (path, message)) out; None stops it."""
    from multiprocessing import shared_memory

    cv2.setNumThreads(1)  # one core per worker: the pool is the parallelism
    shm = shared_memory.SharedMemory(name=shm_name) if shm_name else None
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            tid, paths, slot = task
            try:
                rgb, x = _load(paths)
            except DatasetError as e:
                conn.send((tid, "error", (str(e.path), str(e), e.line)))
                continue
            if shm is not None and slot >= 0 and rgb.nbytes + x.nbytes <= slot_bytes:
                base = slot * slot_bytes
                np.ndarray(rgb.shape, np.uint8, shm.buf, base)[...] = rgb
                np.ndarray(x.shape, np.uint8, shm.buf, base + rgb.nbytes)[...] = x
                conn.send((tid, "shm", (rgb.shape, x.shape)))
            else:
                conn.send((tid, "pickle", (rgb, x)))
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        if shm is not None:
            shm.close()


def _remote_error(path: str, message: str, line: int | None) -> DatasetError:
    """The worker's DatasetError, rebuilt with its exact message (the class takes (path, what))."""
    err = DatasetError.__new__(DatasetError)
    Exception.__init__(err, message)
    err.path, err.line = path, line
    return err


def arena_bytes(slots: int, slot_bytes: int = SLOT_BYTES, budget: int = SHM_BUDGET) -> int:
    """Slot size that `slots` slots get: SLOT_BYTES, less when the budget or /dev/shm is short."""
    try:
        st = os.statvfs("/dev/shm")
        budget = min(budget, st.f_bavail * st.f_frsize // 2)
    except (OSError, AttributeError):
        pass
    return min(slot_bytes, budget // max(1, slots))


class ProcessDecoder:
    """Worker processes that decode into a shared-memory arena (see the module docstring).

    Tasks go to the worker with the fewest outstanding ones; results are matched to handles by id, so
    the order the workers finish in does not matter. A worker that dies raises at the next `result()`.
    """

    def __init__(self, workers: int, slots: int, slot_bytes: int | None = None):
        from multiprocessing import shared_memory

        self.slot_bytes = arena_bytes(slots) if slot_bytes is None else int(slot_bytes)
        self.shm = None
        if self.slot_bytes >= 64 * 64 * 6:
            try:
                self.shm = shared_memory.SharedMemory(create=True, size=slots * self.slot_bytes)
            except OSError:  # no /dev/shm room: every frame is pickled
                self.shm = None
        self.free = deque(range(slots)) if self.shm is not None else deque()
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        self.conns, self.procs, self.load = [], [], []
        for _ in range(max(1, workers)):
            here, there = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(there, self.shm.name if self.shm else None, self.slot_bytes),
                            daemon=True, name="decode")
            p.start()
            there.close()
            self.conns.append(here)
            self.procs.append(p)
            self.load.append(0)
        self.where: dict[int, int] = {}  # task id -> worker
        self.done: dict[int, tuple] = {}
        self.next_id = 0
        self.pickled = 0  # frames that did not fit a slot

    def submit(self, seq: Sequence, i: int) -> Handle:
        tid, self.next_id = self.next_id, self.next_id + 1
        slot = self.free.popleft() if self.free else -1
        w = min(range(len(self.conns)), key=self.load.__getitem__)
        try:
            self.conns[w].send((tid, _paths(seq, i), slot))
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._died(self.procs[w]) from None
        self.load[w] += 1
        self.where[tid] = w
        fut = _Lazy(lambda: self._result(tid, slot))
        return Handle(fut, (lambda: self.free.append(slot)) if slot >= 0 else None)

    def _receive(self) -> None:
        ready = connection.wait([*self.conns, *(p.sentinel for p in self.procs)], timeout=60)
        for r in ready:
            if r in self.conns:
                try:
                    tid, kind, payload = r.recv()
                except EOFError:
                    continue
                self.done[tid] = (kind, payload)
                self.load[self.where.pop(tid)] -= 1
        dead = [p for p in self.procs if not p.is_alive()]
        if dead and not any(c.poll() for c in self.conns):
            raise self._died(dead[0])

    @staticmethod
    def _died(p) -> RuntimeError:
        p.join(timeout=1)
        return RuntimeError(f"a decode worker process died (exit code {p.exitcode}); out of memory?")

    def _result(self, tid: int, slot: int) -> tuple[np.ndarray, np.ndarray]:
        while tid not in self.done:
            self._receive()
        kind, payload = self.done.pop(tid)
        if kind == "error":
            raise _remote_error(*payload)
        if kind == "pickle":
            self.pickled += 1
            return payload
        (rs, xs), base = payload, slot * self.slot_bytes
        rgb = np.ndarray(rs, np.uint8, self.shm.buf, base)
        return rgb, np.ndarray(xs, np.uint8, self.shm.buf, base + rgb.nbytes)

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        for c in self.conns:
            c.close()
        if self.shm is not None:
            import gc

            gc.collect()  # frames still viewing the arena keep it mapped; unlink it anyway
            try:
                self.shm.close()
            except BufferError:
                pass
            self.shm.unlink()
            self.shm = None


class _Lazy(Future):
    """A future whose value is computed when first asked for (the process pool's receive loop)."""

    def __init__(self, fn: Callable[[], object]):
        super().__init__()
        self._fn = fn

    def result(self, timeout=None):
        if not self.done():
            try:
                self.set_result(self._fn())
            except Exception as e:  # noqa: BLE001 - stored and raised like any future's error
                self.set_exception(e)
        return super().result(timeout)


JPEG_EXTS = (".jpg", ".jpeg")


class GpuJpegDecoder:
    """nvJPEG for JPEG frames, batched: the first `result()` decodes every JPEG submitted so far in one
    `decode_jpeg` call; other formats (depth PNG, BMP) decode on the CPU. File bytes are read ahead in
    `workers` threads. `device="cpu"` runs the same path with libjpeg (tests)."""

    def __init__(self, device: str = "cuda", workers: int = 2):
        import torch
        import torchvision.io as tio

        self.torch, self.tio, self.device = torch, tio, torch.device(device)
        self.reader = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="read")
        self.queue: list[tuple[Future, list]] = []  # (future, parts) not yet decoded

    def _read(self, path: Path, modality: str):
        """File bytes for a JPEG (decoded later, batched), else the decoded array."""
        try:
            if path.suffix.lower() in JPEG_EXTS and modality != "depth":
                return self.tio.read_file(str(path))
            return read_x(path, modality)
        except Exception as e:  # noqa: BLE001
            raise decode_error(path, e) from None

    def submit(self, seq: Sequence, i: int) -> Handle:
        parts = [(seq.rgb_frames[i], "rgb"), (seq.x_frames[i], seq.x_modality)]
        reads = [self.reader.submit(self._read, Path(p), m) for p, m in parts]
        fut = _Lazy(lambda: self._flush(fut))
        self.queue.append((fut, list(zip(parts, reads))))
        return Handle(fut)

    def _flush(self, wanted: Future) -> tuple[np.ndarray, np.ndarray]:
        batch, jobs = [], []
        for fut, parts in self.queue:
            entry = []
            try:
                for (path, _), r in parts:
                    v = r.result()
                    if isinstance(v, np.ndarray):
                        entry.append(v)
                    else:
                        entry.append(len(batch))
                        batch.append((path, v))
            except DatasetError as e:
                jobs.append((fut, e))
                continue
            jobs.append((fut, entry))
        self.queue = []
        decoded = self._decode(batch)
        for fut, entry in jobs:
            if fut is wanted:
                continue
            self._settle(fut, entry, decoded)
        own = next(e for f, e in jobs if f is wanted)
        return self._value(own, decoded)

    def _decode(self, batch: list) -> list:
        if not batch:
            return []
        mode = self.tio.ImageReadMode.RGB
        try:
            out = self.tio.decode_jpeg([d for _, d in batch], mode=mode, device=self.device)
        except RuntimeError:  # one bad file fails the batch: decode one by one to name it
            out = []
            for path, d in batch:
                try:
                    out.append(self.tio.decode_jpeg(d, mode=mode, device=self.device))
                except RuntimeError as e:
                    out.append(decode_error(path, e))
        return [o if isinstance(o, Exception) else o.permute(1, 2, 0).cpu().numpy() for o in out]

    def _value(self, entry, decoded: list) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(entry, Exception):
            raise entry
        rgb, x = (decoded[v] if isinstance(v, int) else v for v in entry)
        for v in (rgb, x):
            if isinstance(v, Exception):
                raise v
        if x.shape[:2] != rgb.shape[:2]:
            x = cv2.resize(x, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        return rgb, x

    def _settle(self, fut: Future, entry, decoded: list) -> None:
        try:
            fut.set_result(self._value(entry, decoded))
        except Exception as e:  # noqa: BLE001
            fut.set_exception(e)

    def close(self) -> None:
        self.reader.shutdown(wait=True, cancel_futures=True)


def make_decoder(kind: str, workers: int, slots: int, device: str = "cpu"):
    """The decoder `eval.decode` names; `workers=0` always means inline."""
    if kind not in KINDS:
        raise ConfigError("eval.decode", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "inline" or (workers <= 0 and kind != "gpu"):
        return InlineDecoder()
    if kind == "thread":
        return ThreadDecoder(workers)
    if kind == "process":
        return ProcessDecoder(workers, slots)
    return GpuJpegDecoder(device if str(device).startswith("cuda") else "cpu", workers)


def workers_needed(frames_per_s: float, decode_fps_per_worker: float) -> int:
    """Decode workers that keep up with a consumer of `frames_per_s` (decode_fps x workers >= that)."""
    return max(1, math.ceil(frames_per_s / decode_fps_per_worker)) if decode_fps_per_worker > 0 else 0


# -- single-sequence tracking --------------------------------------------------------------------
def frames_ahead(device) -> int:
    """How many frames single-sequence tracking decodes early in a thread: PREFETCH when the model runs
    on a GPU (the CPU is free to decode meanwhile), 0 on a CPU, where torch's threads already occupy
    every core and a decode thread only preempts them (measured: e2e 0.82 vs 0.87 x model_fps)."""
    return PREFETCH if str(device).startswith("cuda") else 0


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
