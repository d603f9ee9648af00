"""`unitrack eval`: track the whole benchmark in one batched pass with a checkpoint, then score it.

Under torchrun the benchmark is sharded over the ranks (`unitrack.eval.shard`); rank 0 scores. A
sequence that cannot be tracked is skipped, listed in metrics.json (`complete: false`, `failed`) and
the command exits with code 2 after scoring the rest.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack import fingerprint
from unitrack.commands import pick_device, run_dir
from unitrack.errors import DatasetError
from unitrack.eval.benchmark import load_benchmark
from unitrack.eval.runner import failure_summary
from unitrack.eval.score import print_table, score, write_score_outputs
from unitrack.eval.shard import on_main, process_group, run_sharded
from unitrack.model.checkpoint import load_model


def tracker_kwargs(cfg: DictConfig, ckpt_state: dict, device: str) -> dict:
    """The OnlineTracker arguments of `cfg.eval` (SAMM's temperatures from the checkpoint when eval.samm)."""
    e = cfg.eval
    kw = {"device": device, "window_weight": float(e.window_weight), "drop_modality": e.drop_modality,
          "x_noise": float(e.x_noise), "amp": e.get("amp", False), "pad": str(e.get("pad", "current"))}
    if e.samm:
        from unitrack.cl.samm import inference_kwargs

        kw.update(inference_kwargs(((ckpt_state.get("methods") or {}).get("samm") or {}).get("temperatures")))
    return kw


def rank_device(device: str) -> str:
    """One GPU per rank on a multi-GPU node (torchrun's LOCAL_RANK)."""
    local = os.environ.get("LOCAL_RANK")
    return f"cuda:{int(local)}" if device == "cuda" and local is not None else device


def run(cfg: DictConfig) -> dict:
    """Track the benchmark with `cfg.ckpt` in one batched pass (sharded under torchrun), then score it on rank 0."""
    with process_group() as ranks:
        out = Path(ranks.broadcast(str(run_dir())))  # one results folder for every rank (node clocks differ)
        model, st = load_model(cfg.ckpt)
        # read (or, for the default, generate) the benchmark once, on rank 0; the others get its sequences
        seqs = on_main(ranks, lambda: load_benchmark(cfg.benchmark, cfg.root, cfg.split,
                                                     OmegaConf.to_container(cfg.options), cfg.paths.data_dir))
        results = out / "results"
        # earlier results in this dir count only if the same checkpoint content + tracking settings made them
        fp = on_main(ranks, lambda: fingerprint.check_eval_run(results, Path(cfg.ckpt), OmegaConf.to_container(
            cfg, resolve=True), resume=bool(cfg.eval.resume)))
        t0 = time.perf_counter()
        stats = run_sharded(model, seqs, results, ranks, resume=bool(cfg.eval.resume),
                            batch_size=int(cfg.eval.batch_size), workers=int(cfg.eval.workers),
                            decode=str(cfg.eval.get("decode", "thread")),
                            tracker_kwargs=tracker_kwargs(cfg, st, rank_device(pick_device(cfg.device))))
        track_s = time.perf_counter() - t0
        if not ranks.is_main:
            return {}
        return _score(cfg, seqs, out, results, stats, t0, track_s, fp)


def _score(cfg: DictConfig, seqs: list, out: Path, results: Path, stats: dict, t0: float, track_s: float,
           fp: dict | None = None) -> dict:
    failed = {f["uid"] for f in stats["failed"]}
    done = [s for s in seqs if s.uid not in failed]
    if cfg.eval.export:
        from unitrack.eval import results as rio

        # the one batched pass has no per-frame clock: the `_time` files hold its mean seconds per frame
        per_frame = track_s / stats["frames"] if stats["frames"] else float("nan")
        for fmt in cfg.eval.export:
            for s in done:
                boxes = rio.read_results(results / f"{s.name}.txt")
                conf = rio.read_confidences(results / f"{s.name}_confidence.txt") if fmt == "vot" else None
                rio.export(fmt, out, s.name, boxes, conf, [per_frame] * len(boxes),
                           tracker=str(cfg.eval.get("export_tracker", "unitrack")))
    metrics, curves = score(done, results, protocol=cfg.protocol, return_curves=True) if done else ({}, {})
    if fp is not None:  # which checkpoint (path + content hash), config and code made these numbers
        metrics["checkpoint"], metrics["fingerprint"] = fp["checkpoint"], {k: fp[k] for k in (
            "config_hash", "config_hash_seed", "code_version")}
    metrics["complete"] = not failed
    metrics["failed"] = stats["failed"]
    metrics["timing"] = {"track_seconds": track_s, "frames": stats["frames"], "frames_per_s": stats["fps"],
                         "total_seconds": time.perf_counter() - t0, "skipped_sequences": stats["skipped"],
                         "ranks": stats.get("ranks", 1), "per_rank": stats.get("per_rank")}
    write_score_outputs(metrics, curves, out)
    if done:
        print_table(metrics)
    print(f"eval: {stats['frames']} frames in {track_s:.1f} s ({stats['fps']:.1f} frames/s, one pass over "
          f"{len(seqs)} sequences on {stats.get('ranks', 1)} rank(s)); total "
          f"{metrics['timing']['total_seconds']:.1f} s -> {out}")
    (out / "eval_timing.json").write_text(json.dumps(metrics["timing"], indent=2))
    if failed:
        raise DatasetError(stats["failed"][0]["uid"], "eval INCOMPLETE: " + failure_summary(stats["failed"], len(seqs))
                           + f"; metrics.json in {out} has complete=false")
    return metrics
