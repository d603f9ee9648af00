"""Rebuild a trained tracker from a checkpoint file alone (the model config travels inside it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from unitrack.errors import ConfigError


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, the checkpoint's unitrack state: stage, model_cfg, CL state)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("ckpt", f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ConfigError("ckpt", f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from e
    return model_from_checkpoint(ckpt, path)


def model_from_checkpoint(ckpt, path: str | Path) -> tuple[nn.Module, dict]:
    """`load_model` of a checkpoint already read (`path` only names it in errors)."""
    st = ckpt.get("unitrack") if isinstance(ckpt, dict) else None
    if not st or not st.get("model_cfg"):
        raise ConfigError("ckpt", f"{path} was not written by `unitrack train` (no model config inside)")
    cfg = OmegaConf.create(st["model_cfg"])
    cfg.pretrained, cfg.weights = False, None  # the checkpoint holds every weight
    with warnings.catch_warnings():  # "randomly initialised" is untrue here: the weights follow
        warnings.filterwarnings("ignore", message=".*randomly initialised.*")
        model = instantiate(cfg)
    sd = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(sd)
    return model.eval(), st
