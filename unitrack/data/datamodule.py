"""Training data for serial, parallel and single-task unification: one `LightningDataModule`, stage-aware.

A stage trains on some tasks (serial: one; parallel: all, mixed by `data.ratios`) plus replayed pairs of
the earlier tasks. Every training sample is a pure function of (seed, stage, index): the pair reference is
drawn from one RNG stream and the crops/augmentation from another. That makes a mid-stage resume exact:
the stage's loader (StageLoader) is resumable the way Lightning asks, so `trainer.fit(ckpt_path=...)`
restarts it right after the last trained batch. Bounded replay buffers are filled and drawn by the
training step itself (unitrack/cl/rehearsal.py), as Mammoth's `observe` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, Sampler

from unitrack import TRAIN_TASKS
from unitrack.data.augment import PairAugment
from unitrack.data.composition import batch_layout, row_slots
from unitrack.data.pairs import PairDataset, PairRef, collate_pairs
from unitrack.data.splits import load_task_sequences, task_sources, training_sequences  # noqa: F401 (re-exported)
from unitrack.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class StagePlan:
    """What one stage trains on: its own tasks (mixed by weights) and the replay source."""

    index: int
    name: str  # e.g. "rgbd" or "parallel"
    tasks: list[str]
    weights: list[float]
    replay_tasks: list[str]  # earlier tasks (full replay draws from their whole training sets)
    replay_kind: str  # none | full | reservoir | balanced
    replay_ratio: float  # share of each batch drawn from replay
    steps: int
    replay_mode: str = "share"  # share: replay inside the batch | append: on top of a full current batch


class StageDataset(Dataset):
    """Sample i of a stage: a current-task pair or a replayed one, fixed by (seed, stage, i)."""

    def __init__(self, pairs: dict[str, PairDataset], plan: StagePlan, batch_size: int, seed: int,
                 stratified: bool = True):

        self.pairs, self.plan, self.seed = pairs, plan, seed
        self.samplers = {t: p.sampler for t, p in pairs.items()}
        w = np.asarray(plan.weights, dtype=np.float64)
        self.task_p = w / w.sum()
        # Bounded buffers are drawn live by the training step (unitrack/cl/rehearsal.py), not here.
        self.batch_size, self.n_replay, self.buffer_rows = batch_layout(
            plan.replay_kind, plan.replay_mode, plan.replay_ratio, batch_size, bool(plan.replay_tasks))
        # stratified: row r of every batch has a fixed task, exact counts by largest remainder
        self.stratified = bool(stratified)
        self.replay_slots = row_slots([1.0] * len(plan.replay_tasks), self.n_replay)
        self.current_slots = row_slots(list(plan.weights), self.batch_size - self.n_replay)

    def __len__(self) -> int:
        return self.plan.steps * self.batch_size

    def ref(self, i: int) -> tuple[str, PairRef]:
        """(task, pair reference) of sample i — no image is touched."""
        rng = np.random.default_rng([self.seed, self.plan.index, i, 0])
        row = i % self.batch_size
        if row < self.n_replay:
            k = int(rng.integers(len(self.plan.replay_tasks)))  # drawn either way: same pair stream
            task = self.plan.replay_tasks[self.replay_slots[row] if self.stratified else k]
            return task, self.samplers[task].sample(rng)
        k = int(rng.choice(len(self.plan.tasks), p=self.task_p))
        task = self.plan.tasks[self.current_slots[row - self.n_replay] if self.stratified else k]
        return task, self.samplers[task].sample(rng)

    def __getitem__(self, i: int) -> dict:
        task, ref = self.ref(i)
        sample = self.pairs[task].load_pair(ref, np.random.default_rng([self.seed, self.plan.index, i, 1]),
                                            resample=True)
        sample["replay"] = torch.tensor(task not in self.plan.tasks)
        return sample


class ResumableSampler(Sampler[int]):
    """Indices start..length-1, strided over DDP ranks."""

    def __init__(self, length: int, start: int = 0, rank: int = 0, world: int = 1):
        self.length, self.start, self.rank, self.world = length, start, rank, world

    def __iter__(self):
        return iter(range(self.start + self.rank, self.length, self.world))

    def __len__(self) -> int:
        return max(0, (self.length - self.start - self.rank + self.world - 1) // self.world)


class StageLoader(DataLoader):
    """A stage's batches, resumable mid-stage through Lightning's loader state (`state_dict` /
    `load_state_dict`, saved in every checkpoint and loaded by `trainer.fit(ckpt_path=...)`).

    A plain map-style loader restarts from its first batch on a mid-epoch resume (Lightning 2.x only warns),
    so a resumed stage would train on batches it already trained on. The state here is the number of
    batches handed out; loaded, the sampler starts right after them. The length stays the whole stage's:
    Lightning counts the batches trained before the resume into the same epoch. Every DDP rank hands out the
    same number of batches and loads rank 0's state, so all ranks resume alike.
    """

    def __init__(self, dataset: Dataset, *, sampler: ResumableSampler, step_samples: int, **kwargs: Any):
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.step_samples = step_samples  # samples one optimiser step draws over all ranks
        self.skipped = 0  # batches trained before the resume
        self.handed = 0  # batches handed out, counting the skipped ones

    def __iter__(self):
        self.handed = self.skipped
        for batch in super().__iter__():
            self.handed += 1
            yield batch

    def __len__(self) -> int:
        return self.skipped + super().__len__()

    def state_dict(self) -> dict[str, int]:
        return {"batches": self.handed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped = self.handed = int(state["batches"])
        self.sampler.start = self.skipped * self.step_samples


class UnitrackDataModule(L.LightningDataModule):
    """Per-task training sequences and pair datasets; `set_stage` chooses what the next `fit` sees."""

    def __init__(self, data_cfg: DictConfig, model_geometry: dict[str, Any], seed: int = 0):
        super().__init__()
        self.cfg, self.geo, self.seed = data_cfg, model_geometry, seed
        self.pairs: dict[str, PairDataset] = {}
        self.plan: StagePlan | None = None

    def task_pairs(self, task: str) -> PairDataset:
        if task not in self.pairs:
            seqs = training_sequences(self.cfg, task)  # the train split minus the validation hold-out
            augment = PairAugment.from_config(self.cfg.augment) or False  # data.augment: conf/augment
            ds = PairDataset(seqs, template_size=self.geo["template_size"], search_size=self.geo["search_size"],
                             template_factor=self.geo["template_factor"], search_factor=self.geo["search_factor"],
                             max_gap=self.cfg.max_gap, length=1, seed=self.seed, augment=augment,
                             task=task, **crop_options(self.cfg))
            ds.feat_cells = self.geo["feat_size"] ** 2
            self.pairs[task] = ds
        return self.pairs[task]

    def set_stage(self, plan: StagePlan) -> None:
        self.plan = plan
        for t in [*plan.tasks, *plan.replay_tasks]:
            self.task_pairs(t)

    def stage_dataset(self) -> StageDataset:
        assert self.plan is not None, "set_stage() first"
        return StageDataset({t: self.pairs[t] for t in [*self.plan.tasks, *self.plan.replay_tasks]}, self.plan,
                            self.cfg.batch_size, self.seed, stratified=bool(self.cfg.get("stratified", True)))

    def train_dataloader(self) -> StageLoader:
        """The stage's sample stream, this rank's share of every batch (a resume sets where it starts)."""
        ds = self.stage_dataset()
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        per_rank = max(1, ds.batch_size // world)
        workers = int(self.cfg.num_workers)
        return StageLoader(ds, batch_size=per_rank, sampler=ResumableSampler(len(ds), 0, rank, world),
                           step_samples=ds.batch_size, num_workers=workers, collate_fn=collate_pairs,
                           persistent_workers=False, pin_memory=torch.cuda.is_available(), drop_last=False,
                           prefetch_factor=4 if workers > 0 else None)


def crop_options(data_cfg: DictConfig) -> dict:
    """`data.crop` (jitter rule and its factors) as PairDataset arguments; absent keys keep its defaults."""
    crop = data_cfg.get("crop") or {}
    keys = ("jitter", "scale_jitter", "center_jitter", "min_visible_px", "on_fail")
    return {k: crop[k] for k in keys if crop.get(k) is not None}


def stage_plans(train_cfg: DictConfig, replay_cfg: DictConfig, ratios: DictConfig) -> list[StagePlan]:
    """serial: one stage per task in `train.order`; parallel: one stage on the mixture; single: one task.
    Every serial stage runs `train.steps_per_stage`; `unitrack.train.protocol.plan_stages` applies
    `train.budget` on top."""
    order = list(train_cfg.order)
    for t in order:
        if t not in TRAIN_TASKS:
            raise ConfigError("train.order", f"unknown task '{t}' (valid: {', '.join(TRAIN_TASKS)})")
    if len(set(order)) != len(order):
        raise ConfigError("train.order", f"tasks repeat in {order}")
    mode, steps = train_cfg.mode, int(train_cfg.steps_per_stage)
    if steps <= 0:
        raise ConfigError("train.steps_per_stage", f"must be > 0, got {steps}")
    kind = replay_cfg.kind
    ratio = float(replay_cfg.ratio) if replay_cfg.get("ratio") is not None else None
    if mode == "serial":
        plans = []
        for k, t in enumerate(order):
            r = ratio if ratio is not None else (k / (k + 1) if kind == "full" else 0.0)
            plans.append(StagePlan(k, t, [t], [1.0], order[:k], kind if k else "none", r if k else 0.0, steps,
                                   str(replay_cfg.get("mode", "share") or "share")))
        return plans
    if mode == "parallel":
        w = [float(ratios.get(t, 1.0)) for t in order]
        return [StagePlan(0, "parallel", order, w, [], "none", 0.0, steps * int(train_cfg.parallel_steps_factor))]
    if mode == "single":
        if len(order) != 1:
            raise ConfigError("train.order", f"single mode trains one task, got {order}")
        return [StagePlan(0, order[0], order, [1.0], [], "none", 0.0, steps)]
    raise ConfigError("train.mode", f"'{mode}' is not one of serial, parallel, single")
