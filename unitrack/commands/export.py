"""`unitrack export`: a trained tracker in the form to publish it -- `model.safetensors` + `config.yaml`.

A torch checkpoint is a pickle, which others must trust to load; the exported folder is tensors in
safetensors and a YAML config (the layout timm and the Hugging Face hub use), and every verb that takes a
checkpoint takes the folder. The config records what a reader of a model zoo asks: the model, the stage it
is from, the tasks it has seen, and the run's scores after that stage (from matrix.json beside the
run's checkpoints/, when there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unitrack.commands import run_dir
from unitrack.fingerprint import checkpoint_record
from unitrack.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_checkpoint, write_export


def run_metrics(ckpt: Path, stage: int | None) -> dict[str, Any] | None:
    """The scores of the run a stage checkpoint belongs to (`<run>/checkpoints/<file>` beside
    `<run>/matrix.json`): each task's validation SR / PR after that stage; for the final stage also the
    pooled scores and the test split's."""
    matrix = ckpt.parent.parent / "matrix.json"
    if ckpt.parent.name != "checkpoints" or not matrix.is_file() or stage is None:
        return None
    try:
        m = json.loads(matrix.read_text())
        tasks, sr, pr = m["tasks"], m["SR"][stage], m["PR"][stage]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    out: dict[str, Any] = {"split": m.get("eval_split", "validation"), "protocol": m.get("protocol"),
                           "SR": dict(zip(tasks, sr)), "PR": dict(zip(tasks, pr))}
    if stage == len(m["SR"]) - 1:
        out["pooled_SR"], out["pooled_PR"] = m.get("final_pooled_SR"), m.get("final_pooled_PR")
        test = m.get("test") or {}
        if test.get("overall"):
            out["test"] = {"overall": test["overall"], "per_task": test.get("per_task")}
    return out


def tasks_seen(ckpt: Path, st: dict) -> list[str]:
    """The tasks trained up to the checkpoint's stage: stored in it, or (older checkpoints) from its run's
    matrix.json."""
    if st.get("tasks_seen"):
        return list(st["tasks_seen"])
    try:
        m = json.loads((ckpt.parent.parent / "matrix.json").read_text())
        stages, k = m["stages"], int(st["stage_index"])
        seen = [t for s in stages[: k + 1] for t in ([s] if s in m["tasks"] else m["tasks"])]
        return list(dict.fromkeys(seen))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return [st["stage_name"]] if st.get("stage_name") else []


def run(cfg: DictConfig) -> Path:
    src = Path(str(cfg.ckpt))
    ck = read_checkpoint(src, "ckpt")
    st = ck.get("unitrack") if isinstance(ck, dict) else None
    info: dict[str, Any] = {"source": {"name": src.name, "sha256": checkpoint_record(src)["sha256"]}}
    if isinstance(st, dict):
        st["tasks_seen"] = tasks_seen(src, st)
        if (metrics := run_metrics(src, st.get("stage_index"))) is not None:
            info["metrics"] = metrics
        elif isinstance(st.get("export"), dict) and st["export"].get("metrics"):
            info["metrics"] = st["export"]["metrics"]  # re-exporting an exported folder keeps its scores
    out = Path(str(cfg.out)) if cfg.out else run_dir() / "model"
    write_export(out, ck, src, info)
    print(f"exported {src} -> {out} ({WEIGHTS_FILE}, {CONFIG_FILE}); use it as ckpt={out} or model.init={out}")
    return out
