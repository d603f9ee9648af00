"""LoRAT's recipe knobs (docs/training.md, deviations from LoRAT): optim group, warm-up start, DeiT-III
3-augment, per-image flips, eval AMP dtype and search-crop padding. Each knob changes what it says; its off
value is today's."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.conftest import compose
from unitrack.data.augment import PairAugment, augment_pair, solarize
from unitrack.errors import ConfigError
from unitrack.eval.tracker import amp_autocast, amp_dtype
from unitrack.train.optim import cosine_with_warmup

PAPER = ["lorat_b224", "lorat_b378", "lorat_l224", "lorat_l378", "lorat_g378"]


def _pair(seed: int):
    r = np.random.default_rng(100 + seed)
    crops = {k: r.integers(0, 256, (24, 24, 3), dtype=np.uint8) for k in ("z", "zx", "x", "xx")}
    return crops, {"z_box": np.array([0.1, 0.2, 0.5, 0.6]), "box": np.array([0.3, 0.1, 0.9, 0.4])}


def _lrs(total, warm, ratio=0.0, min_lr=0.05):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = cosine_with_warmup(opt, total, warm, min_lr, warmup_start_ratio=ratio)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_start_ratio_zero_is_todays_ramp_and_lorat_starts_at_1e_7():
    lrs = _lrs(100, 10)
    assert lrs[:10] == [(s + 1) / 10 for s in range(10)]  # bit-identical to the (step+1)/warm ramp
    lorat = _lrs(100, 10, ratio=1e-3)
    assert lorat[0] == pytest.approx(1e-3 + (1 - 1e-3) / 10) and lorat[0] < lrs[0] + 1e-3
    assert lorat[9] == pytest.approx(1.0) and lorat[10:] == lrs[10:]  # the cosine after it is unchanged
    assert lorat != lrs


def test_paper_variants_select_loRAT_optim_and_augment_and_the_command_line_wins():
    tiny = compose("train")
    assert (tiny.optim.lr, tiny.optim.warmup_start_ratio, tiny.data.augment.flip) == (1e-4, 0.0, "pair")
    for m in PAPER:
        c = compose("train", [f"model={m}"])
        assert (c.optim.lr, c.optim.weight_decay, c.optim.min_lr_ratio, c.optim.warmup_start_ratio) == \
            (1e-4, 0.1, 0.01, 1e-3), m
        assert c.optim.warmup_fraction == pytest.approx(2 / 170)
        assert dict(c.data.augment) == {"enabled": True, "flip": "image", "grayscale_p": 0.0, "three_augment": True}
        assert "defaults" not in c.model
    c = compose("train", ["model=lorat_b224", "optim=default", "augment=default"])
    assert c.optim == tiny.optim and c.data.augment == tiny.data.augment
    c = compose("train", ["model=lorat_l378", "optim.lr=3e-4", "data.augment.flip=pair", "+experiment=serial_replay"])
    assert (c.optim.lr, c.optim.weight_decay, c.data.augment.flip, c.cl.replay.kind) == (3e-4, 0.1, "pair", "full")
    assert compose("train", ["debug=overfit"]).data.augment.enabled is False
    assert compose("bench", ["model=lorat_g378"]).optim.lr == 1e-4


def test_augment_from_config():
    assert PairAugment.from_config(True) == PairAugment() and PairAugment.from_config(False) is None
    assert PairAugment.from_config({"enabled": False, "flip": "image"}) is None
    a = PairAugment.from_config({"enabled": True, "flip": "image", "grayscale_p": 0.0, "three_augment": True})
    assert (a.flip, a.grayscale_p, a.three_augment) == ("image", 0.0, True)
    with pytest.raises(ConfigError, match="data.augment.flip"):
        PairAugment.from_config({"flip": "images"})
    with pytest.raises(ConfigError, match="data.augment.flip_p"):
        PairAugment.from_config({"flip_p": 0.3})


def test_default_augment_stream_is_todays():
    """The digest of HEAD~'s augment_pair (before the recipe knobs) on these inputs: new draws come last."""
    h = hashlib.sha256()
    for seed in range(6):
        crops, boxes = _pair(seed)
        out, b = augment_pair(crops, boxes, np.random.default_rng(seed), PairAugment(grayscale_p=0.5))
        for k in sorted(out):
            h.update(out[k].tobytes())
        for k in sorted(b):
            h.update(np.asarray(b[k], np.float64).tobytes())
    assert h.hexdigest() == "5a494fa09fdb80322438d899d6d56261155e5adca7fd548bafd65ef38d0707d6"


def test_three_augment_touches_rgb_only_same_op_for_the_pair_and_every_op_occurs():
    still = PairAugment.off()
    seen = set()
    for seed in range(30):
        crops, boxes = _pair(seed)
        plain, _ = augment_pair(crops, boxes, np.random.default_rng(seed), still)
        out, b = augment_pair(crops, boxes, np.random.default_rng(seed), PairAugment(**{
            **still.__dict__, "three_augment": True}))
        assert np.array_equal(out["zx"], plain["zx"]) and np.array_equal(out["xx"], plain["xx"])
        assert all(np.array_equal(b[k], boxes[k]) for k in boxes)
        ops = []
        for k in ("z", "x"):
            if (out[k][..., 0] == out[k][..., 1]).all() and (out[k][..., 1] == out[k][..., 2]).all():
                ops.append("gray")
            elif np.array_equal(out[k], solarize(plain[k])):
                ops.append("solarize")
            else:  # a blur: smoother than the noise it came from (sigma near 0.1 changes ~nothing)
                rough = [np.abs(np.diff(v[k].astype(int), axis=0)).mean() for v in (out, plain)]
                assert rough[0] <= rough[1]
                ops.append("blur" if rough[0] < 0.8 * rough[1] else "faint blur")
        assert ops[0] == ops[1], seed  # LoRAT's DeiT_3_aug is joint over template and search
        seen.add(ops[0])
    assert {"gray", "solarize", "blur"} <= seen


def test_flip_image_flips_template_and_search_independently_with_their_boxes():
    cfg = PairAugment(brightness=0, contrast=0, saturation=0, grayscale_p=0, x_brightness=0)
    kinds = set()
    for seed in range(40):
        crops, boxes = _pair(seed)
        out, b = augment_pair(crops, boxes, np.random.default_rng(seed), PairAugment(**{**cfg.__dict__, "flip": "image"}))
        fz = np.array_equal(out["z"], crops["z"][:, ::-1])
        fx = np.array_equal(out["x"], crops["x"][:, ::-1])
        assert np.array_equal(out["zx"], crops["zx"][:, ::-1] if fz else crops["zx"])  # RGB and X together
        assert np.array_equal(out["xx"], crops["xx"][:, ::-1] if fx else crops["xx"])
        for key, f in (("z_box", fz), ("box", fx)):
            o = boxes[key]
            assert np.allclose(b[key], [1 - o[2], o[1], 1 - o[0], o[3]] if f else o)
        pair, _ = augment_pair(crops, boxes, np.random.default_rng(seed), cfg)  # flip=pair: one coin
        assert np.array_equal(pair["z"], crops["z"][:, ::-1]) == np.array_equal(pair["x"], crops["x"][:, ::-1])
        assert np.array_equal(pair["z"], out["z"])  # the template keeps the pair coin
        kinds.add((fz, fx))
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}


def test_eval_amp_dtype_choice_and_cpu_skip():
    assert amp_dtype(False) is None and amp_dtype("false") is None and amp_dtype(None) is None
    assert amp_dtype(True) is torch.bfloat16 and amp_dtype("bf16") is torch.bfloat16
    assert amp_dtype("fp16") is torch.float16
    with pytest.raises(ConfigError, match="eval.amp"):
        amp_dtype("fp32")
    ctx = amp_autocast(torch.device("cuda"), "fp16")  # built, not entered: no GPU needed
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype is torch.float16
    assert amp_autocast(torch.device("cuda"), True).fast_dtype is torch.bfloat16
    assert not isinstance(amp_autocast(torch.device("cpu"), "fp16"), torch.autocast)  # CPU: skipped


def test_eval_amp_and_pad_reach_the_tracker(monkeypatch):
    from omegaconf import OmegaConf

    from unitrack.commands.eval import tracker_kwargs

    cfg = compose("eval", ["ckpt=x", "eval.amp=fp16", "eval.pad=frame0"])
    kw = tracker_kwargs(cfg, {}, "cpu")
    assert (kw["amp"], kw["pad"]) == ("fp16", "frame0")
    kw = tracker_kwargs(compose("eval", ["ckpt=x"]), {}, "cpu")
    assert (kw["amp"], kw["pad"]) == (False, "current")
    t = compose("train")
    assert (t.eval.amp, t.eval.pad) == (False, "current")
    import unitrack.eval.shard as shard
    import unitrack.train.unification as uni

    seen = {}

    def fake(model, seqs, out, ranks, **kw):
        seen.update(kw["tracker_kwargs"])
        raise RuntimeError("stop")

    monkeypatch.setattr(shard, "run_sharded", fake)
    with pytest.raises(RuntimeError, match="stop"):
        uni.evaluate_tasks(torch.nn.Linear(1, 1), {}, None, OmegaConf.create({**OmegaConf.to_container(t.eval),
                                                                              "amp": "fp16", "pad": "frame0"}))
    assert (seen["amp"], seen["pad"]) == ("fp16", "frame0")


class _Stub(torch.nn.Module):
    template_size, search_size, template_factor, search_factor, feat_size = 16, 32, 2.0, 4.0, 4


def test_eval_pad_frame0_pads_search_crops_with_frame0s_mean():
    from unitrack.eval.tracker import OnlineTracker, TrackState

    dark = np.full((40, 40, 3), 20, np.uint8)
    bright = np.full((40, 40, 3), 200, np.uint8)
    crops = {}
    for pad in ("current", "frame0"):
        tr = OnlineTracker(_Stub(), pad=pad)
        st = TrackState("thermal", key="s")
        tr.init([st], [(dark, dark)], [[15, 15, 10, 10]])
        a, b = tr._crops([st], [(bright, bright)], [(2.0, 2.0, 30.0)], 32)  # window leaves the frame
        crops[pad] = (a, b)
    corner = lambda t: float(t[0, :, 0, 0].mean()) * 255  # noqa: E731
    assert corner(crops["current"][0]) == pytest.approx(200, abs=1) and corner(crops["current"][1]) == pytest.approx(200, abs=1)
    assert corner(crops["frame0"][0]) == pytest.approx(20, abs=1) and corner(crops["frame0"][1]) == pytest.approx(20, abs=1)
    assert torch.equal(crops["current"][0][:, :, 20:, 20:], crops["frame0"][0][:, :, 20:, 20:])  # inside: same
    with pytest.raises(ConfigError, match="eval.pad"):
        OnlineTracker(_Stub(), pad="first")
