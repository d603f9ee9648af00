"""What makes serial and parallel runs comparable: budget, schedule, optimiser state, batch composition.

* `train.budget` — what a serial run holds equal to parallel (`parallel_steps_factor` x
  `steps_per_stage` steps on the mixture `data.ratios`):
    - ``stage``: every serial stage runs `steps_per_stage` steps (the released protocol; the last task
      then gets 1/(k+1) of its stage's batches under full replay);
    - ``samples``: the total of parallel's steps, split equally over the serial stages;
    - ``exposure``: each task's own stage draws as many current-task batch-equivalents as parallel
      gives that task (stage k runs parallel_exposure(task) / (1 - replay share of stage k) steps).
* `train.schedule` — ``restart``: a warm-up + cosine per stage; ``continue``: one warm-up + cosine over
  all stages, each stage taking up where the previous one stopped.
* `train.optimizer_state` — ``reset``: a fresh AdamW per stage; ``carry``: the moments go on.
* stratified batches — every batch holds exactly the per-task counts its weights ask for (largest
  remainder), instead of a task drawn at random per row.
* exposure — batch-equivalents of each task actually drawn in a stage (rows / batch size), recorded in
  matrix.json whatever the knobs are, so a comparison states what it held equal.
"""

from __future__ import annotations

from collections import Counter

from unitrack.data.composition import batch_layout, largest_remainder, row_slots  # noqa: F401 (re-exported)
from unitrack.errors import ConfigError

BUDGETS = ("stage", "samples", "exposure")
SCHEDULES = ("restart", "continue")
OPTIMIZER_STATES = ("reset", "carry")


def choice(train_cfg, key: str, allowed: tuple[str, ...]) -> str:
    """`train.<key>` (the first allowed value when absent), refused by name when not allowed."""
    value = str(train_cfg.get(key, allowed[0]))
    if value not in allowed:
        raise ConfigError(f"train.{key}", f"'{value}' is not one of {', '.join(allowed)}")
    return value


def plan_stages(train_cfg, replay_cfg, ratios, batch_size: int) -> list:
    """The run's stages (`unitrack.data.datamodule.stage_plans`) with lengths set by `train.budget`."""
    from unitrack.data.datamodule import stage_plans

    return apply_budget(stage_plans(train_cfg, replay_cfg, ratios), train_cfg, ratios, batch_size)


def apply_budget(plans: list, train_cfg, ratios, batch_size: int) -> list:
    """Reset serial stage lengths to what `train.budget` holds equal to the parallel run (in place)."""
    budget = choice(train_cfg, "budget", BUDGETS)
    if budget == "stage" or train_cfg.mode != "serial":
        return plans
    order = list(train_cfg.order)
    parallel_steps = int(train_cfg.steps_per_stage) * int(train_cfg.parallel_steps_factor)
    if budget == "samples":
        for p, steps in zip(plans, largest_remainder([1.0] * len(plans), parallel_steps)):
            p.steps = max(1, steps)
        return plans
    w = [float(ratios.get(t, 1.0)) for t in order]
    share = dict(zip(order, (parallel_steps * x / sum(w) for x in w)))  # parallel's batches per task
    for p in plans:  # current-task share of a step's rows (append mode: the current task keeps its batch)
        rows, full_replay, _ = batch_layout(p.replay_kind, p.replay_mode, p.replay_ratio, batch_size,
                                            bool(p.replay_tasks))
        current = (rows - full_replay) / batch_size
        p.steps = max(1, int(round(share[p.name] / max(current, 1.0 / batch_size))))
    return plans


def stage_schedule(train_cfg, plans: list, index: int) -> tuple[int, int]:
    """(schedule length, steps of it already behind stage `index`)."""
    if choice(train_cfg, "schedule", SCHEDULES) == "restart":
        return plans[index].steps, 0
    return sum(p.steps for p in plans), sum(p.steps for p in plans[:index])


def exposure(ds) -> dict[str, float]:
    """Batch-equivalents per task a stage dataset draws (rows of the task / batch size); no image read."""
    counts = Counter(ds.ref(i)[0] for i in range(len(ds)))
    out = {t: counts[t] / ds.batch_size for t in sorted(counts)}
    rows = int(getattr(ds, "buffer_rows", 0))  # bounded-buffer rows are drawn live by the step, task by task
    if rows:
        out["buffer"] = rows * ds.plan.steps / ds.batch_size
    return out
