"""model.init: start weights from a unitrack checkpoint or a plain state dict; the RGB foundation stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from tests.conftest import compose, tiny_train_overrides
from unitrack.errors import ConfigError
from unitrack.model.lorat import build_model


def _model(**over):
    cfg = compose("train", ["model.backbone_kwargs.depth=2"]).model
    with open_dict(cfg):
        for k, v in over.items():
            cfg[k] = v
    return build_model(cfg)


def _inputs(b=2):
    g = torch.Generator().manual_seed(1)
    z, x = torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 3, 64, 64, generator=g)
    box = torch.tensor([[0.25, 0.25, 0.75, 0.75]] * b)
    return z, z.clone(), x, x.clone(), box, ["thermal"] * b


def test_foundation_checkpoint_loads_exactly_and_x_branch_keeps_model_init(tmp_path):
    torch.manual_seed(5)
    rgb = _model(x_branch={"depth": 0, "dim": 16})
    with torch.no_grad():
        for p in rgb.parameters():
            p.add_(0.01 * torch.randn_like(p))  # LoRA B is 0 at init: make every tensor non-trivial
    path = tmp_path / "found.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in rgb.state_dict().items()}, "unitrack": {}}, path)
    fresh = _model()
    m = _model(init=str(path))
    sd, own = rgb.state_dict(), m.state_dict()
    for k, v in sd.items():
        assert torch.equal(own[k], v), k
    assert any(not torch.equal(fresh.state_dict()[k], v) for k, v in sd.items())
    rep = m.init_report
    assert rep["n_loaded"] == len(sd) and not rep["missing"] and not rep["unexpected"]
    assert rep["model_init"] and all(k.startswith("xbranch.") for k in rep["model_init"])
    rgb.eval(), m.eval()
    with torch.no_grad():  # X branch's zero up-projection: the loaded model is the RGB tracker
        a, b = rgb(*_inputs()), m(*_inputs())
    torch.testing.assert_close(a["score"], b["score"], rtol=0, atol=1e-6)


def test_strict_report_names_missing_unexpected_and_mis_shaped_keys(tmp_path):
    src = _model().state_dict()
    drop = "head.cls.0.weight" if "head.cls.0.weight" in src else sorted(k for k in src if k.startswith("head."))[0]
    shape_key = "token_type"
    sd = {k: v.clone() for k, v in src.items() if k != drop}
    sd[shape_key] = torch.zeros(4, src[shape_key].shape[1])
    sd["bogus.weight"] = torch.zeros(2)
    path = tmp_path / "plain.pt"
    torch.save(sd, path)
    with pytest.raises(ConfigError) as e:
        _model(init=str(path))
    msg = str(e.value)
    assert "model.init" in msg and drop in msg and "bogus.weight" in msg and shape_key in msg
    m = _model(init=str(path), init_strict=False)
    rep = m.init_report
    assert rep["missing"] == [drop] and rep["unexpected"] == ["bogus.weight"] and list(rep["shape_mismatch"]) == [shape_key]
    some = next(k for k in sd if k.startswith("vit.blocks.0"))
    assert torch.equal(m.state_dict()[some], sd[some])


def test_bad_init_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="model.init"):
        _model(init=str(tmp_path / "nope.ckpt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="model.init"):
        _model(init=str(tmp_path / "junk.pt"))


def test_rgb_foundation_trains_once_then_starts_a_multimodal_run(tmp_path, synth_root, capsys):
    from unitrack.commands.foundation import main
    from unitrack.train.foundation import compose_foundation, ensure_foundation, foundation_dir
    from unitrack.train.unification import train

    over = tiny_train_overrides(synth_root, tmp_path / "out")
    main(over)  # builds what model.init=foundation loads; prints the checkpoint path alone on stdout
    ckpt = Path(capsys.readouterr().out.strip().splitlines()[-1])
    cfg = compose_foundation(over)
    assert cfg.model.finetune == "full" and compose_foundation([*over, "+foundation.model.finetune=lora"]).model.finetune == "lora"
    assert ckpt == foundation_dir(cfg) / "checkpoints" / "stage_1_rgb.ckpt" and ckpt.is_file()
    res = json.loads((ckpt.parent.parent / "matrix.json").read_text())
    assert res["tasks"] == ["rgb"] and 0.0 <= res["final"]["per_task"]["rgb"]["SR"] <= 1.0
    assert res["validation"]["rgb"]["evaluated"]
    mtime = ckpt.stat().st_mtime_ns
    assert ensure_foundation(cfg, train) == (ckpt, False) and ckpt.stat().st_mtime_ns == mtime  # reused
    assert foundation_dir(compose_foundation([*over, "seed=1"])) != foundation_dir(cfg)
    assert foundation_dir(compose_foundation([*over, "logger=csv", "tags=[x]"])) == foundation_dir(cfg)

    c = compose("train", ["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp_path / "s"),
                          f"model.init={ckpt}"])
    with open_dict(c):
        del c["hydra"]
    res2 = train(c, tmp_path / "run")
    assert res2["init"]["n_loaded"] > 0 and res2["init"]["model_init"]
    assert json.loads((tmp_path / "run" / "matrix.json").read_text())["init"]["path"] == str(ckpt)


def _lorat_layout(model, r=4, alpha=8.0, n_pos=None, seed=0):
    """A state dict in LoRAT's released key layout (q/k/v split, each linear with its own LoRA A/B)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: 0.05 * torch.randn(*s, generator=g)  # noqa: E731
    c = model.embed_dim
    n = n_pos or model.feat_size ** 2
    sd = {"patch_embed.proj.weight": rnd(*model.vit.patch_embed.proj.weight.shape),
          "patch_embed.proj.bias": rnd(c), "pos_embed": rnd(1, n, c), "token_type_embed": rnd(3, c),
          "norm.weight": 1 + rnd(c), "norm.bias": rnd(c), "lora_alpha": torch.tensor(alpha),
          "use_rslora": torch.tensor(False)}
    for i, blk in enumerate(model.vit.blocks):
        sd[f"blocks.{i}.norm1.weight"], sd[f"blocks.{i}.norm1.bias"] = 1 + rnd(c), rnd(c)
        sd[f"blocks.{i}.norm2.weight"], sd[f"blocks.{i}.norm2.bias"] = 1 + rnd(c), rnd(c)
        if hasattr(blk.ls1, "gamma"):  # DINOv2's LayerScale (the paper variants)
            sd[f"blocks.{i}.ls1.gamma"], sd[f"blocks.{i}.ls2.gamma"] = 1 + rnd(c), 1 + rnd(c)
        hidden = blk.mlp.fc1.base_layer.out_features
        shapes = {**{f"attn.qkv.{p}": (c, c) for p in "qkv"}, "attn.proj": (c, c), "mlp.fc1": (hidden, c),
                  "mlp.fc2": (c, hidden)}
        for name, (o, i_) in shapes.items():
            base = f"blocks.{i}.{name}"
            sd[f"{base}.linear.weight"], sd[f"{base}.linear.bias"] = rnd(o, i_), rnd(o)
            sd[f"{base}.lora.A"], sd[f"{base}.lora.B"] = rnd(r, i_), rnd(o, r)
    for part in ("cls_mlp", "reg_mlp"):
        out = 1 if part == "cls_mlp" else 4
        for j, (o, i_) in enumerate([(c, c), (c, c), (out, c)]):
            sd[f"head.{part}.layers.{j}.weight"], sd[f"head.{part}.layers.{j}.bias"] = rnd(o, i_), rnd(o)
    return sd


def _by_hand(model, sd, r=4, alpha=8.0):
    """LoRAT's weights put into a unitrack model directly: every linear y = W x + b + (x A^T B^T) alpha/r."""
    s = alpha / r
    eff = lambda b: sd[f"{b}.linear.weight"] + sd[f"{b}.lora.B"] @ sd[f"{b}.lora.A"] * s  # noqa: E731
    with torch.no_grad():
        v = model.vit
        v.patch_embed.proj.weight.copy_(sd["patch_embed.proj.weight"])
        v.patch_embed.proj.bias.copy_(sd["patch_embed.proj.bias"])
        v.pos_embed[:, v.pos_embed.shape[1] - model.feat_size ** 2:] = sd["pos_embed"]
        model.token_type.copy_(sd["token_type_embed"])
        v.norm.weight.copy_(sd["norm.weight"]), v.norm.bias.copy_(sd["norm.bias"])
        for i, blk in enumerate(v.blocks):
            for nm in ("norm1", "norm2"):
                getattr(blk, nm).weight.copy_(sd[f"blocks.{i}.{nm}.weight"])
                getattr(blk, nm).bias.copy_(sd[f"blocks.{i}.{nm}.bias"])
            for nm in ("ls1", "ls2"):
                if hasattr(getattr(blk, nm), "gamma"):
                    getattr(blk, nm).gamma.copy_(sd[f"blocks.{i}.{nm}.gamma"])
            q, k, vv = (f"blocks.{i}.attn.qkv.{p}" for p in "qkv")
            blk.attn.qkv.base_layer.weight.copy_(torch.cat([eff(q), eff(k), eff(vv)]))
            blk.attn.qkv.base_layer.bias.copy_(torch.cat([sd[f"{x}.linear.bias"] for x in (q, k, vv)]))
            for lin, name in ((blk.attn.proj, "attn.proj"), (blk.mlp.fc1, "mlp.fc1"), (blk.mlp.fc2, "mlp.fc2")):
                lin.base_layer.weight.copy_(eff(f"blocks.{i}.{name}"))
                lin.base_layer.bias.copy_(sd[f"blocks.{i}.{name}.linear.bias"])
        for part, seq in (("cls_mlp", model.head.score), ("reg_mlp", model.head.box)):
            for j in range(3):
                seq[2 * j].weight.copy_(sd[f"head.{part}.layers.{j}.weight"])
                seq[2 * j].bias.copy_(sd[f"head.{part}.layers.{j}.bias"])
    return model


def test_lorat_import_equals_hand_applied_weights(tmp_path):
    ref = _model(x_branch={"depth": 0, "dim": 16})
    sd = _lorat_layout(ref)
    path = tmp_path / "lorat.pth"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, path)
    m = _model(init=f"lorat:{path}")  # X branch present: model-initialised (zero up-projection)
    hand = _by_hand(_model(x_branch={"depth": 0, "dim": 16}), sd)
    rep = m.init_report
    assert not rep["missing"] and not rep["unexpected"] and not rep["shape_mismatch"]
    assert any(".lora_" in k for k in rep["model_init"])
    m.eval(), hand.eval()
    with torch.no_grad():
        a, b = m(*_inputs()), hand(*_inputs())
    for key in ("score", "box"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)
    # one layer on its own: the fused qkv computes LoRAT's three LoRA-wrapped linears
    x = torch.randn(5, m.embed_dim)
    lin = m.vit.blocks[0].attn.qkv
    want = torch.cat([x @ sd[f"blocks.0.attn.qkv.{p}.linear.weight"].T + sd[f"blocks.0.attn.qkv.{p}.linear.bias"]
                      + (x @ sd[f"blocks.0.attn.qkv.{p}.lora.A"].T @ sd[f"blocks.0.attn.qkv.{p}.lora.B"].T) * 2.0
                      for p in "qkv"], dim=1)
    torch.testing.assert_close(lin(x), want, rtol=0, atol=1e-5)
    # fresh unitrack LoRA on top: trainable, and B = 0 so the start is exactly LoRAT's function
    assert all(float(p.detach().abs().max()) == 0 for n, p in m.named_parameters() if "lora_B" in n)


def test_lorat_import_strict_names_foreign_keys_and_resamples_pos(tmp_path):
    import torch.nn.functional as F

    ref = _model(x_branch={"depth": 0, "dim": 16})
    sd = _lorat_layout(ref, n_pos=100)  # a 10x10 grid into the 8x8 search grid
    sd["blocks.0.attn.extra.weight"] = torch.zeros(3)
    path = tmp_path / "lorat.pth"
    torch.save(sd, path)
    with pytest.raises(ConfigError, match="blocks.0.attn.extra.weight"):
        _model(init=f"lorat:{path}")
    m = _model(init=f"lorat:{path}", init_strict=False)
    grid = sd["pos_embed"].reshape(1, 10, 10, -1).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False, antialias=False)
    got = m.vit.pos_embed[:, -64:].reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_pos_resample_lorat_is_plain_bicubic_without_antialias(tmp_path):
    import timm
    import torch.nn.functional as F

    kw = dict(depth=2, embed_dim=128, num_heads=4, patch_size=8, num_classes=0)
    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=128, **kw)  # 16x16 grid
    with torch.no_grad():
        src.pos_embed.normal_()
    path = tmp_path / "vit.pth"
    torch.save(src.state_dict(), path)
    grid = src.pos_embed[:, 1:].detach().reshape(1, 16, 16, -1).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False, antialias=False)
    got = {}
    for rule in ("lorat", "timm"):
        m = _model(weights=str(path), pos_resample=rule)
        got[rule] = m.vit.pos_embed[:, 1:].detach().reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
        torch.testing.assert_close(m.vit.blocks[1].attn.qkv.base_layer.weight, src.blocks[1].attn.qkv.weight)
    torch.testing.assert_close(got["lorat"], want, rtol=0, atol=1e-6)
    assert float((got["timm"] - want).abs().max()) > 1e-2  # timm antialiases when shrinking
    with pytest.raises(ConfigError, match="model.pos_resample"):
        _model(weights=str(path), pos_resample="nearest")


def test_lora_and_head_init_lorat_change_what_they_say():
    torch.manual_seed(0)
    peft = _model()
    torch.manual_seed(0)
    lorat = _model(lora={"rank": 8, "alpha": 16, "dropout": 0.0, "init": "lorat"}, head_init="lorat")
    b_peft = [p for n, p in peft.named_parameters() if "lora_B" in n]
    b_lorat = [p for n, p in lorat.named_parameters() if "lora_B" in n]
    assert all(float(p.detach().abs().max()) == 0 for p in b_peft)
    # torch's trunc_normal_ (as LoRAT calls it) cuts at +-2 absolute: a plain N(0, 0.02) in practice
    assert all(0.012 < float(p.detach().std()) < 0.028 for p in b_lorat if p.numel() >= 64)
    w = lorat.head.score[0].weight.detach()
    assert 0.018 < float(w.std()) < 0.022 and float(lorat.head.score[0].bias.detach().abs().max()) == 0
    assert float(peft.head.score[0].bias.detach().abs().max()) > 0  # torch default: uniform bias
    with pytest.raises(ConfigError, match="model.lora.init"):
        _model(lora={"rank": 8, "alpha": 16, "init": "gauss"})


def test_large_and_giant_variants_carry_lorat_drop_path():
    rates = {m: compose("train", [f"model={m}"]).model.backbone_kwargs.get("drop_path_rate", 0.0)
             for m in ("lorat_b224", "lorat_l224", "lorat_l378", "lorat_g378")}
    assert rates == {"lorat_b224": 0.0, "lorat_l224": 0.1, "lorat_l378": 0.1, "lorat_g378": 0.4}
    for m in ("lorat_b224", "lorat_g378"):
        c = compose("train", [f"model={m}"]).model
        assert c.pos_resample == "lorat" and c.lora.init == "lorat" and c.head_init == "lorat"


def _unitrack_ckpt(model, model_cfg, path):
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "unitrack": {"model_cfg": model_cfg}}, path)


def test_a_foundation_with_lora_starts_a_run_of_another_rank_as_the_same_tracker(tmp_path):
    """model.init folds the checkpoint's LoRA into the base weights; the run's own LoRA (another rank
    here, or none with full fine-tuning) starts fresh on top, so the loaded model computes the foundation."""
    from omegaconf import OmegaConf

    from unitrack.model.init import model_args

    cfg = compose("train", ["model.backbone_kwargs.depth=2", "model.x_branch.depth=0"]).model
    torch.manual_seed(3)
    rgb = build_model(cfg)
    with torch.no_grad():
        for p in rgb.parameters():
            p.add_(0.05 * torch.randn_like(p))  # LoRA B non-zero: the adapters change the function
    path = tmp_path / "found.ckpt"
    _unitrack_ckpt(rgb, model_args(OmegaConf.to_container(cfg, resolve=True)), path)
    rgb.eval()
    with torch.no_grad():
        want = rgb(*_inputs())
    for over in ({"lora": {"rank": 4, "alpha": 4}}, {"finetune": "full"}):
        m = _model(init=str(path), **over).eval()
        rep = m.init_report
        assert rep["lora_merged"] and not rep["missing"] and not rep["unexpected"] and not rep["shape_mismatch"]
        lora_keys = [k for k in m.state_dict() if ".lora_" in k]
        assert set(lora_keys) <= set(rep["model_init"]) and bool(lora_keys) == ("lora" in over)
        with torch.no_grad():
            got = m(*_inputs())
        for k in ("score", "box"):
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=2e-5)
    # without the fold (the adapters dropped), the function differs: the fold is what makes it equal
    plain = {k: v for k, v in rgb.state_dict().items() if ".lora_" not in k}
    torch.save(plain, tmp_path / "no_lora.pt")
    with torch.no_grad():
        other = _model(init=str(tmp_path / "no_lora.pt"), init_strict=False).eval()(*_inputs())
    assert not torch.allclose(other["score"], want["score"], atol=1e-3)


def test_study_experiments_start_from_one_cached_foundation(tmp_path, synth_root):
    """`model.init: foundation` (every study experiment): the RGB foundation is trained once under
    output_root/foundation/, reused by the next run (another LoRA rank too, when the sweep pins the
    foundation's), and a run gives the same numbers whether its foundation was trained now or reused."""
    from unitrack.train.unification import train

    out = tmp_path / "out"

    def run(name, extra=()):
        c = compose("train", ["+experiment=single_rgbt", *tiny_train_overrides(synth_root, out), *extra])
        with open_dict(c):
            del c["hydra"]
        assert c.model.init == "foundation"
        return train(c, tmp_path / name), tmp_path / name

    first, d1 = run("a")
    cached = sorted((out / "foundation").glob("*/checkpoints/stage_1_rgb.ckpt"))
    assert len(cached) == 1 and first["init"]["path"] == str(cached[0])
    # a random-init backbone: the foundation is fine-tuned whole, the study's LoRA starts fresh on it
    assert not first["init"]["lora_merged"] and any(".lora_" in k for k in first["init"]["model_init"])
    mtime = cached[0].stat().st_mtime_ns
    again, d2 = run("b")
    assert cached[0].stat().st_mtime_ns == mtime  # reused, not trained again
    assert {k: again["final"][k] for k in ("per_task", "overall")} == {k: first["final"][k] for k in ("per_task", "overall")}
    a = torch.load(d1 / "checkpoints" / "stage_1_rgbt.ckpt", weights_only=False)["state_dict"]
    b = torch.load(d2 / "checkpoints" / "stage_1_rgbt.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rank4, _ = run("c", ["model.lora.rank=4", "+foundation.model.lora.rank=8"])
    assert rank4["init"]["path"] == str(cached[0])
    assert len(list((out / "foundation").glob("*/checkpoints/stage_1_rgb.ckpt"))) == 1


def _inputs_for(model, b=1, modality="thermal"):
    g = torch.Generator().manual_seed(2)
    t, s = model.template_size, model.search_size
    z, x = torch.rand(b, 3, t, t, generator=g), torch.rand(b, 3, s, s, generator=g)
    return z, z.clone(), x, x.clone(), torch.tensor([[0.3, 0.3, 0.7, 0.7]] * b), [modality] * b


def test_start_weights_are_exact_at_lorat_b224_defaults(tmp_path):
    """LoRAT's LoRA init (A and B truncated-normal, B != 0) at the paper variant's defaults: a model built
    with model.init still computes its source before the first step -- a unitrack checkpoint (the foundation
    path) and LoRAT's released layout (lorat:FILE). The fresh shared adapter's start delta is absorbed into
    the base weights; without that the outputs differ by ~4e-2."""
    from omegaconf import OmegaConf

    from unitrack.model.init import model_args

    cfg = compose("train", ["model=lorat_b224", "model.pretrained=false"]).model
    assert cfg.lora.init == "lorat" and cfg.x_branch.depth > 0  # the defaults under test
    torch.manual_seed(0)
    src = build_model(cfg).eval()
    assert any(float(p.detach().abs().max()) > 0 for n, p in src.named_parameters() if "lora_B" in n)
    path = tmp_path / "src.ckpt"
    _unitrack_ckpt(src, model_args(OmegaConf.to_container(cfg, resolve=True)), path)
    with torch.no_grad():
        want = src(*_inputs_for(src))
        m = build_model(OmegaConf.merge(cfg, {"init": str(path)})).eval()
        assert m.init_report["lora_start"] == "absorbed"
        assert any(float(p.detach().abs().max()) > 0 for n, p in m.named_parameters() if "lora_B" in n)
        got = m(*_inputs_for(m))
    for k in ("score", "box"):
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-5)
    # LoRAT's layout: the reference is LoRAT's weights applied by hand to a model whose LoRA adds nothing
    sd = _lorat_layout(src, r=8, alpha=16.0)
    lpath = tmp_path / "lorat.pth"
    torch.save({"model": sd}, lpath)
    with torch.no_grad():
        hand = _by_hand(build_model(OmegaConf.merge(cfg, {"lora": {"init": "peft"}})), sd, r=8, alpha=16.0).eval()
        want = hand(*_inputs_for(hand))
        got = build_model(OmegaConf.merge(cfg, {"init": f"lorat:{lpath}"})).eval()(*_inputs_for(hand))
    for k in ("score", "box"):
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-5)


def test_per_modality_experts_with_lorat_init_start_on_the_loaded_tracker(tmp_path):
    """Experts share one base weight, so no single correction fits them: they start at B = 0 instead."""
    from omegaconf import OmegaConf

    from unitrack.model.init import model_args

    cfg = compose("train", ["model.backbone_kwargs.depth=2", "model.x_branch.depth=0"]).model
    torch.manual_seed(4)
    src = build_model(cfg).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "found.ckpt"
    _unitrack_ckpt(src, model_args(OmegaConf.to_container(cfg, resolve=True)), path)
    lorat = {"rank": 4, "alpha": 8, "dropout": 0.0, "init": "lorat"}
    with torch.no_grad():
        want = src(*_inputs())
        for experts in ("per_modality", "shared+per_modality"):
            m = _model(init=str(path), experts=experts, lora=lorat).eval()
            got = m(*_inputs())
            torch.testing.assert_close(got["score"], want["score"], rtol=0, atol=2e-5)
