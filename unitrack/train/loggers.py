"""The run's loggers: every entry of `cfg.logger` at once (CSV, wandb or both), and ONE wandb run per
training run.

`cfg.logger` maps a name to a Lightning logger config (`_target_`); `logger=csv_wandb` runs CSV and wandb
together. A CSV logger (StageCSVLogger) is made anew for each stage's Trainer, in a folder of its own
(`logs/stage_<k>_<task>`); a wandb logger is made once and holds the whole run, across stages and resumes:

- the resolved config goes to `wandb.init` as the run starts, so a run that crashes has it;
- its id is kept in `<run>/wandb_id.txt` and given back with `resume="allow"` when the run folder is run
  again, so a resumed run continues the same wandb run (offline: one more `offline-run-*` folder with
  the same id);
- training curves are stepped in run steps (`trainer/global_step` counts on over stages and resumes);
- each stage's row of the stage x task matrix is logged as the stage ends (`matrix/SR/<task>`,
  `matrix/PR/<task>` against `matrix/stage`: a curve per task over the stages), the final matrix as a
  table and the run's summary (every cell, BWT, forgetting) at the end.

Only rank 0 talks to wandb: Lightning's logger gives other ranks a dummy experiment, and the calls made
here are rank-zero only.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from unitrack.atomic import write_text_atomic
from unitrack.train.stage_logger import StageCSVLogger

#: The wandb run's id, in the run folder: a re-run of the folder continues that run.
WANDB_ID_FILE = "wandb_id.txt"


class RunWandbLogger(WandbLogger):
    """Lightning's WandbLogger stepped in run steps: each stage runs in a fresh Trainer whose step counts the
    stage's own steps (a resumed part continues from the restored step); `step_offset` is the run's steps
    in earlier stages, so the curves of one run follow each other instead of overwriting step 0."""

    step_offset = 0

    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        super().log_metrics(metrics, None if step is None else step + self.step_offset)


def entries(node: DictConfig | None) -> dict[str, DictConfig]:
    """name -> logger config of `cfg.logger` (a single logger config with `_target_` counts as one)."""
    if node is None:
        return {}
    if "_target_" in node:
        return {"logger": node}
    return {k: v for k, v in node.items() if v is not None}


def _is_wandb(node: DictConfig) -> bool:
    return issubclass(get_class(node._target_), WandbLogger)


def outside_hydra(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """`cfg` with the loggers' `${hydra:...}` values (the wandb run's name) replaced by the run folder's
    name where no Hydra app runs (the Python API, `python -m unitrack.train.foundation`): there they cannot
    resolve, and the fingerprint resolves the whole config."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() or cfg.get("logger") is None:
        return cfg
    out = copy.deepcopy(cfg)
    with open_dict(out):
        for node in entries(out.logger).values():
            raw = OmegaConf.to_container(node, resolve=False)
            for k, v in raw.items():
                if isinstance(v, str) and "${hydra:" in v:
                    node[k] = run_dir.name
    return out


def _sweep_group() -> str | None:
    """A multirun's jobs share a wandb group named by the sweep folder (`train/<folder>`); a single run
    has none."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hc = HydraConfig.get()
    return f"{hc.job.name}/{Path(hc.sweep.dir).name}"


def _wandb_id(run_dir: Path) -> str | None:
    """The run folder's wandb id; rank 0 makes and keeps one (written before the wandb run starts)."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file() and (old := path.read_text().strip()):
        return old
    if rank_zero_only.rank != 0:
        return None  # other ranks never start a wandb run
    from wandb.sdk.lib.runid import generate_id

    new = generate_id()
    write_text_atomic(path, new + "\n")
    return new


class RunLoggers:
    """The loggers of one training run: wandb ones started now, the others made per stage."""

    def __init__(self, cfg: DictConfig, run_dir: Path, config: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.per_stage: dict[str, DictConfig] = {}
        self.wandb: list[WandbLogger] = []
        for name, node in entries(cfg.get("logger")).items():
            if not _is_wandb(node):
                self.per_stage[name] = node
                continue
            extra: dict[str, Any] = {}
            if node.get("id") is None and node.get("version") is None:
                extra["id"] = _wandb_id(run_dir)
            if node.get("config") is None:
                extra["config"] = config
            if node.get("group") is None:
                extra["group"] = _sweep_group()
            # partial: `config` (a plain dict, `_target_`s and all) is no argument of `instantiate`'s own
            self.wandb.append(instantiate(node, _partial_=True)(save_dir=str(run_dir), **extra))
        self._start()

    @rank_zero_only
    def _start(self) -> None:
        for lg in self.wandb:
            run = lg.experiment  # wandb.init now: the config is in the run before any step
            run.define_metric("matrix/stage")
            run.define_metric("matrix/*", step_metric="matrix/stage")

    def for_stage(self, version: str, stage_steps_done: int, run_steps_before: int) -> list[Logger]:
        """The Trainer's loggers for a stage (or its resumed part): `version` names the CSV folder;
        `stage_steps_done` steps of this stage and `run_steps_before` of the run precede its first step."""
        out: list[Logger] = []
        for node in self.per_stage.values():
            resumable = issubclass(get_class(node._target_), StageCSVLogger)
            out.append(instantiate(node, save_dir=str(self.run_dir), version=version,
                                   **({"resume_step": stage_steps_done} if resumable else {})))
        for lg in self.wandb:
            lg.step_offset = run_steps_before  # Lightning's step already counts the stage's done steps
        return out + list(self.wandb)

    @rank_zero_only
    def log_stage(self, index: int, ev: dict, tasks: list[str], run_step: int) -> None:
        """The stage's row of the matrix, once, as the stage ends (`index` counts from 0)."""
        row: dict[str, Any] = {"matrix/stage": index + 1, "trainer/global_step": run_step}
        for m in ("SR", "PR"):
            row |= {f"matrix/{m}/{t}": ev["per_task"][t][m] for t in tasks}
            row[f"matrix/{m}/pooled"] = ev["overall"][m]
        for lg in self.wandb:
            lg.experiment.log(row)

    @rank_zero_only
    def log_final(self, res: dict) -> None:
        """The final matrix (with the static-box baseline) as a table; every cell, BWT and forgetting in the
        run's summary."""
        if not self.wandb:
            return
        import wandb

        cols = ["metric", "stage", *res["tasks"], "pooled"]
        data = [[m, name, *row, sum(row) / len(row)] for m in ("SR", "PR") for name, row in zip(res["stages"], res[m])]
        sb = res["static_box"]
        data += [[m, "static_box", *(sb["per_task"][t][m] for t in res["tasks"]), sb["overall"][m]]
                 for m in ("SR", "PR")]
        summary = {"final/pooled_SR": res["final_pooled_SR"], "final/pooled_PR": res["final_pooled_PR"]}
        for m in ("SR", "PR"):
            summary |= {f"{m}/{k}": v for k, v in (res.get(f"{m}_summary") or {}).items()}
            for k, (name, row) in enumerate(zip(res["stages"], res[m])):  # every cell, whichever process ran it
                summary |= {f"matrix/after_{k + 1}_{name}/{m}/{t}": v for t, v in zip(res["tasks"], row)}
        for lg in self.wandb:
            lg.experiment.log({"matrix/table": wandb.Table(columns=cols, data=data)})
            lg.experiment.summary.update(summary)

    @rank_zero_only
    def finish(self, failed: bool) -> None:
        """End the wandb run in this process (a failure marks it failed; a re-run continues it)."""
        for lg in self.wandb:
            lg.experiment.finish(exit_code=1 if failed else 0)
