"""Which sequences a task trains on and which it is validated on: validation is never the test split.

Per-stage evaluation, the stage x task matrix, early choices and sweeps (the Optuna objective) score the
VALIDATION sequences; `unitrack eval` and the final report score the test benchmark. `data.val_split`:

- ``holdout`` (default): a deterministic hold-out of the task's TRAINING sequences, which are then
  excluded from training. `data.val_holdout` sizes it:
    * a fraction in (0, 1): a sequence is held out when u(uid) < fraction, with u the first 8 bytes of
      sha256("dataset/name") read as a number in [0, 1). Membership depends on the sequence's own name
      only, so adding sequences to a dataset never moves an existing one in or out. At least one is held
      out (the lowest u) so a tiny dataset still has a validation sequence.
    * a count k >= 1: the k sequences with the lowest u (adding sequences displaces at most as many).
  Only sequences that can be tracked (target visible in frame 0) are eligible, and at most all but one
  training sequence is held out (a count larger than a tiny dataset allows is cut to that); a task with a
  single training sequence cannot be validated on a hold-out (ConfigError).
- a split name of the dataset (``val`` for GOT-10k): the dataset's own validation split.
- ``test`` or the training split: refused (ConfigError).

A source may set its own ``val_split`` (e.g. ``data.tasks.rgb: [{dataset: got10k, root: ..., val_split: val},
{dataset: lasot, root: ...}]``: GOT-10k validates on its val split, LaSOT on a hold-out).
Validation sequences are ordered: own-split ones in reader order, then held-out ones by u.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from unitrack.data.formats import load_dataset
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError

HOLDOUT = "holdout"


def task_sources(data_cfg: DictConfig, task: str) -> list[dict]:
    """`data.tasks.<task>` may be one {dataset, root, options?, val_split?} or a list of them."""
    if task not in data_cfg.tasks:
        raise ConfigError(f"data.tasks.{task}", f"no dataset configured for task '{task}'")
    src = OmegaConf.to_container(data_cfg.tasks[task], resolve=True)
    return src if isinstance(src, list) else [src]


def load_source(task: str, i: int, src: dict, split: str | None) -> list[Sequence]:
    """The sequences of source i of a task's `data.tasks` entry, for one split."""
    if not src.get("root"):
        raise ConfigError(f"data.tasks.{task}[{i}].root", "set it to the dataset folder")
    found = load_dataset(src["dataset"], Path(src["root"]), split=split, **src.get("options", {}))
    bad = [s.uid for s in found if s.task != task]
    if bad:
        raise ConfigError(f"data.tasks.{task}", f"dataset {src['dataset']} holds task {found[0].task}, not {task}")
    return found


def load_task_sequences(data_cfg: DictConfig, task: str, split: str | None) -> list[Sequence]:
    """Every source's sequences of one split, in source order (no hold-out applied)."""
    seqs = [s for i, src in enumerate(task_sources(data_cfg, task)) for s in load_source(task, i, src, split)]
    if not seqs:
        raise ConfigError(f"data.tasks.{task}", f"no {split or ''} sequences found")
    return seqs


def holdout_key(seq: Sequence) -> float:
    """u in [0, 1) from the sequence's uid alone (stable across runs, machines and dataset growth)."""
    digest = hashlib.sha256(seq.uid.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _holdout_size(value) -> float | int:
    key = "data.val_holdout"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"expected a fraction in (0, 1) or a count >= 1, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        if not 0.0 < value < 1.0:
            raise ConfigError(key, f"a fraction must lie in (0, 1), got {value}")
        return value
    if value < 1:
        raise ConfigError(key, f"expected a fraction in (0, 1) or a count >= 1, got {value!r}")
    return int(value)


def pick_holdout(seqs: list[Sequence], size) -> list[Sequence]:
    """The held-out sequences (see the module docstring), lowest u first; never all of `seqs`."""
    size = _holdout_size(size)
    eligible = sorted((s for s in seqs if len(s) and s.visible[0]), key=holdout_key)
    if isinstance(size, float):
        picked = [s for s in eligible if holdout_key(s) < size] or eligible[:1]
    else:
        picked = eligible[:size]
    return picked[: max(0, len(seqs) - 1)]


def _mode(data_cfg: DictConfig, task: str, i: int, src: dict) -> str:
    mode = str(src.get("val_split", data_cfg.get("val_split", HOLDOUT)))
    where = f"data.tasks.{task}[{i}].val_split" if "val_split" in src else "data.val_split"
    if mode == "test":
        raise ConfigError(where, "'test' is the test split: per-stage numbers, the stage x task matrix and "
                          "sweeps must not be tuned on it; use 'holdout' (held-out training sequences) or the "
                          "dataset's own validation split (e.g. 'val' for GOT-10k)")
    if mode == str(data_cfg.train_split):
        raise ConfigError(where, f"'{mode}' is the training split; use 'holdout' to validate on training "
                          "sequences kept out of training")
    return mode


def _holdout_pool(data_cfg: DictConfig, task: str) -> tuple[list[Sequence], list[tuple[int, dict]]]:
    """Training sequences of every source, and the sources that validate on a hold-out of them."""
    train, held_sources = [], []
    for i, src in enumerate(task_sources(data_cfg, task)):
        seqs = load_source(task, i, src, data_cfg.train_split)
        if _mode(data_cfg, task, i, src) == HOLDOUT:
            held_sources.append((i, src))
            train += [(True, s) for s in seqs]
        else:
            train += [(False, s) for s in seqs]
    return train, held_sources


def training_sequences(data_cfg: DictConfig, task: str) -> list[Sequence]:
    """The task's training sequences minus its held-out validation sequences."""
    pool, held_sources = _holdout_pool(data_cfg, task)
    held = set()
    if held_sources:
        held = {s.uid for s in pick_holdout([s for h, s in pool if h], data_cfg.get("val_holdout", 0.05))}
    seqs = [s for _, s in pool if s.uid not in held]
    if not seqs:
        raise ConfigError(f"data.tasks.{task}", f"no {data_cfg.train_split} sequences found")
    return seqs


def validation_sequences(data_cfg: DictConfig, task: str) -> tuple[list[Sequence], dict]:
    """(validation sequences, a record of where they come from for matrix.json)."""
    out: list[Sequence] = []
    record: dict = {"sources": []}
    holdout_pool: list[Sequence] = []
    for i, src in enumerate(task_sources(data_cfg, task)):
        mode = _mode(data_cfg, task, i, src)
        if mode == HOLDOUT:
            seqs = load_source(task, i, src, data_cfg.train_split)
            holdout_pool += seqs
        else:
            seqs = load_source(task, i, src, mode)
            out += seqs
            record["sources"].append({"dataset": src["dataset"], "split": mode, "sequences": len(seqs)})
    if holdout_pool:
        size = data_cfg.get("val_holdout", 0.05)
        picked = pick_holdout(holdout_pool, size)
        if not picked:
            why = ("it has a single training sequence" if len(holdout_pool) < 2 else
                   "no training sequence has its target visible in frame 0")
            raise ConfigError("data.val_split", f"task {task}: no training sequence can be held out for "
                              f"validation ({why}); give the task more sequences or a dataset's own val split")
        out += picked
        datasets = sorted({s.dataset for s in holdout_pool})
        record["sources"].append({"dataset": ",".join(datasets), "split": f"{HOLDOUT} of {data_cfg.train_split}",
                                  "holdout": size, "sequences": len(picked), "of": len(holdout_pool)})
    if not out:
        raise ConfigError(f"data.tasks.{task}", "no validation sequences found")
    record["split"] = " + ".join(s["split"] for s in record["sources"])
    return out, record
