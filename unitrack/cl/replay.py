"""Replay buffers of training-pair references (task, sequence, template frame, search frame).

A tracking buffer stores where a pair came from, not its pixels, so thousands of pairs cost a few
kilobytes; the data side re-decodes the frames when a pair is replayed. Every buffer keeps its own
``random.Random`` whose state is part of ``state_dict()``, so a resumed run makes the same choices as
an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from unitrack.data.composition import batch_layout  # noqa: F401 (the replay share of a batch; re-exported)
from unitrack.errors import ConfigError

Item = dict[str, Any]

#: Replay kinds: none, full rehearsal of all earlier tasks' data, or a bounded buffer.
REPLAY_KINDS = ("none", "full", "reservoir", "balanced")
BOUNDED_KINDS = ("reservoir", "balanced")
REF_KEYS = ("seq_index", "template_frame", "search_frame")
#: share: replay takes `ratio` of a fixed batch; append: the current task keeps its whole batch and
#: round(ratio * batch) replayed rows come on top (Mammoth's ER concatenates its buffer minibatch).
REPLAY_MODES = ("share", "append")


def _check_item(item: Mapping[str, Any]) -> None:
    if not isinstance(item, Mapping) or "task" not in item:
        raise ValueError(f"a replay item must be a dict with a 'task' key, got {item!r}")


def _rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, state: list) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def _sample(items: list[Item], n: int, rng: random.Random) -> list[Item]:
    """Draw min(n, len) distinct items, as Mammoth's buffers do (no duplicates within one draw)."""
    if n < 0:
        raise ValueError(f"cannot sample {n} items")
    return rng.sample(items, min(n, len(items)))


class ReservoirBuffer:
    """Reservoir sampling: after a stream of N items each one is kept with probability M / N."""

    def __init__(self, size: int, seed: int = 0):
        if size <= 0:
            raise ValueError(f"buffer size must be > 0, got {size}")
        self.size = int(size)
        self.seen = 0
        self.items: list[Item] = []
        self.rng = random.Random(seed)

    def add(self, item: Item) -> int | None:
        """Offer one item; returns the slot it went to, or None when it was not kept."""
        _check_item(item)
        n = self.seen
        self.seen += 1
        if n < self.size:
            self.items.append(item)
            return n
        r = self.rng.randint(0, n)  # inclusive of n, as the reservoir rule requires
        if r < self.size:
            self.items[r] = item
            return r
        return None

    def sample(self, n: int, rng: random.Random | None = None) -> list[Item]:
        return _sample(self.items, n, rng or self.rng)

    def __len__(self) -> int:
        return len(self.items)

    def tasks(self) -> dict[str, int]:
        """How many items each task holds (for logging)."""
        counts: dict[str, int] = {}
        for it in self.items:
            counts[it["task"]] = counts.get(it["task"], 0) + 1
        return counts

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "reservoir", "size": self.size, "seen": self.seen,
                "items": [dict(it) for it in self.items], "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != "reservoir":
            raise ValueError(f"not a reservoir buffer state (kind={state.get('kind')!r})")
        self.size, self.seen = int(state["size"]), int(state["seen"])
        self.items = [dict(it) for it in state["items"]]
        _set_rng_state(self.rng, state["rng"])


class BalancedBuffer:
    """Experience-balanced buffer: every task seen so far owns an equal share of the M slots.

    When a new task arrives the shares shrink and randomly chosen items of over-full tasks are evicted
    (a random subset of a uniform sample is still uniform); within its share a task is a reservoir.
    Shares are strict: a task with fewer pairs than its share leaves slots empty.
    """

    def __init__(self, size: int, seed: int = 0):
        if size <= 0:
            raise ValueError(f"buffer size must be > 0, got {size}")
        self.size = int(size)
        self.seen = 0
        self.per_task: dict[str, list[Item]] = {}
        self.seen_per_task: dict[str, int] = {}
        self.rng = random.Random(seed)

    def quota(self, task: str) -> int:
        """Slots of `task`: M // K, the remainder going to the earliest tasks."""
        names = list(self.per_task)
        q, rem = divmod(self.size, len(names))
        return q + (1 if names.index(task) < rem else 0)

    def _rebalance(self) -> None:
        for task, items in self.per_task.items():
            excess = len(items) - self.quota(task)
            for _ in range(max(excess, 0)):
                items.pop(self.rng.randrange(len(items)))

    def add(self, item: Item) -> bool:
        """Offer one item; returns whether it was kept."""
        _check_item(item)
        task = item["task"]
        if task not in self.per_task:
            self.per_task[task], self.seen_per_task[task] = [], 0
            self._rebalance()
        self.seen += 1
        items, cap = self.per_task[task], self.quota(task)
        n = self.seen_per_task[task]
        self.seen_per_task[task] = n + 1
        if len(items) < cap:
            items.append(item)
            return True
        r = self.rng.randint(0, n)
        if r < cap:
            items[r] = item
            return True
        return False

    @property
    def items(self) -> list[Item]:
        return [it for items in self.per_task.values() for it in items]

    def sample(self, n: int, rng: random.Random | None = None) -> list[Item]:
        return _sample(self.items, n, rng or self.rng)

    def __len__(self) -> int:
        return sum(len(v) for v in self.per_task.values())

    def tasks(self) -> dict[str, int]:
        return {t: len(v) for t, v in self.per_task.items()}

    def state_dict(self) -> dict[str, Any]:
        # Lists of pairs, not dicts, keep the task order explicit across serialisation.
        return {"kind": "balanced", "size": self.size, "seen": self.seen,
                "per_task": [[t, [dict(it) for it in v]] for t, v in self.per_task.items()],
                "seen_per_task": [[t, n] for t, n in self.seen_per_task.items()],
                "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != "balanced":
            raise ValueError(f"not a balanced buffer state (kind={state.get('kind')!r})")
        self.size, self.seen = int(state["size"]), int(state["seen"])
        self.per_task = {t: [dict(it) for it in v] for t, v in state["per_task"]}
        self.seen_per_task = {t: int(n) for t, n in state["seen_per_task"]}
        _set_rng_state(self.rng, state["rng"])


Buffer = ReservoirBuffer | BalancedBuffer


def make_buffer(kind: str, size: int, seed: int = 0) -> Buffer:
    if kind == "reservoir":
        return ReservoirBuffer(size, seed)
    if kind == "balanced":
        return BalancedBuffer(size, seed)
    raise ConfigError("cl.replay.kind", f"a bounded buffer is 'reservoir' or 'balanced', got {kind!r}")


def items_from_batch(batch: Mapping[str, Any]) -> list[Item]:
    """One buffer item per batch row, from batch['task'] and batch['ref'] = [seq, template, search]."""
    ref = batch["ref"]
    rows = ref.tolist() if hasattr(ref, "tolist") else list(ref)
    return [{"task": str(task), **{k: int(v) for k, v in zip(REF_KEYS, row)}}
            for task, row in zip(batch["task"], rows)]


def validate_replay(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check `cl.replay` and return it as a plain dict {kind, buffer_size, ratio, mode}."""
    cfg = dict(cfg or {})
    kind = cfg.get("kind", "none") or "none"
    if kind not in REPLAY_KINDS:
        raise ConfigError("cl.replay.kind", f"expected one of {', '.join(REPLAY_KINDS)}, got {kind!r}")
    mode = cfg.get("mode", "share") or "share"
    if mode not in REPLAY_MODES:
        raise ConfigError("cl.replay.mode", f"expected one of {', '.join(REPLAY_MODES)}, got {mode!r}")
    if cfg.get("ratio") is None and kind == "full":
        # Full rehearsal by dataset ratio: stage k mixes its k+1 tasks 1:1 (replay share k/(k+1)).
        return {"kind": kind, "buffer_size": 0, "ratio": None, "mode": mode}
    try:
        ratio = float(cfg.get("ratio", 0.0))
    except (TypeError, ValueError):
        raise ConfigError("cl.replay.ratio", f"expected a number in [0, 1], got {cfg.get('ratio')!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError("cl.replay.ratio", f"share of each batch drawn from replay must be in [0, 1], got {ratio}")
    size = cfg.get("buffer_size", 0)
    if kind in BOUNDED_KINDS:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError("cl.replay.buffer_size",
                              f"replay kind {kind!r} needs an integer buffer size > 0, got {size!r}")
    return {"kind": kind, "buffer_size": int(size or 0), "ratio": ratio, "mode": mode}
