"""The hooks a continual-learning method plugs into the training loop (Mammoth's begin/observe/end).

The Lightning module owns the loop and the task loss; a method only adds a penalty to "observe" and
keeps whatever state it needs between tasks (a frozen teacher, fitted temperatures). Several methods
compose by summing their penalties, so `cl: replay` plus `cl.kd.weight=1` is simply two ingredients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

Batch = Mapping[str, Any]
Out = Mapping[str, Tensor]


def forward(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
    """Run the tracker on a batch dict, in the tracker's argument order."""
    return model(batch["z"], batch["zx"], batch["x"], batch["xx"], batch["z_box"], batch["modality"])


def zero_like(out: Out) -> Tensor:
    """A scalar 0 on the outputs' device: the penalty of an inactive method."""
    return out["score"].new_zeros(())


def model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


class ContinualMethod:
    """Base class: every hook is a no-op, so a method overrides only what it uses."""

    name = "base"
    #: The data side must store the model's score logits with each buffer item (DER++).
    needs_logits = False
    #: Replayed rows of the batch also get the tracking loss (experience replay); DER turns it off.
    replay_task_loss = True

    def begin_task(self, module: nn.Module, task: str, stage: int) -> None:
        pass

    def penalty(self, module: nn.Module, batch: Batch, out: Out,
                replay_batch: Batch | None = None, replay_out: Out | None = None
                ) -> tuple[Tensor, dict[str, float]]:
        return zero_like(out), {}

    def end_task(self, module: nn.Module, task: str, stage: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class Composite(ContinualMethod):
    """Several methods at once; the penalty is their sum, logged per method as 'cl/<name>'."""

    name = "composite"

    def __init__(self, methods: list[ContinualMethod] | None = None):
        self.methods: dict[str, ContinualMethod] = {}
        for m in methods or []:
            if m.name in self.methods:
                raise ValueError(f"two continual-learning methods named {m.name!r}")
            self.methods[m.name] = m

    @property
    def needs_logits(self) -> bool:  # type: ignore[override]
        return any(m.needs_logits for m in self.methods.values())

    @property
    def replay_task_loss(self) -> bool:  # type: ignore[override]
        return all(m.replay_task_loss for m in self.methods.values())

    def get(self, name: str) -> ContinualMethod | None:
        return self.methods.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.methods

    def __len__(self) -> int:
        return len(self.methods)

    def begin_task(self, module, task, stage):
        for m in self.methods.values():
            m.begin_task(module, task, stage)

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        total, logs = zero_like(out), {}
        for name, m in self.methods.items():
            loss, parts = m.penalty(module, batch, out, replay_batch, replay_out)
            total = total + loss
            logs[f"cl/{name}"] = float(loss.detach())
            logs.update({f"cl/{name}/{k}": v for k, v in parts.items()})
        return total, logs

    def end_task(self, module, task, stage):
        for m in self.methods.values():
            m.end_task(module, task, stage)

    def state_dict(self):
        return {name: m.state_dict() for name, m in self.methods.items()}

    def load_state_dict(self, state):
        missing = set(self.methods) - set(state)
        if missing:
            raise KeyError(f"checkpoint has no state for continual-learning method(s) {sorted(missing)}")
        for name, m in self.methods.items():
            m.load_state_dict(state[name])
