"""Serial and parallel unification: the stage loop around Lightning's `fit`.

serial:   stage k trains task k (in `train.order`) starting from stage k-1's weights, plus replay of the
          earlier tasks (full rehearsal or a bounded buffer) and any CL penalties (KD, DER++, RKD).
parallel: one stage on the mixture of all tasks (`data.ratios`, 1:1:1 by default).
single:   one task.
After every stage each task is tracked on its validation sequences with the real online tracker and
scored; the stage x task matrix, BWT and forgetting go to matrix.json / matrix.csv.

Resume: re-running with the same run dir skips finished stages (their `stage_<k>_<task>.ckpt` and
evaluation row exist), and continues an unfinished stage from `last.ckpt` through Lightning's
`trainer.fit(ckpt_path=...)` (weights, optimiser, scheduler, step, loader position; the module adds replay
buffer, CL state and RNG), see unitrack/train/checkpointing.py.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from unitrack import TRAIN_TASKS, fingerprint
from unitrack.atomic import write_text_atomic
from unitrack.cl.methods import build_methods
from unitrack.cl.rehearsal import Rehearsal
from unitrack.cl.replay import make_buffer, validate_replay
from unitrack.cl.samm import eval_samm_kwargs
from unitrack.data.datamodule import StagePlan, UnitrackDataModule
from unitrack.data.sequence import Sequence
from unitrack.data.splits import validation_sequences
from unitrack.errors import ConfigError
from unitrack.model.init import build_start_model, model_args
from unitrack.train.callbacks import usable_checkpoint
from unitrack.train.checkpointing import AtomicCheckpointIO, resume_point, run_callbacks
from unitrack.train.foundation import resolve_init
from unitrack.train.loggers import RunLoggers, outside_hydra
from unitrack.train.module import UnitrackModule
from unitrack.train.protocol import OPTIMIZER_STATES, choice, exposure, plan_stages, stage_schedule
from unitrack.train.test_split import score_test_split

log = logging.getLogger(__name__)
console = Console()


def validate(cfg: DictConfig) -> None:
    """Fail before any training on config combinations that cannot work, naming the key."""
    if int(cfg.model.lora.rank) <= 0:
        raise ConfigError("model.lora.rank", f"must be > 0, got {cfg.model.lora.rank}")
    if float(cfg.model.lora.alpha) <= 0:
        raise ConfigError("model.lora.alpha", f"must be > 0, got {cfg.model.lora.alpha}")
    if int(cfg.model.x_branch.depth) < 0:
        raise ConfigError("model.x_branch.depth", f"must be >= 0, got {cfg.model.x_branch.depth}")
    validate_replay(cfg.cl.replay)
    if cfg.train.mode != "serial" and cfg.cl.replay.kind != "none":
        raise ConfigError("cl.replay.kind", f"replay needs train.mode=serial (got mode {cfg.train.mode})")
    if int(cfg.data.batch_size) <= 0:
        raise ConfigError("data.batch_size", f"must be > 0, got {cfg.data.batch_size}")
    for t in cfg.train.order:
        if t not in TRAIN_TASKS:
            raise ConfigError("train.order", f"unknown task '{t}' (valid: {', '.join(TRAIN_TASKS)})")
        if t not in cfg.data.tasks:
            raise ConfigError(f"data.tasks.{t}", "task in train.order has no dataset configured")


def val_sequences(data_cfg: DictConfig, task: str, record: dict | None = None) -> list[Sequence]:
    """A few VALIDATION sequences of a task (data/splits.py: a hold-out of training or the dataset's own val
    split, never test), cut to `val_max_frames` so per-stage evaluation stays fast; `record` gets where
    they come from (for matrix.json)."""
    seqs, rec = validation_sequences(data_cfg, task)
    seqs = seqs[: int(data_cfg.val_sequences)]
    if record is not None:
        record.update(rec, evaluated=[s.uid for s in seqs], max_frames=int(data_cfg.val_max_frames))
    return [s.head(int(data_cfg.val_max_frames)) for s in seqs]


def _sr_pr(metrics: dict, tasks) -> dict:
    """The SR/PR part of `score`'s output, per task and overall (what the stage matrix keeps)."""
    pick = lambda d: {"SR": d["SR"], "PR": d["PR"]}  # noqa: E731
    return {"per_task": {t: pick(metrics["per_task"][t]) for t in tasks}, "overall": pick(metrics["overall"])}


def evaluate_tasks(model, val: dict[str, list[Sequence]], out_dir: Path, eval_cfg: DictConfig,
                   tracker_kwargs: dict | None = None) -> dict:
    """Track every task's validation sequences in one batched pass and score them per task.

    Inside a DDP run (a process group exists: `trainer=ddp`, torchrun, SLURM) the sequences are sharded
    over the ranks and rank 0 scores; every rank returns the same row."""
    from unitrack.eval.shard import track_and_score

    seqs = [s for t in val for s in val[t]]
    m, stats = track_and_score(model, seqs, out_dir, eval_cfg, tracker_kwargs, what="per-stage evaluation")
    return {**_sr_pr(m, val), "fps": stats.get("fps")}


def static_box_baseline(val: dict[str, list[Sequence]], out_dir: Path, protocol: str) -> dict:
    """The frame-0 box held forever: the floor a tracker that learned anything must clearly beat."""
    from unitrack.eval.results import write_results
    from unitrack.eval.score import score

    seqs = [s for t in val for s in val[t]]
    for s in seqs:
        write_results(out_dir, s.name, np.repeat(s.boxes[:1], len(s), 0), np.ones(len(s)))
    m = score(seqs, out_dir, protocol=protocol)
    return _sr_pr(m, val)


def continual_matrix(rows: list[dict], tasks: list[str], metric: str) -> list[list[float]]:
    """Stage x task matrix of one metric from the stage rows (tasks in training order)."""
    return [[r["eval"]["per_task"][t][metric] for t in tasks] for r in rows]


def _atomic_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))


def _restore(module: UnitrackModule, ckpt: dict) -> None:
    """Weights plus our extra state (buffer, CL methods, RNG) from a loaded checkpoint."""
    module.load_state_dict(ckpt["state_dict"])
    module.on_load_checkpoint(ckpt)


def _make_trainer(cfg: DictConfig, steps: int, run_dir: Path, callbacks: list, logger) -> L.Trainer:
    """A stage's Trainer: conf/trainer, the callbacks (checkpointing among them), atomic checkpoint files."""
    plugins = [*(cfg.trainer.get("plugins") or []), AtomicCheckpointIO()]
    return instantiate(cfg.trainer, max_steps=steps, callbacks=callbacks, logger=logger,
                       default_root_dir=str(run_dir), plugins=plugins)


def _resume_mid_stage(last: Path | None, plan: StagePlan) -> tuple[Path | None, int]:
    """(checkpoint to continue the stage from, stage steps it holds), or (None, 0) to start the stage: the
    last checkpoint of the checkpointing callback (`last`; None when checkpointing is off), if it holds this
    stage part-way. Lightning restores it inside `fit`."""
    ck = usable_checkpoint(last) if last is not None else None  # corrupt: moved aside with a warning
    if ck is None:
        return None, 0
    st = ck.get("unitrack", {})
    if st.get("stage_index") != plan.index or not 0 < st.get("stage_step", 0) < plan.steps:
        return None, 0
    console.print(f"resuming stage {plan.index + 1} from {last} at step {st['stage_step']}")
    return last, int(st["stage_step"])


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Train the stages of `cfg` (single, serial or parallel) into `run_dir` and return its matrix.json.

    What `unitrack train` runs: resolves the start weights (`model.init`, the RGB foundation), trains each
    stage, evaluates every task on its validation sequences after each, tracks the test split at the end,
    and writes matrix.json / matrix.csv / test_metrics.json. Finished stages in `run_dir` are skipped and an
    unfinished one resumes from last.ckpt; a run folder of another config is refused, naming the keys."""
    validate(cfg)
    cfg = outside_hydra(cfg, run_dir)  # the wandb run's name, where `${hydra:...}` cannot resolve
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    fp = fingerprint.check_train_run(run_dir, OmegaConf.to_container(cfg, resolve=True),
                                     force=str(cfg.get("resume", "auto")) == "force")  # a changed config stops here
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    fingerprint.write(run_dir, fp)
    cfg = resolve_init(cfg, train)  # model.init=foundation: the cached RGB foundation (trained now if missing)
    # seeded after it: a foundation trained now or reused leaves the run's random stream the same
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")

    model = build_start_model(cfg.model)  # model.init loads the start weights
    model_cfg = model_args(OmegaConf.to_container(cfg.model, resolve=True))  # checkpoints hold every weight
    methods = build_methods(cfg.cl, cfg.model)
    eval_samm_kwargs(cfg.eval, methods)  # eval.samm without calibration fails before training
    module = UnitrackModule(model, cfg.optim, methods, unimodal_weight=float(cfg.train.unimodal_loss_weight),
                            model_cfg=model_cfg)
    rc = cfg.cl.replay
    if rc.kind in ("reservoir", "balanced"):
        module.buffer = make_buffer(rc.kind, int(rc.buffer_size), int(cfg.seed))
        module.rehearsal = Rehearsal(module.buffer, int(cfg.seed), store=methods.needs_logits)
    geo = {k: getattr(model, k) for k in ("template_size", "search_size", "template_factor", "search_factor",
                                           "feat_size")}
    dm = UnitrackDataModule(cfg.data, geo, seed=int(cfg.seed))
    module.datamodule = dm
    plans = plan_stages(cfg.train, rc, cfg.data.ratios, int(cfg.data.batch_size))
    module.carry_optimizer = choice(cfg.train, "optimizer_state", OPTIMIZER_STATES) == "carry"
    tasks_eval = list(dict.fromkeys(cfg.train.order))
    val_split = {t: {} for t in tasks_eval}
    val = {t: val_sequences(cfg.data, t, val_split[t]) for t in tasks_eval}
    baseline = static_box_baseline(val, run_dir / "eval" / "static_box", cfg.eval.protocol)

    progress_path = run_dir / "stages.json"
    rows: list[dict] = json.loads(progress_path.read_text()) if progress_path.exists() else []
    # CSV and/or wandb: a wandb run starts now, before stage 1, with the resolved config (a re-run continues it)
    loggers, failed = RunLoggers(cfg, run_dir, OmegaConf.to_container(cfg, resolve=True)), True
    try:
        for plan in plans:
            # files and folders count stages as the console does (stage 1 = stage_1_<task>); plan.index is 0-based
            stage_ckpt = ckpt_dir / f"stage_{plan.index + 1}_{plan.name}.ckpt"
            module.tasks_seen = list(dict.fromkeys(t for p in plans[: plan.index + 1] for t in p.tasks))
            good = usable_checkpoint(stage_ckpt)  # a corrupt one is moved aside: the stage is trained again
            done = good is not None and any(r["stage"] == plan.index for r in rows)
            if done:
                console.print(f"[dim]stage {plan.index + 1}/{len(plans)} {plan.name}: done, skipped[/dim]")
                _restore(module, good)
                continue
            console.rule(f"stage {plan.index + 1}/{len(plans)}: {plan.name}"
                         + (f" + {plan.replay_kind} replay of {','.join(plan.replay_tasks)}" if plan.replay_tasks
                            and plan.replay_kind != "none" else ""))
            dm.set_stage(plan)
            stage_ds = dm.stage_dataset()
            drawn = exposure(stage_ds)  # batch-equivalents per task this stage draws
            if not stage_ckpt.exists():
                module.stage_index, module.stage_name, module.stage_steps = plan.index, plan.name, plan.steps
                module.n_stages = len(plans)
                module.schedule_total, module.schedule_offset = stage_schedule(cfg.train, plans, plan.index)
                methods.begin_task(module, plan.name, plan.index)
                if module.rehearsal is not None:
                    module.rehearsal.set_stage(plan.index, plan.tasks, dm.pairs, stage_ds.buffer_rows)
                callbacks = run_callbacks(cfg.get("callbacks"), ckpt_dir)
                resume, done_steps = _resume_mid_stage(resume_point(callbacks), plan)
                # Lightning's restored step counter continues the stage: loggers offset by the run's earlier stages
                logger = loggers.for_stage(f"stage_{plan.index + 1}_{plan.name}", done_steps,
                                           sum(p.steps for p in plans[: plan.index]))
                trainer = _make_trainer(cfg, plan.steps, run_dir, callbacks, logger or False)
                trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
                methods.end_task(module, plan.name, plan.index)
                trainer.save_checkpoint(stage_ckpt, weights_only=False)  # via AtomicCheckpointIO, by rank 0
                if trainer.is_global_zero:
                    fingerprint.record_checkpoint(run_dir, stage_ckpt.name, stage_ckpt)
            else:
                _restore(module, good)
            ev = evaluate_tasks(module.model, val, run_dir / "eval" / f"stage_{plan.index + 1}_{plan.name}", cfg.eval,
                                eval_samm_kwargs(cfg.eval, methods))
            rows = [r for r in rows if r["stage"] != plan.index] + [{"stage": plan.index, "name": plan.name,
                                                                     "eval": ev, "steps": plan.steps,
                                                                     "exposure": drawn}]
            _atomic_json(progress_path, rows)
            loggers.log_stage(plan.index, ev, tasks_eval, sum(p.steps for p in plans[: plan.index + 1]))
            print_row(plan, ev, tasks_eval)
        result = summarise(rows, tasks_eval, baseline, cfg)
        result["fingerprint"] = fingerprint.read(run_dir)
        result["eval_split"] = "validation"  # every number above but `test` (test_metrics.json: test_split.py)
        result["validation"] = val_split
        result["init"] = getattr(model, "init_report", None)
        result["params_trainable"] = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
        result["params_total"] = sum(p.numel() for p in module.model.parameters())
        result["test"] = score_test_split(module.model, cfg, run_dir, tasks_eval, eval_samm_kwargs(cfg.eval, methods))
        _atomic_json(run_dir / "matrix.json", result)
        write_matrix_csv(run_dir / "matrix.csv", result)
        print_matrix(result)
        loggers.log_final(result)
        failed = False
        return result
    finally:
        loggers.finish(failed)


def summarise(rows: list[dict], tasks: list[str], baseline: dict, cfg: DictConfig) -> dict:
    """The stage x task matrices (SR, PR), their continual summaries and the static box, from the stage rows."""
    from unitrack.eval.metrics import continual_summary

    rows = sorted(rows, key=lambda r: r["stage"])
    res: dict[str, Any] = {"mode": cfg.train.mode, "order": list(cfg.train.order), "tasks": tasks,
                           "stages": [r["name"] for r in rows], "protocol": cfg.eval.protocol,
                           "eval_kind": "tracker", "static_box": baseline,
                           "exposure": {r["name"]: r.get("exposure") for r in rows},
                           "stage_steps": {r["name"]: r.get("steps") for r in rows},
                           "protocol_knobs": {k: str(cfg.train.get(k, d)) for k, d in
                                              (("budget", "stage"), ("schedule", "restart"),
                                               ("optimizer_state", "reset"))}
                           | {"stratified": bool(cfg.data.get("stratified", True))}}
    for metric in ("SR", "PR"):
        R = continual_matrix(rows, tasks, metric)
        res[metric] = R
        if cfg.train.mode == "serial" and len(R) == len(tasks) and len(R) > 1:
            res[f"{metric}_summary"] = continual_summary(R)
    final = rows[-1]["eval"]
    res["final"] = final
    res["final_pooled_SR"], res["final_pooled_PR"] = final["overall"]["SR"], final["overall"]["PR"]
    res["beats_static_box"] = bool(final["overall"]["SR"] > baseline["overall"]["SR"])
    return res


def write_matrix_csv(path: Path, res: dict) -> None:
    """matrix.csv: one row per stage and metric, one column per task."""
    lines = ["metric,stage," + ",".join(res["tasks"])]
    for metric in ("SR", "PR"):
        for name, row in zip(res["stages"], res[metric]):
            lines.append(f"{metric},{name}," + ",".join(f"{v:.4f}" for v in row))
        lines.append(f"{metric},static_box," + ",".join(f"{res['static_box']['per_task'][t][metric]:.4f}"
                                                          for t in res["tasks"]))
    write_text_atomic(path, "\n".join(lines) + "\n")


def print_row(plan: StagePlan, ev: dict, tasks: list[str]) -> None:
    """One stage's scores on the console, as the stage ends."""
    cells = "  ".join(f"{t}: SR {ev['per_task'][t]['SR']:.3f} PR {ev['per_task'][t]['PR']:.3f}" for t in tasks)
    console.print(f"after stage {plan.index + 1} ({plan.name}): {cells}")


def print_matrix(res: dict) -> None:
    """The final stage x task tables (SR, PR) with BWT, forgetting and the static box."""
    for metric in ("SR", "PR"):
        table = Table(title=f"stage x task {metric} ({res['protocol']} protocol, real tracker on validation "
                      "sequences, not test)")
        table.add_column("after stage")
        for t in res["tasks"]:
            table.add_column(t, justify="right")
        table.add_column("pooled", justify="right")
        for k, (name, row) in enumerate(zip(res["stages"], res[metric])):
            table.add_row(f"{k + 1} {name}", *(f"{v:.3f}" for v in row), f"{np.mean(row):.3f}")
        sb = res["static_box"]
        table.add_row("static box", *(f"{sb['per_task'][t][metric]:.3f}" for t in res["tasks"]),
                      f"{sb['overall'][metric]:.3f}", style="dim")
        console.print(table)
        if f"{metric}_summary" in res:
            s = res[f"{metric}_summary"]
            console.print(f"{metric}: average {s['average']:.3f}  BWT {s['bwt']:+.3f}  forgetting "
                          f"{s['forgetting']:.3f}")
    console.print(f"pooled SR {res['final_pooled_SR']:.3f} vs static-box baseline "
                  f"{res['static_box']['overall']['SR']:.3f}")


def objective(res: dict) -> float:
    """What an Optuna sweep maximises: the final pooled SR (NaN-safe)."""
    v = float(res.get("final_pooled_SR", float("nan")))
    return v if math.isfinite(v) else 0.0
