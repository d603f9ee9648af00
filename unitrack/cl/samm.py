"""SAMM's dynamic multimodal inference: calibrate each head with a temperature, then weigh heads by
their calibrated confidence, so a missing or noisy modality simply contributes less (or nothing).

For a tracker the "classes" are the N search tokens: a head's softmax over tokens says where the
target is, and the calibration target of a pair is the token holding the ground-truth box centre.

Training side, as SAMM's mmcl.py: consistency on replayed pairs to the stored logits of whichever head
the *current* model gives the highest probability of the true token, regressing the fused head plus
0.01 x each unimodal head (weight 1); temperatures refitted on the whole buffer (fresh crops) at every
stage end; the unimodal task-loss weight 0.01 is `train.unimodal_loss_weight` in serial_samm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unitrack.cl.base import ContinualMethod, forward, zero_like
from unitrack.cl.rehearsal import STORED
from unitrack.errors import ConfigError

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


def grid_of(n_tokens: int) -> int:
    side = int(round(math.sqrt(n_tokens)))
    if side * side != n_tokens:
        raise ValueError(f"score map of {n_tokens} tokens is not a square grid")
    return side


#: Stored buffer key of each head's logits <- model output key (the inverse of rehearsal's STORED).
STORED_OF = {src: key for key, src in STORED.items()}


class Consistency(ContinualMethod):
    """SAMM's dynamic-logit consistency on replayed pairs (mmcl.py): per sample, the stored logits of the
    head that the current model finds most likely at the true token are the target of every head."""

    name = "consistency"
    needs_logits = True

    def __init__(self, weight: float = 1.0, unimodal_weight: float = 0.01):
        self.weight, self.unimodal_weight = float(weight), float(unimodal_weight)

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        if replay_batch is None or replay_out is None or replay_batch.get("logits") is None:
            return zero_like(out), {}
        heads = [k for k in HEADS if replay_out.get(k) is not None and replay_batch.get(STORED_OF[k]) is not None]
        cur = replay_out["score"]
        target_tok = center_token(replay_batch["box"], grid_of(cur.shape[1])).to(cur.device)
        rows = torch.arange(len(target_tok), device=cur.device)
        prob = torch.stack([replay_out[k].detach().float().softmax(-1)[rows, target_tok] for k in heads])  # (H, B)
        stored = torch.stack([replay_batch[STORED_OF[k]].to(cur.device, torch.float32) for k in heads])
        target = stored[prob.argmax(0), rows]  # (B, N)
        parts = {k: F.mse_loss(replay_out[k].float(), target) for k in heads}
        loss = parts["score"] + self.unimodal_weight * sum(v for k, v in parts.items() if k != "score")
        return self.weight * loss, {f"mse_{HEADS[k]}": float(v.detach()) for k, v in parts.items()}


def center_token(box: Tensor, feat_size: int | tuple[int, int]) -> Tensor:
    """Index (row-major) of the search token containing each normalised xyxy box's centre."""
    h, w = (feat_size, feat_size) if isinstance(feat_size, int) else feat_size
    cx = ((box[:, 0] + box[:, 2]) / 2 * w).floor().clamp(0, w - 1)
    cy = ((box[:, 1] + box[:, 3]) / 2 * h).floor().clamp(0, h - 1)
    return (cy * w + cx).long()


class Calibration(ContinualMethod):
    """At every stage end: every buffered pair (freshly cut) through the model in eval mode, then one
    temperature per head fitted on those logits and their true tokens (SAMM's end_task on the buffer)."""

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

    @torch.no_grad()
    def collect_buffer(self, module) -> None:
        """Every buffered pair, freshly cut, through the model in eval mode (SAMM calibrates on the buffer)."""
        from lightning.pytorch.utilities import move_data_to_device

        rh = getattr(module, "rehearsal", None)
        if rh is None or len(rh.buffer) == 0:
            return
        model = module.model
        was = model.training
        model.eval()
        try:
            for batch in rh.all_items():
                batch = move_data_to_device(batch, module.device)
                out = forward(model, batch)
                self.collect(out, center_token(batch["box"], grid_of(out["score"].shape[1])))
        finally:
            model.train(was)

    def end_task(self, module, task, stage):
        self.collect_buffer(module)
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


def eval_samm_kwargs(eval_cfg: Mapping[str, Any], methods) -> dict[str, Any]:
    """Tracker kwargs for the per-stage matrix: SAMM inference with the fitted temperatures when
    `eval.samm=true` (a config error without calibration: T = 1 would not be SAMM)."""
    if not bool(eval_cfg.get("samm", False)):
        return {}
    cal = methods.get("samm") if methods is not None else None
    if cal is None:
        raise ConfigError("eval.samm", "SAMM inference needs fitted temperatures: set cl.samm.fit_temperature=true")
    return inference_kwargs({h: float(cal.temperatures.get(h, 1.0)) for h in HEADS.values()})


def inference_kwargs(temperatures: Mapping[str, float] | None) -> dict[str, Any]:
    """The tracker's `samm` argument: the fitted temperatures (T = 1 for a head without one) and this
    module's combination rule, handed to the tracker so that evaluation does not import training code."""
    temps = {h: 1.0 for h in HEADS.values()} | {h: float(t) for h, t in (temperatures or {}).items()}
    return {"samm": {"temperatures": temps, "combine": combine_heads}}
