"""`model.init=lorat:PATH`: start from a checkpoint in LoRAT's released layout (LitingLin/LoRAT, trackit).

LoRAT's model (trackit/models/methods/LoRAT/lorat.py) keeps the DINOv2 blocks, a search-grid position
table without a class slot, a (3, C) token-type table and an MLP head; its LoRA (modules/lora) wraps every
block linear, and the fused qkv is split into separate q, k, v linears each with its own LoRA. unitrack
has one LoRA on the fused qkv, so the import merges LoRAT's adapters exactly into the base weights,
W + B A * scale (scale = alpha / r, or alpha / sqrt(r) with rsLoRA; alpha = 1 when the file carries no
`lora_alpha`, as LoRAT writes it only when it differs), and stacks q, k, v into the fused qkv; unitrack's
own LoRA then starts fresh on top (peft's B = 0: the imported model computes exactly LoRAT's function).

Key map (LoRAT -> unitrack):
  patch_embed.proj.*                -> vit.patch_embed.proj.*
  pos_embed (1, N, C)               -> the grid part of vit.pos_embed (resized bicubic without antialias,
                                       LoRAT's interpolation, when N differs)
  token_type_embed                  -> token_type
  blocks.i.{norm1,norm2,ls1,ls2}.*  -> vit.blocks.i.*
  blocks.i.attn.qkv.{q,k,v}.(linear.)weight/bias (+ .lora.A/.lora.B) -> vit.blocks.i.attn.qkv (base) merged
  blocks.i.{attn.proj,mlp.fc1,mlp.fc2}.(linear.)weight/bias (+ lora) -> vit.blocks.i.* (base) merged
  norm.*                            -> vit.norm.*
  head.cls_mlp.layers.{0,1,2}.*     -> head.score.{0,2,4}.*;  head.reg_mlp.layers.{0,1,2}.* -> head.box.{0,2,4}.*
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from unitrack.errors import ConfigError

PREFIX = "lorat:"
_LINEAR = re.compile(r"^blocks\.(\d+)\.(attn\.proj|mlp\.fc1|mlp\.fc2)\.(?:linear\.)?(weight|bias)$")
_QKV = re.compile(r"^blocks\.(\d+)\.attn\.qkv\.([qkv])\.(?:linear\.)?(weight|bias)$")
_PLAIN_QKV = re.compile(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$")
_BLOCK_OTHER = re.compile(r"^blocks\.(\d+)\.((?:norm1|norm2|ls1|ls2)\..+)$")
_HEAD = re.compile(r"^head\.(cls_mlp|reg_mlp)\.layers\.(\d)\.(weight|bias)$")


def resample_pos(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(1, n*n, C) position table -> (1, size*size, C): bicubic, align_corners=False, no antialias (LoRAT's
    `interpolate_pos_encoding`; timm's default resampling antialiases when shrinking)."""
    n = int(round(math.sqrt(grid.shape[1])))
    if n == size:
        return grid
    g = grid.reshape(1, n, n, -1).permute(0, 3, 1, 2).float()
    g = F.interpolate(g, size=(size, size), mode="bicubic", align_corners=False, antialias=False)
    return g.permute(0, 2, 3, 1).reshape(1, size * size, -1).to(grid.dtype)


def _merged(sd: dict, base: str) -> torch.Tensor:
    """`base`.weight with its LoRAT LoRA (`base`.lora.A / .B, if any) folded in, in float32."""
    w = sd.pop(f"{base}.linear.weight", None)
    if w is None:
        w = sd.pop(f"{base}.weight")
    a, b = sd.pop(f"{base}.lora.A", None), sd.pop(f"{base}.lora.B", None)
    if a is None or b is None:
        return w
    r = a.shape[0]
    alpha = float(sd.get("lora_alpha", torch.tensor(1.0)))
    scale = alpha / math.sqrt(r) if bool(sd.get("use_rslora", torch.tensor(False))) else alpha / r
    return (w.float() + (b.float() @ a.float()) * scale).to(w.dtype)


def _bias(sd: dict, base: str):
    b = sd.pop(f"{base}.linear.bias", None)
    return sd.pop(f"{base}.bias", None) if b is None else b


def convert(lorat_sd: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(unitrack state dict, LoRAT keys left unmapped). Strips a `module.` prefix (DDP/DeepSpeed saves)."""
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in lorat_sd.items()}
    own = model.state_dict()

    def target(name: str) -> str:  # peft-wrapped linears keep the pre-trained weight under base_layer
        wrapped = name.rsplit(".", 1)
        peft = f"{wrapped[0]}.base_layer.{wrapped[1]}"
        return peft if peft in own else name

    out: dict[str, torch.Tensor] = {}
    blocks = sorted({int(m.group(1)) for k in sd for m in [re.match(r"^blocks\.(\d+)\.", k)] if m})
    for i in blocks:
        if any(_QKV.match(k) for k in sd if k.startswith(f"blocks.{i}.")):
            base = f"blocks.{i}.attn.qkv"
            out[target(f"vit.{base}.weight")] = torch.cat([_merged(sd, f"{base}.{p}") for p in "qkv"])
            biases = [_bias(sd, f"{base}.{p}") for p in "qkv"]
            if all(b is not None for b in biases):
                out[target(f"vit.{base}.bias")] = torch.cat(biases)
        for name in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            base = f"blocks.{i}.{name}"
            if f"{base}.linear.weight" in sd or f"{base}.weight" in sd:
                out[target(f"vit.{base}.weight")] = _merged(sd, base)
                b = _bias(sd, base)
                if b is not None:
                    out[target(f"vit.{base}.bias")] = b
    for k in list(sd):
        m_other, m_head = _BLOCK_OTHER.match(k), _HEAD.match(k)
        if m_other:
            out[f"vit.blocks.{m_other.group(1)}.{m_other.group(2)}"] = sd.pop(k)
        elif m_head:
            part = "score" if m_head.group(1) == "cls_mlp" else "box"
            out[f"head.{part}.{2 * int(m_head.group(2))}.{m_head.group(3)}"] = sd.pop(k)
        elif k.startswith("patch_embed.proj.") or k.startswith("norm."):
            out[f"vit.{k}"] = sd.pop(k)
        elif k == "token_type_embed":
            out["token_type"] = sd.pop(k)
        elif k == "pos_embed":
            pos = own["vit.pos_embed"].clone()
            prefix = pos.shape[1] - model.feat_size ** 2
            grid = resample_pos(sd.pop(k), model.feat_size)
            if grid.shape[-1] != pos.shape[-1]:
                raise ConfigError("model.init", f"LoRAT pos_embed width {grid.shape[-1]} vs model {pos.shape[-1]}")
            pos[:, prefix:] = grid
            out["vit.pos_embed"] = pos
    sd.pop("lora_alpha", None)
    sd.pop("use_rslora", None)
    return out, sorted(sd)


def is_model_initialised(key: str) -> bool:
    """unitrack keys a LoRAT file never holds: the fresh LoRA, the unused prefix tokens."""
    return ".lora_" in key or key in ("vit.cls_token", "vit.reg_token", "vit.mask_token")
