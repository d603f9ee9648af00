"""`unitrack bench`: model, data, training and evaluation speed in ONE run (ratios are comparable)."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from unitrack.commands import pick_device, run_dir

console = Console()


def bench_decode(size: tuple[int, int], frames: int, seed: int) -> dict:
    """frames/s of decode + X rendering (JPEG colour + 16-bit depth PNG -> JET) of one RGBD sequence."""
    from unitrack.data.formats import load_dataset
    from unitrack.data.sequence import load_frame
    from unitrack.data.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "d", seed=seed, sequences=1, test_sequences=1, frames=frames, size=size,
                        rgb_sequences=0)
        seq = load_dataset("depthtrack", root / "depthtrack", split="train")[0]
        load_frame(seq, 0)
        t0 = time.perf_counter()
        for i in range(len(seq)):
            load_frame(seq, i)
        dt = time.perf_counter() - t0
    return {"decode_fps": len(seq) / dt, "decode_size": list(size), "decode_frames": len(seq)}


def bench_train(cfg: DictConfig, device: str) -> dict:
    """DataModule pairs/s (default workers) vs the training step's consumption in pairs/s."""
    from hydra.utils import instantiate

    from unitrack.data.datamodule import UnitrackDataModule, stage_plans
    from unitrack.data.synth import ensure_default
    from unitrack.train.module import UnitrackModule

    ensure_default(Path(cfg.data.root))
    b = int(cfg.bench.train_batch)
    data_cfg = cfg.data.copy()
    data_cfg.batch_size = b
    model = instantiate(cfg.model).to(device)
    geo = {k: getattr(model, k) for k in ("template_size", "search_size", "template_factor", "search_factor",
                                           "feat_size")}
    dm = UnitrackDataModule(data_cfg, geo, seed=int(cfg.seed))
    train_cfg = OmegaConf.create({"mode": "single", "order": ["rgbt"], "steps_per_stage": 1000,
                                  "parallel_steps_factor": 1})
    plan = stage_plans(train_cfg, OmegaConf.create({"kind": "none", "ratio": 0.0}), data_cfg.ratios)[0]
    dm.set_stage(plan)
    loader = dm.train_dataloader()
    it = iter(loader)
    batches = [next(it)]  # workers started
    t0 = time.perf_counter()
    for _ in range(int(cfg.bench.loader_batches)):
        batches.append(next(it))
    loader_pps = int(cfg.bench.loader_batches) * b / (time.perf_counter() - t0)
    del it
    optim = OmegaConf.create({"lr": 1e-4, "weight_decay": 0.05, "betas": [0.9, 0.999], "warmup_fraction": 0.0,
                              "min_lr_ratio": 0.0})
    module = UnitrackModule(model, optim).to(device)
    module.log_dict = lambda *a, **k: None  # no trainer attached: logging is not what we time
    module.log = lambda *a, **k: None
    opt = module.configure_optimizers()["optimizer"]

    def step(batch):
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        loss = module.training_step(batch, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])
    n = min(int(cfg.bench.train_steps), len(batches) - 1)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for bt in batches[1:n + 1]:
        step(bt)
    if device == "cuda":
        torch.cuda.synchronize()
    train_pps = n * b / (time.perf_counter() - t0)
    return {"loader_pairs_per_s": loader_pps, "train_pairs_per_s": train_pps,
            "loader_over_train": loader_pps / train_pps, "loader_workers": int(data_cfg.num_workers),
            "train_batch": b}


def bench_eval(cfg: DictConfig, device: str) -> dict:
    """Sequential vs one-pass batched evaluation on a generated benchmark of `bench.eval_sequences`
    synthetic test sequences (a third per task), so the batch can be as wide as a real benchmark's."""
    from hydra.utils import instantiate

    from unitrack.data.formats import load_dataset
    from unitrack.data.synth import generate
    from unitrack.eval.runner import speed_report

    n = int(cfg.bench.eval_sequences)
    model = instantiate(cfg.model).eval()
    with tempfile.TemporaryDirectory() as tmp:
        # 160x120, as the figures in docs/benchmarks.md were measured (the default world grew to 320x240)
        root = generate(Path(tmp) / "bench_data", seed=int(cfg.seed), sequences=1, test_sequences=-(-n // 3),
                        frames=int(cfg.bench.eval_frames), size=(160, 120), rgb_sequences=0)
        seqs = load_dataset("manifest", root / "unibench.txt")[:n]
        return speed_report(model, seqs, Path(tmp) / "eval", batch_size=int(cfg.bench.eval_batch_size),
                            workers=int(cfg.bench.eval_workers), tracker_kwargs={"device": device},
                            model_iters=int(cfg.bench.model_iters), repeats=int(cfg.bench.repeats))


def run(cfg: DictConfig) -> dict:
    from unitrack.model.bench import bench_model

    device = pick_device(cfg.device)
    torch.manual_seed(int(cfg.seed))
    res: dict = {"model": cfg.model.name, "device": device, "device_name": torch.cuda.get_device_name()
                 if device == "cuda" else platform.processor() or platform.machine(),
                 "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    parts = list(cfg.parts)
    if "model" in parts:
        res.update(bench_model(cfg.model, batch_size=int(cfg.bench.train_batch), steps=int(cfg.bench.model_steps),
                               device=device))
        if cfg.bench.compare_finetune:
            from unitrack.model.bench import compare_finetune

            cmp = compare_finetune(cfg.model, batch_size=int(cfg.bench.train_batch), steps=2, device=device)
            res.update({"full_train_peak_mem_mb": cmp["full"]["train_peak_mem_mb"],
                        "full_train_step_ms": cmp["full"]["train_step_ms"],
                        "lora_over_full_mem": cmp["mem_ratio_lora_over_full"],
                        "lora_over_full_time": cmp["time_ratio_lora_over_full"]})
        if device == "cuda" and cfg.bench.gpu_fps:
            from unitrack.model.bench import gpu_fps

            res.update({f"gpu_{k}": v for k, v in gpu_fps(cfg.model).items()})
    if "data" in parts:
        res.update(bench_decode(tuple(cfg.bench.decode_size), int(cfg.bench.decode_frames), int(cfg.seed)))
    if "train" in parts:
        res.update(bench_train(cfg, device))
    if "eval" in parts:
        ev = bench_eval(cfg, device)
        res.update(ev)
        res["e2e_over_model"] = ev["e2e_fps"] / ev["model_fps"]
        res["batched_over_sequential"] = ev["eval_batched_fps"] / ev["eval_sequential_fps"]
        # batching's ceiling: the per-frame forward at the eval batch size over the same at batch 1
        res["model_batched_over_model"] = ev["model_batched_fps"] / ev["model_per_frame_fps"]
    table = Table(title=f"unitrack bench: {res['model']} on {device} ({res['device_name']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in res.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    out = run_dir() / "bench.json"
    out.write_text(json.dumps({k: (float(v) if isinstance(v, np.floating) else v) for k, v in res.items()},
                              indent=2, default=str))
    console.print(f"wrote {out}")
    return res
