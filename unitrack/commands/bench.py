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


def bench_train(cfg: DictConfig, device: str) -> dict:
    """DataModule pairs/s (default workers) vs the training step's consumption in pairs/s.

    `bench.amp` runs the step under bf16 autocast on CUDA (what `trainer.precision=bf16-mixed` does);
    `bench.train_sequences` > 0 trains on that many freshly generated sequences per task instead of
    `data.root` (the GPU check: no dataset needed)."""
    from hydra.utils import instantiate

    from unitrack.data.datamodule import UnitrackDataModule, stage_plans
    from unitrack.data.synth import ensure_default, generate
    from unitrack.eval.tracker import amp_autocast
    from unitrack.train.module import UnitrackModule

    b = int(cfg.bench.train_batch)
    data_cfg = cfg.data.copy()
    n_gen = int(cfg.bench.get("train_sequences", 0))
    tmp = tempfile.TemporaryDirectory() if n_gen > 0 else None
    if tmp is not None:
        gen = generate(Path(tmp.name) / "data", seed=int(cfg.seed), sequences=n_gen, test_sequences=1,
                       frames=int(cfg.bench.eval_frames), rgb_sequences=0)
        for t in data_cfg.tasks:  # the synthetic layout: <root>/<dataset>
            data_cfg.tasks[t].root = str(gen / data_cfg.tasks[t].dataset)
    else:
        ensure_default(Path(cfg.data.root), cfg.data.get("synth"))
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

    amp = bool(cfg.bench.get("amp", False)) and device.startswith("cuda")

    def step(batch):
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with amp_autocast(torch.device(device), amp):
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
    if tmp is not None:
        tmp.cleanup()
    return {"train_amp": amp, "loader_pairs_per_s": loader_pps, "train_pairs_per_s": train_pps,
            "loader_over_train": loader_pps / train_pps, "loader_workers": int(data_cfg.num_workers),
            "train_batch": b}


def run(cfg: DictConfig) -> dict:
    """Measure the parts in `cfg.parts` (model, data, train, eval) in one process and write bench.json."""
    from unitrack.eval import bench as eb
    from unitrack.model.bench import bench_model

    device = pick_device(cfg.device)
    torch.manual_seed(int(cfg.seed))
    b = cfg.bench
    amp = bool(b.get("amp", False))
    res: dict = {"model": cfg.model.name, "device": device, "device_name": torch.cuda.get_device_name()
                 if device == "cuda" else platform.processor() or platform.machine(),
                 "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                 "amp": amp}
    parts = list(cfg.parts)
    if "model" in parts:
        res.update(bench_model(cfg.model, batch_size=int(b.train_batch), steps=int(b.model_steps), device=device,
                               amp=amp))
        if b.compare_finetune:
            from unitrack.model.bench import compare_finetune

            cmp = compare_finetune(cfg.model, batch_size=int(b.train_batch), steps=2, device=device, amp=amp)
            res.update({"full_train_peak_mem_mb": cmp["full"]["train_peak_mem_mb"],
                        "full_train_step_ms": cmp["full"]["train_step_ms"],
                        "lora_over_full_mem": cmp["mem_ratio_lora_over_full"],
                        "lora_over_full_time": cmp["time_ratio_lora_over_full"]})
        if device == "cuda" and b.gpu_fps:  # LoRAT's protocol: fp32, and fp16 autocast as LoRAT reports it
            from unitrack.model.bench import gpu_fps

            res.update({f"gpu_{k}": v for k, v in gpu_fps(cfg.model).items()})
            res.update({f"gpu_fp16_{k}": v for k, v in gpu_fps(cfg.model, amp=True).items() if k in ("fps", "ms")})
    if "data" in parts:
        res.update(eb.bench_decode(tuple(b.decode_size), int(b.decode_frames), int(cfg.seed),
                                   kinds=list(b.get("decode_kinds") or []), workers=list(b.get("decode_workers") or [1]),
                                   device=device))
    if "train" in parts:
        res.update(bench_train(cfg, device))
    if "eval" in parts:
        from hydra.utils import instantiate

        ev = eb.bench_eval(instantiate(cfg.model).eval(), int(b.eval_sequences), int(b.eval_frames), int(cfg.seed),
                           device, int(b.eval_batch_size), int(b.eval_workers), decode=str(b.get("eval_decode", "thread")),
                           model_iters=int(b.model_iters), repeats=int(b.repeats), e2e=bool(b.get("e2e", True)),
                           compare=list(b.get("eval_decode_compare") or []))
        res.update(ev)
        if "e2e_fps" in ev:
            res["e2e_over_model"] = ev["e2e_fps"] / ev["model_fps"]
        res["batched_over_sequential"] = ev["eval_batched_fps"] / ev["eval_sequential_fps"]
        # batching's ceiling: the per-frame forward at the eval batch size over the same at batch 1
        res["model_batched_over_model"] = ev["model_batched_fps"] / ev["model_per_frame_fps"]
        res.update(eb.decode_workers_needed(res))
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
