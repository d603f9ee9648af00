"""Branch X: how the X modality (thermal, depth or event image) enters the one-stream RGB tracker.

Design (in the spirit of ViPT's modality-complementary prompters and the serial-unification paper's
"branch X" whose depth is the capacity knob):

* X crops get their own patch embedding, initialised as a copy of the (pre-trained) RGB one, plus the
  same shared position encoding and token-type embedding as the RGB tokens, so X token i sits at the
  same place as RGB token i (template tokens first, then search tokens).
* ``depth`` D = number of backbone blocks at which X is injected: the LAST D blocks (late fusion). Before
  each of those blocks a small prompter fuses the current RGB-stream tokens h and the X tokens u through
  a ``dim``-wide bottleneck:

      a = W_r LN(h)                  (RGB projection)
      a = a * n * softmax_tokens(t * a)   ("fovea": per-channel spatial attention, per image)
      b = W_x LN(u)                  (X projection)
      h <- h + U_h (a + b)           (prompt added to the RGB stream; U_h zero-initialised, so at
                                      initialisation the tracker is exactly the RGB LoRAT)
      u <- u + U_x GELU(a + b)       (light per-block refinement of the X tokens)

* Late fusion gives a *pre-fusion RGB stream for free*: the tokens entering the first prompted block
  (the embedded tokens when D equals the backbone depth). The RGB-only head and ``feat_rgb`` use them
  after the backbone's final norm; the X-only head and ``feat_x`` use the refined X tokens after the
  branch's own norm. No extra backbone pass is needed.
* D = 0 means RGB only: no X parameters exist and the X inputs are ignored.

The branch is shared by all X modalities (it is the "unified" part); modality-specific capacity lives in
the LoRA experts (experts.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class Prompter(nn.Module):
    """One fusion step before a backbone block: returns (RGB tokens + X prompt, refined X tokens)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm_rgb = nn.LayerNorm(dim)
        self.norm_x = nn.LayerNorm(dim)
        self.down_rgb = nn.Linear(dim, hidden)
        self.down_x = nn.Linear(dim, hidden)
        self.fovea_t = nn.Parameter(torch.ones(hidden))
        self.up_rgb = nn.Linear(hidden, dim)
        self.up_x = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up_rgb.weight)
        nn.init.zeros_(self.up_rgb.bias)

    def _fovea(self, a: torch.Tensor, splits: list[int]) -> torch.Tensor:
        parts = []
        for seg in a.split(splits, dim=1):  # template and search are separate images
            # softmax over the tokens taken on the last dim: torch's CPU softmax over a middle dim rounds
            # differently at batch 1 than in a batch, the last-dim kernel gives every row the same bits
            w = torch.softmax((seg * self.fovea_t).transpose(1, 2).contiguous(), dim=-1).transpose(1, 2) * seg.shape[1]
            parts.append(seg * w)
        return torch.cat(parts, dim=1)

    def forward(self, h: torch.Tensor, u: torch.Tensor, splits: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        a = self._fovea(self.down_rgb(self.norm_rgb(h)), splits)
        f = a + self.down_x(self.norm_x(u))
        return h + self.up_rgb(f), u + self.up_x(nn.functional.gelu(f))


class XBranch(nn.Module):
    """X patch embedding + one prompter per fused block + the final norm of the X tokens."""

    def __init__(self, rgb_patch_embed: nn.Module, dim: int, depth: int, hidden: int):
        super().__init__()
        self.depth = depth
        self.patch_embed = copy.deepcopy(rgb_patch_embed)
        self.prompters = nn.ModuleList(Prompter(dim, hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
