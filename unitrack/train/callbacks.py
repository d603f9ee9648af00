"""Checkpointing that never leaves a half-written file: write to a temp name, then rename."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L

from unitrack.errors import ConfigError, UnsafeFileError
from unitrack.model.checkpoint import read_weights

log = logging.getLogger(__name__)


def save_checkpoint_atomic(trainer: L.Trainer, path: Path) -> None:
    """A full checkpoint written beside `path` and renamed over it by rank 0: never a half file."""
    tmp = Path(path).with_suffix(".ckpt.tmp")
    trainer.save_checkpoint(tmp, weights_only=False)
    if trainer.is_global_zero:
        os.replace(tmp, path)


def usable_checkpoint(path: Path) -> dict | None:
    """The checkpoint at `path` read as data (weights-only, unitrack/model/checkpoint.py), or None when
    absent; an empty, truncated or foreign file is moved aside to `<name>.corrupt` with a warning naming it,
    so the caller falls back to the last good checkpoint. A file that would need code to load
    (`UnsafeFileError`: our checkpoints never do) stops the run with one line instead: it is not ours."""
    path = Path(path)
    if not path.exists():
        return None
    why = None
    try:
        ck = read_weights(path, "hydra.run.dir")
        if not isinstance(ck, dict) or "state_dict" not in ck or "unitrack" not in ck:
            why = "not a unitrack training checkpoint"
    except UnsafeFileError:
        raise
    except ConfigError as e:  # missing, EOF, bad zip, bad pickle: the same case
        cause = e.__cause__ or e
        why = f"{type(cause).__name__}: {' '.join(str(cause).split())[:200]}"
    if why is None:
        return ck
    bad = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, bad)
    except OSError:
        bad = path
    log.warning("checkpoint %s is unreadable (%s); moved to %s, falling back to the last good stage checkpoint",
                path, why, bad.name)
    return None


class AtomicLastCheckpoint(L.Callback):
    """Save `last.ckpt` every n optimiser steps of the stage (rank 0 renames the finished file).

    Resuming does not go through Lightning's mid-epoch restart (which replays a batch for map-style
    loaders); `unitrack.train.unification` restores weights, optimiser, schedule, RNG and the stage step
    itself and starts a fresh fit for the remaining steps.
    """

    def __init__(self, path: Path, every_n_steps: int = 50):
        self.path, self.every = Path(path), max(1, int(every_n_steps))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (pl_module.step_offset + trainer.global_step) % self.every == 0:
            save_checkpoint_atomic(trainer, self.path)


class StageProgressBar(L.pytorch.callbacks.RichProgressBar):
    """Rich progress whose label is the stage being trained ("stage 2/3 rgbd") instead of "Epoch 0"."""

    def _get_train_description(self, current_epoch: int) -> str:
        m = self.trainer.lightning_module
        n = getattr(m, "n_stages", None)
        return f"stage {getattr(m, 'stage_index', 0) + 1}{'/' + str(n) if n else ''} {getattr(m, 'stage_name', '')}"
