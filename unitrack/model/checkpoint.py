"""Files from others are data, never code: checkpoints, state dicts and exported trackers, read safely.

Trackers are shared as files on cloud drives and model zoos, and a torch checkpoint is a pickle: unpickling
runs whatever the file asks for. So every checkpoint or weights file unitrack reads -- `eval ckpt=`, `track
ckpt=`, `report analysis.checkpoint=`, `model.init=` (also `lorat:FILE` and the cached RGB foundation),
`model.weights=`, a run's own `last.ckpt` and stage checkpoints -- goes through `read_weights`:
safetensors, or `torch.load(weights_only=True)`, which builds only tensors, numbers, strings, lists, dicts
and the few torch types it allow-lists. A file that asks for anything else is refused with one line
naming it and the global it wants (`UnsafeFileError`). unitrack's own checkpoints hold nothing else.

A model config read from a file is data too: its `_target_` must name a unitrack model class
(`MODEL_CLASSES`), whose builder gets the config's plain values. Hydra's `instantiate` is never used on
it, because it would build whatever class a nested `_target_` names and would resolve interpolations.

The shareable form (`unitrack export`, the layout timm and the Hugging Face hub use) is a folder holding
`model.safetensors` (the tracker's tensors; reading it unpickles nothing) and `config.yaml` (the model
config, the stage, the tasks seen, SAMM's temperatures, the run's metrics). Every verb that takes a
checkpoint also takes that folder: `read_checkpoint` gives it the shape of a checkpoint.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unitrack.errors import ConfigError, UnsafeFileError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
#: `format:` of an exported folder's config.yaml.
EXPORT_FORMAT = "unitrack-model/1"
#: The `_target_` a model config read from a file may name -> (module, builder taking the plain config).
MODEL_CLASSES: dict[str, tuple[str, str]] = {"unitrack.model.lorat.LoRATTracker": ("unitrack.model.lorat", "build_model")}
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"


def is_export(path: str | Path) -> bool:
    """Whether `path` is a folder written by `unitrack export`."""
    p = Path(path)
    return p.is_dir() and (p / WEIGHTS_FILE).is_file()


def read_weights(path: str | Path, key: str, *, mmap: bool = False, allow: tuple = ()) -> Any:
    """The object a checkpoint or weights file holds, read as data: a `.safetensors` file by safetensors,
    anything else by `torch.load(weights_only=True)` (`allow`: extra plain-data classes the caller accepts,
    `mmap`: tensors mapped, not read). Errors name `key` and the file: missing, unreadable, or
    `UnsafeFileError` when the file asks for a global outside the weights-only set."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(key, f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # noqa: BLE001 - a truncated or foreign file
            raise ConfigError(key, f"{path} is not a readable safetensors file ({_why(e)})") from e
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(allow)):
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")  # the refusal below says more
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - any unreadable file (EOF, bad zip, pickle) is the same case
        wants = _GLOBAL.search(str(e))
        if wants:
            raise UnsafeFileError(key, path, wants.group(1)) from e
        if mmap and "mmap" in str(e):  # a file in torch's legacy format cannot be mapped: read it whole
            return read_weights(path, key, allow=allow)
        said = _UNPICKLER.search(str(e))  # torch's advice to retry with weights_only=False is left out
        why = f"weights-only unpickler: {said.group(1)}" if said else _why(e)
        raise ConfigError(key, f"{path} is not a readable checkpoint ({why})") from e


def read_checkpoint(path: str | Path, key: str) -> Any:
    """What a checkpoint file holds (`read_weights`), or an exported folder in a checkpoint's shape:
    {"state_dict": {"model.<name>": tensor}, "unitrack": {"model_cfg", "stage_index", "stage_name",
    "tasks_seen", "methods", "export"}}."""
    path = Path(path)
    if not path.is_dir():
        return read_weights(path, key)
    if not is_export(path):
        raise ConfigError(key, f"{path} is a folder without {WEIGHTS_FILE}; a checkpoint is a file, or a folder "
                          f"written by `unitrack export` ({WEIGHTS_FILE} + {CONFIG_FILE})")
    import yaml

    meta_file = path / CONFIG_FILE
    try:
        meta = yaml.safe_load(meta_file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(key, f"{meta_file} is not readable YAML ({_why(e)})") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise ConfigError(key, f"{meta_file} holds no `model:` mapping (the tracker's config)")
    sd = read_weights(path / WEIGHTS_FILE, key)
    stage = meta.get("stage") or {}
    temps = meta.get("samm_temperatures")
    st = {"model_cfg": meta["model"], "stage_index": stage.get("index"), "stage_name": stage.get("name"),
          "tasks_seen": meta.get("tasks_seen"), "methods": {"samm": {"temperatures": temps}} if temps else None,
          "export": meta}
    return {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "unitrack": st}


def has_model_config(ckpt: Any) -> bool:
    """Whether a file's object carries a unitrack model config (`ckpt["unitrack"]["model_cfg"]`)."""
    st = ckpt.get("unitrack") if isinstance(ckpt, dict) else None
    return isinstance(st, dict) and bool(st.get("model_cfg"))


def _nested_target(cfg: Mapping, prefix: str = "") -> str | None:
    for k, v in cfg.items():
        if isinstance(v, Mapping):
            if "_target_" in v:
                return f"{prefix}{k}._target_"
            if (inner := _nested_target(v, f"{prefix}{k}.")) is not None:
                return inner
    return None


def model_config(ckpt: Any, path: str | Path, key: str) -> dict:
    """The model config a checkpoint carries, checked as data: its `_target_` is a unitrack model class
    (MODEL_CLASSES) and nothing inside names another."""
    if not has_model_config(ckpt):
        raise ConfigError(key, f"{path} was not written by `unitrack train` (no model config inside)")
    cfg = ckpt["unitrack"]["model_cfg"]
    if not isinstance(cfg, Mapping):
        raise ConfigError(key, f"{path}: its model config is a {type(cfg).__name__}, not a mapping")
    target = cfg.get("_target_")
    if target not in MODEL_CLASSES:
        raise ConfigError(key, f"{path}: its model config names `_target_: {target}`, which is not a unitrack "
                          f"model class ({', '.join(MODEL_CLASSES)}); a config read from a file is data, not code")
    if (where := _nested_target(cfg)) is not None:
        raise ConfigError(key, f"{path}: its model config sets `{where}`; a config read from a file builds only "
                          "its unitrack model class, nothing inside it")
    return dict(cfg)


def model_from_checkpoint(ckpt: Any, path: str | Path, key: str = "ckpt") -> tuple[nn.Module, dict]:
    """The tracker (eval mode) of a checkpoint already read, and its unitrack state (stage, model_cfg, CL
    state); `path` names it in errors."""
    cfg = model_config(ckpt, path, key)
    module, builder = MODEL_CLASSES[cfg.pop("_target_")]
    cfg.update(pretrained=False, weights=None, init=None)  # the checkpoint holds every weight
    with warnings.catch_warnings():  # "randomly initialised" is untrue here: the weights follow
        warnings.filterwarnings("ignore", message=".*randomly initialised.*")
        model = getattr(importlib.import_module(module), builder)(cfg)
    weights = ckpt.get("state_dict")
    if not isinstance(weights, dict):
        raise ConfigError(key, f"{path} holds no state_dict")
    sd = {k[len("model."):]: v for k, v in weights.items() if k.startswith("model.")}
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise ConfigError(key, f"{path}: its weights do not fit its own model config ({_why(e)})") from e
    return model.eval(), ckpt["unitrack"]


def load_model(path: str | Path, key: str = "ckpt") -> tuple[nn.Module, dict]:
    """(tracker in eval mode, its unitrack state) of a checkpoint file or an exported folder; `key` is the
    config key that named it (for errors)."""
    return model_from_checkpoint(read_checkpoint(path, key), path, key)


def _unshared(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, a tensor that shares storage with an earlier one copied (safetensors stores
    each tensor once and refuses shared memory)."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in sd.items():
        v = v.detach().cpu().contiguous()
        where = (v.untyped_storage().data_ptr(), v.untyped_storage().nbytes())
        out[k] = v.clone() if where in seen and v.numel() else v
        seen.add(where)
    return out


def write_export(out: str | Path, ckpt: Any, path: str | Path, info: Mapping[str, Any] | None = None,
                 key: str = "ckpt") -> Path:
    """Write the exported form of a checkpoint already read (`path` names it in errors) to the folder `out`,
    atomically (a new folder renamed into place): WEIGHTS_FILE with the tracker's tensors and CONFIG_FILE with
    its model config, stage, tasks seen, SAMM temperatures and `info` (the run's metrics, the source). An
    existing `out` is replaced only when it is an exported folder itself."""
    import yaml
    from safetensors.torch import save_file

    from unitrack.atomic import replacing_dir

    out = Path(out)
    if out.exists() and not (out.is_dir() and all(p.name in (WEIGHTS_FILE, CONFIG_FILE) for p in out.iterdir())):
        raise ConfigError("out", f"{out} exists and is not an exported model folder; name a new folder")
    model_cfg = model_config(ckpt, path, key)
    st = ckpt["unitrack"]
    weights = ckpt.get("state_dict")
    if not isinstance(weights, dict):
        raise ConfigError(key, f"{path} holds no state_dict")
    sd = _unshared({k[len("model."):]: v for k, v in weights.items() if k.startswith("model.")})
    temps = ((st.get("methods") or {}).get("samm") or {}).get("temperatures")
    meta = {"format": EXPORT_FORMAT, "model": model_cfg,
            "stage": {"index": st.get("stage_index"), "name": st.get("stage_name")},
            "tasks_seen": list(st.get("tasks_seen") or []),
            "samm_temperatures": {str(k): float(v) for k, v in temps.items()} if temps else None,
            **dict(info or {})}
    with replacing_dir(out) as tmp:
        save_file(sd, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return out
