"""SAMM's distance-wise relational KD between the RGB and X outputs of the same samples.

Each modality should arrange the batch the same way: pairwise distances of the L2-normalised features,
divided by their mean non-zero value (so only the shape of the arrangement counts, not its scale), are
pulled together with SmoothL1 in both directions, each direction stopping the gradient of its target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unitrack.cl.base import ContinualMethod, zero_like

#: SAMM: loss weight 25, scaled by 0.01 relative to the main loss.
DEFAULT_WEIGHT = 25 * 0.01


def relative_distances(feat: Tensor, eps: float = 1e-12) -> Tensor | None:
    """psi_ij = ||x_i - x_j|| / mean of the non-zero distances, for L2-normalised rows; None if all zero."""
    x = F.normalize(feat.flatten(1).float(), dim=1)
    diff = x.unsqueeze(0) - x.unsqueeze(1)
    # clamp before sqrt so coincident points (the diagonal) do not produce NaN gradients
    d = diff.pow(2).sum(-1).clamp(min=eps).sqrt()
    d = d * (1 - torch.eye(len(x), device=x.device, dtype=d.dtype))
    nonzero = d > eps**0.5
    if not nonzero.any():
        return None
    return d / d[nonzero].mean()


def rkd_distance(src: Tensor, tgt: Tensor) -> Tensor:
    """SmoothL1(psi(src), psi(stopgrad(tgt))); 0 for a batch too small or degenerate to have a shape."""
    if src.shape[0] < 2:
        return src.new_zeros((), dtype=torch.float32)
    ps, pt = relative_distances(src), relative_distances(tgt.detach())
    if ps is None or pt is None:
        return src.new_zeros((), dtype=torch.float32)
    return F.smooth_l1_loss(ps, pt)


def rkd_loss(feat_rgb: Tensor, feat_x: Tensor) -> Tensor:
    """Both directions: RGB pulled towards X's structure and X towards RGB's."""
    return rkd_distance(feat_rgb, feat_x) + rkd_distance(feat_x, feat_rgb)


def _pair(out) -> tuple[Tensor, Tensor] | None:
    """SAMM aligns the unimodal classifier outputs (score maps); a fused-only model offers its RGB and X
    features instead."""
    for a, b in (("score_rgb", "score_x"), ("feat_rgb", "feat_x")):
        if out is not None and out.get(a) is not None and out.get(b) is not None:
            return out[a], out[b]
    return None


class RKD(ContinualMethod):
    """Active in every stage (it aligns modalities rather than guarding old tasks). As in SAMM's mmcl.py
    the current rows and the replayed rows are two separate relational matrices, their losses summed."""

    name = "rkd"

    def __init__(self, weight: float = DEFAULT_WEIGHT):
        self.weight = float(weight)

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        total, logs = zero_like(out), {}
        for part, o in (("current", out), ("replay", replay_out)):
            pair = _pair(o)
            if pair is None:
                continue
            loss = rkd_loss(*pair)
            total = total + self.weight * loss
            logs[f"distance_{part}"] = float(loss.detach())
        return total, logs
