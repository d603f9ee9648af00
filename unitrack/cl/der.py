"""DER++: replayed pairs must reproduce the score logits the model gave them when they entered the buffer.

L = L_task + alpha * MSE(f(x_b), z_b) + beta * L_task(x'_b, y'_b), with two independent buffer draws.
The Lightning module computes both task losses (it owns the tracking loss); this method returns the
alpha term and tells the data side, through `needs_logits`, to store logits with each buffer item.

With target='most_confident' the stored target is, per sample, whichever stored head (fused, RGB, X)
was most confident when stored: SAMM's consistency on replayed samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unitrack.cl.base import ContinualMethod, zero_like

#: Buffer-item key <- model output key. Per-modality heads are stored only when the model emits them.
STORED = {"logits": "score", "logits_rgb": "score_rgb", "logits_x": "score_x"}


def store_logits(items: list[dict[str, Any]], out: Mapping[str, Tensor]) -> list[dict[str, Any]]:
    """Attach the (detached, CPU, float32) score logits of batch row i to items[i]; returns items."""
    heads = {key: out[src].detach().float().cpu() for key, src in STORED.items() if out.get(src) is not None}
    if "logits" not in heads:
        raise KeyError("model output has no 'score' to store")
    if len(items) != heads["logits"].shape[0]:
        raise ValueError(f"{len(items)} items for a batch of {heads['logits'].shape[0]} outputs")
    for i, item in enumerate(items):
        for key, value in heads.items():
            item[key] = value[i].clone()
    return items


def most_confident(stored: Mapping[str, Tensor]) -> Tensor:
    """Per sample, the stored logits (B, N) of the head whose softmax peak is highest."""
    heads = [v for v in stored.values() if v is not None]
    stack = torch.stack(heads)  # (H, B, N)
    conf = stack.float().softmax(dim=-1).amax(dim=-1)  # (H, B)
    best = conf.argmax(dim=0)  # (B,)
    return stack[best, torch.arange(stack.shape[1], device=stack.device)]


class DERpp(ContinualMethod):
    name = "der"
    needs_logits = True
    TARGETS = ("fused", "most_confident")

    def __init__(self, alpha: float, beta: float = 0.0, target: str = "fused"):
        if target not in self.TARGETS:
            raise ValueError(f"DER++ target must be one of {self.TARGETS}, got {target!r}")
        self.alpha, self.beta, self.target = float(alpha), float(beta), target

    @property
    def needs_second_draw(self) -> bool:
        """The module should compute beta * task loss on a second, independent buffer draw."""
        return self.beta > 0

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        if self.alpha == 0 or replay_batch is None or replay_out is None:
            return zero_like(out), {}
        if replay_batch.get("logits") is None:
            raise KeyError("DER++ needs replay_batch['logits'] (B, N): store them with store_logits()")
        if self.target == "most_confident":
            target = most_confident({k: replay_batch.get(k) for k in STORED})
        else:
            target = replay_batch["logits"]
        current = replay_out["score"]
        mse = F.mse_loss(current.float(), target.to(current.device, torch.float32))
        return self.alpha * mse, {"mse": float(mse.detach())}
