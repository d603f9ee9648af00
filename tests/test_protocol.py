"""Serial-vs-parallel fairness knobs: budget, one continued schedule, carried AdamW, stratified batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from tests.conftest import compose, tiny_train_overrides
from unitrack.data.datamodule import StageDataset, StagePlan
from unitrack.data.pairs import PairRef
from unitrack.errors import ConfigError
from unitrack.train.optim import cosine_with_warmup
from unitrack.train.protocol import exposure, largest_remainder, plan_stages, stage_schedule


class _Sampler:
    def sample(self, rng):
        return PairRef(0, int(rng.integers(10)), int(rng.integers(10)))


class _Pairs:
    sampler = _Sampler()


def _ds(plan, batch, stratified):
    return StageDataset({t: _Pairs() for t in [*plan.tasks, *plan.replay_tasks]}, plan, batch, 0,
                        stratified=stratified)


def _train(**kw):
    base = {"mode": "serial", "order": ["rgbt", "rgbd", "rgbe"], "steps_per_stage": 100, "parallel_steps_factor": 3}
    return OmegaConf.create({**base, **kw})


def test_largest_remainder_counts():
    assert largest_remainder([1, 1, 1], 32) == [11, 11, 10]
    assert largest_remainder([2, 1, 1], 10) == [5, 3, 2]
    assert sum(largest_remainder([0.3, 0.3, 0.4], 7)) == 7


def test_stratified_batches_hold_exact_per_task_counts():
    plan = StagePlan(0, "parallel", ["rgbt", "rgbd", "rgbe"], [1.0, 1.0, 1.0], [], "none", 0.0, 20)
    for stratified, exact in ((True, True), (False, False)):
        ds = _ds(plan, 32, stratified)
        per_batch = [[ds.ref(b * 32 + r)[0] for r in range(32)] for b in range(20)]
        counts = [[row.count(t) for t in plan.tasks] for row in per_batch]
        assert all(c == [11, 11, 10] for c in counts) is exact, counts
    # full replay at stage 3: 2/3 of 30 rows replayed, split equally over the two earlier tasks
    plan = StagePlan(2, "rgbe", ["rgbe"], [1.0], ["rgbt", "rgbd"], "full", 2 / 3, 4)
    ds = _ds(plan, 30, True)
    assert exposure(ds) == {"rgbd": 40 / 30, "rgbe": 40 / 30, "rgbt": 40 / 30}
    assert [ds.ref(i)[0] for i in range(30)].count("rgbt") == 10


def test_stratified_keeps_the_pair_stream():
    plan = StagePlan(0, "rgbt", ["rgbt"], [1.0], [], "none", 0.0, 3)
    a, b = _ds(plan, 8, True), _ds(plan, 8, False)
    assert [a.ref(i) for i in range(24)] == [b.ref(i) for i in range(24)]


def test_budget_changes_serial_step_counts():
    replay = OmegaConf.create({"kind": "full", "ratio": None})
    ratios = OmegaConf.create({"rgbt": 1, "rgbd": 1, "rgbe": 1})
    steps = {b: [p.steps for p in plan_stages(_train(budget=b), replay, ratios, 30)]
             for b in ("stage", "samples", "exposure")}
    assert steps["stage"] == [100, 100, 100]
    assert steps["samples"] == [100, 100, 100] and sum(steps["samples"]) == 300
    assert steps["exposure"] == [100, 200, 300]  # current task keeps 1, 1/2, 1/3 of each batch
    assert [p.steps for p in plan_stages(_train(budget="samples", parallel_steps_factor=2), replay, ratios, 30)] \
        == [67, 67, 66]
    with pytest.raises(ConfigError, match="train.budget"):
        plan_stages(_train(budget="equal"), replay, ratios, 30)
    # each task's own-stage exposure then equals parallel's share (100 batch-equivalents each)
    plans = plan_stages(_train(budget="exposure"), replay, ratios, 30)
    for p in plans:
        ds = _ds(p, 30, True)
        assert exposure(ds)[p.name] == pytest.approx(100.0)


def _lrs(train_cfg, plans, warm_frac=0.1):
    lrs = []
    for k, p in enumerate(plans):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        total, offset = stage_schedule(train_cfg, plans, k)
        sched = cosine_with_warmup(opt, total, int(round(warm_frac * total)), 0.05, offset=offset)
        for _ in range(p.steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(lrs)


def test_schedule_continue_is_one_cosine_and_restart_is_not():
    plans = [StagePlan(k, t, [t], [1.0], [], "none", 0.0, n) for k, (t, n) in enumerate([("a", 5), ("b", 7), ("c", 4)])]
    one = _lrs(_train(schedule="restart"), [StagePlan(0, "all", ["a"], [1.0], [], "none", 0.0, 16)])
    np.testing.assert_allclose(_lrs(_train(schedule="continue"), plans), one, rtol=0, atol=1e-12)
    assert not np.allclose(_lrs(_train(schedule="restart"), plans), one)


def test_optimizer_carry_changes_later_stages_only_and_knobs_reach_matrix(tmp_path, synth_root):
    from unitrack.train.unification import train

    def run(name, *over):
        c = compose("train", ["+experiment=serial", *tiny_train_overrides(synth_root, tmp_path / name),
                              "train.order=[rgbt,rgbd]", *over])
        with open_dict(c):
            del c["hydra"]
        train(c, tmp_path / name)
        ck = [torch.load(tmp_path / name / "checkpoints" / f"stage_{k}_{t}.ckpt", weights_only=False)["state_dict"]
              for k, t in enumerate(["rgbt", "rgbd"], start=1)]
        return ck, json.loads((tmp_path / name / "matrix.json").read_text())

    reset, m_reset = run("reset")
    carry, m_carry = run("carry", "train.optimizer_state=carry")
    assert all(torch.equal(reset[0][k], carry[0][k]) for k in reset[0])
    assert any(not torch.equal(reset[1][k], carry[1][k]) for k in reset[1])
    assert m_carry["protocol_knobs"]["optimizer_state"] == "carry"
    assert m_reset["exposure"] == {"rgbt": {"rgbt": 3.0}, "rgbd": {"rgbd": 3.0}}
