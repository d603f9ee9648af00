"""Our Lightning callbacks, and the reader that tells a usable checkpoint from a damaged one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L

from unitrack.errors import ConfigError, UnsafeFileError
from unitrack.model.checkpoint import read_weights

log = logging.getLogger(__name__)


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


class StageProgressBar(L.pytorch.callbacks.RichProgressBar):
    """Rich progress whose label is the stage being trained ("stage 2/3 rgbd") instead of "Epoch 0"."""

    def _get_train_description(self, current_epoch: int) -> str:
        m = self.trainer.lightning_module
        n = getattr(m, "n_stages", None)
        return f"stage {getattr(m, 'stage_index', 0) + 1}{'/' + str(n) if n else ''} {getattr(m, 'stage_name', '')}"

    @property
    def total_train_batches(self) -> int | float:
        """The whole stage: on a resumed stage the bar counts from the stage's start, while Lightning's own
        total is the steps left."""
        return self.trainer.num_training_batches
