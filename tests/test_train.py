"""Training: configs compose, every mode runs end to end on tiny data, bad configs fail early, resume is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from tests.conftest import CONF, compose, kill_mid_stage, tiny_train_overrides
from unitrack.errors import ConfigError

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _cfg(overrides):
    cfg = compose("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(exp, tmp_path):
    from unitrack.cl.methods import build_methods
    from unitrack.train.unification import validate

    cfg = _cfg([f"+experiment={exp}", f"paths.output_root={tmp_path}"])
    validate(cfg)
    # the study starts from the RGB foundation (resolved by `train`); the foundation itself from nothing
    assert cfg.model.init == (None if exp == "rgb_foundation" else "foundation")
    with open_dict(cfg):
        cfg.model.init = None
    model = instantiate(cfg.model)
    assert model.feat_size ** 2 == (cfg.model.search_size // cfg.model.backbone_kwargs.patch_size) ** 2
    build_methods(cfg.cl)
    trainer = instantiate(cfg.trainer, max_steps=1, logger=False, enable_checkpointing=False)
    assert trainer.max_steps == 1


def test_experiment_presets_mean_what_they_say():
    assert _cfg(["+experiment=serial_replay"]).cl.replay.kind == "full"
    assert _cfg(["+experiment=serial_replay_kd"]).cl.kd.weight > 0
    assert _cfg(["+experiment=serial_experts"]).model.experts == "shared+per_modality"
    assert _cfg(["+experiment=parallel"]).train.mode == "parallel"
    assert list(_cfg(["+experiment=single_rgbd"]).train.order) == ["rgbd"]


@pytest.mark.parametrize("override,key", [
    ("train.order=[rgbt,rgbx,rgbe]", "train.order"),
    ("model.lora.rank=0", "model.lora.rank"),
    ("cl.replay.ratio=1.5", "cl.replay.ratio"),
    ("cl.replay.ratio=-0.1", "cl.replay.ratio"),
    ("train.mode=sideways", "train.mode"),
])
def test_bad_config_fails_before_training_naming_the_key(override, key, tmp_path, synth_root):
    from unitrack.train.unification import train

    cfg = _cfg(["+experiment=serial_replay", *tiny_train_overrides(synth_root, tmp_path), override])
    if "ratio" in override:
        with open_dict(cfg):
            cfg.cl.replay.kind = "reservoir"
            cfg.cl.replay.buffer_size = 10
    with pytest.raises(ConfigError) as e:
        train(cfg, tmp_path / "run")
    assert key in str(e.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("exp", ["serial_replay", "parallel", "single_rgbe", "serial_samm"])
def test_smoke_run_of_each_mode_writes_matrix_and_checkpoints(exp, tmp_path, synth_root):
    from unitrack.train.unification import train

    off = ["test.enabled=false"] if exp == "parallel" else []  # the switch for test scores inside the job
    cfg = _cfg([f"+experiment={exp}", *tiny_train_overrides(synth_root, tmp_path), *off])
    run = tmp_path / "run"
    res = train(cfg, run)
    if off:
        assert res["test"] is None and not (run / "test_metrics.json").exists()
    else:  # the test split of the run's tasks, tracked with the final weights, per sequence
        t = json.loads((run / "test_metrics.json").read_text())
        assert {r["task"] for r in t["per_sequence"].values()} == set(cfg.train.order)
        assert res["test"]["overall"]["SR"] == t["overall"]["SR"] and t["settings"]["samm"] == (exp == "serial_samm")
    n_stages = {"serial_replay": 3, "serial_samm": 3, "parallel": 1, "single_rgbe": 1}[exp]
    assert len(res["SR"]) == n_stages
    assert len(res["SR"][0]) == len(cfg.train.order)
    assert all(0.0 <= v <= 1.0 for row in res["SR"] + res["PR"] for v in row)
    m = json.loads((run / "matrix.json").read_text())
    assert m["SR"] == res["SR"]
    csv = (run / "matrix.csv").read_text().splitlines()
    assert csv[0].startswith("metric,stage,") and len(csv) == 1 + 2 * (n_stages + 1)
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("stage_*.ckpt"))
    assert len(ckpts) == n_stages
    assert (run / "checkpoints" / "last.ckpt").exists()
    if n_stages == 3:
        assert set(res["SR_summary"]) == {"average", "bwt", "forgetting"}
        assert ckpts == ["stage_1_rgbt.ckpt", "stage_2_rgbd.ckpt", "stage_3_rgbe.ckpt"]


def test_reservoir_buffer_travels_in_stage_checkpoints(tmp_path, synth_root):
    from unitrack.train.unification import train

    cfg = _cfg(["+experiment=serial", "cl=reservoir", "cl.replay.buffer_size=5", "cl.replay.ratio=0.5",
                *tiny_train_overrides(synth_root, tmp_path)])
    train(cfg, tmp_path / "run")
    st = torch.load(tmp_path / "run" / "checkpoints" / "stage_2_rgbd.ckpt", weights_only=False)["unitrack"]
    buf = st["buffer"]
    # stage 0: 3 steps x 4 pairs, all current; stage 1: half of each batch replayed -> 6 current pairs offered
    assert len(buf["items"]) == 5 and buf["seen"] == 12 + 6
    assert {it["task"] for it in buf["items"]} <= {"rgbt", "rgbd"}


def _cli(args, env=None):
    return [sys.executable, "-m", "unitrack.cli", "train", *args]


@pytest.mark.parametrize("exp", ["serial_replay", pytest.param("serial_der", marks=pytest.mark.slow)])
def test_kill9_mid_stage_then_resume_equals_uninterrupted(exp, tmp_path, synth_root):
    """Kill -9 during stage 2, re-run the same command: same final matrix as an uninterrupted run (serial_der:
    the live buffer, its stored logits and both DER++ draws resume exactly too)."""
    args = [f"+experiment={exp}", *tiny_train_overrides(synth_root, tmp_path), "train.steps_per_stage=8",
            "train.ckpt_every=2", "data.num_workers=0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    ref = subprocess.run(_cli([*args, f"hydra.run.dir={tmp_path / 'ref'}"]), env=env, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli([*args, f"hydra.run.dir={run}"]), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert kill_mid_stage(proc, run, stage=1, steps=8), "did not catch the run mid-stage"
    assert not (run / "matrix.json").exists()
    again = subprocess.run(_cli([*args, f"hydra.run.dir={run}"]), env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming stage 2" in again.stdout and "done, skipped" in again.stdout
    a, b = (json.loads((d / "matrix.json").read_text()) for d in (tmp_path / "ref", run))
    assert a["SR"] == b["SR"] and a["PR"] == b["PR"]
    wa, wb = (torch.load(d / "checkpoints" / "stage_3_rgbe.ckpt", weights_only=False)["state_dict"]
              for d in (tmp_path / "ref", run))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ddp_spawn_on_cpu_two_processes(tmp_path, synth_root):
    """trainer=ddp_cpu: two gloo processes (ddp_spawn) train a stage; weights come back for evaluation."""
    from unitrack.train.unification import train

    cfg = _cfg(["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp_path), "trainer=ddp_cpu",
                "trainer.accelerator=cpu", "trainer.devices=2", "train.steps_per_stage=2"])
    res = train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "stage_1_rgbt.ckpt").exists()
    assert 0.0 <= res["final_pooled_SR"] <= 1.0


def test_nan_loss_stops_with_a_clear_message():
    from omegaconf import OmegaConf

    from unitrack.train.module import TrainingDiverged, UnitrackModule

    class NaNModel(torch.nn.Module):
        feat_size = 2

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, z, zx, x, xx, z_box, modality):
            b = x.shape[0]
            return {"score": self.w * torch.full((b, 4), float("nan")), "box": torch.rand(b, 4, 4).sort(-1).values}

    m = UnitrackModule(NaNModel(), OmegaConf.create({}))
    m.stage_name = "rgbd"
    batch = {k: torch.rand(2, 3, 8, 8) for k in ("z", "zx", "x", "xx")}
    batch.update(z_box=torch.tensor([[0.2, 0.2, 0.8, 0.8]] * 2), box=torch.tensor([[0.3, 0.3, 0.7, 0.7]] * 2),
                 modality=["depth", "depth"])
    with pytest.raises(TrainingDiverged, match=r"non-finite loss .* stage 0 \(rgbd\).*last.ckpt"):
        m.training_step(batch, 0)


def test_eval_with_a_missing_or_foreign_checkpoint_names_it(tmp_path):
    from unitrack.train.checkpoint import load_model

    with pytest.raises(ConfigError, match="does not exist"):
        load_model(tmp_path / "nope.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ConfigError, match="not written by `unitrack train`"):
        load_model(tmp_path / "foreign.ckpt")


def test_a_resumed_stage_log_keeps_its_earlier_rows_and_counts_stage_steps(tmp_path):
    """A stage killed after step 5 (last.ckpt) and resumed: metrics.csv holds steps 0-9 once, in stage steps."""
    import csv

    from unitrack.train.stage_logger import StageCSVLogger

    def run(resume_step: int, steps: range, value: float) -> Path:
        lg = StageCSVLogger(save_dir=str(tmp_path), name="logs", version="stage_2_rgbd", resume_step=resume_step)
        for s in steps:
            lg.log_metrics({"rgbd/train/loss": value}, step=s)
        lg.save()
        return Path(lg.log_dir) / "metrics.csv"

    run(0, range(8), 1.0)  # the first attempt logged 8 steps, then was killed; last.ckpt holds step 5
    path = run(5, range(5, 10), 2.0)  # the resumed Trainer's step counter continues from the checkpoint
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == list(range(10))
    assert [float(r["rgbd/train/loss"]) for r in rows] == [1.0] * 5 + [2.0] * 5
