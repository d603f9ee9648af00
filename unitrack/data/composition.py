"""Batch composition: which task each row of a training batch comes from.

Every batch holds exactly the per-task counts its weights ask for (largest remainder), and a replaying
stage splits its rows between the current task and replay as `batch_layout` says. The data module draws
batches by these rules; the training protocol (unitrack/train/protocol.py) uses them to size stages.
"""

from __future__ import annotations

import math

from unitrack.errors import ConfigError


def largest_remainder(weights: list[float], n: int) -> list[int]:
    """Integer counts summing to n, proportional to weights (Hamilton's method; ties: lower index)."""
    if n <= 0 or not weights:
        return [0] * len(weights)
    total = float(sum(weights))
    if total <= 0:
        raise ConfigError("data.ratios", f"weights must sum to > 0, got {weights}")
    quotas = [n * w / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def row_slots(weights: list[float], n: int) -> list[int]:
    """Which weight index each of n rows of a batch belongs to: the largest-remainder counts, in order."""
    return [i for i, c in enumerate(largest_remainder(weights, n)) for _ in range(c)]


def batch_layout(kind: str, mode: str, ratio: float, batch_size: int, replaying: bool) -> tuple[int, int, int]:
    """(rows the data loader yields per step, of which full-rehearsal replay rows, rows drawn from a bounded
    buffer by the training step). Bounded buffers are drawn live (they fill as the stream is seen), so
    their rows never go through the loader."""
    r = int(round(ratio * batch_size)) if replaying and kind != "none" else 0
    current = batch_size if mode == "append" else batch_size - r
    if kind == "full":
        return current + r, r, 0
    return current, 0, r
