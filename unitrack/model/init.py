"""Start a run from trained weights (`model.init=PATH`): the RGB foundation, or any unitrack checkpoint.

Every unified tracker starts from an RGB tracker; this loads one into the freshly built model before
stage 1. The file is a Lightning checkpoint written by `unitrack train` (its `state_dict` holds the
tracker under `model.`), a folder written by `unitrack export`, or a plain state dict of the tracker (a
torch file or `.safetensors`); every one is read as data (unitrack/model/checkpoint.py). The match is reported key by key:
missing keys, unexpected keys and shape mismatches are named, and any of them is a ConfigError unless
`model.init_strict=false` (then only the matching tensors are loaded).

Parts a foundation cannot have are not "missing": when the file holds no key at all under the X branch
(`xbranch.`) or the unimodal heads (`head_rgb.`, `head_x.`), those stay as the model initialises them
(the X branch's zero-initialised up-projection makes the loaded model exactly the RGB tracker).

A unitrack checkpoint with LoRA is loaded as the tracker it computes: its shared LoRA is folded into the
base weights (`merge`) and this run's own LoRA starts fresh on top (peft's B = 0: the loaded model is
exactly the start tracker), so a run may start from a tracker of another LoRA rank or expert layout
(a rank sweep from one foundation). A checkpoint without LoRA (full fine-tuning) loads the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unitrack.errors import ConfigError
from unitrack.model.checkpoint import has_model_config, model_config, model_from_checkpoint, read_checkpoint

log = logging.getLogger(__name__)

#: Config keys of `model` that choose the start weights; they are not LoRATTracker arguments.
INIT_KEYS = ("init", "init_strict")
#: Parts of a multimodal tracker an RGB foundation does not hold (model-initialised when wholly absent).
X_ONLY_PREFIXES = ("xbranch.", "head_rgb.", "head_x.")
SHOWN = 8  # keys named per kind in an error message
KEY = "model.init"


def model_args(model_cfg: dict) -> dict:
    """The model config without the init keys (what `instantiate` builds and checkpoints store)."""
    return {k: v for k, v in model_cfg.items() if k not in INIT_KEYS}


def build_start_model(model_cfg) -> nn.Module:
    """`instantiate(cfg.model)` (start weights loaded by the model's `init`), with a bad config or
    init file surfacing as its own one-line ConfigError rather than Hydra's wrapper."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from unitrack.errors import UnitrackError

    try:
        return instantiate(model_cfg)
    except InstantiationException as e:
        if isinstance(e.__cause__, UnitrackError):
            raise e.__cause__ from None
        raise


def read_state_dict(path: Path, strip_model: bool = True) -> dict[str, torch.Tensor]:
    """The tracker's tensors from a unitrack/Lightning checkpoint or a plain state dict."""
    return state_dict_of(read_checkpoint(path, KEY), path, strip_model)


def state_dict_of(obj, path: Path, strip_model: bool = True) -> dict[str, torch.Tensor]:
    """The tracker's tensors of a file's object (`read_checkpoint`); `path` names it in errors."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConfigError("model.init", f"{path} holds neither a checkpoint with a state_dict nor a state dict")
    if strip_model and all(k.startswith("model.") for k in obj):
        obj = {k[len("model."):]: v for k, v in obj.items()}
    return obj


def is_lora_key(k: str) -> bool:
    """A peft LoRA tensor (an adapter's A or B), as opposed to a base weight."""
    return ".lora_A." in k or ".lora_B." in k


def has_lora(sd: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds LoRA adapters (then it is loaded key by key, not folded)."""
    return any(is_lora_key(k) for k in sd)


def merged_source(obj, sd: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor] | None:
    """A unitrack checkpoint (`obj`, its tracker tensors `sd`) whose tracker holds LoRA, as the plain
    tracker it computes (its shared LoRA folded into the base weights by the model's own `merge`); None
    for a file without LoRA or without the model config that says LoRA's alpha and rank (a plain state
    dict is loaded key by key). A model config that is not a unitrack model's is refused, not skipped."""
    if not has_lora(sd) or not has_model_config(obj):
        return None
    src, _ = model_from_checkpoint(obj, path, KEY)
    if getattr(src, "experts", "shared") != "shared":
        return None  # per-modality experts have no single RGB function to fold
    return src.merge(src.modalities[0]).state_dict()


def to_wrapped_names(sd: dict[str, torch.Tensor], own: dict) -> dict[str, torch.Tensor]:
    """Plain linear keys (`...qkv.weight`) under peft's wrapped names (`...qkv.base_layer.weight`) where
    the model being loaded has LoRA on that linear."""
    out = {}
    for k, v in sd.items():
        stem, _, leaf = k.rpartition(".")
        wrapped = f"{stem}.base_layer.{leaf}"
        out[wrapped if k not in own and wrapped in own else k] = v
    return out


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def compare(model: nn.Module, sd: dict[str, torch.Tensor], fresh=lambda key: False,
            unmapped: list[str] | None = None) -> dict[str, Any]:
    """Key report of loading `sd` into `model`: loaded, missing, unexpected, shape_mismatch, model_init.
    `fresh(key)`: keys the file's layout never holds (model-initialised); `unmapped`: foreign keys."""
    own = model.state_dict()
    absent_parts = [p for p in X_ONLY_PREFIXES if not any(k.startswith(p) for k in sd)]
    missing, model_init = [], []
    for k in own:
        if k not in sd:
            (model_init if k.startswith(tuple(absent_parts)) or fresh(k) else missing).append(k)
    unexpected = [k for k in sd if k not in own] + list(unmapped or [])
    mismatch = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape)]
    loaded = [k for k in sd if k in own and k not in mismatch]
    return {"loaded": loaded, "missing": missing, "unexpected": unexpected, "model_init": model_init,
            "shape_mismatch": {k: [list(sd[k].shape), list(own[k].shape)] for k in mismatch}}


def load_init(model: nn.Module, spec: str | None, strict: bool = True) -> dict[str, Any] | None:
    """Load `spec` (a path) into `model` in place; returns the key report (None: no init asked)."""
    if spec in (None, "", "null"):
        return None
    from unitrack.model import lorat_import

    spec, merged = str(spec), None
    if spec == "foundation":
        raise ConfigError("model.init", "'foundation' names the cached RGB foundation, which `unitrack train` "
                          "resolves to a checkpoint before the model is built (unitrack/train/foundation.py); "
                          "building a model alone needs model.init=PATH or null")
    if spec.startswith(lorat_import.PREFIX):  # LoRAT's released layout: converted, its LoRA merged
        path = Path(spec[len(lorat_import.PREFIX):]).expanduser()
        sd, unmapped = lorat_import.convert(read_state_dict(path, strip_model=False), model)
        rep = compare(model, sd, lorat_import.is_model_initialised, unmapped)
    else:
        path = Path(spec).expanduser()
        obj = read_checkpoint(path, KEY)  # a file or an exported folder, read as data
        if has_model_config(obj):
            model_config(obj, path, KEY)  # a file's model config names a unitrack model, or the file is refused
        sd = state_dict_of(obj, path)
        merged = merged_source(obj, sd, path)
        sd = merged if merged is not None else sd
        if has_lora(sd):  # a plain state dict with LoRA: loaded key by key (adapters must match)
            rep = compare(model, sd)
        else:  # the start tracker as plain weights: this run's LoRA (if any) starts fresh on top
            sd = to_wrapped_names(sd, model.state_dict())
            rep = compare(model, sd, is_lora_key)
    problems = []
    if rep["missing"]:
        problems.append(f"missing {_names(rep['missing'])}")
    if rep["unexpected"]:
        problems.append(f"unexpected {_names(rep['unexpected'])}")
    if rep["shape_mismatch"]:
        sm = rep["shape_mismatch"]
        problems.append("shape mismatch " + _names([f"{k} {sm[k][0]} vs model {sm[k][1]}" for k in sm]))
    if problems and strict:
        raise ConfigError("model.init", f"{path} does not fit the model: " + "; ".join(problems)
                          + " (model.init_strict=false loads the matching tensors only)")
    if problems:
        log.warning("model.init: %s loaded partially: %s", path, "; ".join(problems))
    model.load_state_dict({k: sd[k] for k in rep["loaded"]}, strict=False)
    return {"path": str(path), "strict": bool(strict), "n_loaded": len(rep["loaded"]), "lora_merged": merged is not None,
            **{k: rep[k] for k in ("missing", "unexpected", "shape_mismatch", "model_init")}}
