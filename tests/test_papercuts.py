"""Ecosystem papercuts: file modes follow the umask, score reads every layout we export, extra or infinite
result lines are told, checkpoint loads do not claim random init, track says when X is missing."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from unitrack.data.sequence import Sequence
from unitrack.errors import ResultsError
from unitrack.eval.results import export_got10k, export_vot, write_results, write_text_atomic

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = write_text_atomic(tmp_path / "metrics.json", "{}")
        r = write_results(tmp_path, "seq", np.zeros((2, 4)), np.ones(2))
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode and r.stat().st_mode & 0o777 == mode


def test_optuna_preset_keeps_its_study_in_memory():
    sweeper = yaml.safe_load((CONF / "hparams_search" / "optuna.yaml").read_text())["hydra"]["sweeper"]
    assert sweeper["storage"] is None


def _seq(name, boxes):
    n = len(boxes)
    return Sequence(name, "rgbt", "lasher", [Path(f"/nonexistent/{name}/{i}.jpg") for i in range(n)],
                    [Path(f"/nonexistent/{name}/x{i}.jpg") for i in range(n)], np.asarray(boxes, float), "thermal")


def test_score_reads_every_results_layout_identically(tmp_path):
    from unitrack.eval.score import score

    rng = np.random.default_rng(0)
    gt = np.abs(rng.normal(20, 5, (6, 4))) + 1
    seqs = [_seq("a", gt), _seq("b", gt[::-1].copy())]
    preds = {s.name: s.boxes + rng.normal(0, 2, s.boxes.shape) for s in seqs}
    conf = np.linspace(0.2, 0.9, 6)
    for s in seqs:
        pred = preds[s.name].copy()
        pred[0] = s.boxes[0]  # frame 0 is the given box in every layout
        preds[s.name] = pred
        write_results(tmp_path / "flat", s.name, pred, conf)
        write_results(tmp_path / "nested" / "lasher", s.name, pred, conf)
        export_got10k(tmp_path / "got10k", s.name, pred, [0.01] * 6)
        export_vot(tmp_path / "vot", s.name, pred, conf, [0.01] * 6)
    assert (tmp_path / "got10k" / "a" / "a_time.txt").is_file()
    assert (tmp_path / "vot" / "longterm" / "a" / "a_001_time.value").is_file()
    ref = score(seqs, tmp_path / "flat")
    for layout, d in (("pytracking_nested", "nested"), ("got10k", "got10k"), ("vot", "vot")):
        m = score(seqs, tmp_path / d, results_layout=layout)
        assert m["overall"]["SR"] == pytest.approx(ref["overall"]["SR"], abs=1e-4), layout
        assert m["overall"]["PR"] == pytest.approx(ref["overall"]["PR"], abs=1e-4), layout
    with pytest.raises(ResultsError, match="a.txt: result file not found"):
        score(seqs, tmp_path / "got10k")  # the wrong layout names the file it looked for


def test_extra_result_lines_are_a_warning_with_counts_and_inf_is_an_error(tmp_path, caplog):
    from unitrack.eval.score import score

    gt = np.full((4, 4), 10.0)
    s = _seq("a", gt)
    write_results(tmp_path, "a", np.full((7, 4), 10.0))
    with caplog.at_level(logging.WARNING):
        m = score([s], tmp_path)
    assert any("a.txt: 3 extra lines" in n for n in m["notes"])
    assert any("a.txt: 3 extra lines" in r.getMessage() for r in caplog.records)
    write_results(tmp_path / "exact", "a", np.full((4, 4), 10.0))
    assert m["overall"]["SR"] == score([s], tmp_path / "exact")["overall"]["SR"]  # cut, not misread
    (tmp_path / "a.txt").write_text("10,10,10,10\n10,10,inf,10\n10,10,10,10\n10,10,10,10\n")
    with pytest.raises(ResultsError, match=r"a.txt, line 2: infinite box value"):
        score([s], tmp_path)


def _tiny_ckpt(path: Path) -> Path:
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "model" / "lorat_tiny.yaml")
    cfg.backbone_kwargs.depth = 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = instantiate(cfg)
    torch.save({"state_dict": {f"model.{k}": v for k, v in m.state_dict().items()},
                "unitrack": {"model_cfg": OmegaConf.to_container(cfg)}}, path)
    return path


def test_loading_a_checkpoint_does_not_warn_random_init_and_track_warns_without_x(tmp_path, caplog):
    import cv2
    from omegaconf import OmegaConf

    from unitrack.commands import track
    from unitrack.train.checkpoint import load_model

    ck = _tiny_ckpt(tmp_path / "m.ckpt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        load_model(ck)
    assert not [x for x in w if "randomly initialised" in str(x.message)]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), np.full((48, 64, 3), 40 * i, np.uint8))
    cfg = OmegaConf.create({"ckpt": str(ck), "input": str(frames), "init": [10, 10, 12, 12], "x_input": None,
                            "modality": "depth", "out": str(tmp_path / "t.mp4"), "device": "cpu"})
    with caplog.at_level(logging.WARNING):
        stats = track.run(cfg)
    assert any("no x_input given" in r.getMessage() and "depth" in r.getMessage() for r in caplog.records)
    conf = Path(stats["confidences"])
    assert conf == tmp_path / "t_confidence.txt" and len(conf.read_text().split()) == 3


def test_wandb_runs_are_named_by_their_overrides():
    from hydra.core.hydra_config import HydraConfig

    from tests.conftest import compose

    names = []
    for seed in (1, 2):
        cfg = compose("train", ["logger=wandb", f"seed={seed}", "cl=replay"])
        HydraConfig.instance().set_config(cfg)
        names.append(cfg.logger.wandb.name)
    assert names == ["train[cl=replay,logger=wandb,seed=1]", "train[cl=replay,logger=wandb,seed=2]"]
