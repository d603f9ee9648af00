"""Shared fixtures: a tiny synthetic dataset made once per session, and Hydra composition of our configs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

CONF = Path(__file__).resolve().parents[1] / "conf"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("UNITRACK_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_stale_log_streams():
    """Hydra's in-process runs attach stream handlers to the capture stream of the test that ran them;
    a later test's log record would then write into a closed file. Drop those handlers after each test."""
    import logging

    yield
    for lg in [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                       if isinstance(v, logging.Logger)]:
        for h in list(lg.handlers):
            if type(h) is logging.StreamHandler and h.stream not in (sys.__stderr__, sys.__stdout__):
                lg.removeHandler(h)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """Three tiny synthetic datasets + manifest (2 train / 1 test sequences per task, 24 frames)."""
    from unitrack.data.synth import generate

    return generate(tmp_path_factory.mktemp("synth") / "data", seed=3, sequences=2, test_sequences=1,
                    frames=24, size=(96, 72))


def compose(verb: str, overrides: list[str] | None = None):
    """Compose conf/<verb>.yaml like the CLI does (hydra config included, for ${hydra:...})."""
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return _compose(config_name=verb, overrides=overrides or [], return_hydra_config=True)


def tiny_train_overrides(root: Path, run_dir: Path) -> list[str]:
    """A train run that takes seconds: fast debug preset on the session's tiny synthetic data."""
    return ["debug=fast", f"data.root={root}", f"paths.output_root={run_dir}", "logger=csv",
            "model.backbone_kwargs.depth=2", "data.val_max_frames=10"]


def kill_mid_stage(proc: subprocess.Popen, run: Path, stage: int, steps: int, timeout: float = 300) -> bool:
    """SIGKILL `proc`, a `unitrack train` into `run`, once its last.ckpt lies inside stage `stage` (counted
    from 0) past the stage's first checkpoint and short of its `steps`; whether it was caught there."""
    import torch

    last, deadline = run / "checkpoints" / "last.ckpt", time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            try:
                st = torch.load(last, weights_only=False)["unitrack"]
            except Exception:  # being written
                time.sleep(0.05)
                continue
            if st["stage_index"] == stage and 0 < st["stage_step"] < steps:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    return False
