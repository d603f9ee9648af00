"""The config schema: every bad config is one line naming the key, before torch is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from unitrack import conf_dir
from unitrack.errors import ConfigError
from unitrack.schema import PROTOCOLS, check

BAD = [  # (verb, overrides, the key the error must name, a phrase of the message)
    ("train", ["optim.lr=-1"], "optim.lr", "> 0"),
    ("train", ["optim.lr=inf"], "optim.lr", "finite"),
    ("train", ["trainer.precision=bf17"], "trainer.precision", "bf16-mixed"),
    ("train", ["data.ratios.rgbt=-1"], "data.ratios.rgbt", ">= 0"),
    ("train", ["model.lora.rank=abc"], "model.lora.rank", "must be an int"),
    ("train", ["model.lora.rank=null"], "model.lora.rank", "got null"),
    ("train", ["eval.protocol=lasot"], "eval.protocol", "pytracking"),
    ("eval", ["ckpt=x.ckpt", "protocol=lasot"], "protocol", "got 'lasot'"),
    ("score", ["results=r", "protocol=lasot"], "protocol", "got 'lasot'"),
    ("track", ["ckpt=x", "input=y", "init=[1,2,3,4]", "modality=infrared"], "modality", "thermal"),
    ("train", ["+train.step_per_stage=20"], "train.step_per_stage", "did you mean 'train.steps_per_stage'"),
    ("train", ["train.step_per_stage=20"], "train.step_per_stage", "did you mean 'train.steps_per_stage'"),
    ("eval", ["ckpt=x", "eval.export=[lasot]"], "eval.export", "got10k, vot"),
    ("train", ["train.mode=serail"], "train.mode", "serial, parallel, single"),
    ("train", ["+experiment=serial_replay", "train.mode=serail"], "train.mode", "got 'serail'"),
    ("train", ["train.order=[rgbt,rgbx]"], "train.order", "rgbx"),
    ("train", ["cl=replay", "cl.replay.ratio=1.5"], "cl.replay.ratio", "[0, 1)"),
    ("train", ["trainer.devices=0"], "trainer.devices", "auto"),
    ("train", ["+trainer.max_step=5"], "trainer.max_step", "did you mean"),  # not a Trainer argument
    ("train", ["-m", "seed=0,1,x"], "seed", "must be an int"),  # every value of a sweep is checked
    ("train", ["data.batch_size=2.5"], "data.batch_size", "must be an int"),
    ("train", ["train.order=rgbt"], "train.order", "must be a list"),
    ("train", ["cl=nonexistent"], "cl", "nonexistent"),
    ("train", ["data.augment.flip=images"], "data.augment.flip", "pair, image"),
    ("train", ["model=lorat_b224", "data.augment.three_augment=maybe"], "data.augment.three_augment", "True, False"),
    ("train", ["optim.warmup_start_ratio=2"], "optim.warmup_start_ratio", "got 2"),
    ("train", ["eval.pad=frame1"], "eval.pad", "frame0"),
    ("eval", ["ckpt=x.ckpt", "eval.amp=fp32"], "eval.amp", "fp16"),
    ("train", ["optim=lorat2"], "optim", "lorat2"),
]

GOOD = [
    ("train", []),
    ("train", ["+experiment=serial_replay", "debug=fast", "seed=3", "optim.lr=2e-4", "trainer.precision=16-mixed"]),
    ("train", ["+trainer.max_epochs=3", "trainer.devices=auto", "data.ratios.rgbt=0"]),
    ("train", ["-m", "seed=0,1,2", "cl=replay"]),
    ("train", ["hydra.run.dir=outputs/x", "hydra/launcher=basic"]),
    ("eval", ["ckpt=x.ckpt", "eval.export=[got10k,vot]", "+options.max_frames=5", "eval.drop_modality=rgb"]),
    ("score", ["results=r", "protocol=vot"]),
    ("track", ["ckpt=x", "input=y", "init=[1,2,3,4]", "modality=depth"]),
    ("inspect", ["dataset=lasher", "root=/x", "deep=true"]),
    ("train", ["--cfg", "job", "seed=1"]),
    ("train", ["model=lorat_b224", "optim=default", "augment=default", "optim.warmup_start_ratio=0.01"]),
    ("train", ["data.augment.flip=image", "data.augment.three_augment=true", "eval.amp=bf16", "eval.pad=frame0"]),
    ("eval", ["ckpt=x.ckpt", "eval.amp=fp16", "eval.pad=frame0"]),
]


@pytest.mark.parametrize("overrides,key", [(["hydra/launcher=slurm"], "hydra/launcher"),
                                           (["-m", "hparams_search=optuna"], "hparams_search")])
def test_a_missing_cluster_plugin_names_the_extra(overrides, key, monkeypatch):
    """Without the plugin (simulated: the dev extra installs the SLURM launcher) the hint names the extra."""
    import unitrack.schema as schema

    monkeypatch.setattr(schema, "_missing", lambda module: True)
    with pytest.raises(ConfigError) as e:
        check("train", overrides)
    assert e.value.key == key and ".[cluster]" in str(e.value)


@pytest.mark.parametrize("verb,overrides,key,phrase", BAD, ids=[" ".join(b[1]) for b in BAD])
def test_bad_config_names_the_key(verb, overrides, key, phrase):
    with pytest.raises(ConfigError) as e:
        check(verb, overrides)
    msg = str(e.value)
    assert e.value.key == key, msg
    assert phrase in msg and "\n" not in msg


@pytest.mark.parametrize("verb,overrides", GOOD, ids=[" ".join(g[1]) or g[0] for g in GOOD])
def test_valid_config_passes(verb, overrides):
    check(verb, overrides)


def test_every_shipped_preset_passes_the_schema():
    """A rule stricter than the shipped configs would refuse the project's own presets."""
    for group in ("experiment", "debug", "cl", "model", "data", "trainer", "logger", "callbacks"):
        for f in sorted((conf_dir() / group).glob("*.yaml")):
            check("train", [("+" if group == "experiment" else "") + f"{group}={f.stem}"])


def test_schema_protocols_match_the_scorer():
    from unitrack.eval.metrics import CURVE_PROTOCOLS

    assert set(PROTOCOLS) == {*CURVE_PROTOCOLS, "vot"}


def test_schema_choices_match_the_modules_that_own_them():
    from unitrack.cl.distill import KD
    from unitrack.cl.replay import REPLAY_MODES
    from unitrack.data.augment import FLIPS
    from unitrack.data.pairs import JITTER_RULES
    from unitrack.eval.tracker import AMP_DTYPES, PADS
    from unitrack.model.experts import LORA_INITS
    from unitrack.model.lorat import HEAD_INITS, POS_RESAMPLE
    from unitrack.schema import RULES
    from unitrack.train.protocol import BUDGETS, OPTIMIZER_STATES, SCHEDULES

    owned = {"train.budget": BUDGETS, "train.schedule": SCHEDULES, "train.optimizer_state": OPTIMIZER_STATES,
             "data.crop.jitter": JITTER_RULES, "model.pos_resample": POS_RESAMPLE, "model.lora.init": LORA_INITS,
             "model.head_init": HEAD_INITS, "cl.replay.mode": REPLAY_MODES,
             "cl.kd.teacher": KD.TEACHERS, "cl.kd.inputs": KD.INPUTS, "data.augment.flip": FLIPS,
             "eval.amp": [{"false": False, "true": True}.get(k, k) for k in AMP_DTYPES], "eval.pad": PADS}
    for key, values in owned.items():
        assert all(RULES[key](v) is None for v in values), key
        assert RULES[key]("bogus") is not None, key


def test_cli_config_error_is_exit_2_one_line_fast_and_without_torch(tmp_path):
    """Subprocess: the error comes before torch is imported (`-X importtime` lists every import)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "unitrack.cli", "train",
                          "+train.step_per_stage=20", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if not ln.startswith("import time:")]
    assert lines == ["error: config key 'train.step_per_stage': unknown key (not in the composed defaults); "
                     "did you mean 'train.steps_per_stage'?"]
    imported = {ln.split("|")[-1].strip() for ln in out.stderr.splitlines() if ln.startswith("import time:")}
    assert "torch" not in imported and "lightning" not in imported
    assert not any(tmp_path.iterdir())  # nothing written
