"""`unitrack score`: score any tracker's result files against a benchmark's ground truth; several
trackers' folders give a leaderboard (unitrack.eval.leaderboard)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import run_dir
from unitrack.eval.benchmark import load_benchmark
from unitrack.eval.leaderboard import check_folders, score_results


def run(cfg: DictConfig) -> dict:
    """Score one tracker's results folder (metrics.json) or several (the leaderboard) against the benchmark."""
    results = cfg.results if isinstance(cfg.results, str) else list(cfg.results)
    check_folders(results)
    seqs = load_benchmark(cfg.benchmark, cfg.root, cfg.split, OmegaConf.to_container(cfg.options), cfg.paths.data_dir)
    return score_results(results, seqs, run_dir(), protocol=cfg.protocol,
                         layout=str(cfg.get("results_layout", "pytracking")),
                         results_format=str(cfg.get("results_format", "xywh")),
                         common_subset=bool(cfg.score.common_subset))
