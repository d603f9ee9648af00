"""The LightningModule: the tracker's loss plus the continual-learning penalties, for one stage at a time.

Lightning owns the loop, AMP, DDP and checkpoints. What is ours: the loss (LoRAT's IoU-aware BCE + GIoU,
plus the unimodal heads when the model has them), the CL penalties from `unitrack.cl`, the optimiser
groups, a hard stop on a non-finite loss, and the extra checkpoint state (stage, replay buffer, CL
state, RNG) that makes a mid-stage resume exact.
"""

from __future__ import annotations

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from unitrack.errors import UnitrackError
from unitrack.model.loss import lorat_loss
from unitrack.train.optim import cosine_with_warmup, param_groups


class TrainingDiverged(UnitrackError, RuntimeError):
    """Raised on a NaN/inf loss; the last good checkpoint is kept untouched."""


def _take(v, mask: torch.Tensor):
    if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == mask.shape[0]:
        return v[mask.to(v.device)]
    if isinstance(v, list) and len(v) == mask.shape[0]:
        return [x for x, m in zip(v, mask.tolist()) if m]
    return v


def split_replay(batch: dict, out: dict) -> tuple[dict, dict, dict | None, dict | None]:
    """Split one mixed batch into its current-task and replayed parts (CL penalties treat them apart)."""
    mask = batch.get("replay")
    if mask is None or not bool(mask.any()):
        return batch, out, None, None
    mask = mask.bool().cpu()
    cur = {k: _take(v, ~mask) for k, v in batch.items()}
    rep = {k: _take(v, mask) for k, v in batch.items()}
    return cur, {k: _take(v, ~mask) for k, v in out.items()}, rep, {k: _take(v, mask) for k, v in out.items()}


class UnitrackModule(L.LightningModule):
    def __init__(self, model: nn.Module, optim: DictConfig, methods=None, unimodal_weight: float = 1.0,
                 model_cfg: dict | None = None):
        super().__init__()
        self.model = model
        self.model_cfg = model_cfg  # stored in checkpoints so eval/track rebuild the model from the file alone
        self.optim_cfg = optim
        self.methods = methods
        self.unimodal_weight = unimodal_weight
        self.stage_index, self.stage_name, self.stage_steps = 0, "", 1
        self.tasks_seen: list[str] = []  # tasks trained up to this stage (an export's config says them)
        self.buffer = None  # replay buffer (unitrack.cl.replay); kept here so it lands in checkpoints
        self.rehearsal = None  # its live side (unitrack.cl.rehearsal): filled from the stream, drawn per step
        self.datamodule = None  # the stage data, for methods that read it at a stage end (EWC's Fisher)
        self.resume_rng: torch.Tensor | None = None  # the RNG state of the checkpoint a fit resumes from
        # train.schedule / train.optimizer_state (unitrack/train/protocol.py): schedule length and position
        # at this stage's start; AdamW state handed from one stage to the next when carried
        self.schedule_total: int | None = None
        self.schedule_offset = 0
        self.carry_optimizer = False
        self.carried_optimizer: dict | None = None

    def forward(self, batch: dict) -> dict:
        return self.model(batch["z"], batch["zx"], batch["x"], batch["xx"], batch["z_box"], batch["modality"])

    def task_loss(self, out: dict, batch: dict) -> tuple[torch.Tensor, dict]:
        """LoRAT's tracking loss on the fused head plus `unimodal_weight` x the same on each unimodal head."""
        fs = self.model.feat_size
        loss, parts = lorat_loss(out["score"], out["box"], batch["box"], fs)
        logs = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}
        for head in ("rgb", "x"):
            if f"score_{head}" in out and self.unimodal_weight > 0:
                l_h, _ = lorat_loss(out[f"score_{head}"], out[f"box_{head}"], batch["box"], fs)
                loss = loss + self.unimodal_weight * l_h
                logs[f"loss_{head}"] = float(l_h.detach())
        return loss, logs

    def draw_replay(self, tag: int) -> tuple[dict, dict] | None:
        """A batch of distinct buffered pairs, freshly cut, on this device, with their stored outputs."""
        rh = self.rehearsal
        if rh is None or not rh.active:
            return None
        drawn = rh.draw(rh.rows, self.global_step, tag)
        if drawn is None:
            return None
        batch, stored = drawn
        from lightning.pytorch.utilities import move_data_to_device

        return move_data_to_device(batch, self.device), move_data_to_device(stored, self.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        from unitrack.cl.rehearsal import concat_batches

        drawn = self.draw_replay(tag=1)  # bounded buffer: replay rows drawn before this step's insertions
        if drawn is not None:
            batch = concat_batches(batch, drawn[0])
        out = self(batch)
        mask = batch.get("replay")
        replay_loss = self.methods is None or getattr(self.methods, "replay_task_loss", True)
        if mask is not None and bool(mask.any()) and not replay_loss:  # DER: replay rows give no task loss
            keep = ~mask.bool()
            loss, parts = self.task_loss({k: _take(v, keep) for k, v in out.items()},
                                         {k: _take(v, keep) for k, v in batch.items()})
        else:
            loss, parts = self.task_loss(out, batch)
        logs = {f"train/{k}": v for k, v in parts.items()}
        if self.methods is not None and len(self.methods):
            cur, cur_out, rep, rep_out = split_replay(batch, out)
            if rep is not None and drawn is not None:
                rep.update(drawn[1])
            pen, pen_logs = self.methods.penalty(self, cur, cur_out, rep, rep_out)
            loss = loss + pen
            logs.update({f"train/{k}": float(v) for k, v in pen_logs.items()})
        if self.rehearsal is not None:
            self.rehearsal.observe(batch, out)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"non-finite loss ({float(loss.detach())}) at stage {self.stage_index} ({self.stage_name}), step "
                f"{self.global_step}: stopped; the last good checkpoint (last.ckpt) is kept. Try a lower "
                "optim.lr or trainer.gradient_clip_val.")
        logs["train/loss"] = float(loss.detach())
        logs["train/replay_share"] = float(batch["replay"].float().mean()) if "replay" in batch else 0.0
        # stage-prefixed keys: each stage is its own curve (in wandb, one run holds every stage)
        logs = {f"{self.stage_name}/{k}": v for k, v in logs.items()}
        self.log_dict(logs, prog_bar=False, on_step=True, batch_size=batch["x"].shape[0])
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, batch_size=batch["x"].shape[0], logger=False)
        return loss

    def configure_optimizers(self):
        o = self.optim_cfg
        opt = torch.optim.AdamW(param_groups(self.model, o.weight_decay), lr=o.lr, betas=tuple(o.betas))
        total = self.schedule_total or self.stage_steps
        warm = int(round(o.warmup_fraction * total))
        sched = cosine_with_warmup(opt, total, warm, o.min_lr_ratio, offset=self.schedule_offset,
                                   warmup_start_ratio=float(o.get("warmup_start_ratio", 0.0)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # --- extra checkpoint state: stage, buffer, CL methods, RNG -------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Only plain data (dicts, lists, strings, numbers, tensors): checkpoints are read weights-only."""
        checkpoint["unitrack"] = {
            "stage_index": self.stage_index, "stage_name": self.stage_name, "model_cfg": self.model_cfg,
            "tasks_seen": list(self.tasks_seen),
            "stage_step": self.trainer.global_step if self._trainer is not None else 0,
            "buffer": self.buffer.state_dict() if self.buffer is not None else None,
            "methods": self.methods.state_dict() if self.methods is not None else None,
            "torch_rng": torch.get_rng_state(),
        }

    def on_train_start(self) -> None:
        """Train mode always (Lightning keeps each submodule's mode, and stage evaluation left it in eval).
        A fresh stage may take over the stage before's optimiser moments; a fit resumed from a checkpoint
        (Lightning restored weights, optimiser, schedule and step) continues the RNG where it stopped."""
        self.model.train()
        rng, self.resume_rng = self.resume_rng, None
        if self.trainer.ckpt_path is None:
            if self.carry_optimizer and self.carried_optimizer is not None:
                opt = self.trainer.optimizers[0]
                lrs = [g["lr"] for g in opt.param_groups]  # the moments carry on; the lr is the schedule's
                sizes = [len(g["params"]) for g in self.carried_optimizer["param_groups"]]
                if sizes != [len(g["params"]) for g in opt.param_groups]:
                    raise UnitrackError(f"train.optimizer_state=carry: stage {self.stage_index} trains other "
                                        "parameters than the stage before; use train.optimizer_state=reset")
                opt.load_state_dict(self.carried_optimizer)
                for g, lr in zip(opt.param_groups, lrs):
                    g["lr"] = lr
            return
        if rng is not None:
            torch.set_rng_state(rng)

    def on_train_end(self) -> None:
        if self.carry_optimizer:
            self.carried_optimizer = self.trainer.optimizers[0].state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.carry_optimizer and checkpoint.get("optimizer_states"):
            self.carried_optimizer = checkpoint["optimizer_states"][0]  # a finished stage, on resume
        st = checkpoint.get("unitrack", {})
        if st.get("buffer") is not None and self.buffer is not None:
            self.buffer.load_state_dict(st["buffer"])
        if st.get("methods") is not None and self.methods is not None:
            self.methods.load_state_dict(st["methods"])
        if st.get("torch_rng") is not None:
            torch.set_rng_state(st["torch_rng"])
            self.resume_rng = st["torch_rng"]  # set again as the fit starts: its set-up may draw numbers
