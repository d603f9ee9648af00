"""A study that accumulates: finished jobs are skipped when their sweep runs again, and their small records
are kept where they outlive the machine.

A study preset (conf/hparams_search/) runs into a fixed sweep folder whose job folders are named by the
job's swept values, so running the same command again finds every job where it left it: a job whose run
folder holds matrix.json and a fingerprint of the same config (seed included) and, when `test.enabled`,
test scores made with the same test settings is finished and skipped (no foundation, no tracking); any
other job goes through `train`, which skips its finished stages and continues the rest (or refuses a run
folder of another config, naming the keys).

Each finished job's records -- the resolved config, fingerprint, validation matrix, test scores and the
stages' CSV logs, never a checkpoint or a frame -- are copied to `study.records_dir/<job>/`, from which
`unitrack report runs=<records_dir>` rebuilds every table and figure.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack import fingerprint
from unitrack.train import test_split

#: What a finished job keeps (paths relative to its run folder; globs allowed): small text files only.
RECORDS = ("config.yaml", fingerprint.FILE, "matrix.json", "matrix.csv", "stages.json", test_split.FILE,
           "logs/*/metrics.csv", ".hydra/overrides.yaml")


def finished(cfg: DictConfig, run_dir: Path) -> dict | None:
    """The matrix.json of a job finished in `run_dir` by this very config, else None (train it)."""
    run_dir = Path(run_dir)
    fp = fingerprint.read(run_dir)
    if fp is None or not (run_dir / "matrix.json").is_file():
        return None
    if fp.get("config_hash_seed") != fingerprint.config_hash(OmegaConf.to_container(cfg, resolve=True),
                                                             with_seed=True):
        return None  # `train` names the differing keys (or continues with resume=force)
    if test_split.enabled(cfg):
        test = test_split.read(run_dir)
        if test is None or test.get("settings") != test_split.settings(cfg):
            return None
    try:
        return json.loads((run_dir / "matrix.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def record_files(run_dir: Path) -> list[Path]:
    """The record files present in a run folder (relative paths, sorted)."""
    run_dir = Path(run_dir)
    found = {p.relative_to(run_dir) for pat in RECORDS for p in run_dir.glob(pat) if p.is_file()}
    return sorted(found)


def publish(cfg: DictConfig, run_dir: Path, job: str | None = None) -> Path | None:
    """Copy a finished job's records to `study.records_dir/<job>` (job: the run folder's name), replacing an
    older copy whole, with the working folder's absolute path cut from the paths they name (the checkpoints'
    content hashes stay); None when no records_dir is set or the job has no matrix.json."""
    dest_root = (cfg.get("study") or {}).get("records_dir")
    run_dir = Path(run_dir)
    if not dest_root or not (run_dir / "matrix.json").is_file():
        return None
    dest = Path(dest_root) / (job or run_dir.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        here = f"{Path.cwd()}{os.sep}"
        for rel in record_files(run_dir):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # paths under the folder unitrack runs in are written relative to it: records are committed
            target.write_text((run_dir / rel).read_text().replace(here, ""))
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest
