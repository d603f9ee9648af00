"""Run fingerprints: what made a run dir (config hash, checkpoint content hash, code version).

A run dir is reused (training resumed, finished eval sequences skipped) only when what it holds was
made by the same inputs; otherwise the command stops with a `ConfigError` naming what differs, so a
changed config or checkpoint never continues or re-reports an old run. `fingerprint.json` in the run
dir holds the record; metrics.json / matrix.json repeat it.

Two config hashes: `config_hash` leaves the seed out (runs that differ only in seed are one group, the
key `report` groups by) and `config_hash_seed` includes it (the identity of one run). Keys that cannot
change a number (paths, logging, worker counts, hydra) are left out of both.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from unitrack.errors import ConfigError

FILE = "fingerprint.json"
#: dotted-key prefixes that do not change any number a run produces.
#: `test` is recorded in test_metrics.json itself (a change re-scores the test split, unitrack/train/records.py);
#: `study` says where records are copied.
NEUTRAL = ("hydra", "paths", "logger", "callbacks", "tags", "hparams_search", "resume", "test", "study",
           "data.num_workers",
           "data.generate_if_missing", "eval.workers", "eval.decode", "eval.batch_size", "eval.resume",
           "eval.export", "eval.export_tracker", "device", "trainer.log_every_n_steps", "trainer.enable_progress_bar")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """dotted key -> leaf value of a nested mapping (lists are leaves)."""
    if isinstance(node, Mapping) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: node}


def _neutral(key: str, extra: Iterable[str] = ()) -> bool:
    return any(key == p or key.startswith(p + ".") for p in (*NEUTRAL, *extra))


def relevant(config: Mapping, drop: Iterable[str] = ()) -> dict[str, Any]:
    """The flattened config minus the neutral keys (and `drop`)."""
    drop = tuple(drop)
    return {k: v for k, v in flatten(config).items() if not _neutral(k, drop)}


def config_hash(config: Mapping, with_seed: bool = False) -> str:
    """sha256 (16 hex) of the relevant config; the seed only when `with_seed`."""
    flat = relevant(config, () if with_seed else ("seed",))
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_hash(path: Path | str) -> str:
    """sha256 of a file's content (the whole hex digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe --always --dirty` of the source tree, else the package version."""
    from unitrack import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+git.{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def describe(config: Mapping) -> dict:
    """The record of a run's config: both hashes (without and with the seed) and the code version."""
    return {"config_hash": config_hash(config), "config_hash_seed": config_hash(config, with_seed=True),
            "code_version": code_version()}


def folder_hash(path: Path | str) -> str:
    """sha256 over a folder's files (names and contents; an exported model: weights and config)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).iterdir() if p.is_file()):
        h.update(f"{f.name}\0{file_hash(f)}\n".encode())
    return h.hexdigest()


def checkpoint_record(path: Path | str) -> dict:
    """Path and sha256 of a checkpoint, so a result names the exact weights that made it."""
    p = Path(path)  # absent only when the model came from elsewhere (tests): no hash to record
    sha = file_hash(p) if p.is_file() else folder_hash(p) if p.is_dir() else None
    return {"path": str(p.resolve()), "sha256": sha}


def read(run_dir: Path) -> dict | None:
    """The run folder's fingerprint.json, or None when it is absent or unreadable."""
    f = Path(run_dir) / FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write(run_dir: Path, record: dict) -> Path:
    """Write a run's fingerprint.json atomically."""
    from unitrack.atomic import write_text_atomic

    return write_text_atomic(Path(run_dir) / FILE, json.dumps(record, indent=2, default=str))


def differences(old: Mapping, new: Mapping, drop: Iterable[str] = ()) -> list[str]:
    """'key: old -> new' for every relevant key whose value differs (added/removed keys included)."""
    a, b = relevant(old, drop), relevant(new, drop)
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            out.append(f"{k}: {a.get(k, '<absent>')} -> {b.get(k, '<absent>')}")
    return out


def check_train_run(run_dir: Path, config: Mapping, force: bool = False) -> dict:
    """Before training into `run_dir`: refuse to continue a run made by another config.

    The old config is the run dir's config.yaml (every train run writes it); `force` continues anyway
    and records the override. Returns the new fingerprint (written by the caller's `write`).
    """
    run_dir = Path(run_dir)
    old_yaml = run_dir / "config.yaml"
    rec = {**describe(config), "kind": "train"}
    prev = read(run_dir)
    started = (run_dir / "stages.json").exists() or any((run_dir / "checkpoints").glob("*.ckpt"))
    if old_yaml.is_file() and started:
        from omegaconf import OmegaConf

        old = OmegaConf.to_container(OmegaConf.load(old_yaml), resolve=False)
        diff = differences(old, config)
        if diff and not force:
            shown = "; ".join(diff[:6]) + (f"; ... ({len(diff)} keys)" if len(diff) > 6 else "")
            raise ConfigError(diff[0].split(":", 1)[0], f"{run_dir} holds a run of a different config ({shown}); "
                              "resume=force continues it anyway, or train into a fresh hydra.run.dir")
        if diff:
            rec["forced_resume"] = {"from_config_hash": (prev or {}).get("config_hash"), "differences": diff}
    if prev:
        rec["checkpoints"] = prev.get("checkpoints", {})
        if prev.get("code_version") not in (None, rec["code_version"]):
            rec["resumed_from_code_version"] = prev["code_version"]
    return rec


def record_checkpoint(run_dir: Path, name: str, path: Path) -> dict:
    """Add a finished stage checkpoint's path and content hash to the run dir's fingerprint."""
    rec = read(run_dir) or {}
    rec.setdefault("checkpoints", {})[name] = checkpoint_record(path)
    write(run_dir, rec)
    return rec


#: eval config keys whose change makes earlier result files wrong for this run.
EVAL_KEYS = ("benchmark", "root", "split", "options", "protocol", "eval.window_weight", "eval.samm",
             "eval.drop_modality", "eval.x_noise")


def check_eval_run(results_dir: Path, ckpt: Path, config: Mapping, resume: bool) -> dict:
    """Before tracking into `results_dir`: earlier result files count only if made by the same checkpoint
    content and the same tracking config; else a ConfigError (never a silent skip of every sequence)."""
    results_dir = Path(results_dir)
    flat = flatten(config)
    tracked = {k: v for k, v in flat.items() if any(k == p or k.startswith(p + ".") for p in EVAL_KEYS)}
    rec = {**describe(config), "kind": "eval", "checkpoint": checkpoint_record(ckpt), "tracking": tracked}
    has_results = results_dir.is_dir() and any(results_dir.glob("*.txt"))
    if resume and has_results:
        prev = read(results_dir)
        if prev is None:
            raise ConfigError("ckpt", f"{results_dir} holds result files without a fingerprint (unknown checkpoint); "
                              "use a fresh hydra.run.dir or eval.resume=false to track again")
        old_ck = prev.get("checkpoint", {})
        if old_ck.get("sha256") != rec["checkpoint"]["sha256"]:
            raise ConfigError("ckpt", f"{results_dir} holds results of checkpoint {old_ck.get('path')} "
                              f"(sha256 {str(old_ck.get('sha256'))[:12]}), not of {ckpt} (sha256 "
                              f"{rec['checkpoint']['sha256'][:12]}); use a fresh hydra.run.dir or eval.resume=false")
        diff = differences(prev.get("tracking", {}), tracked)
        if diff:
            raise ConfigError(diff[0].split(":", 1)[0], f"{results_dir} holds results tracked with other settings "
                              f"({'; '.join(diff)}); use a fresh hydra.run.dir or eval.resume=false")
    elif has_results and not resume:
        for f in results_dir.glob("*.txt"):  # tracked again: no old file may survive into the new scores
            f.unlink()
    write(results_dir, rec)
    return rec
