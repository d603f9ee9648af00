"""A run's checkpoints: Lightning writes and restores them; unitrack says where, and makes each write whole.

Lightning's `ModelCheckpoint` (conf/callbacks, entry `checkpoint`) decides when: `last.ckpt` every
`train.ckpt_every` optimiser steps, the point a killed run resumes from through
`trainer.fit(ckpt_path=...)` (weights, optimiser, schedule, step counters, callback and loader state;
the module adds its stage, replay buffer, CL state and RNG). Without that entry (`callbacks=none`) no
last.ckpt is written and a re-run restarts the unfinished stage. What unitrack adds:

- `AtomicCheckpointIO`: every checkpoint Lightning writes (last.ckpt, the stage checkpoints) goes to a
  temporary file in the target's own folder, is synced to disk and renamed over the target. Lightning's
  own writer stages the file in the system temp folder and moves it, which across file systems (a local
  /tmp, a shared scratch disk) is a copy a kill can cut in half.
- `run_callbacks`: conf/callbacks instantiated; a ModelCheckpoint with no `dirpath` writes to the run's
  checkpoints folder.
- `resume_point`: where that callback keeps its last checkpoint (None: it keeps none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins import TorchCheckpointIO
from omegaconf import DictConfig

from unitrack.atomic import replacing_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint format, written beside the target, fsync'ed and renamed over it: a reader
    (or a resumed run) finds the previous file or the whole new one, never a prefix."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # a remote URL: fsspec's transaction is the only rename there is
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        with replacing_file(path, "wb", fsync=True) as fh:
            torch.save(checkpoint, fh)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        try:  # the rename itself survives a power cut once the folder is synced (not every OS allows it)
            dfd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return None
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)
        return None


def run_callbacks(nodes: DictConfig | None, ckpt_dir: Path) -> list[Callback]:
    """The entries of `cfg.callbacks`, instantiated; a ModelCheckpoint without `dirpath` writes to `ckpt_dir`
    (the run's folder is known only here, and a `${hydra:...}` path would not resolve outside Hydra)."""
    out = []
    for node in (nodes or {}).values():
        if node is None:
            continue
        if issubclass(get_class(node._target_), ModelCheckpoint) and node.get("dirpath") is None:
            out.append(instantiate(node, dirpath=str(ckpt_dir)))
        else:
            out.append(instantiate(node))
    return out


def resume_point(callbacks: list[Callback]) -> Path | None:
    """The last checkpoint the first ModelCheckpoint keeps (`<dirpath>/last.ckpt`), or None when there is no
    ModelCheckpoint or it keeps no last checkpoint (`save_last: false`)."""
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint):
            if not cb.save_last or cb.dirpath is None:
                return None
            return Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
    return None
