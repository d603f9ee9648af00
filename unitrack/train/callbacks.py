"""Checkpointing that never leaves a half-written file: write to a temp name, then rename."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L


def save_checkpoint_atomic(trainer: L.Trainer, path: Path) -> None:
    """A full checkpoint written beside `path` and renamed over it by rank 0: never a half file."""
    tmp = Path(path).with_suffix(".ckpt.tmp")
    trainer.save_checkpoint(tmp, weights_only=False)
    if trainer.is_global_zero:
        os.replace(tmp, path)


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
