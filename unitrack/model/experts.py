"""LoRA experts on the ViT blocks (peft), hard-routed by each sample's X modality (MoDE-style).

LoRAT puts LoRA on every linear layer of every block. Here every such layer can hold several named
adapters (peft "adapters" = our "experts"):

* ``shared``: one adapter used by all samples (plain LoRAT);
* ``per_modality``: one adapter per X modality (thermal / depth / event);
* ``shared+per_modality``: each sample goes through the shared adapter plus its modality's one.

Routing is hard, by the known modality tag (MoDE): a sample's gradient reaches only its own expert (and
the shared one), so learning a new modality cannot overwrite another modality's expert. peft refuses
mixed-adapter batches in training mode, so the tracker splits a batch into modality groups, activates
the right adapters for each group (``activate``) and scatters the results back.

The patch embedding (a conv named ``patch_embed.proj``) is deliberately not adapted, hence the regex.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

MODALITIES: tuple[str, ...] = ("thermal", "depth", "event")
EXPERT_MODES = ("shared", "per_modality", "shared+per_modality")
#: Every block linear (qkv, attention proj, fc1, fc2); NOT patch_embed.proj.
LORA_TARGETS = r".*blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))"


def adapter_names(experts: str) -> tuple[str, ...]:
    """All adapters an ``experts`` mode creates."""
    return {
        "shared": ("shared",),
        "per_modality": MODALITIES,
        "shared+per_modality": ("shared", *MODALITIES),
    }[experts]


def adapters_for(experts: str, modality: str) -> list[str]:
    """The adapters a sample of ``modality`` goes through."""
    if experts == "shared":
        return ["shared"]
    if experts == "per_modality":
        return [modality]
    return ["shared", modality]


def inject_lora(backbone: nn.Module, names: Sequence[str], rank: int, alpha: float, dropout: float) -> None:
    """Add one LoRA adapter per name to every block linear of ``backbone`` (in place)."""
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none")
    for name in names:
        inject_adapter_in_model(cfg, backbone, adapter_name=name)


LORA_INITS = ("peft", "lorat")


def lorat_init(module: nn.Module) -> None:
    """LoRAT's LoRA init ('bert'): A and B both truncated-normal(0.02), so training starts off the base
    model (peft's default, B = 0, starts exactly on it)."""
    for layer in lora_layers(module):
        for adapters in (layer.lora_A, layer.lora_B):
            for lin in adapters.values():
                nn.init.trunc_normal_(lin.weight, std=0.02)


def absorb_start(module: nn.Module) -> None:
    """Make fresh adapters add nothing to the function the base weights hold (start weights were loaded).

    LoRAT's init gives B != 0, so a LoRA put on imported weights would move the model off them. The shared
    adapter keeps LoRAT's A and B and its start delta s B A is subtracted from the base weight instead
    (W - s B A + s B A = W up to float rounding); per-modality experts share one base weight, so no single
    correction fits them all, and they start at B = 0 (peft's rule) instead."""
    with torch.no_grad():
        for layer in lora_layers(module):
            for name in layer.lora_A:
                if name == "shared":
                    base = layer.get_base_layer().weight
                    base.sub_(layer.get_delta_weight(name).to(base.dtype))
                else:
                    nn.init.zeros_(layer.lora_B[name].weight)


def lora_layers(module: nn.Module) -> list[LoraLayer]:
    return [m for m in module.modules() if isinstance(m, LoraLayer)]


def lora_parameters(module: nn.Module, name: str | None = None) -> dict[str, nn.Parameter]:
    """Named LoRA parameters, optionally of one adapter only (e.g. ``"thermal"``)."""
    out = {}
    for n, p in module.named_parameters():
        parts = n.split(".")
        if any(s.startswith("lora_") for s in parts) and (name is None or name in parts):
            out[n] = p
    return out


def activate(backbone: nn.Module, names: list[str]) -> None:
    """Make ``names`` the active adapters of every LoRA layer, keeping every parameter's requires_grad.

    peft's set_adapter also freezes inactive adapters; a frozen leaf silently drops the gradient that an
    earlier modality group of the same batch sends it, so the flags are snapshotted and restored.
    """
    layers = lora_layers(backbone)
    params = [p for layer in layers for p in layer.parameters()]
    flags = [p.requires_grad for p in params]
    for layer in layers:
        layer.set_adapter(names)
    for p, f in zip(params, flags):
        p.requires_grad_(f)


def merge_lora(backbone: nn.Module, names: list[str]) -> nn.Module:
    """Fold W + sum_a B_a A_a alpha/r of ``names`` into the base weights and drop every LoRA module."""
    targets = [(n, m) for n, m in backbone.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in targets:
        present = [a for a in names if a in layer.lora_A]
        if present:
            layer.merge(adapter_names=present)
        parent_name, _, child = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        setattr(parent, child, layer.get_base_layer())
    return backbone


def modality_groups(idx: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """(B,) modality indices -> [(modality index, sample indices)] for the modalities present."""
    return [(int(m), (idx == m).nonzero(as_tuple=True)[0]) for m in torch.unique(idx).tolist()]
