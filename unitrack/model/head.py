"""LoRAT's MLP-only, anchor-free head (no convolutions: their locality bias converges badly under LoRA).

Two separate 3-layer MLPs act on every search token: one gives a score logit, the other four sigmoid
distances (left, top, right, bottom) from the token's cell centre, as fractions of the search crop.
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))


class MlpHead(nn.Module):
    """tokens (B, H*W, C) of the search grid -> score (B, N) logits and box (B, N, 4) normalised xyxy."""

    def __init__(self, dim: int, feat_size: int):
        super().__init__()
        self.feat_size = feat_size
        self.score = _mlp(dim, 1)
        self.box = _mlp(dim, 4)
        idx = (torch.arange(feat_size, dtype=torch.float32) + 0.5) / feat_size
        cy, cx = torch.meshgrid(idx, idx, indexing="ij")
        self.register_buffer("centre", torch.stack([cx, cy], -1).flatten(0, 1), persistent=False)  # (N, 2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = self.score(tokens).squeeze(-1)
        ltrb = self.box(tokens).float().sigmoid()
        c = self.centre.to(ltrb.dtype)
        box = torch.cat([c - ltrb[..., :2], c + ltrb[..., 2:]], dim=-1)
        if not self.training:  # clamp only at inference: clamping in training would kill border gradients
            box = box.clamp(0.0, 1.0)
        return score, box
