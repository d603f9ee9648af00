"""`unitrack train`: serial / parallel / single-task unification (see unitrack.train.unification)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from unitrack.commands import run_dir
from unitrack.data.synth import ensure_default
from unitrack.train.unification import objective, train


def run(cfg: DictConfig) -> float:
    if cfg.data.get("generate_if_missing"):
        ensure_default(Path(cfg.data.root))
    return objective(train(cfg, run_dir()))
