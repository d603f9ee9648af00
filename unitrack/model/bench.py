"""Model benchmark: parameters, inference latency against the bare ViT, training step time and memory.

* forward_ms: median batch-1 forward of the MERGED model (LoRA folded in, eval, inference mode), after
  warm-up; backbone_forward_ms: the same-sized bare timm ViT (patch embedding of both crops, all blocks,
  final norm; no token types, X branch or heads) over the same tokens in the same run. Their ratio is the
  tracker's overhead (LoRAT claims ~1: merged LoRA costs nothing at inference).
* train_step_ms: median forward + LoRAT loss + backward + AdamW step at ``batch_size``, for the
  configured finetune mode (mixed-modality batch, so per-modality experts pay their routing cost).
* train_peak_mem_mb: peak memory of one steady-state training step. On CUDA it is
  ``torch.cuda.max_memory_allocated``. On CPU torch keeps no allocator statistics, so it is the sum of the
  persistent tensors (parameters, buffers, optimiser state) plus the peak of the bytes that the CPU
  allocator reports live during the step (activations, gradients, temporaries), read from the torch
  profiler's memory events. Both count tensor memory only (no allocator caching, no library workspaces).
  RSS figures (VmHWM) were rejected: malloc keeps freed pages, so two runs in one process do not compare.
* gpu_fps: LoRAT's protocol, batch 1, 10 warm-up + 100 timed forwards, CUDA events.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from collections.abc import Callable, Mapping

import torch
from omegaconf import DictConfig, OmegaConf

from unitrack.model.experts import MODALITIES
from unitrack.model.lorat import LoRATTracker, _plain, build_model, create_backbone
from unitrack.model.loss import lorat_loss


def _make(cfg_model: Mapping | DictConfig, device: str, **over) -> LoRATTracker:
    """The model with random weights (timing does not need DINOv2, and must not download it)."""
    cfg = OmegaConf.merge(OmegaConf.create(dict(cfg_model) if not isinstance(cfg_model, DictConfig) else cfg_model),
                          {"pretrained": False, "weights": None}, over)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model(cfg).to(device)


def _inputs(m: LoRATTracker, b: int, device: str, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    t, s = m.template_size, m.search_size

    def img(size):
        return torch.rand(b, 3, size, size, generator=g).to(device)

    z_box = torch.tensor([[0.25, 0.25, 0.75, 0.75]]).repeat(b, 1).to(device)
    modality = [MODALITIES[i % len(MODALITIES)] for i in range(b)]
    return img(t), img(t), img(s), img(s), z_box, modality


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _median_ms(fn: Callable[[], object], steps: int, warmup: int, device: str) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _peak_step_bytes(step: Callable[[], object], model, opt, device: str) -> int:
    """Peak tensor bytes during one call of ``step`` (see the module docstring for the definition)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    static = _tensor_bytes(model.parameters()) + _tensor_bytes(model.buffers())
    static += _tensor_bytes(v for st in opt.state.values() for v in st.values())
    static += _tensor_bytes(p.grad for p in model.parameters() if p.grad is not None)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    # Raw allocator records (+bytes on allocation, -bytes on free), in time order.
    deltas = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, d in deltas:
        live += d
        peak = max(peak, live)
    return static + peak


def _train_step_fn(m: LoRATTracker, batch: tuple, gt: torch.Tensor, amp: bool = False):
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    m.train()
    dev = next(m.parameters()).device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp and dev.type == "cuda" \
        else contextlib.nullcontext  # bf16-mixed, as trainer.precision=bf16-mixed trains on a GPU

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = m(*batch)
            loss, _ = lorat_loss(out["score"], out["box"], gt, m.feat_size)
        loss.backward()
        opt.step()

    return step, opt


def train_step(cfg_model, batch_size: int = 32, steps: int = 5, warmup: int = 2, device: str = "cpu",
               amp: bool = False, **over) -> dict:
    """train_step_ms and train_peak_mem_mb for ``cfg_model`` (``over`` overrides config keys)."""
    m = _make(cfg_model, device, **over)
    batch = _inputs(m, batch_size, device)
    gt = torch.tensor([[0.4, 0.35, 0.6, 0.7]]).repeat(batch_size, 1).to(device)
    step, opt = _train_step_fn(m, batch, gt, amp)
    ms = _median_ms(step, steps, warmup, device)
    peak = _peak_step_bytes(step, m, opt, device)
    counts = m.param_counts()
    return {"train_step_ms": ms, "train_peak_mem_mb": peak / 2**20, "params_total": counts["total"],
            "params_trainable": counts["trainable"]}


@torch.inference_mode()
def forward_latency(cfg_model, steps: int = 20, warmup: int = 5, device: str = "cpu") -> dict:
    """Batch-1 latency of the merged tracker and of the bare timm ViT over the same tokens."""
    m = _make(cfg_model, device).merge("thermal").eval()
    z, zx, x, xx, z_box, _ = _inputs(m, 1, device)
    tracker_ms = _median_ms(lambda: m(z, zx, x, xx, z_box, ["thermal"]), steps, warmup, device)
    cfg = OmegaConf.create(cfg_model) if not isinstance(cfg_model, DictConfig) else cfg_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vit = create_backbone(cfg.backbone, False, None, m.search_size,
                              _plain(cfg.get("backbone_kwargs"))).to(device).eval()
    vit.patch_embed.strict_img_size = False

    def bare():
        return vit.norm(vit.blocks(torch.cat([vit.patch_embed(z), vit.patch_embed(x)], 1)))

    backbone_ms = _median_ms(bare, steps, warmup, device)
    return {"forward_ms": tracker_ms, "backbone_forward_ms": backbone_ms, "ratio": tracker_ms / backbone_ms}


@contextlib.contextmanager
def _threads(n: int | None):
    """Optionally pin torch's CPU threads: on a loaded machine OpenMP spin-waits make 2 threads ~10x slower."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bench_model(cfg_model, batch_size: int = 32, steps: int = 5, device: str = "cpu",
                threads: int | None = None, amp: bool = False) -> dict:
    """All figures of the module docstring for one model config (`amp`: bf16 training step on CUDA)."""
    with _threads(threads):
        out = train_step(cfg_model, batch_size=batch_size, steps=steps, device=device, amp=amp)
        out.update(forward_latency(cfg_model, steps=max(steps, 10), device=device))
    out.update(batch_size=batch_size, device=str(device), finetune=str(dict(cfg_model)["finetune"]),
               threads=torch.get_num_threads() if threads is None else threads)
    return out


def compare_finetune(cfg_model, batch_size: int = 8, steps: int = 3, device: str = "cpu",
                     threads: int | None = None, amp: bool = False) -> dict:
    """LoRA vs full fine-tuning at the same batch: step time, peak memory and their ratios."""
    with _threads(threads):
        lora = train_step(cfg_model, batch_size, steps, device=device, amp=amp, finetune="lora", experts="shared")
        full = train_step(cfg_model, batch_size, steps, device=device, amp=amp, finetune="full", experts="shared")
    return {
        "lora": lora,
        "full": full,
        "mem_ratio_lora_over_full": lora["train_peak_mem_mb"] / full["train_peak_mem_mb"],
        "time_ratio_lora_over_full": lora["train_step_ms"] / full["train_step_ms"],
    }


@torch.inference_mode()
def gpu_fps(cfg_model, amp: bool = False) -> dict:
    """LoRAT's speed protocol on CUDA: merged model, batch 1, 10 warm-up + 100 timed, CUDA events."""
    if not torch.cuda.is_available():
        raise RuntimeError("gpu_fps needs CUDA")
    m = _make(cfg_model, "cuda").merge("thermal").eval()
    z, zx, x, xx, z_box, _ = _inputs(m, 1, "cuda")
    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        for _ in range(10):
            m(z, zx, x, xx, z_box, ["thermal"])
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(100):
            m(z, zx, x, xx, z_box, ["thermal"])
        end.record()
        torch.cuda.synchronize()
    ms = start.elapsed_time(end) / 100
    return {"fps": 1e3 / ms, "ms": ms, "amp": amp, "device": torch.cuda.get_device_name()}


if __name__ == "__main__":  # python -m unitrack.model.bench conf/model/lorat_tiny.yaml [batch] [threads]
    import json
    import sys

    cfg = OmegaConf.load(sys.argv[1])
    b = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    n = int(sys.argv[3]) if len(sys.argv) > 3 else None
    res = {"bench": bench_model(cfg, batch_size=b, threads=n),
           "compare_finetune": compare_finetune(cfg, batch_size=b, threads=n)}
    print(json.dumps(res, indent=1, default=float))
