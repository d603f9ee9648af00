"""Validation is not test: the stable hold-out of training sequences, datasets' own val splits, the
config errors, what training and per-stage evaluation then see, and the RGB SOT sources of task rgb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import compose
from tests.test_formats import frames, rows, text
from unitrack.data.sequence import Sequence
from unitrack.data.splits import (
    holdout_key,
    load_task_sequences,
    pick_holdout,
    training_sequences,
    validation_sequences,
)
from unitrack.errors import ConfigError


def _seq(name: str, dataset: str = "lasher", frame0: bool = True) -> Sequence:
    boxes = np.array([[1, 2, 3, 4] if frame0 else [0, 0, 0, 0], [1, 2, 3, 4]], float)
    paths = [Path(f"/nowhere/{name}/{i}.jpg") for i in range(2)]
    return Sequence(name, "rgbt", dataset, paths, paths, boxes, "thermal")


def test_holdout_key_is_a_stable_hash_of_the_uid():
    a = _seq("10runone")
    assert holdout_key(a) == holdout_key(_seq("10runone")) and 0 <= holdout_key(a) < 1
    assert holdout_key(a) == pytest.approx(0.388141, abs=1e-6)  # sha256("lasher/10runone"): fixed forever
    assert holdout_key(_seq("10runone", "rgbt234")) != holdout_key(a)  # the dataset is part of the uid


def test_fraction_membership_does_not_change_when_sequences_are_added():
    old = [_seq(f"s{i}") for i in range(300)]
    new = old + [_seq(f"t{i}") for i in range(300)]
    held_old = {s.uid for s in pick_holdout(old, 0.1)}
    held_new = {s.uid for s in pick_holdout(new, 0.1)}
    assert 15 < len(held_old) < 45
    assert held_new & {s.uid for s in old} == held_old  # no old sequence moved in or out
    assert [holdout_key(s) for s in pick_holdout(new, 0.1)] == sorted(holdout_key(s) for s in pick_holdout(new, 0.1))


def test_count_holdout_and_eligibility():
    seqs = [_seq(f"s{i}") for i in range(20)] + [_seq("nofirst", frame0=False)]
    three = pick_holdout(seqs, 3)
    assert len(three) == 3 and [s.uid for s in three] == [s.uid for s in sorted(seqs[:20], key=holdout_key)[:3]]
    assert "lasher/nofirst" not in {s.uid for s in pick_holdout(seqs, 21)}  # frame 0 absent: cannot be tracked
    assert len(pick_holdout(seqs[:2], 0.001)) == 1  # a fraction that picks none still holds out one
    assert len(pick_holdout(seqs[:2], 5)) == 1 and pick_holdout(seqs[:1], 1) == []  # never all of them
    for bad in (0, -1, 1.5, "a", True):
        with pytest.raises(ConfigError, match="data.val_holdout"):
            pick_holdout(seqs, bad)


@pytest.fixture
def data_cfg(synth_root):
    return OmegaConf.create({
        "tasks": {"rgbt": {"dataset": "lasher", "root": str(synth_root / "lasher")},
                  "rgb": [{"dataset": "got10k", "root": str(synth_root / "got10k"), "val_split": "val"}]},
        "train_split": "train", "val_split": "holdout", "val_holdout": 1, "val_sequences": 3, "val_max_frames": 5})


def test_holdout_sequences_leave_training_and_form_validation(data_cfg):
    from unitrack.train.unification import val_sequences

    all_train = {s.uid for s in load_task_sequences(data_cfg, "rgbt", "train")}
    train = {s.uid for s in training_sequences(data_cfg, "rgbt")}
    val, rec = validation_sequences(data_cfg, "rgbt")
    assert len(all_train) == 2 and len(train) == 1 and len(val) == 1
    assert train | {val[0].uid} == all_train and val[0].uid not in train
    test_uids = {s.uid for s in load_task_sequences(data_cfg, "rgbt", "test")}
    assert not test_uids & {s.uid for s in val}  # never the test split
    assert rec == {"sources": [{"dataset": "lasher", "split": "holdout of train", "holdout": 1, "sequences": 1,
                                "of": 2}], "split": "holdout of train"}
    record = {}
    (cut,) = val_sequences(data_cfg, "rgbt", record)
    assert len(cut) == 5 and len(cut.raw_boxes) == 5 and len(cut.x_frames) == 5 and len(cut.visible) == 5
    assert record["evaluated"] == [val[0].uid] and record["max_frames"] == 5


def test_a_dataset_s_own_val_split_is_used_and_not_held_out(data_cfg):
    val, rec = validation_sequences(data_cfg, "rgb")
    assert [s.name for s in val] == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"] and rec["split"] == "val"
    assert len(training_sequences(data_cfg, "rgb")) == 8  # all of train: nothing held out


@pytest.mark.parametrize("key, value, where", [
    ("val_split", "test", "data.val_split"), ("val_split", "train", "data.val_split"),
    ("val_holdout", 1.5, "data.val_holdout"), ("val_holdout", 0.0, "data.val_holdout"),
])
def test_validation_config_errors_name_the_key(data_cfg, key, value, where):
    data_cfg[key] = value
    with pytest.raises(ConfigError, match=where):
        validation_sequences(data_cfg, "rgbt")
        training_sequences(data_cfg, "rgbt")


def test_source_val_split_test_is_refused(data_cfg):
    data_cfg.tasks.rgb[0].val_split = "test"
    with pytest.raises(ConfigError, match=r"data.tasks.rgb\[0\].val_split.*'test' is the test split"):
        validation_sequences(data_cfg, "rgb")


def test_default_configs_validate_on_a_holdout_never_on_test():
    for data in ("synthetic", "unibench", "rgb_sot"):
        cfg = compose("train", [f"data={data}"])
        assert cfg.data.val_split == "holdout", data
    assert compose("train", ["debug=fast"]).data.val_holdout == 1  # = val_sequences, what is evaluated


def test_rgb_sot_config_loads_lasot_got10k_trackingnet_as_task_rgb(tmp_path):
    lasot = tmp_path / "LaSOT"
    for k in range(1, 4):
        d = lasot / "cat" / f"cat-{k}"
        frames(d / "img", [f"{i:08d}.jpg" for i in range(1, 4)])
        text(d / "groundtruth.txt", rows(*[(1, 2, 3, 4)] * 3))
    text(lasot / "testing_set.txt", "cat-3\n")
    got = tmp_path / "GOT-10k"
    for split, name in (("train", "GOT-10k_Train_000001"), ("val", "GOT-10k_Val_000001")):
        frames(got / split / name, [f"{i:08d}.jpg" for i in range(1, 4)])
        text(got / split / name / "groundtruth.txt", rows(*[(1, 2, 3, 4)] * 3))
    tn = tmp_path / "TrackingNet"
    for name in ("a_0", "b_1"):
        frames(tn / "TRAIN_0" / "frames" / name, [f"{i}.jpg" for i in range(3)])
        text(tn / "TRAIN_0" / "anno" / f"{name}.txt", rows(*[(1, 2, 3, 4)] * 3))
    cfg = compose("train", ["data=rgb_sot", f"data.tasks.rgb.0.root={lasot}", f"data.tasks.rgb.1.root={got}",
                            f"data.tasks.rgb.2.root={tn}", "data.val_holdout=1"])
    seqs = load_task_sequences(cfg.data, "rgb", "train")
    assert [s.uid for s in seqs] == ["lasot/cat-1", "lasot/cat-2", "got10k/GOT-10k_Train_000001",
                                     "trackingnet/a_0", "trackingnet/b_1"]
    assert all(s.task == "rgb" and s.x_modality == "none" and s.x_frames == s.rgb_frames for s in seqs)
    val, rec = validation_sequences(cfg.data, "rgb")
    assert val[0].uid == "got10k/GOT-10k_Val_000001" and len(val) == 2  # + one held out of LaSOT/TrackingNet
    assert rec["split"] == "val + holdout of train"
    train = training_sequences(cfg.data, "rgb")
    assert len(train) == 4 and val[1].uid not in {s.uid for s in train}
    assert "lasot/cat-3" not in {s.uid for s in train}  # LaSOT's test split never trains


def test_a_single_training_sequence_cannot_be_held_out(tmp_path):
    from tests.test_formats import lasher_seq

    lasher_seq(tmp_path / "L" / "train" / "only", rows(*[(1, 2, 3, 4)] * 3))
    cfg = OmegaConf.create({"tasks": {"rgbt": {"dataset": "lasher", "root": str(tmp_path / "L")}},
                            "train_split": "train", "val_split": "holdout", "val_holdout": 3})
    assert [s.name for s in training_sequences(cfg, "rgbt")] == ["only"]
    with pytest.raises(ConfigError, match=r"data.val_split.*single training sequence"):
        validation_sequences(cfg, "rgbt")
