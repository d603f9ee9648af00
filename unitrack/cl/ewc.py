"""Online EWC (Schwarz et al. 2018, as Mammoth's ewc_on.py): a quadratic anchor to the previous weights,
each trainable parameter weighted by a running diagonal Fisher.

At every stage end: F_new = mean over `fisher_batches` training batches of the squared gradient of
the tracking loss (the empirical Fisher: a tracker has no class likelihood to sample from; per-batch
rather than per-sample gradients, to keep the cost at a few backward passes), F <- gamma * F + F_new,
and the anchor theta* becomes the current weights. Penalty: weight * sum F (theta - theta*)^2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from unitrack.cl.base import ContinualMethod, zero_like


def trainable(module) -> dict[str, Tensor]:
    return {n: p for n, p in module.model.named_parameters() if p.requires_grad}


class OnlineEWC(ContinualMethod):
    name = "ewc"

    def __init__(self, weight: float, gamma: float = 1.0, fisher_batches: int = 8):
        self.weight, self.gamma, self.fisher_batches = float(weight), float(gamma), int(fisher_batches)
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        if not self.fisher:
            return zero_like(out), {}
        total = zero_like(out)
        for n, p in trainable(module).items():
            if n in self.fisher:
                f, a = self.fisher[n].to(p.device), self.anchor[n].to(p.device)
                total = total + (f * (p - a).pow(2)).sum()
        return self.weight * total, {"quadratic": float(total.detach())}

    def _batches(self, module):
        """The first batches of the stage's own data (current task only), cut as in training."""
        from lightning.pytorch.utilities import move_data_to_device

        from unitrack.data.pairs import collate_pairs

        dm = getattr(module, "datamodule", None)
        if dm is None:
            raise RuntimeError("online EWC needs module.datamodule to estimate the Fisher")
        ds = dm.stage_dataset()
        b = int(dm.cfg.batch_size)
        own = (i for i in range(len(ds)) if ds.ref(i)[0] in ds.plan.tasks)  # lazily: a few batches only
        for _ in range(self.fisher_batches):
            chunk = [i for _, i in zip(range(b), own)]
            if not chunk:
                return
            batch = collate_pairs([ds[i] for i in chunk])
            yield move_data_to_device(batch, module.device)

    def end_task(self, module, task, stage):
        params = trainable(module)
        new = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        count = 0
        with torch.enable_grad():
            for batch in self._batches(module):
                module.model.zero_grad(set_to_none=True)
                loss, _ = module.task_loss(module(batch), batch)
                loss.backward()
                for n, p in params.items():
                    if p.grad is not None:
                        new[n] += p.grad.detach().float().pow(2)
                count += 1
        module.model.zero_grad(set_to_none=True)
        if count == 0:
            return
        for n in new:
            new[n] = (new[n] / count).cpu()
            self.fisher[n] = self.gamma * self.fisher[n] + new[n] if n in self.fisher else new[n]
        self.anchor = {n: p.detach().float().cpu().clone() for n, p in params.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": dict(self.fisher), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fisher, self.anchor = dict(state["fisher"]), dict(state["anchor"])
