"""`unitrack score`: score any tracker's result files against a benchmark's ground truth."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import run_dir
from unitrack.errors import ConfigError
from unitrack.eval.benchmark import load_benchmark
from unitrack.eval.score import print_table, score, write_score_outputs


def run(cfg: DictConfig) -> dict:
    results = Path(cfg.results)
    if not results.is_dir():
        raise ConfigError("results", f"{results} is not a folder of result files")
    seqs = load_benchmark(cfg.benchmark, cfg.root, cfg.split, OmegaConf.to_container(cfg.options), cfg.paths.data_dir)
    metrics, curves = score(seqs, results, protocol=cfg.protocol, return_curves=True,
                            results_layout=str(cfg.get("results_layout", "pytracking")))
    write_score_outputs(metrics, curves, run_dir())
    print_table(metrics)
    print(f"wrote {run_dir() / 'metrics.json'}")
    return metrics
