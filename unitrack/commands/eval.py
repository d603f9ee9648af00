"""`unitrack eval`: track the whole benchmark in one batched pass with a checkpoint, then score it."""

from __future__ import annotations

import json
import time

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import pick_device, run_dir
from unitrack.eval.benchmark import load_benchmark
from unitrack.eval.runner import run_benchmark
from unitrack.eval.score import print_table, score, write_score_outputs
from unitrack.train.checkpoint import load_model


def tracker_kwargs(cfg: DictConfig, ckpt_state: dict, device: str) -> dict:
    e = cfg.eval
    kw = {"device": device, "window_weight": float(e.window_weight), "drop_modality": e.drop_modality,
          "x_noise": float(e.x_noise)}
    if e.samm:
        temps = ((ckpt_state.get("methods") or {}).get("samm") or {}).get("temperatures")
        kw["samm"] = {"temperatures": temps or {"fused": 1.0, "rgb": 1.0, "x": 1.0}}
    return kw


def run(cfg: DictConfig) -> dict:
    out = run_dir()
    model, st = load_model(cfg.ckpt)
    seqs = load_benchmark(cfg.benchmark, cfg.root, cfg.split, OmegaConf.to_container(cfg.options), cfg.paths.data_dir)
    results = out / "results"
    t0 = time.perf_counter()
    stats = run_benchmark(model, seqs, results, batch_size=int(cfg.eval.batch_size), workers=int(cfg.eval.workers),
                          tracker_kwargs=tracker_kwargs(cfg, st, pick_device(cfg.device)), resume=bool(cfg.eval.resume))
    track_s = time.perf_counter() - t0
    if cfg.eval.export:
        from unitrack.eval import results as rio

        for fmt in cfg.eval.export:
            for s in seqs:
                boxes = rio.read_results(results / f"{s.name}.txt")
                conf = rio.read_confidences(results / f"{s.name}_confidence.txt") if fmt == "vot" else None
                if fmt == "got10k":
                    rio.export_got10k(out / "got10k", s.name, boxes)
                elif fmt == "vot":
                    rio.export_vot(out / "vot", s.name, boxes, conf)
    metrics, curves = score(seqs, results, protocol=cfg.protocol, return_curves=True)
    metrics["timing"] = {"track_seconds": track_s, "frames": stats["frames"], "frames_per_s": stats["fps"],
                         "total_seconds": time.perf_counter() - t0, "skipped_sequences": stats["skipped"]}
    write_score_outputs(metrics, curves, out)
    print_table(metrics)
    print(f"eval: {stats['frames']} frames in {track_s:.1f} s ({stats['fps']:.1f} frames/s, one pass over "
          f"{len(seqs)} sequences); total {metrics['timing']['total_seconds']:.1f} s -> {out}")
    (out / "eval_timing.json").write_text(json.dumps(metrics["timing"], indent=2))
    return metrics
