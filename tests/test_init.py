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
    from unitrack.train.foundation import compose_foundation, ensure_foundation, foundation_dir, main
    from unitrack.train.unification import train

    over = tiny_train_overrides(synth_root, tmp_path / "out")
    main(over)  # what `make demo` runs: trains, prints the checkpoint path alone on stdout
    ckpt = Path(capsys.readouterr().out.strip().splitlines()[-1])
    cfg = compose_foundation(over)
    assert ckpt == foundation_dir(cfg) / "checkpoints" / "stage_0_rgb.ckpt" and ckpt.is_file()
    res = json.loads((ckpt.parent.parent / "matrix.json").read_text())
    assert res["tasks"] == ["rgb"] and 0.0 <= res["final"]["per_task"]["rgb"]["SR"] <= 1.0
    assert res["validation"]["rgb"]["evaluated"]
    mtime = ckpt.stat().st_mtime_ns
    assert ensure_foundation(cfg) == (ckpt, False) and ckpt.stat().st_mtime_ns == mtime  # reused
    assert foundation_dir(compose_foundation([*over, "seed=1"])) != foundation_dir(cfg)
    assert foundation_dir(compose_foundation([*over, "logger=csv", "tags=[x]"])) == foundation_dir(cfg)

    c = compose("train", ["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp_path / "s"),
                          f"model.init={ckpt}"])
    with open_dict(c):
        del c["hydra"]
    res2 = train(c, tmp_path / "run")
    assert res2["init"]["n_loaded"] > 0 and res2["init"]["model_init"]
    assert json.loads((tmp_path / "run" / "matrix.json").read_text())["init"]["path"] == str(ckpt)
