"""Sharded one-pass evaluation: the benchmark's sequences split across ranks (processes, GPUs, nodes).

Every rank tracks its shard with the one-pass runner and writes its sequences' result files into the
one (shared) results folder; the files are per sequence, so nothing is merged. Rank 0 then scores once.

- **Ranks** come from torch.distributed: an existing process group is reused (a DDP training run's,
  for per-stage evaluation), else `unitrack eval` under torchrun initialises one from the launcher's
  environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Control messages (the shard plan, the
  per-rank outcome) travel over a gloo group made for them, whatever backend training uses.
- **Balance**: greedy longest-first onto the least-loaded rank by frame count (LPT scheduling: within
  4/3 of the best possible makespan), over the sequences still to do, so a resumed run is balanced too.
- **Identity**: a sequence's numbers do not depend on its batch companions (the model gives every row
  the same bits in any batch on CPU, see tests/test_shard.py), so the result files equal a
  single-process run's byte for byte. On CUDA, cuBLAS may pick other kernels for other batch shapes.
- **Resume**: rank 0 lists the finished sequences (complete result files) before the plan is made;
  a rank skips them. A rank that fails makes every rank raise (no rank waits forever on a dead one).
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from unitrack.data.sequence import Sequence as Seq
from unitrack.errors import ResultsError

#: A rank may wait this long for the slowest one (a big shard on a slow GPU); a crashed rank is
#: noticed sooner, by torchrun / SLURM ending the job.
TIMEOUT = datetime.timedelta(hours=12)


@dataclass
class Ranks:
    """This process's place among the evaluating processes."""

    rank: int = 0
    world: int = 1
    group: object | None = None  # the gloo group for control messages (None: single process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=self._global(0), group=self.group)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank (also a barrier)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def _global(self, r: int) -> int:
        import torch.distributed as dist

        return dist.get_global_rank(self.group, r) if self.group is not None else r


_GROUPS: dict[int, object] = {}


def _control_group():
    """A gloo group over the default group's ranks, made once per default group (all ranks call it)."""
    import torch.distributed as dist

    key = id(dist.group.WORLD)
    if key not in _GROUPS:
        _GROUPS[key] = dist.new_group(backend="gloo", timeout=TIMEOUT)
    return _GROUPS[key]


def current_ranks() -> Ranks:
    """The ranks of an initialised process group (a DDP run's), else one process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Ranks(dist.get_rank(), dist.get_world_size(), _control_group())
    return Ranks()


def launched_world() -> int:
    """WORLD_SIZE set by torchrun (or a compatible launcher); 1 when not launched that way."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


@contextlib.contextmanager
def process_group() -> Iterator[Ranks]:
    """The ranks of this run: an existing group, one initialised from torchrun's environment (and
    destroyed on exit), or a single process."""
    import torch.distributed as dist

    if dist.is_available() and not dist.is_initialized() and launched_world() > 1:
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise ResultsError("environment", f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} "
                               "unset: launch sharded evaluation with torchrun")
        dist.init_process_group("gloo", timeout=TIMEOUT)
        try:
            yield current_ranks()
        finally:
            _GROUPS.clear()
            dist.destroy_process_group()
        return
    yield current_ranks()


def balanced_shards(lengths: Sequence[int], world: int) -> list[list[int]]:
    """Indices per rank: longest first, each onto the rank with the fewest frames so far (ties: the
    lower rank); within a shard the indices keep the benchmark's order."""
    heap = [(0, r) for r in range(world)]
    shards: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        load, r = heapq.heappop(heap)
        shards[r].append(i)
        heapq.heappush(heap, (load + lengths[i], r))
    return [sorted(s) for s in shards]


def merge_stats(per_rank: list[dict]) -> dict:
    """One pass's figures from every rank's: frames and sequences add up, the wall time is the slowest
    rank's (they run at once), so frames/s is the whole benchmark's."""
    frames = sum(s["frames"] for s in per_rank)
    seconds = max(s["seconds"] for s in per_rank)
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds > 0 else 0.0,
            "sequences": sum(s["sequences"] for s in per_rank), "skipped": sum(s["skipped"] for s in per_rank),
            "failed": [f for s in per_rank for f in s["failed"]], "ranks": len(per_rank),
            "per_rank": [{k: s[k] for k in ("frames", "seconds", "fps", "sequences")} for s in per_rank]}


def run_sharded(model, sequences: list[Seq], results_dir, ranks: Ranks | None = None, resume: bool = True,
                **runner_kwargs) -> dict:
    """`run_benchmark` over this rank's shard; returns the merged figures of all ranks on every rank.

    With one rank it is `run_benchmark` itself. `runner_kwargs` go to `run_benchmark` (batch_size,
    workers, decode, tracker_kwargs, progress).
    """
    from unitrack.eval.runner import check_unique_names, is_finished, run_benchmark

    ranks = ranks or current_ranks()
    results_dir = Path(results_dir)
    if ranks.world == 1:
        return {**run_benchmark(model, sequences, results_dir, resume=resume, **runner_kwargs), "ranks": 1}
    check_unique_names(sequences, results_dir)
    plan = None
    if ranks.is_main:  # one view of what is finished, so no sequence is tracked twice or never
        todo = [i for i, s in enumerate(sequences) if not (resume and is_finished(results_dir, s))]
        shards = balanced_shards([len(sequences[i]) for i in todo], ranks.world)
        plan = {"shards": [[todo[j] for j in sh] for sh in shards], "skipped": len(sequences) - len(todo)}
    plan = ranks.broadcast(plan)
    mine = [sequences[i] for i in plan["shards"][ranks.rank]]
    kw = dict(runner_kwargs)
    kw["progress"] = bool(kw.get("progress", True)) and ranks.is_main
    kw.setdefault("label", f"tracking (rank {ranks.rank} of {ranks.world})")
    outcome: dict = {"error": None}
    try:
        stats = run_benchmark(model, mine, results_dir, resume=False, **kw)
        stats["skipped"] = plan["skipped"] if ranks.is_main else 0
        stats["sequences"] = len(mine) + stats["skipped"]
        outcome["stats"] = stats
    except Exception as e:  # noqa: BLE001 - told to every rank before anyone raises
        outcome["error"] = f"{type(e).__name__}: {e}"
        ranks.gather(outcome)
        raise
    everyone = ranks.gather(outcome)
    bad = [(r, o["error"]) for r, o in enumerate(everyone) if o["error"]]
    if bad:
        r, err = bad[0]
        raise ResultsError(results_dir, f"evaluation failed on rank {r} of {ranks.world}: {err}")
    merged = merge_stats([o["stats"] for o in everyone])
    if ranks.is_main:  # every rank wrote into this folder: it must be one folder for all (shared storage)
        failed = {f["uid"] for f in merged["failed"]}
        lost = [s for s in sequences if s.uid not in failed and not is_finished(results_dir, s)]
        if lost:
            raise ResultsError(results_dir / f"{lost[0].name}.txt",
                               f"{len(lost)} result file(s) written by other ranks are not visible here; "
                               "the results folder must be on storage that every node shares")
    return merged


def on_main(ranks: Ranks, fn):
    """`fn()` on rank 0 only, its value on every rank; an error there is raised on every rank."""
    value, err, exc = None, None, None
    if ranks.is_main:
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - told to the other ranks, then re-raised here
            err, exc = f"{type(e).__name__}: {e}", e
    value, err = ranks.broadcast((value, err))
    if exc is not None:
        raise exc
    if err is not None:
        raise ResultsError("rank 0", err)
    return value


def track_and_score(model, sequences: list[Seq], results_dir, eval_cfg, tracker_kwargs: dict | None = None,
                    what: str = "evaluation") -> tuple[dict, dict]:
    """Track `sequences` in one batched pass with `model` in eval mode, sharded over the ranks of a running
    process group (a DDP training run's), then score them on rank 0 with `eval_cfg.protocol`.

    Returns (score's metrics, the runner's figures), the same on every rank. `eval_cfg` gives batch_size,
    workers, decode, amp and pad (a training config's `eval`). A sequence that cannot be tracked is an error
    (its message starts with `what`): scores of part of a split would be a wrong number."""
    import torch

    from unitrack.eval.runner import failure_summary
    from unitrack.eval.score import score

    ranks = current_ranks()
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            stats = run_sharded(model, sequences, results_dir, ranks, batch_size=int(eval_cfg["batch_size"]),
                                workers=int(eval_cfg["workers"]), decode=str(eval_cfg.get("decode", "thread")),
                                progress=False, tracker_kwargs={"device": str(device), "amp": eval_cfg.get("amp", False),
                                                                "pad": str(eval_cfg.get("pad", "current")),
                                                                **(tracker_kwargs or {})})
    finally:
        model.train(was)
    if stats["failed"]:
        from unitrack.errors import DatasetError

        raise DatasetError(stats["failed"][0]["uid"], f"{what}: " + failure_summary(stats["failed"], len(sequences)))
    metrics = on_main(ranks, lambda: score(sequences, results_dir, protocol=eval_cfg["protocol"]))
    return metrics, stats
