"""A bounded replay buffer as Mammoth runs one: filled from the training stream as it is seen, drawn live.

Every optimiser step the current-task rows are offered to the buffer (reservoir or balanced) *after*
the step's draws, each with the outputs the model gave it right then (DER's stored logits, and the
box at the peak token). A draw takes distinct items (no replacement within a draw) and re-cuts every
pair with a fresh crop and augmentation: the generator is keyed on (seed, stage, step, draw, row), so a
pair replayed twice is cut twice differently, and a resumed run makes exactly the same draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unitrack.cl.replay import Buffer, items_from_batch

#: Buffer-item key <- model output key. Per-modality heads are stored only when the model emits them.
STORED = {"logits": "score", "logits_rgb": "score_rgb", "logits_x": "score_x"}


def peak_boxes(out: Mapping[str, Tensor]) -> Tensor:
    """The fused head's box (B, 4) at its most confident token."""
    idx = out["score"].flatten(1).argmax(1)
    return out["box"][torch.arange(len(idx), device=idx.device), idx]


def store_outputs(items: list[dict[str, Any]], out: Mapping[str, Tensor]) -> list[dict[str, Any]]:
    """Attach row i's detached CPU float32 score logits (every head present) and peak box to items[i]."""
    heads = {key: out[src].detach().float().cpu() for key, src in STORED.items() if out.get(src) is not None}
    if "logits" not in heads:
        raise KeyError("model output has no 'score' to store")
    if len(items) != heads["logits"].shape[0]:
        raise ValueError(f"{len(items)} items for a batch of {heads['logits'].shape[0]} outputs")
    box = peak_boxes(out).detach().float().cpu() if out.get("box") is not None else None
    for i, it in enumerate(items):
        for key, value in heads.items():
            it[key] = value[i].clone()
        if box is not None:
            it["box_pred"] = box[i].clone()
    return items


def concat_batches(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Row-wise concatenation of two collated batches with the same keys."""
    out = {}
    for k, v in a.items():
        w = b[k]
        out[k] = torch.cat([v, w.to(v.device)]) if torch.is_tensor(v) else list(v) + list(w)
    return out


class Rehearsal:
    """The live side of a bounded buffer: `observe` feeds it, `draw` replays from it."""

    def __init__(self, buffer: Buffer, seed: int, store: bool = False):
        self.buffer, self.seed, self.store = buffer, int(seed), bool(store)
        self.pairs: dict[str, Any] = {}
        self.stage, self.rows, self.current_tasks = 0, 0, []

    def set_stage(self, stage: int, tasks: list[str], pairs: Mapping[str, Any], rows: int) -> None:
        """`rows`: items per draw this stage (0: no replay, e.g. the first stage)."""
        self.stage, self.current_tasks, self.rows = int(stage), list(tasks), int(rows)
        self.pairs = dict(pairs)

    @property
    def active(self) -> bool:
        return self.rows > 0 and len(self.buffer) > 0

    def _load(self, items: list[dict[str, Any]], key: list[int]) -> dict[str, Any]:
        from unitrack.data.pairs import PairRef, collate_pairs

        samples = []
        for j, it in enumerate(items):
            ref = PairRef(it["seq_index"], it["template_frame"], it["search_frame"])
            s = self.pairs[it["task"]].load_pair(ref, np.random.default_rng([self.seed, *key, j, 2]))
            s["replay"] = torch.tensor(True)
            samples.append(s)
        return collate_pairs(samples)

    def draw(self, n: int, step: int, tag: int) -> tuple[dict[str, Any], dict[str, Tensor]] | None:
        """n distinct buffer items freshly cut: (collated batch, their stored outputs); None if empty."""
        if n <= 0 or len(self.buffer) == 0:
            return None
        items = self.buffer.sample(n)
        missing = [it["task"] for it in items if it["task"] not in self.pairs]
        if missing:
            raise KeyError(f"replayed task {missing[0]!r} has no pair dataset this stage")
        batch = self._load(items, [self.stage, int(step), int(tag)])
        stored = {k: torch.stack([it[k] for it in items]) for k in (*STORED, "box_pred")
                  if all(it.get(k) is not None for it in items)}
        return batch, stored

    def all_items(self, chunk: int = 32, tag: int = 9) -> Iterator[dict[str, Any]]:
        """Every buffered pair once, freshly cut (temperature calibration on the buffer, as SAMM)."""
        items = list(self.buffer.items)
        for k in range(0, len(items), chunk):
            yield self._load(items[k:k + chunk], [self.stage, 0, int(tag), k])

    def observe(self, batch: Mapping[str, Any], out: Mapping[str, Tensor]) -> int:
        """Offer the batch's current-task rows (with their outputs when stored); returns how many."""
        mask = batch.get("replay")
        keep = (~mask.bool()).cpu() if mask is not None else torch.ones(len(batch["task"]), dtype=torch.bool)
        rows = [i for i, k in enumerate(keep.tolist()) if k and batch["task"][i] in self.current_tasks]
        if not rows:
            return 0
        sub = {"task": [batch["task"][i] for i in rows], "ref": batch["ref"][rows].cpu()}
        items = items_from_batch(sub)
        if self.store:
            idx = torch.tensor(rows, device=out["score"].device)
            store_outputs(items, {k: v[idx] for k, v in out.items()
                                  if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == len(keep)})
        for it in items:
            it["stage"] = self.stage
            self.buffer.add(it)
        return len(items)
