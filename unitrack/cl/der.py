"""DER / DER++ (Buzzega et al. 2020, as Mammoth's derpp.py): replay the model's own past outputs.

L = L_task(current) + alpha * MSE(f(x_b), z_b) + beta * L_task(x'_b, y'_b)

z_b are the score logits the model produced for a pair at the step it entered the buffer (stored by
unitrack/cl/rehearsal.py during training, with the box at the peak token). The alpha term uses the
replay rows of the step's batch (draw 1); the beta term is the tracking loss on a second, independent
draw of the same size, cut afresh. beta = 0 is DER. While DER is on, the draw-1 rows get no task loss
(DER replaces experience replay rather than adding to it): with alpha = beta = 0 the method is not
built and the run is plain experience replay on the same buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unitrack.cl.base import ContinualMethod, forward, zero_like


class DERpp(ContinualMethod):
    name = "der"
    needs_logits = True
    replay_task_loss = False

    def __init__(self, alpha: float, beta: float = 0.0, box_weight: float = 0.0):
        self.alpha, self.beta, self.box_weight = float(alpha), float(beta), float(box_weight)

    def logit_term(self, replay_batch, replay_out) -> tuple[torch.Tensor, dict[str, float]]:
        """alpha * MSE to the stored logits (+ box_weight * L1 of the box at the stored peak token)."""
        current = replay_out["score"]
        target = replay_batch["logits"].to(current.device, torch.float32)
        mse = F.mse_loss(current.float(), target)
        loss, logs = self.alpha * mse, {"mse": float(mse.detach())}
        if self.box_weight > 0 and replay_batch.get("box_pred") is not None:
            idx = target.flatten(1).argmax(1)
            box = replay_out["box"][torch.arange(len(idx), device=idx.device), idx].float()
            l1 = F.l1_loss(box, replay_batch["box_pred"].to(box.device, torch.float32))
            loss = loss + self.alpha * self.box_weight * l1
            logs["box_l1"] = float(l1.detach())
        return loss, logs

    def penalty(self, module, batch, out, replay_batch=None, replay_out=None):
        total, logs = zero_like(out), {}
        if self.alpha > 0 and replay_batch is not None and replay_out is not None:
            if replay_batch.get("logits") is None:
                raise KeyError("DER needs replay_batch['logits']: the buffer must store outputs (needs_logits)")
            total, logs = self.logit_term(replay_batch, replay_out)
        if self.beta > 0 and replay_batch is not None:
            drawn = module.draw_replay(tag=2)  # independent of draw 1: the buffer rng has moved on
            if drawn is not None:
                second = drawn[0]
                task, _ = module.task_loss(forward(module.model, second), second)
                total = total + self.beta * task
                logs["beta_task"] = float(task.detach())
        return total, logs
