"""Loggers: CSV and wandb run together; a training run is ONE wandb run, which a resumed run continues.

The offline runs are read from wandb's own transaction log (`run-<id>.wandb`: LevelDB-log records of
wandb's protobuf `Record`), the file `wandb sync` uploads; wandb 0.31 ships no Python reader for it."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from tests.conftest import compose, kill_mid_stage, tiny_train_overrides


def records(path: Path) -> list:
    """The records of a `.wandb` file: 32 KiB blocks of chunks (crc32, length, type), after a 7-byte header;
    a chunk cut short by a kill ends the list."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, out, buf, pos, block = path.read_bytes(), [], b"", 7, 32768
    assert data[:4] == b":W&B", path
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 or pos + 7 + n > len(data):
            break
        buf, pos = buf + data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind in (1, 4):  # a whole record, or the last chunk of one
            r = pb.Record()
            r.ParseFromString(buf)
            out.append(r)
            buf = b""
    return out


def _history(recs: list) -> list[dict]:
    """The logged rows (a media value such as a table: its first key, with one of its fields as value)."""
    return [{i.nested_key[0] if i.nested_key else i.key: json.loads(i.value_json) for i in r.history.item}
            for r in recs if r.WhichOneof("record_type") == "history"]


def _offline_runs(run: Path) -> list[Path]:
    return sorted((run / "wandb").glob("offline-run-*"))


def test_a_killed_and_resumed_run_is_one_wandb_run_with_its_config_from_the_start(tmp_path, synth_root):
    """kill -9 in stage 2, run the same command again: both processes write the same wandb run (one id, kept
    in wandb_id.txt); the first process's file already holds the config and stage 1's matrix row; each
    finished stage's row is logged once; the final matrix is a table; CSV keeps a folder per stage."""
    run, steps = tmp_path / "run", 8
    over = [o for o in tiny_train_overrides(synth_root, tmp_path) if o != "logger=csv"]
    cmd = [sys.executable, "-m", "unitrack", "train", "+experiment=serial_replay", *over, "logger=csv_wandb",
           f"train.steps_per_stage={steps}", "train.ckpt_every=2", f"hydra.run.dir={run}"]
    # wandb writes its file every 15 s (x_transaction_log_flush_interval): a kill -9 loses what it had not
    # written; here it writes often, so the killed process's records are there to be read
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL": "0.2"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert kill_mid_stage(proc, run, stage=1, steps=steps), "did not catch the run in stage 2"
    wid = (run / "wandb_id.txt").read_text().strip()
    (first,) = _offline_runs(run)
    recs = records(first / f"run-{wid}.wandb")
    (start,) = [r.run for r in recs if r.WhichOneof("record_type") == "run"]
    config = {u.key: json.loads(u.value_json) for u in start.config.update}
    assert start.run_id == wid and config["train"]["steps_per_stage"] == steps and config["method"] == "replay"
    assert start.display_name.startswith("train[+experiment=serial_replay,") and "logger=csv_wandb" in start.display_name
    assert [h["matrix/stage"] for h in _history(recs) if "matrix/SR/pooled" in h] == [1]

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming stage 2" in again.stdout
    assert (run / "wandb_id.txt").read_text().strip() == wid
    runs = _offline_runs(run)
    assert len(runs) == 2 and all(p.name.endswith(f"-{wid}") for p in runs)
    recs = records(runs[1] / f"run-{wid}.wandb")
    (start,) = [r.run for r in recs if r.WhichOneof("record_type") == "run"]
    assert start.run_id == wid and any(u.key == "train" for u in start.config.update)
    hist = _history(recs)
    rows = [h for h in hist if "matrix/SR/pooled" in h]  # (wandb adds matrix/stage to the table's row too)
    assert [h["matrix/stage"] for h in rows] == [2, 3]  # stage 1's row came from the killed process, once
    res = json.loads((run / "matrix.json").read_text())
    for h, sr in zip(rows, res["SR"][1:]):
        assert [h[f"matrix/SR/{t}"] for t in res["tasks"]] == sr
    # the resumed part of stage 2 is stepped on from stage 1's 8 steps and its own restored ones
    assert min(h["trainer/global_step"] for h in hist if "rgbd/train/loss" in h) > steps
    assert any("matrix/table" in h for h in hist)
    summary = {i.nested_key[0] if i.nested_key else i.key for r in recs if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update}
    assert {"matrix/after_1_rgbt/SR/rgbt", "final/pooled_SR"} <= summary
    assert sorted(p.parent.name for p in (run / "logs").glob("*/metrics.csv")) == [
        "stage_1_rgbt", "stage_2_rgbd", "stage_3_rgbe"]


def test_the_wandb_run_is_named_by_its_overrides_or_its_folder_and_grouped_by_its_sweep(tmp_path):
    """A Hydra app names the run by its overrides and, in a multirun, groups it by the sweep folder; the
    Python API (no Hydra app: `${hydra:...}` cannot resolve) names it by the run folder."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from unitrack.train.loggers import _sweep_group, entries, outside_hydra

    full = compose("train", ["logger=csv_wandb", "seed=3"])
    cfg = full.copy()
    with open_dict(cfg):
        del cfg["hydra"]
    assert list(entries(cfg.logger)) == ["csv", "wandb"]
    try:
        HydraConfig.instance().cfg = None  # the Python API
        plain = OmegaConf.to_container(outside_hydra(cfg, tmp_path / "run7"), resolve=True)
        assert plain["logger"]["wandb"]["name"] == "run7" and _sweep_group() is None
        with open_dict(full):
            full.hydra.mode = "MULTIRUN"
            full.hydra.sweep.dir = str(tmp_path / "train" / "multiruns" / "2026-01-02_03-04-05")
        HydraConfig.instance().set_config(full)
        assert outside_hydra(cfg, tmp_path / "run7") is cfg
        assert cfg.logger.wandb.name == "train[logger=csv_wandb,seed=3]"
        assert _sweep_group() == "train/2026-01-02_03-04-05"
    finally:
        HydraConfig.instance().cfg = None
