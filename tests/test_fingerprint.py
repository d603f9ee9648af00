"""Run fingerprints: a run dir is continued / reused only by what made it; a mismatch names what differs."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import open_dict

from tests.conftest import compose, tiny_train_overrides
from unitrack import fingerprint
from unitrack.errors import ConfigError


def _cfg(overrides):
    cfg = compose("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def test_config_hash_groups_seeds_and_ignores_neutral_keys():
    a = {"seed": 0, "optim": {"lr": 1e-3}, "paths": {"output_root": "/a"}, "eval": {"workers": 1}}
    b = {"seed": 1, "optim": {"lr": 1e-3}, "paths": {"output_root": "/b"}, "eval": {"workers": 4}}
    c = {**a, "optim": {"lr": 2e-3}}
    assert fingerprint.config_hash(a) == fingerprint.config_hash(b)  # seed left out for grouping
    assert fingerprint.config_hash(a, with_seed=True) != fingerprint.config_hash(b, with_seed=True)
    assert fingerprint.config_hash(a) != fingerprint.config_hash(c)
    assert fingerprint.differences(a, c) == ["optim.lr: 0.001 -> 0.002"]
    assert fingerprint.code_version().startswith("0.")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root):
    from unitrack.train.unification import train

    tmp = tmp_path_factory.mktemp("fp")
    overrides = ["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp), "train.steps_per_stage=2"]
    run = tmp / "run"
    res = train(_cfg(overrides), run)
    return overrides, run, res


def test_train_run_records_config_checkpoint_and_code(trained):
    _, run, res = trained
    fp = json.loads((run / "fingerprint.json").read_text())
    ck = run / "checkpoints" / "stage_1_rgbt.ckpt"
    assert fp["checkpoints"]["stage_1_rgbt.ckpt"] == {"path": str(ck.resolve()), "sha256": fingerprint.file_hash(ck)}
    assert len(fp["config_hash"]) == 16 and fp["config_hash"] != fp["config_hash_seed"]
    assert fp["code_version"] and res["fingerprint"]["config_hash"] == fp["config_hash"]


def test_resume_with_a_changed_config_is_refused_naming_the_keys(trained):
    from unitrack.train.unification import train

    overrides, run, _ = trained
    before = (run / "config.yaml").read_text()
    for change, key in (["optim.lr=0.01"], "optim.lr"), (["model.lora.rank=16"], "model.lora.rank"), \
            (["seed=5"], "seed"):
        with pytest.raises(ConfigError) as e:
            train(_cfg([*overrides, *change]), run)
        assert e.value.key == key and "resume=force" in str(e.value) and "\n" not in str(e.value)
    assert (run / "config.yaml").read_text() == before  # not overwritten by the refused run
    res = train(_cfg(overrides), run)  # the same config continues (here: every stage done)
    assert res["SR"] == trained[2]["SR"]


def test_resume_force_continues_and_records_the_override(trained, tmp_path):
    import shutil

    from unitrack.train.unification import train

    overrides, run0, _ = trained
    run = tmp_path / "copy"
    shutil.copytree(run0, run)
    train(_cfg([*overrides, "optim.lr=0.01", "resume=force"]), run)
    fp = json.loads((run / "fingerprint.json").read_text())
    assert fp["forced_resume"]["differences"] == ["optim.lr: 0.0001 -> 0.01"]


def _eval(args):
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    GlobalHydra.instance().clear()
    main(["eval", *args])


def test_eval_into_a_dir_of_another_checkpoint_is_an_error_not_a_skip(trained, synth_root, tmp_path, capsys):
    _, run, _ = trained
    ck = run / "checkpoints" / "stage_1_rgbt.ckpt"
    other = tmp_path / "other.ckpt"
    state = torch.load(ck, weights_only=False)
    key = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][key] = state["state_dict"][key] + 0.5
    torch.save(state, other)
    ev = tmp_path / "ev"
    bench = [f"benchmark={synth_root / 'unibench.txt'}", "eval.batch_size=3", f"hydra.run.dir={ev}"]
    _eval([f"ckpt={ck}", "eval.export=[got10k,vot,pytracking,lasher,gtot]", "eval.export_tracker=ours", *bench])
    m = json.loads((ev / "metrics.json").read_text())
    assert len(list((ev / "got10k").glob("*/*_time.txt"))) == 3
    assert len(list((ev / "vot" / "longterm").glob("*/*_001_time.value"))) == 3
    folders = {"got10k": ev / "got10k", "vot": ev / "vot", "pytracking": ev / "pytracking",
               "lasher": ev / "tracking_results" / "ours_tracking_result", "gtot": ev / "BBresults" / "ours"}
    for layout, folder in folders.items():  # score reads our own exports back to the same numbers
        from hydra.core.global_hydra import GlobalHydra

        from unitrack.cli import main

        GlobalHydra.instance().clear()
        main(["score", f"results={folder}", f"results_layout={layout if layout in ('got10k', 'vot') else 'pytracking'}",
              f"benchmark={synth_root / 'unibench.txt'}", f"hydra.run.dir={tmp_path / ('score_' + layout)}"])
        sm = json.loads((tmp_path / ("score_" + layout) / "metrics.json").read_text())
        assert abs(sm["overall"]["SR"] - m["overall"]["SR"]) < 1e-3, layout
        log_file = (tmp_path / ("score_" + layout) / "score.log").read_text()  # the summary, not an empty log
        assert f"result: overall SR {sm['overall']['SR']:.4f}" in log_file
    assert m["checkpoint"] == {"path": str(ck.resolve()), "sha256": fingerprint.file_hash(ck)}
    assert json.loads((ev / "results" / "fingerprint.json").read_text())["checkpoint"]["sha256"] == m[
        "checkpoint"]["sha256"]
    for args, key in ([f"ckpt={other}"], "ckpt"), ([f"ckpt={ck}", "eval.drop_modality=rgb"], "eval.drop_modality"):
        with pytest.raises(SystemExit) as e:
            _eval([*args, *bench])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"config key '{key}'" in err and "fresh hydra.run.dir" in err
    assert json.loads((ev / "metrics.json").read_text()) == m  # the old numbers were not re-reported
    _eval([f"ckpt={ck}", *bench])  # same checkpoint: finished sequences reused
    again = json.loads((ev / "metrics.json").read_text())
    assert again["timing"]["skipped_sequences"] == 3 and again["overall"] == m["overall"]
    _eval([f"ckpt={other}", "eval.resume=false", *bench])  # tracked again with the other checkpoint
    m2 = json.loads((ev / "metrics.json").read_text())
    assert m2["checkpoint"]["sha256"] == fingerprint.file_hash(other) and m2["timing"]["skipped_sequences"] == 0


def test_a_config_error_raised_inside_instantiate_is_one_line(synth_root, tmp_path, capsys):
    """Hydra wraps errors of `_target_` constructors in InstantiationException; the CLI unwraps ours."""
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as e:
        main(["train", "model.backbone_kwargs.depth=1", f"data.root={synth_root}", "data.generate_if_missing=false",
              f"hydra.run.dir={tmp_path / 'r'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: config key 'model.x_branch.depth': 2 is outside 0..1 (backbone blocks)"]
