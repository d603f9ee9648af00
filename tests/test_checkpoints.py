"""Corrupted checkpoints: an empty / truncated last.ckpt or stage checkpoint is moved aside with a warning
naming it and training falls back to the last good stage checkpoint; eval fails with one line."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from omegaconf import open_dict

from tests.conftest import compose, tiny_train_overrides


def _cfg(overrides):
    cfg = compose("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synth_root):
    from unitrack.train.unification import train

    tmp = tmp_path_factory.mktemp("ck")
    overrides = ["+experiment=serial", "train.order=[rgbt,rgbd]", *tiny_train_overrides(synth_root, tmp)]
    run = tmp / "ref"
    return overrides, run, train(_cfg(overrides), run)


def _damage(path, how):
    data = path.read_bytes()
    path.write_bytes(b"" if how == "empty" else data[: len(data) // 2] if how == "truncated" else b"garbage" * 9)


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_corrupt_last_ckpt_mid_stage_falls_back_to_the_stage_checkpoint(reference, tmp_path, how, caplog):
    from unitrack.train.unification import train

    overrides, ref, res = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    # as if killed during stage 2 with a damaged last.ckpt: stage 2's checkpoint and matrix row absent
    (run / "checkpoints" / "stage_2_rgbd.ckpt").unlink()
    (run / "matrix.json").unlink()
    rows = [r for r in json.loads((run / "stages.json").read_text()) if r["stage"] == 0]
    (run / "stages.json").write_text(json.dumps(rows))
    last = run / "checkpoints" / "last.ckpt"
    _damage(last, how)
    with caplog.at_level(logging.WARNING):
        again = train(_cfg(overrides), run)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "last.ckpt" in
              r.getMessage()]
    assert warned and str(last) in warned[0] and "last good stage checkpoint" in warned[0]
    assert (run / "checkpoints" / "last.ckpt.corrupt").is_file()
    assert again["SR"] == res["SR"] and again["PR"] == res["PR"]  # stage 2 retrained from stage 1's weights


def test_corrupt_stage_checkpoint_is_retrained_not_a_traceback(reference, tmp_path, caplog):
    from unitrack.train.unification import train

    overrides, ref, res = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    ck = run / "checkpoints" / "stage_1_rgbt.ckpt"
    _damage(ck, "truncated")
    with caplog.at_level(logging.WARNING):
        again = train(_cfg(overrides), run)
    assert any(str(ck) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert ck.is_file() and (run / "checkpoints" / "stage_1_rgbt.ckpt.corrupt").is_file()
    assert again["SR"] == res["SR"]


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_eval_with_a_corrupt_checkpoint_is_one_line(reference, tmp_path, how, capsys):
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    _, ref, _ = reference
    bad = tmp_path / "bad.ckpt"
    shutil.copy(ref / "checkpoints" / "stage_1_rgbt.ckpt", bad)
    _damage(bad, how)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as e:
        main(["eval", f"ckpt={bad}", f"hydra.run.dir={tmp_path / 'ev'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not a readable checkpoint" in err[0]
    assert not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize("off", ["callbacks=none", "~callbacks.checkpoint"])
def test_without_the_checkpoint_callback_no_last_ckpt_is_written(tmp_path, synth_root, off):
    """Checkpointing is conf/callbacks' ModelCheckpoint: without it no last.ckpt (a re-run restarts the
    unfinished stage); the stage checkpoint, the stage record, is written either way."""
    from unitrack.train.unification import train

    run = tmp_path / "run"
    train(_cfg(["+experiment=single_rgbt", *tiny_train_overrides(synth_root, tmp_path), "test.enabled=false",
                off]), run)
    assert (run / "checkpoints" / "stage_1_rgbt.ckpt").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["stage_1_rgbt.ckpt"]


def test_checkpoint_files_are_written_in_their_own_folder_and_whole(tmp_path, monkeypatch):
    """AtomicCheckpointIO: the temporary file lies beside the target (a rename, never a cross-device move);
    a write that fails leaves the previous checkpoint untouched and no temporary file, and one left by a
    process killed mid-write goes with the next write."""
    import tempfile

    import torch

    from unitrack.train.checkpointing import AtomicCheckpointIO

    io, target = AtomicCheckpointIO(), tmp_path / "ckpts" / "last.ckpt"
    target.parent.mkdir()
    (target.parent / ".last.ckpt.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    made = []
    real_mkstemp = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: made.append(kw["dir"]) or real_mkstemp(**kw))
    io.save_checkpoint({"step": torch.tensor(1)}, target)
    assert made == [target.parent] and io.load_checkpoint(target, weights_only=True)["step"] == 1

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        io.save_checkpoint({"step": torch.tensor(2), "x": Unpicklable()}, target)
    assert io.load_checkpoint(target, weights_only=True)["step"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_the_stage_loader_resumes_right_after_the_last_trained_batch():
    """Lightning restarts a plain map-style loader from its first batch on a mid-epoch resume; the stage
    loader's state (saved in every checkpoint) starts it after the batches trained, and on every DDP rank."""
    from unitrack.data.datamodule import ResumableSampler, StageLoader

    def loader(rank=0, world=1):
        return StageLoader(list(range(40)), batch_size=4 // world, step_samples=4,
                           sampler=ResumableSampler(40, 0, rank, world))

    full = loader()
    it = iter(full)
    trained = [next(it) for _ in range(3)]
    state = full.state_dict()
    assert state == {"batches": 3} and len(full) == 10
    resumed = loader()
    resumed.load_state_dict(state)
    assert len(resumed) == 10  # Lightning counts the 3 trained batches into the same epoch
    assert [b.tolist() for b in [*trained, *resumed]] == [b.tolist() for b in loader()]
    assert resumed.state_dict() == {"batches": 10}
    for rank in (0, 1):  # two ranks: each resumes its own half of batch 4 on
        r = loader(rank, 2)
        r.load_state_dict(state)
        assert [b.tolist() for b in r][0] == [12 + rank, 14 + rank]
