"""`unitrack train`: serial / parallel / single-task unification (see unitrack.train.unification).

A job finished earlier in the same run folder by the same config is skipped, and a finished job's records
are copied to `study.records_dir` (unitrack.train.records: how a study preset accumulates)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from unitrack.commands import run_dir
from unitrack.data.synth import ensure_default
from unitrack.train import records
from unitrack.train.unification import objective, train


def run(cfg: DictConfig) -> float:
    """Train (or skip, when this config already finished in this run folder) and publish the study records; returns the Optuna objective."""
    if cfg.data.get("generate_if_missing"):
        ensure_default(Path(cfg.data.root), cfg.data.get("synth"))
    out = run_dir()
    res = records.finished(cfg, out)
    if res is None:
        res = train(cfg, out)
    else:
        print(f"{out}: finished earlier by this config (matrix.json, test scores, fingerprint): skipped")
    records.publish(cfg, out)
    return objective(res)
