"""Test scores inside each training job: the final weights track the TEST benchmark once, at the end.

A study job keeps no checkpoint for the report: its last act is one batched pass of the real online
tracker over the test split of every task it trained (`data.benchmark`, the unified manifest), scored
with the same protocol and tracker settings as the per-stage validation (`eval`). `test_metrics.json`
beside matrix.json (validation) holds the scores per sequence (what the report's paired bootstrap over
test sequences resamples), per task and pooled, plus the modality distance (MMD² between modalities in
the backbone features of the run's start weights, the RGB foundation), so `unitrack report` needs
neither a checkpoint nor a dataset.

`test.settings` below are recorded in the file: a job whose test scores were made with other settings is
not a finished job (unitrack/train/records.py). The RGB foundation (task rgb) has no test split in the
unified benchmark and is never scored here.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.atomic import write_text_atomic
from unitrack.data.sequence import Sequence

FILE = "test_metrics.json"


def enabled(cfg: DictConfig) -> bool:
    return bool((cfg.get("test") or {}).get("enabled", False))


def settings(cfg: DictConfig) -> dict:
    """What made the test scores: the `test` keys, the benchmark and the tracking settings."""
    ev = cfg.eval
    return {"test": OmegaConf.to_container(cfg.test, resolve=True), "benchmark": str(cfg.data.benchmark),
            "protocol": str(ev.protocol), "samm": bool(ev.get("samm", False)), "pad": str(ev.get("pad", "current")),
            "amp": ev.get("amp", False)}


def split_sequences(cfg: DictConfig, tasks: list[str]) -> list[Sequence]:
    """The test benchmark's sequences of `tasks`, whole or cut to `test.max_frames` (debug runs)."""
    from unitrack.eval.benchmark import load_benchmark

    seqs = [s for s in load_benchmark(str(cfg.data.benchmark), None, None, None, cfg.paths.data_dir) if s.task in tasks]
    n = cfg.test.get("max_frames")
    return [s.head(int(n)) for s in seqs] if n else seqs


def foundation_distance(cfg: DictConfig, seqs: list[Sequence]) -> dict:
    """MMD² between the modalities in the start weights' backbone features (the paper's modality distance is
    measured on the foundation), on the test sequences; {"skipped": why} without unitrack start weights."""
    from collections import defaultdict

    from unitrack.eval.modality_distance import modality_distances
    from unitrack.model.checkpoint import is_export, load_model

    init = cfg.model.get("init")
    if not init or not ((str(init).endswith(".ckpt") and Path(str(init)).is_file()) or is_export(str(init))):
        return {"skipped": f"model.init={init} is not a unitrack checkpoint (the RGB foundation)"}
    by_task: dict[str, list[Sequence]] = defaultdict(list)
    for s in seqs:
        by_task[s.task].append(s)
    model, _ = load_model(str(init), "model.init")
    d = modality_distances(model, dict(by_task), n=int(cfg.test.distance_samples), seed=int(cfg.seed))
    return {**d, "start_weights": str(init)}


def score_test_split(model, cfg: DictConfig, run_dir: Path, tasks: list[str], tracker_kwargs: dict | None = None
                     ) -> dict | None:
    """Track and score the test split of `tasks` with `model`; writes test_metrics.json (on rank 0) and
    returns its summary (overall and per task SR/PR), or None when `test.enabled` is false or no task has a
    test split (the RGB foundation)."""
    from unitrack import fingerprint
    from unitrack.eval.shard import current_ranks, track_and_score

    if not enabled(cfg) or not [t for t in tasks if t != "rgb"]:
        return None
    seqs = split_sequences(cfg, tasks)
    if not seqs:
        from unitrack.errors import ConfigError

        raise ConfigError("data.benchmark", f"{cfg.data.benchmark} lists no test sequence of {', '.join(tasks)}")
    m, stats = track_and_score(model, seqs, run_dir / "eval" / "test", cfg.eval, tracker_kwargs, what="test split")
    keep = ("SR", "PR", "NPR", "sequences", "frames")
    rec = {"split": "test", "settings": settings(cfg), "fingerprint": fingerprint.read(run_dir),
           "overall": {k: m["overall"][k] for k in keep}, "per_task": {t: {k: v[k] for k in keep} for t, v in
                                                                      m["per_task"].items()},
           "per_sequence": {uid: {k: r[k] for k in ("task", "dataset", "frames", "SR", "PR", "NPR")}
                            for uid, r in m["per_sequence"].items()},
           "per_attribute": m.get("per_attribute", {}), "fps": stats.get("fps")}
    if cfg.test.get("modality_distance", True):
        rec["modality_distance"] = foundation_distance(cfg, seqs)
    if current_ranks().is_main:
        write_text_atomic(run_dir / FILE, json.dumps(rec, indent=2, default=str))
        per = "  ".join(f"{t}: SR {v['SR']:.3f} PR {v['PR']:.3f}" for t, v in rec["per_task"].items())
        print(f"test split ({len(seqs)} sequences, final weights): pooled SR {rec['overall']['SR']:.3f} "
              f"PR {rec['overall']['PR']:.3f}  {per} -> {run_dir / FILE}")
    return {"split": "test", "overall": rec["overall"], "per_task": rec["per_task"]}


def read(run_dir: Path) -> dict | None:
    """test_metrics.json of a run folder (None when absent or unreadable)."""
    f = Path(run_dir) / FILE
    try:
        return json.loads(f.read_text()) if f.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
