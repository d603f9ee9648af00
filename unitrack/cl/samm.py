"""SAMM's dynamic multimodal inference: calibrate each head with a temperature, then weigh heads by
their calibrated confidence, so a missing or noisy modality simply contributes less (or nothing).

For a tracker the "classes" are the N search tokens: a head's softmax over tokens says where the
target is, and the calibration target of a pair is the token holding the ground-truth box centre.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unitrack.cl.base import ContinualMethod

#: Model output key -> head name used for temperatures.
HEADS = {"score": "fused", "score_rgb": "rgb", "score_x": "x"}


def fit_temperature(logits: Tensor, targets: Tensor, init: float = 1.5, max_iter: int = 50) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) at the target tokens (LBFGS).

    T is optimised through log T so it stays positive.
    """
    if logits.dim() != 2 or targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"expected logits (M, N) and targets (M,), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("cannot fit a temperature on zero samples")
    if init <= 0:
        raise ValueError(f"initial temperature must be > 0, got {init}")
    z = logits.detach().float()
    y = targets.detach().long().to(z.device)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"target token indices must lie in [0, {z.shape[1]}), got [{int(y.min())}, {int(y.max())}]")
    log_t = torch.tensor(math.log(init), device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return float(log_t.detach().exp())


def combine_heads(scores: Mapping[str, Tensor | None], temperatures: Mapping[str, float]) -> Tensor:
    """sum_m conf_m * z_m / T_m with conf_m = max softmax(z_m / T_m) per sample.

    Heads absent from `scores` (or None: a dropped modality) are skipped; a head without a fitted
    temperature uses T = 1.
    """
    total = None
    for name, z in scores.items():
        if z is None:
            continue
        scaled = z.float() / float(temperatures.get(name, 1.0))
        conf = scaled.softmax(dim=-1).amax(dim=-1, keepdim=True)
        total = conf * scaled if total is None else total + conf * scaled
    if total is None:
        raise ValueError("combine_heads needs at least one head's scores")
    return total


def center_token(box: Tensor, feat_size: int | tuple[int, int]) -> Tensor:
    """Index (row-major) of the search token containing each normalised xyxy box's centre."""
    h, w = (feat_size, feat_size) if isinstance(feat_size, int) else feat_size
    cx = ((box[:, 0] + box[:, 2]) / 2 * w).floor().clamp(0, w - 1)
    cy = ((box[:, 1] + box[:, 3]) / 2 * h).floor().clamp(0, h - 1)
    return (cy * w + cx).long()


class Calibration(ContinualMethod):
    """Collects per-head logits with their target tokens during a task (the module calls `collect`,
    e.g. on replayed or validation pairs) and fits one temperature per head at the task's end."""

    name = "samm"

    def __init__(self, init: float = 1.5, max_samples: int = 4096, max_iter: int = 50):
        self.init, self.max_samples, self.max_iter = float(init), int(max_samples), int(max_iter)
        self.temperatures: dict[str, float] = {}
        self._logits: dict[str, list[Tensor]] = {}
        self._targets: list[Tensor] = []

    def collected(self) -> int:
        return sum(len(t) for t in self._targets)

    def collect(self, out: Mapping[str, Tensor], targets: Tensor) -> None:
        """Keep the heads' logits of a batch (detached, CPU) until `max_samples` pairs are held."""
        room = self.max_samples - self.collected()
        if room <= 0:
            return
        for key, head in HEADS.items():
            if out.get(key) is not None:
                self._logits.setdefault(head, []).append(out[key][:room].detach().float().cpu())
        self._targets.append(targets[:room].detach().long().cpu())

    def begin_task(self, module, task, stage):
        self._logits, self._targets = {}, []

    def end_task(self, module, task, stage):
        if not self._targets:
            return
        y = torch.cat(self._targets)
        for head, chunks in self._logits.items():
            z = torch.cat(chunks)
            if len(z) == len(y):  # a head present in only some batches cannot be paired with targets
                self.temperatures[head] = fit_temperature(z, y, self.init, self.max_iter)
        self._logits, self._targets = {}, []

    def combine(self, out: Mapping[str, Tensor]) -> Tensor:
        """Confidence-weighted score map from whichever heads `out` has."""
        return combine_heads({HEADS[k]: out.get(k) for k in HEADS if out.get(k) is not None},
                             self.temperatures)

    def state_dict(self) -> dict[str, Any]:
        return {"temperatures": dict(self.temperatures)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.temperatures = {str(k): float(v) for k, v in state["temperatures"].items()}
