"""How sure a study's numbers are: a bootstrap over seeds and test sequences, paired differences, verdicts.

A study cell (a method's pooled SR, say) is a mean over seeds -- training runs -- and test sequences, and
both are samples: other seeds train other trackers, other sequences test them differently. Every seed is
tested on the same sequences (a crossed design, not a nested one), so one resample draws the seeds with
replacement and, once for every seed and every group compared, the sequences with replacement within each
task (a task keeps its share of the pooled mean): the two-way ("pigeonhole") bootstrap of Owen (2007) for
crossed random effects, which keeps the seed and the sequence effect shared the way they are. Drawing
sequences anew for each seed instead would treat them as independent and understate the spread.

A paired difference (same seed, hence the same foundation, and the same test sequences) is resampled with
the same draw on both sides, so what they share cancels; a constant difference has an interval of width
zero. Intervals are percentile intervals from a generator with a fixed seed, so a report is reproducible.
With 2-3 seeds the seed draw has few distinct outcomes: the interval then mostly reflects the sequences.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

POOLED = "pooled"


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its interval."""

    value: float
    lo: float
    hi: float

    def fmt(self, digits: int = 3, sign: bool = False) -> str:
        if not np.isfinite(self.value):
            return "–"
        f = f"{{:+.{digits}f}}" if sign else f"{{:.{digits}f}}"
        return f"{f.format(self.value)} [{f.format(self.lo)}, {f.format(self.hi)}]"


@dataclass
class Scores:
    """Per-sequence scores of one group of runs: `values[s, q]` of seed `seeds[s]` on sequence `uids[q]`."""

    seeds: list[int]
    uids: list[str]
    tasks: list[str]
    values: np.ndarray

    def per_seed(self, task: str = POOLED) -> np.ndarray:
        """Each seed's mean over the sequences (of `task`): the run's own score."""
        cols = [i for i, t in enumerate(self.tasks) if task in (POOLED, t)]
        return self.values[:, cols].mean(axis=1)


def align(cells: Sequence[Scores]) -> tuple[list[int], list[str], list[str], np.ndarray]:
    """(seeds, uids, tasks, X of shape (groups, seeds, sequences)) over the seeds and sequences every cell
    has: a comparison is made only on what both sides were run and tested on."""
    seeds = sorted(set.intersection(*(set(c.seeds) for c in cells)))
    uids = sorted(set.intersection(*(set(c.uids) for c in cells)))
    task_of = dict(zip(cells[0].uids, cells[0].tasks))
    X = np.stack([c.values[np.ix_([c.seeds.index(s) for s in seeds], [c.uids.index(u) for u in uids])]
                  for c in cells]) if seeds and uids else np.zeros((len(cells), 0, 0))
    return seeds, uids, [task_of[u] for u in uids], X


class Bootstrap:
    """Crossed bootstrap over seeds and sequences with a fixed generator seed."""

    def __init__(self, resamples: int = 10000, seed: int = 0, level: float = 0.95):
        if resamples < 1:
            raise ValueError(f"resamples must be >= 1, got {resamples}")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.resamples, self.seed, self.level = int(resamples), int(seed), float(level)

    def describe(self) -> str:
        return (f"{100 * self.level:g} % intervals: percentile bootstrap, {self.resamples} resamples (generator "
                f"seed {self.seed}), drawing seeds and test sequences (within each task) with replacement, "
                "one draw for every group compared (crossed design, Owen 2007)")

    def _draws(self, n_seeds: int, tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Multiplicities of each seed (B, S) and each sequence (B, Q) in every resample."""
        rng = np.random.default_rng(self.seed)
        B = self.resamples
        cs = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=B) if n_seeds else np.zeros((B, 0))
        cq = np.zeros((B, len(tasks)))
        for t in dict.fromkeys(tasks):
            idx = [i for i, x in enumerate(tasks) if x == t]
            cq[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=B)
        return cs, cq

    def means(self, X: np.ndarray, tasks: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Means over seeds x sequences of every group, per task and pooled (every sequence weighs the same,
        as score's pooling does): (point {key: (G,)}, resamples {key: (B, G)})."""
        X = np.asarray(X, dtype=np.float64)
        G, S, Q = X.shape
        cs, cq = self._draws(S, tasks)
        point, reps = {}, {}
        keys = [*dict.fromkeys(tasks), POOLED]
        for k in keys:
            cols = [i for i, t in enumerate(tasks) if k in (POOLED, t)]
            sub = X[:, :, cols]
            point[k] = sub.mean(axis=(1, 2))
            reps[k] = np.einsum("bs,gsq,bq->bg", cs, sub, cq[:, cols]) / (S * len(cols))
        return point, reps

    def interval(self, point: float, reps: np.ndarray) -> Estimate:
        reps = np.asarray(reps, dtype=np.float64)
        reps = reps[np.isfinite(reps)]
        if not np.isfinite(point) or reps.size == 0:
            return Estimate(float(point), float("nan"), float("nan"))
        a = (1 - self.level) / 2
        lo, hi = np.quantile(reps, [a, 1 - a])
        return Estimate(float(point), float(lo), float(hi))

    def statistic(self, X: np.ndarray, tasks: Sequence[str],
                  fn: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Estimate:
        """`fn` of the group means (a dict of task -> array whose last axis is the group) with its interval:
        `fn` gets the point means (G,) and, once, the resampled means (B, G); it returns a scalar / (B,)."""
        point, reps = self.means(X, tasks)
        return self.interval(float(np.asarray(fn(point)).reshape(-1)[0]), np.asarray(fn(reps)))

    def mean(self, values: Sequence[float]) -> Estimate:
        """Mean of independent values (seeds, no sequences) with its interval."""
        v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
        if v.size == 0:
            return Estimate(float("nan"), float("nan"), float("nan"))
        return self.statistic(v[None, :, None], ["all"], lambda m: m[POOLED][..., 0])


def detectable(est: Estimate, level: float = 0.95, power: float = 0.8) -> float:
    """The smallest true difference this comparison finds with `power` at `level` (two-sided): the
    interval's standard error (its width over 2 z) times z_level + z_power (2.80 at 95 % / 80 %). A paper
    effect below it cannot be resolved by these seeds and sequences, whatever the verdict says."""
    from scipy.stats import norm

    if not (np.isfinite(est.lo) and np.isfinite(est.hi)):
        return float("nan")
    z = float(norm.ppf(1 - (1 - level) / 2))
    return float((est.hi - est.lo) / (2 * z) * (z + float(norm.ppf(power))))


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1): the spread of 2-3 seeds is not understated; NaN for one value."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.std(v, ddof=1)) if v.size > 1 else float("nan")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """scipy's Spearman rank correlation (ties get mean ranks); NaN where it is undefined (a constant side)."""
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(np.asarray(a, dtype=float)) == 0 or np.ptp(np.asarray(b, dtype=float)) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def spearman_rows(x: Sequence[float], Y: np.ndarray) -> np.ndarray:
    """`spearman(x, row)` for every row of Y (one per resample)."""
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    return np.array([spearman(x, row) for row in Y])


#: The verdict words: the interval excludes 0 in the paper's direction / the other way / neither.
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


def verdict(est: Estimate, direction: int) -> str:
    """`direction` +1: the paper says the statistic is > 0; -1: < 0."""
    if not (np.isfinite(est.lo) and np.isfinite(est.hi)):
        return INCONCLUSIVE
    if est.lo > 0:
        return REPRODUCED if direction > 0 else CONTRADICTED
    if est.hi < 0:
        return REPRODUCED if direction < 0 else CONTRADICTED
    return INCONCLUSIVE


def equivalence_verdict(est: Estimate, margin: float) -> str:
    """For a claim of no effect (a spread that "matters little"): reproduced when the whole interval lies
    below `margin`, contradicted when it lies above, else inconclusive."""
    if not (np.isfinite(est.lo) and np.isfinite(est.hi)):
        return INCONCLUSIVE
    if est.hi < margin:
        return REPRODUCED
    if est.lo > margin:
        return CONTRADICTED
    return INCONCLUSIVE
