"""Files from others are data: a pickle payload handed to every loading route never runs (one line, exit 2),
a model config naming a class outside unitrack is refused, and `unitrack export` gives a folder that every
verb reads with the same numbers as the checkpoint."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from tests.conftest import compose, tiny_train_overrides
from unitrack.errors import ConfigError, UnsafeFileError

ROOT = Path(__file__).resolve().parents[1]
LORAT = "unitrack.model.lorat.LoRATTracker"


class Payload:
    """Unpickling this runs a shell command that creates `marker` (what a hostile checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _evil(tmp_path: Path, name: str = "evil.ckpt") -> tuple[Path, Path]:
    marker = tmp_path / f"{name}.RAN"
    path = tmp_path / name
    torch.save({"state_dict": {}, "unitrack": {"model_cfg": {"_target_": LORAT}}, "x": Payload(marker)}, path)
    return path, marker


def _main(argv: list[str]) -> int:
    """`unitrack VERB ...` in this process; its exit code (0 when it returns)."""
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    GlobalHydra.instance().clear()
    root = logging.getLogger()
    handlers = root.handlers[:]  # Hydra's console handler holds this test's captured stderr: not the next's
    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        root.handlers[:] = handlers
    return 0


def _refused(capsys, path: Path, code: int, progress: bool = False) -> str:
    """The one stderr line of a refused file (exit 2), naming it and the global it asks for (the last line,
    after the console's progress lines when `progress`)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and [line for line in err if line.startswith("error:")] == err[-1:], err
    assert progress or len(err) == 1, err
    err = err[-1:]
    assert str(path) in err[0] and "is refused" in err[0] and "posix.system" in err[0], err[0]
    return err[0]


def _cfg(overrides: list[str]):
    cfg = compose("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _tiny_model_cfg(**over) -> dict:
    cfg = OmegaConf.to_container(compose("train", ["model.backbone_kwargs.depth=2"]).model, resolve=True)
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root):
    """A tiny serial SAMM run (RGB foundation, then rgbt, rgbd): checkpoints with a replay buffer, CL state,
    SAMM's temperatures and RNG state; its overrides and run folder."""
    from unitrack.train.unification import train

    tmp = tmp_path_factory.mktemp("safeload")
    overrides = ["+experiment=serial_samm", "train.order=[rgbt,rgbd]", *tiny_train_overrides(synth_root, tmp),
                 "test.enabled=false"]
    run = tmp / "run"
    train(_cfg(overrides), run)
    return overrides, run


def test_the_cli_refuses_a_pickle_payload_in_one_line_and_runs_nothing(tmp_path):
    """The issue's case as a user runs it: a real `unitrack eval` process."""
    evil, marker = _evil(tmp_path)
    r = subprocess.run([sys.executable, "-m", "unitrack", "eval", f"ckpt={evil}", f"hydra.run.dir={tmp_path / 'ev'}"],
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and not marker.exists()
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert err[0].startswith("error: config key 'ckpt'") and str(evil) in err[0] and "posix.system" in err[0]


def test_every_verb_route_refuses_the_payload(tmp_path, synth_root, capsys):
    """track ckpt=, export ckpt=, train model.init= (a file, lorat:FILE, the cached RGB foundation)."""
    from unitrack.train.foundation import CKPT, compose_foundation, foundation_dir

    evil, marker = _evil(tmp_path)
    frames = sorted((synth_root / "lasher" / "test").glob("*/visible"))[0]
    _refused(capsys, evil, _main(["track", f"ckpt={evil}", f"input={frames}", "init=[30,20,12,10]",
                                  f"hydra.run.dir={tmp_path / 'tr'}"]))
    _refused(capsys, evil, _main(["export", f"ckpt={evil}", f"out={tmp_path / 'exp'}",
                                  f"hydra.run.dir={tmp_path / 'ex'}"]))
    assert not (tmp_path / "exp").exists()
    train = ["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp_path / "out")]
    for init in (str(evil), f"lorat:{evil}"):
        _refused(capsys, evil, _main(["train", *train, f"model.init='{init}'", f"hydra.run.dir={tmp_path / 'tn'}"]))
    # a cached RGB foundation is a file on disk like any other: a planted one is refused too
    found = ["+experiment=serial", *tiny_train_overrides(synth_root, tmp_path / "out")]
    planted = foundation_dir(compose_foundation(found)) / CKPT
    planted.parent.mkdir(parents=True)
    planted.write_bytes(evil.read_bytes())
    (planted.parent.parent / "matrix.json").write_text("{}")
    code = _main(["train", *found, "model.init=foundation", f"hydra.run.dir={tmp_path / 'tf'}"])
    _refused(capsys, planted, code, progress=True)  # after "RGB foundation ...", "reused RGB foundation ..."
    assert not marker.exists()


def test_library_routes_refuse_the_payload(tmp_path):
    """report's analysis checkpoint, model.weights (both position resamplers), a run's own last.ckpt and
    stage checkpoint on resume, a legacy (non-zip) torch file."""
    from unitrack.model.lorat import build_model
    from unitrack.report import analyse
    from unitrack.train.callbacks import usable_checkpoint

    evil, marker = _evil(tmp_path)
    with pytest.raises(UnsafeFileError, match="analysis.checkpoint"):
        analyse(evil, tmp_path / "bench.txt", tmp_path / "rep", {}, 4, True, True)
    for resample in ("timm", "lorat"):
        with pytest.raises(UnsafeFileError, match="model.weights"):
            build_model(_tiny_model_cfg(weights=str(evil), pos_resample=resample))
    for name in ("last.ckpt", "stage_1_rgbt.ckpt"):
        planted = tmp_path / "run" / "checkpoints" / name
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(evil.read_bytes())
        with pytest.raises(UnsafeFileError, match="hydra.run.dir"):
            usable_checkpoint(planted)
        assert planted.is_file()  # refused, not moved aside as corrupt: the run stops and says so
    legacy = tmp_path / "legacy.ckpt"
    torch.save({"x": Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeFileError, match="posix.system"):
        build_model(_tiny_model_cfg(init=str(legacy)))
    assert not marker.exists()


def test_a_model_config_naming_another_class_is_refused(tmp_path, capsys):
    from unitrack.model.checkpoint import load_model
    from unitrack.model.lorat import build_model

    cfg = _tiny_model_cfg()
    model = build_model(cfg)
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": sd, "unitrack": {"model_cfg": {**cfg, "_target_": "os.system"}}}, foreign)
    code = _main(["eval", f"ckpt={foreign}", f"hydra.run.dir={tmp_path / 'ev'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "`_target_: os.system`" in err[0] and str(foreign) in err[0]
    with pytest.raises(ConfigError, match="model.init.*_target_: os.system"):  # start weights: same check
        build_model(_tiny_model_cfg(init=str(foreign)))
    nested = tmp_path / "nested.ckpt"
    torch.save({"state_dict": sd, "unitrack": {"model_cfg": {**cfg, "lora": {"_target_": "os.system"}}}}, nested)
    with pytest.raises(ConfigError, match=r"lora\._target_"):
        load_model(nested)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "config.yaml").write_text(f"model: !!python/object/apply:os.system ['touch {tmp_path / 'RAN'}']\n")
    with pytest.raises(ConfigError, match="not readable YAML"):
        load_model(folder)
    assert not (tmp_path / "RAN").exists()


def test_unitrack_checkpoints_are_weights_only_and_export_scores_the_same(trained, tmp_path, synth_root):
    """Every checkpoint a run writes loads with weights_only=True and nothing allow-listed; the exported
    folder (no pickle) gives `eval` the same SR with SAMM's temperatures, and starts a run from the same
    weights."""
    from unitrack.model.checkpoint import load_model
    from unitrack.model.lorat import build_model

    _, run = trained
    ckpts = sorted((run / "checkpoints").glob("*.ckpt"))
    assert {p.name for p in ckpts} >= {"last.ckpt", "stage_1_rgbt.ckpt", "stage_2_rgbd.ckpt"}
    for p in ckpts:
        st = torch.load(p, map_location="cpu", weights_only=True)["unitrack"]
        assert st["buffer"] is not None and "samm" in st["methods"] and torch.is_tensor(st["torch_rng"])
    ckpt = run / "checkpoints" / "stage_2_rgbd.ckpt"
    out = tmp_path / "published"
    assert _main(["export", f"ckpt={ckpt}", f"out={out}", f"hydra.run.dir={tmp_path / 'ex'}"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "model.safetensors"]
    meta = OmegaConf.to_container(OmegaConf.load(out / "config.yaml"))
    assert meta["model"]["_target_"] == LORAT and meta["stage"] == {"index": 1, "name": "rgbd"}
    assert meta["tasks_seen"] == ["rgbt", "rgbd"] and set(meta["samm_temperatures"]) == {"fused", "rgb", "x"}
    matrix = json.loads((run / "matrix.json").read_text())
    assert meta["metrics"]["SR"] == dict(zip(matrix["tasks"], matrix["SR"][1]))
    assert meta["metrics"]["pooled_SR"] == matrix["final_pooled_SR"]

    sr = {}
    for name, src in (("ckpt", ckpt), ("folder", out)):
        ev = tmp_path / f"eval_{name}"
        assert _main(["eval", f"ckpt={src}", f"benchmark={synth_root / 'unibench.txt'}", "eval.batch_size=3",
                      "eval.samm=true", "device=cpu", f"hydra.run.dir={ev}"]) == 0
        m = json.loads((ev / "metrics.json").read_text())
        sr[name] = (m["overall"]["SR"], {t: v["SR"] for t, v in m["per_task"].items()})
    assert sr["folder"] == sr["ckpt"]

    a, b = (load_model(p)[0].state_dict() for p in (ckpt, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg = _tiny_model_cfg(heads="fused+unimodal")
    started = []
    for p in (ckpt, out):  # model.init=FOLDER starts from the same tracker (and the same fresh LoRA)
        torch.manual_seed(0)
        started.append(build_model({**cfg, "init": str(p)}).state_dict())
    assert all(torch.equal(started[0][k], started[1][k]) for k in started[0])
