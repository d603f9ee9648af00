"""`unitrack report runs=DIR`: report.md, CSV tables and plots from one run or a multirun tree."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import run_dir
from unitrack.errors import ConfigError
from unitrack.report import build_report


def run(cfg: DictConfig) -> dict:
    """Build report.md, tables and plots from the runs under `cfg.runs` into this run's folder."""
    root = Path(cfg.runs)
    if not root.is_dir():
        raise ConfigError("runs", f"{root} is not a folder of unitrack runs")
    res = build_report(root, run_dir(), OmegaConf.to_container(cfg.analysis, resolve=True),
                       OmegaConf.to_container(cfg.stats, resolve=True))
    print(f"report over {res['finished']} finished and {res['unfinished']} unfinished run(s): "
          f"{run_dir() / 'report.md'}")
    return res
