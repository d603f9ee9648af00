"""Continual-learning pieces: buffers, KD teacher, DER++, RKD, temperature scaling, config checks."""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from unitrack.cl import (
    KD,
    RKD,
    BalancedBuffer,
    Calibration,
    Composite,
    DERpp,
    ReservoirBuffer,
    build_methods,
    center_token,
    combine_heads,
    fit_temperature,
    items_from_batch,
    make_buffer,
    rkd_loss,
    store_outputs,
    validate_replay,
)
from unitrack.cl.distill import box_kd, giou, score_kd
from unitrack.cl.samm import Consistency
from unitrack.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


# ----------------------------------------------------------------------------- stand-in tracker
class Tiny(nn.Module):
    """Same call signature and output dict as the tracker, on 3x4x4 crops and N=6 tokens."""

    def __init__(self, n: int = 6):
        super().__init__()
        self.n = n
        self.score = nn.Linear(96, n)
        self.box = nn.Linear(96, n * 4)
        self.rgb = nn.Linear(48, 5)
        self.xf = nn.Linear(48, 5)

    def forward(self, z, zx, x, xx, z_box, modality):
        f = torch.cat([x.flatten(1), xx.flatten(1)], 1)
        raw = self.box(f).view(-1, self.n, 4).sigmoid()
        c, wh = raw[..., :2], raw[..., 2:] * 0.5
        return {"score": self.score(f), "box": torch.cat([c - wh / 2, c + wh / 2], -1),
                "feat_rgb": self.rgb(x.flatten(1)), "feat_x": self.xf(xx.flatten(1))}


class Module(nn.Module):
    """Stands in for the LightningModule: the tracker lives in `.model`."""

    def __init__(self):
        super().__init__()
        self.model = Tiny()


def make_batch(b: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(b, 3, 4, 4, generator=g)  # noqa: E731
    return {"z": img(), "zx": img(), "x": img(), "xx": img(),
            "z_box": torch.tensor([[0.2, 0.2, 0.6, 0.6]] * b), "box": torch.tensor([[0.3, 0.3, 0.7, 0.7]] * b),
            "modality": ["thermal"] * b, "task": ["rgbt"] * b,
            "ref": torch.arange(b * 3).view(b, 3)}


def item(task: str, i: int) -> dict:
    return {"task": task, "seq_index": i, "template_frame": 0, "search_frame": i}


# ----------------------------------------------------------------------------- buffers
def test_reservoir_follows_the_rule_exactly():
    buf, rng, ref = ReservoirBuffer(5, seed=3), random.Random(3), []
    for n in range(40):
        buf.add(item("rgbt", n))
        if n < 5:
            ref.append(n)
        else:
            r = rng.randint(0, n)
            if r < 5:
                ref[r] = n
    assert [it["seq_index"] for it in buf.items] == ref
    assert buf.seen == 40 and len(buf) == 5


def test_reservoir_keeps_every_item_with_probability_m_over_n():
    m, n, trials = 10, 100, 2000
    counts = [0] * n
    for t in range(trials):
        buf = ReservoirBuffer(m, seed=1000 + t)
        for i in range(n):
            buf.add(item("rgbt", i))
        for it in buf.items:
            counts[it["seq_index"]] += 1
    p = m / n
    sd = math.sqrt(trials * p * (1 - p))
    assert max(abs(c - trials * p) for c in counts) < 4.5 * sd  # each item: binomial tolerance
    chi2 = sum((c - trials * p) ** 2 / (trials * p * (1 - p)) for c in counts)
    assert chi2 < (n - 1) + 4 * math.sqrt(2 * (n - 1))  # no systematic bias across the stream
    # early and late items alike: the halves of the stream share the slots equally
    assert abs(sum(counts[: n // 2]) - sum(counts[n // 2:])) < 4.5 * math.sqrt(2) * sd * math.sqrt(n / 2)


@pytest.mark.parametrize("kind", ["reservoir", "balanced"])
def test_buffer_resume_continues_identically(kind):
    stream = [item("rgbt" if i < 60 else "rgbd", i) for i in range(120)]
    straight = make_buffer(kind, 8, seed=7)
    first = make_buffer(kind, 8, seed=7)
    for it in stream[:50]:
        straight.add(dict(it))
        first.add(dict(it))
    blob = io.BytesIO()
    torch.save({"buffer": first.state_dict()}, blob)  # as inside a Lightning checkpoint
    blob.seek(0)
    resumed = make_buffer(kind, 8, seed=999)
    resumed.load_state_dict(torch.load(blob, weights_only=True)["buffer"])
    for it in stream[50:]:
        straight.add(dict(it))
        resumed.add(dict(it))
    assert resumed.items == straight.items and resumed.seen == straight.seen == 120
    assert resumed.sample(4) == straight.sample(4)


def test_balanced_buffer_shares_equally_after_each_task():
    buf = BalancedBuffer(12, seed=0)
    for i in range(100):
        buf.add(item("rgbt", i))
    assert buf.tasks() == {"rgbt": 12}
    for i in range(100):
        buf.add(item("rgbd", i))
    assert buf.tasks() == {"rgbt": 6, "rgbd": 6}
    for i in range(100):
        buf.add(item("rgbe", i))
    assert buf.tasks() == {"rgbt": 4, "rgbd": 4, "rgbe": 4}
    assert len({(it["task"], it["seq_index"]) for it in buf.items}) == 12
    odd = BalancedBuffer(10, seed=0)
    for task in ("rgbt", "rgbd", "rgbe"):
        for i in range(30):
            odd.add(item(task, i))
    assert odd.tasks() == {"rgbt": 4, "rgbd": 3, "rgbe": 3}


def test_buffer_sample_and_items_from_batch():
    buf = ReservoirBuffer(5, seed=0)
    for it in items_from_batch(make_batch(3)):
        buf.add(it)
    assert buf.items[1] == {"task": "rgbt", "seq_index": 3, "template_frame": 4, "search_frame": 5}
    drawn = buf.sample(10, random.Random(0))
    assert len(drawn) == 3 and len({d["seq_index"] for d in drawn}) == 3
    with pytest.raises(ValueError):
        buf.add({"seq_index": 1})


@pytest.mark.parametrize("cfg,key", [
    ({"kind": "reservoir", "buffer_size": 10, "ratio": -0.1}, "cl.replay.ratio"),
    ({"kind": "full", "ratio": 1.5}, "cl.replay.ratio"),
    ({"kind": "reservoir", "buffer_size": 0, "ratio": 0.5}, "cl.replay.buffer_size"),
    ({"kind": "balanced", "buffer_size": -3, "ratio": 0.5}, "cl.replay.buffer_size"),
    ({"kind": "ring", "buffer_size": 3, "ratio": 0.5}, "cl.replay.kind"),
])
def test_replay_config_errors_name_the_key(cfg, key):
    with pytest.raises(ConfigError) as err:
        validate_replay(cfg)
    assert err.value.key == key and key in str(err.value)


def test_replay_config_accepts_bounds():
    assert validate_replay({"kind": "full", "ratio": 1.0})["ratio"] == 1.0
    assert validate_replay({"kind": "balanced", "buffer_size": 1, "ratio": 0.0})["buffer_size"] == 1


def test_method_config_errors():
    with pytest.raises(ConfigError, match="cl.der.alpha"):
        build_methods({"replay": {"kind": "full", "ratio": 0.5}, "der": {"alpha": 0.3}})
    with pytest.raises(ConfigError, match="cl.kd.temperature"):
        build_methods({"kd": {"weight": 1.0, "temperature": 0, "inputs": "current"}})
    with pytest.raises(ConfigError, match="cl.kd.inputs"):
        build_methods({"kd": {"weight": 0.5}})  # replay inputs without replay would be a no-op
    with pytest.raises(ConfigError, match="cl.kd.teacher"):
        build_methods({"kd": {"weight": 0.5, "teacher": "pretrained", "inputs": "current"}},
                      {"pretrained": True, "init": None})  # random heads: distilling towards noise
    assert set(build_methods({"kd": {"weight": 0.5, "teacher": "pretrained", "inputs": "current"}},
                             {"init": "tracker.ckpt"}).methods) == {"kd"}
    with pytest.raises(ConfigError, match="cl.samm.fit_temperature"):
        build_methods({"samm": {"fit_temperature": True}})
    with pytest.raises(ConfigError, match="cl.ewc.gamma"):
        build_methods({"ewc": {"weight": 1.0, "gamma": 1.5}})
    with pytest.raises(ConfigError, match="cl.replay.mode"):
        validate_replay({"kind": "reservoir", "buffer_size": 4, "ratio": 0.5, "mode": "interleave"})
    with pytest.raises(ConfigError, match="cl.rkd.weight"):
        build_methods({"rkd": {"weight": -1}})


def test_every_cl_option_composes_and_builds():
    from hydra import compose, initialize_config_dir

    expected = {"none": set(), "replay": set(), "reservoir": set(), "balanced": set(), "kd": {"kd"},
                "lwf": {"kd"}, "ewc": {"ewc"}, "der": {"der"}, "rkd": {"rkd"},
                "samm": {"consistency", "rkd", "samm"}}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name, methods in expected.items():
            cfg = compose(overrides=[f"+cl={name}"]).cl
            validate_replay(cfg.replay)
            assert set(build_methods(cfg).methods) == methods, name
        cfg = compose(overrides=["+cl=replay", "cl.kd.weight=1"]).cl
        assert cfg.replay.kind == "full" and set(build_methods(cfg).methods) == {"kd"}


# ----------------------------------------------------------------------------- KD
def test_kl_hand_case():
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert score_kd(student, teacher, 1.0).item() == pytest.approx(kl, rel=1e-5)
    # at T=2 the teacher logits 2*log3 give the same distribution; the T^2 factor scales by 4
    assert score_kd(student, 2 * teacher, 2.0).item() == pytest.approx(4 * kl, rel=1e-5)


def test_giou_and_box_term_hand_case():
    a, b = torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    assert giou(a, b).item() == pytest.approx(-1 / 3, abs=1e-5)
    assert giou(a, a).item() == pytest.approx(1.0, abs=1e-5)
    # teacher's argmax is token 1; there student and teacher boxes differ by 0.1 in x1 only
    t_box = torch.tensor([[[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.6, 0.6]]])
    s_box = torch.tensor([[[0.5, 0.5, 0.9, 0.9], [0.3, 0.2, 0.6, 0.6]]])
    expected = 0.1 + (1 - 0.12 / 0.16)
    assert box_kd(s_box, t_box, torch.tensor([[0.0, 5.0]])).item() == pytest.approx(expected, abs=1e-5)


def test_kd_teacher_frozen_outside_the_module_and_penalty_tracks_drift():
    torch.manual_seed(0)
    module, kd, batch = Module(), KD(weight=1.0, temperature=2.0, box_weight=1.0, inputs="both"), make_batch()
    kd.begin_task(module, "rgbt", 0)
    loss, _ = kd.penalty(module, batch, module.model(*[batch[k] for k in ("z", "zx", "x", "xx", "z_box", "modality")]))
    assert loss.item() == 0.0  # stage 0: nothing to remember yet
    kd.end_task(module, "rgbt", 0)
    kd.begin_task(module, "rgbd", 1)
    teacher = kd.teacher
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    assert {id(p) for p in teacher.parameters()}.isdisjoint({id(p) for p in module.parameters()})
    assert not any(t is teacher for t in module.modules())

    def out_of(m, b):
        return m.model(b["z"], b["zx"], b["x"], b["xx"], b["z_box"], b["modality"])

    same, logs = kd.penalty(module, batch, out_of(module, batch))
    assert same.item() == pytest.approx(0.0, abs=1e-5) and set(logs) == {"score", "box"}

    before = [p.clone() for p in teacher.parameters()]
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    for _ in range(3):
        out = out_of(module, batch)
        task = out["score"][:, 0].mean() - out["box"].mean()  # a task loss that moves the student
        opt.zero_grad()
        (task + kd.penalty(module, batch, out)[0]).backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    drifted, _ = kd.penalty(module, batch, out_of(module, batch))
    assert drifted.item() > 1e-3

    # replayed inputs are distilled too, and a checkpointed KD restores the same teacher
    rb = make_batch(2, seed=5)
    with_replay, _ = kd.penalty(module, batch, out_of(module, batch), rb, out_of(module, rb))
    blob = io.BytesIO()
    torch.save(kd.state_dict(), blob)
    blob.seek(0)
    resumed = KD(weight=1.0, temperature=2.0, box_weight=1.0, inputs="both")
    resumed.load_state_dict(torch.load(blob, weights_only=True))
    resumed.begin_task(module, "rgbd", 1)  # must not re-snapshot the (drifted) student
    again, _ = resumed.penalty(module, batch, out_of(module, batch), rb, out_of(module, rb))
    assert again.item() == pytest.approx(with_replay.item(), rel=1e-6)
    assert resumed.teacher is not None and not any(t is resumed.teacher for t in module.modules())


def test_kd_new_process_snapshots_at_begin_of_later_stage():
    module, kd, batch = Module(), KD(1.0), make_batch()
    kd.begin_task(module, "rgbd", 1)  # stage 1 started from the stage-0 checkpoint in a fresh run
    assert kd.teacher is not None and kd.teacher_stage == 0
    pre = KD(1.0, teacher="pretrained", inputs="current")
    pre.begin_task(module, "rgbt", 0)
    with torch.no_grad():
        module.model.score.bias.add_(1.0)
        module.model.score.weight.mul_(3.0)
    out = module.model(batch["z"], batch["zx"], batch["x"], batch["xx"], batch["z_box"], batch["modality"])
    assert pre.penalty(module, batch, out)[0].item() > 1e-3  # pretrained teacher: active in stage 0


# ----------------------------------------------------------------------------- DER++
def test_der_mse_to_stored_logits():
    der = DERpp(alpha=0.5)
    assert der.needs_logits and not der.replay_task_loss
    out = {"score": torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]), "box": torch.rand(2, 3, 4)}
    items = store_outputs([item("rgbt", 0), item("rgbt", 1)], out)
    assert torch.equal(items[1]["logits"], out["score"][1]) and "logits_rgb" not in items[1]
    assert torch.equal(items[0]["box_pred"], out["box"][0, 2])  # the box at the peak token
    replay_batch = {"logits": torch.stack([it["logits"] for it in items])}
    zero, _ = der.penalty(None, {}, out, replay_batch, out)
    moved, logs = der.penalty(None, {}, out, replay_batch, {"score": out["score"] + 2.0})
    assert zero.item() == 0.0 and moved.item() == pytest.approx(0.5 * 4.0) and logs["mse"] == pytest.approx(4.0)
    assert der.penalty(None, {}, out)[0].item() == 0.0  # no replay batch yet
    with pytest.raises(KeyError):
        der.penalty(None, {}, out, {}, out)


def test_samm_consistency_picks_the_head_the_current_model_trusts_at_the_true_token():
    # 2x2 grid; the true box centre lies in token 3 for both rows
    box = torch.tensor([[0.6, 0.6, 0.9, 0.9]] * 2)
    stored = {"logits": torch.zeros(2, 4), "logits_rgb": torch.ones(2, 4), "logits_x": torch.full((2, 4), 2.0)}
    # current model: row 0 -> x head most likely at token 3, row 1 -> fused head
    cur = {"score": torch.tensor([[0.0, 0, 0, 0], [0, 0, 0, 9.0]]), "score_rgb": torch.zeros(2, 4),
           "score_x": torch.tensor([[0.0, 0, 0, 5.0], [0, 0, 0, 0]])}
    cons = Consistency(weight=2.0, unimodal_weight=0.01)
    loss, logs = cons.penalty(None, {}, cur, {"box": box, **stored}, cur)
    target = torch.stack([stored["logits_x"][0], stored["logits"][1]])
    mse = {k: torch.nn.functional.mse_loss(cur[k], target).item() for k in cur}
    expected = 2.0 * (mse["score"] + 0.01 * (mse["score_rgb"] + mse["score_x"]))
    assert loss.item() == pytest.approx(expected, rel=1e-6) and logs["mse_fused"] == pytest.approx(mse["score"])


# ----------------------------------------------------------------------------- RKD
def test_rkd_hand_case_three_points():
    rgb = torch.eye(3, requires_grad=True)  # all pairwise distances sqrt(2): psi = 1 off the diagonal
    x = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])  # psi_01 = 0, others 1
    # psi differs by 1 at (0,1) and (1,0): SmoothL1 = 0.5 each, mean over 9 -> 1/9, both directions 2/9
    loss = rkd_loss(rgb, x)
    assert loss.item() == pytest.approx(2 / 9, abs=1e-4)
    loss.backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0


def test_rkd_zero_up_to_scale_and_for_tiny_batches():
    f = torch.randn(6, 8)
    assert rkd_loss(f, 3.7 * f).item() == pytest.approx(0.0, abs=1e-6)
    assert rkd_loss(f[:1], torch.randn(1, 8)).item() == 0.0
    method = RKD()
    assert method.weight == pytest.approx(0.25)
    out = {"score": torch.zeros(2, 3), "feat_rgb": torch.eye(3), "feat_x": torch.tensor(
        [[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])}
    assert method.penalty(None, {}, out)[0].item() == pytest.approx(0.25 * 2 / 9, abs=1e-4)
    # SAMM aligns the unimodal outputs when the model has them; replayed rows are their own matrix
    uni = dict(out, score_rgb=out["feat_rgb"], score_x=out["feat_x"], feat_x=out["feat_rgb"])
    assert method.penalty(None, {}, uni)[0].item() == pytest.approx(0.25 * 2 / 9, abs=1e-4)
    both, logs = method.penalty(None, {}, uni, {}, uni)
    assert both.item() == pytest.approx(2 * 0.25 * 2 / 9, abs=1e-4) and set(logs) == {"distance_current",
                                                                                       "distance_replay"}


# ----------------------------------------------------------------------------- SAMM inference
def test_fit_temperature_recovers_known_temperature():
    g = torch.Generator().manual_seed(0)
    z = 3.0 * torch.randn(4000, 20, generator=g)
    t_true = 2.5
    targets = torch.multinomial((z / t_true).softmax(1), 1, generator=g).squeeze(1)
    assert fit_temperature(z, targets) == pytest.approx(t_true, rel=0.06)
    with pytest.raises(ValueError):
        fit_temperature(z, torch.full((4000,), 20))


def test_combine_heads_weights_by_confidence_and_drops_missing_heads():
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 4.0]])
    temps = {"rgb": 2.0, "x": 1.0}
    conf_a = torch.softmax(a / 2.0, 1).max()
    conf_b = torch.softmax(b, 1).max()
    both = combine_heads({"rgb": a, "x": b}, temps)
    assert torch.allclose(both, conf_a * a / 2.0 + conf_b * b)
    only_rgb = combine_heads({"rgb": a, "x": None}, temps)
    assert torch.allclose(only_rgb, combine_heads({"rgb": a}, temps))
    assert torch.allclose(only_rgb, conf_a * a / 2.0)
    with pytest.raises(ValueError):
        combine_heads({}, temps)


def test_calibration_fits_per_head_and_round_trips():
    g = torch.Generator().manual_seed(1)
    cal = Calibration(max_samples=2000)
    z = 3.0 * torch.randn(2000, 16, generator=g)
    y = torch.multinomial((z / 2.0).softmax(1), 1, generator=g).squeeze(1)
    cal.begin_task(None, "rgbt", 0)
    for i in range(0, 2000, 500):
        cal.collect({"score": z[i:i + 500], "score_rgb": z[i:i + 500] / 2.0}, y[i:i + 500])
    cal.collect({"score": z[:10]}, y[:10])  # over max_samples: ignored
    cal.end_task(None, "rgbt", 0)
    assert cal.temperatures["fused"] == pytest.approx(2.0, rel=0.1)
    assert cal.temperatures["rgb"] == pytest.approx(1.0, rel=0.1)
    other = Calibration()
    other.load_state_dict(cal.state_dict())
    assert other.temperatures == cal.temperatures
    assert other.combine({"score": z[:2], "score_x": None}).shape == (2, 16)
    assert center_token(torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]]), 4).tolist() == [0, 15]


# ----------------------------------------------------------------------------- composition
def test_composite_sums_and_checkpoints():
    methods = build_methods({"replay": {"kind": "reservoir", "buffer_size": 4, "ratio": 0.5},
                             "kd": {"weight": 1.0}, "der": {"alpha": 1.0}, "rkd": {"weight": 0.25}})
    assert isinstance(methods, Composite) and set(methods.methods) == {"kd", "der", "rkd"}
    assert methods.needs_logits
    module, batch = Module(), make_batch()
    out = module.model(batch["z"], batch["zx"], batch["x"], batch["xx"], batch["z_box"], batch["modality"])
    replay = dict(make_batch(2, seed=3), logits=torch.zeros(2, 6))
    rout = module.model(replay["z"], replay["zx"], replay["x"], replay["xx"], replay["z_box"], replay["modality"])
    methods.begin_task(module, "rgbt", 0)
    total, logs = methods.penalty(module, batch, out, replay, rout)
    assert logs["cl/kd"] == 0.0
    assert total.item() == pytest.approx(logs["cl/der"] + logs["cl/rkd"], rel=1e-5)
    assert logs["cl/der"] == pytest.approx(rout["score"].pow(2).mean().item(), rel=1e-5)
    methods.end_task(module, "rgbt", 0)
    state = methods.state_dict()
    assert set(state) == {"kd", "der", "rkd"} and state["kd"]["teacher"] is not None
    with pytest.raises(KeyError):
        methods.load_state_dict({"kd": state["kd"]})
    empty = build_methods(None)
    assert len(empty) == 0 and empty.penalty(module, batch, out)[0].item() == 0.0


# ----------------------------------------------------------------------------- live buffer (rehearsal)
class FakePairs:
    """load_pair stand-in: the crop is a draw of the generator it is given, so fresh crops show."""

    def load_pair(self, ref, rng):
        return {"x": torch.tensor(rng.random(3)), "ref": torch.tensor([ref.seq_index, ref.template_frame,
                                                                       ref.search_frame]), "task": "rgbt"}


def test_rehearsal_fills_from_the_stream_and_recuts_each_draw_afresh():
    from unitrack.cl import Rehearsal

    rh = Rehearsal(ReservoirBuffer(4, seed=0), seed=0, store=True)
    rh.set_stage(0, ["rgbt"], {"rgbt": FakePairs()}, rows=3)
    assert not rh.active  # empty buffer: nothing to replay at the first step
    batch = dict(make_batch(6), replay=torch.tensor([False] * 5 + [True]))
    out = {"score": torch.randn(6, 6), "box": torch.rand(6, 6, 4)}
    assert rh.observe(batch, out) == 5  # replayed rows are not offered again
    assert rh.buffer.seen == 5 and len(rh.buffer) == 4
    kept = {it["seq_index"]: it for it in rh.buffer.items}
    for idx, it in kept.items():  # outputs stored at insertion, per row
        assert torch.equal(it["logits"], out["score"][idx // 3])
    a, sa = rh.draw(3, step=1, tag=1)
    assert len({tuple(r) for r in a["ref"].tolist()}) == 3  # no replacement within a draw
    assert sa["logits"].shape == (3, 6) and a["replay"].all()
    b, _ = rh.draw(4, step=1, tag=2)
    for i, r in enumerate(a["ref"].tolist()):
        j = b["ref"].tolist().index(r)
        assert not torch.equal(a["x"][i], b["x"][j])  # same pair, a new crop in a new draw


def test_balanced_buffer_keeps_each_item_of_a_task_with_probability_share_over_n():
    m, n, trials = 6, 30, 1500
    counts = {t: [0] * n for t in ("rgbt", "rgbd")}
    for k in range(trials):
        buf = BalancedBuffer(m, seed=5000 + k)
        for task in counts:
            for i in range(n):
                buf.add(item(task, i))
        for it in buf.items:
            counts[it["task"]][it["seq_index"]] += 1
    p = (m // 2) / n
    sd = math.sqrt(trials * p * (1 - p))
    for task, c in counts.items():
        assert max(abs(v - trials * p) for v in c) < 4.5 * sd, task


@pytest.mark.parametrize("kind,mode,ratio,expect", [
    ("reservoir", "share", 0.25, (6, 0, 2)), ("reservoir", "append", 0.25, (8, 0, 2)),
    ("full", "share", 0.5, (8, 4, 0)), ("full", "append", 0.5, (12, 4, 0)), ("none", "append", 0.5, (8, 0, 0)),
])
def test_batch_layout_share_vs_append(kind, mode, ratio, expect):
    from unitrack.cl import batch_layout

    assert batch_layout(kind, mode, ratio, 8, replaying=True) == expect
    assert batch_layout(kind, mode, ratio, 8, replaying=False) == (8, 0, 0)  # first stage: no replay


# ----------------------------------------------------------------------------- every method does something
_RUNS: dict[tuple, dict] = {}


def _final_weights(overrides: tuple, synth_root, tmp_path_factory) -> dict:
    """Weights after a 2-stage, 3-step tiny serial run (cached: plain runs are shared by the cases)."""
    if overrides not in _RUNS:
        from omegaconf import open_dict

        from tests.conftest import compose, tiny_train_overrides
        from unitrack.train.unification import train

        out = tmp_path_factory.mktemp("cl_run")
        cfg = compose("train", ["+experiment=serial", *tiny_train_overrides(synth_root, out), "train.order=[rgbt,rgbd]",
                                "data.val_max_frames=4", *overrides])
        with open_dict(cfg):
            del cfg["hydra"]
        train(cfg, out / "run")
        ck = torch.load(out / "run" / "checkpoints" / "stage_2_rgbd.ckpt", weights_only=False)
        _RUNS[overrides] = {"weights": ck["state_dict"], "unitrack": ck["unitrack"]}
    return _RUNS[overrides]


RES = ("cl=reservoir", "cl.replay.buffer_size=8", "cl.replay.ratio=0.5")
UNI = (*RES, "model.heads=fused+unimodal")
METHODS = {  # name: (plain-run overrides, weight key, weight > 0)
    "der_alpha": (RES, "cl.der.alpha", 1.0),
    "der_beta": ((*RES, "cl.der.alpha=0.3"), "cl.der.beta", 1.0),
    "kd_replay": (RES, "cl.kd.weight", 5.0),
    "lwf": (("cl=none", "cl.kd.inputs=current"), "cl.kd.weight", 5.0),
    "rkd": (RES, "cl.rkd.weight", 5.0),
    "samm_consistency": (UNI, "cl.samm.consistency_weight", 5.0),
    "ewc": (RES, "cl.ewc.weight", 1e4),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_weight_changes_training_and_zero_is_plain(name, synth_root, tmp_path_factory):
    base, key, value = METHODS[name]
    plain = _final_weights(base, synth_root, tmp_path_factory)["weights"]
    zero = _final_weights((*base, f"{key}=0"), synth_root, tmp_path_factory)["weights"]
    on = _final_weights((*base, f"{key}={value}"), synth_root, tmp_path_factory)["weights"]
    assert plain.keys() == zero.keys() == on.keys()
    assert all(torch.equal(plain[k], zero[k]) for k in plain), f"{key}=0 is not bit-identical to plain training"
    assert any(not torch.equal(plain[k], on[k]) for k in plain), f"{key}={value} changed nothing"


def test_samm_temperatures_fitted_every_stage_and_stored(synth_root, tmp_path_factory):
    from unitrack.cl.samm import eval_samm_kwargs

    st = _final_weights((*UNI, "cl=samm", "train.unimodal_loss_weight=0.01", "eval.samm=true"), synth_root,
                        tmp_path_factory)["unitrack"]
    temps = st["methods"]["samm"]["temperatures"]
    assert set(temps) == {"fused", "rgb", "x"}
    assert all(math.isfinite(t) and t > 0 for t in temps.values()) and any(abs(t - 1) > 1e-3 for t in temps.values())
    assert len(st["buffer"]["items"]) == 8 and st["buffer"]["items"][0]["logits_x"] is not None
    with pytest.raises(ConfigError, match="eval.samm"):
        eval_samm_kwargs({"samm": True}, build_methods({}))
    assert eval_samm_kwargs({"samm": False}, None) == {}


def test_append_mode_keeps_the_full_current_batch(synth_root, tmp_path_factory):
    share = _final_weights(RES, synth_root, tmp_path_factory)["unitrack"]["buffer"]
    append = _final_weights((*RES, "cl.replay.mode=append"), synth_root, tmp_path_factory)["unitrack"]["buffer"]
    # 3 steps x 4 pairs in stage 0; stage 1 offers 2 current pairs a step (share) or all 4 (append)
    assert share["seen"] == 12 + 6 and append["seen"] == 12 + 12


def test_per_stage_matrix_uses_samm_inference_with_the_fitted_temperatures(synth_root, tmp_path, monkeypatch):
    from omegaconf import open_dict

    import unitrack.train.unification as uni
    from tests.conftest import compose, tiny_train_overrides

    seen, real = [], uni.evaluate_tasks

    def spy(model, val, out_dir, eval_cfg, tracker_kwargs=None):
        seen.append(tracker_kwargs)
        return real(model, val, out_dir, eval_cfg, tracker_kwargs)

    monkeypatch.setattr(uni, "evaluate_tasks", spy)
    cfg = compose("train", ["+experiment=serial_samm", *tiny_train_overrides(synth_root, tmp_path),
                            "train.order=[rgbt,rgbd]", "data.val_max_frames=4", "cl.replay.buffer_size=8"])
    with open_dict(cfg):
        del cfg["hydra"]
    uni.train(cfg, tmp_path / "run")
    ck = torch.load(tmp_path / "run" / "checkpoints" / "stage_2_rgbd.ckpt", weights_only=False)
    assert seen[0] == {}  # the RGB foundation the experiment starts from (model.init=foundation)
    seen = seen[1:]
    assert len(seen) == 2 and seen[-1]["samm"]["temperatures"] == ck["unitrack"]["methods"]["samm"]["temperatures"]
    assert seen[-1]["samm"]["combine"] is combine_heads
    assert seen[0]["samm"]["temperatures"] != seen[1]["samm"]["temperatures"]  # refitted at every stage end
