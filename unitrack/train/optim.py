"""AdamW without weight decay on 1-D parameters and embeddings, cosine schedule with linear warm-up."""

from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or "embed" in name or name.endswith(".bias") or "token_type" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def cosine_with_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int,
                       min_lr_ratio: float = 0.0, offset: int = 0,
                       warmup_start_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped per iteration, as LoRAT does; `offset` steps of it are already behind (train.schedule=
    continue: one schedule over all stages, each stage's scheduler starting where the last one stopped).

    Warm-up: the factor rises linearly from `warmup_start_ratio` (r) to 1, r + (1 - r)(step + 1)/warm, so
    r = 0 is the ramp from 0 (and bit-identical to it); LoRAT (timm warmup_lr 1e-7 of lr 1e-4) is r = 1e-3."""
    total, warm = max(1, total_steps), max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warm:
            return warmup_start_ratio + (1 - warmup_start_ratio) * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step + offset))
