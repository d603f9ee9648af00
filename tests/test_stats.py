"""unitrack.stats: the crossed bootstrap, paired intervals and verdict words, on hand-made numbers whose
answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from unitrack.stats import (
    POOLED,
    Bootstrap,
    Estimate,
    Scores,
    align,
    equivalence_verdict,
    sample_sd,
    spearman,
    verdict,
)


def _scores(values, tasks, seeds=None):
    values = np.asarray(values, dtype=float)
    return Scores(seeds or list(range(values.shape[0])), [f"s{i}" for i in range(values.shape[1])], list(tasks),
                  values)


def test_a_constant_paired_difference_has_an_interval_of_width_zero():
    rng = np.random.default_rng(1)
    tasks = ["rgbt"] * 4 + ["rgbd"] * 3
    b = _scores(rng.uniform(0, 1, (3, 7)), tasks)
    a = _scores(b.values + 0.05, tasks)
    seeds, uids, qt, X = align([a, b])
    est = Bootstrap(2000).statistic(X[0:1] - X[1:2], qt, lambda m: m[POOLED][..., 0])
    assert (est.value, est.lo, est.hi) == pytest.approx((0.05, 0.05, 0.05))
    assert verdict(est, +1) == "reproduced" and verdict(est, -1) == "contradicted"
    # the sides alone vary: their own intervals are wide
    alone = Bootstrap(2000).statistic(X[1:2], qt, lambda m: m[POOLED][..., 0])
    assert alone.hi - alone.lo > 0.1


def test_two_values_give_the_known_percentile_interval():
    """Mean of {0, 1} resampled: 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4 -> 95 % interval [0, 1]."""
    est = Bootstrap(4000, seed=3).mean([0.0, 1.0])
    assert (est.value, est.lo, est.hi) == (0.5, 0.0, 1.0)
    assert sample_sd([0.45, 0.55]) == pytest.approx(0.0707107, abs=1e-6)  # ddof=1, not np.std's 0.05


def test_seeds_and_sequences_are_drawn_crossed_once_per_resample():
    """X[s, q] = a_s + b_q: the resampled mean's variance is var(a)/S + var(b)/Q (population variances)
    when one draw of sequences serves every seed; drawing sequences anew per seed would give
    var(a)/S + var(b)/(S Q)."""
    a, b = np.array([0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])
    X = (a[:, None] + b[None, :])[None]
    _, reps = Bootstrap(40000, seed=0).means(X, ["rgbt"] * 4)
    assert np.var(reps[POOLED][:, 0]) == pytest.approx(0.25 / 2 + 0.25 / 4, rel=0.03)


def test_pooled_weighs_every_sequence_the_same_and_tasks_keep_their_share():
    X = np.array([[[1.0, 0.0, 0.0, 0.0]]])  # task rgbt: one sequence scoring 1; rgbd: three scoring 0
    point, reps = Bootstrap(500).means(X, ["rgbt", "rgbd", "rgbd", "rgbd"])
    assert point[POOLED][0] == pytest.approx(0.25) and point["rgbt"][0] == 1.0 and point["rgbd"][0] == 0.0
    # drawn within each task, the lone rgbt sequence is in every resample: the pooled mean cannot move
    assert np.allclose(reps[POOLED], 0.25)


def test_align_keeps_only_the_seeds_and_sequences_both_sides_have():
    a = Scores([0, 1, 2], ["x", "y"], ["rgbt", "rgbt"], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    b = Scores([2, 1], ["y", "z"], ["rgbt", "rgbt"], np.array([[10.0, 0.0], [20.0, 0.0]]))
    seeds, uids, tasks, X = align([a, b])
    assert seeds == [1, 2] and uids == ["y"] and tasks == ["rgbt"]
    assert X[:, :, 0].tolist() == [[4.0, 6.0], [20.0, 10.0]]


@pytest.mark.parametrize("est,direction,word", [
    (Estimate(0.1, 0.05, 0.15), +1, "reproduced"), (Estimate(0.1, 0.05, 0.15), -1, "contradicted"),
    (Estimate(-0.1, -0.15, -0.05), -1, "reproduced"), (Estimate(0.02, -0.01, 0.05), +1, "inconclusive"),
    (Estimate(0.0, 0.0, 0.0), +1, "inconclusive"), (Estimate(0.1, float("nan"), float("nan")), +1, "inconclusive")])
def test_verdict_words(est, direction, word):
    assert verdict(est, direction) == word


def test_equivalence_verdict_for_a_claim_of_no_effect():
    assert equivalence_verdict(Estimate(0.01, 0.005, 0.015), 0.02) == "reproduced"
    assert equivalence_verdict(Estimate(0.05, 0.03, 0.08), 0.02) == "contradicted"
    assert equivalence_verdict(Estimate(0.02, 0.01, 0.04), 0.02) == "inconclusive"


def test_spearman_ranks_ties_by_their_mean_rank():
    # the hand-written argsort(argsort) ranked the tie 1,2 and gave 1.0
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_the_same_seed_gives_the_same_interval():
    x = np.random.default_rng(0).uniform(size=(1, 3, 9))
    tasks = ["rgbt"] * 9
    one = Bootstrap(500, seed=7).statistic(x, tasks, lambda m: m[POOLED][..., 0])
    assert one == Bootstrap(500, seed=7).statistic(x, tasks, lambda m: m[POOLED][..., 0])
    assert one != Bootstrap(500, seed=8).statistic(x, tasks, lambda m: m[POOLED][..., 0])


def test_detectable_difference_is_the_known_power_formula():
    from unitrack.stats import Estimate, detectable

    # a 95 % interval of half-width 1.96 is one standard error: detectable at 80 % power = 1.96 + 0.8416
    assert abs(detectable(Estimate(0.0, -1.959964, 1.959964)) - 2.801585) < 1e-5
    assert detectable(Estimate(0.3, 0.1, 0.1)) == 0.0  # no spread: any difference shows
    assert np.isnan(detectable(Estimate(0.0, float("nan"), float("nan"))))
