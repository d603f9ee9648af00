"""Modality distance: how far apart the X modalities (and RGB) lie in the backbone's feature space.

The serial-unification paper explains why unification hurts RGBT most by the distribution distance
between modality features. We measure it with the squared MMD under an RBF kernel whose bandwidth is the
median pairwise distance (median heuristic), between sets of backbone features: each X image (thermal,
depth, event) is fed through the RGB backbone stream exactly like an RGB image, and its pre-fusion
search-token features are mean-pooled.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from unitrack.data.pairs import PairDataset
from unitrack.data.sequence import Sequence


def mmd_rbf(a: torch.Tensor, b: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD between samples a (n,d) and b (m,d); bandwidth = median pairwise distance."""
    xy = torch.cat([a, b]).double()
    d2 = torch.cdist(xy, xy).pow(2)
    if bandwidth is None:
        off = d2[~torch.eye(len(xy), dtype=torch.bool)]
        bandwidth = float(off.median().sqrt()) or 1.0
    k = torch.exp(-d2 / (2 * bandwidth**2))
    n, m = len(a), len(b)
    kaa, kbb, kab = k[:n, :n], k[n:, n:], k[:n, n:]
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return float(term_a + term_b - 2 * kab.mean())


@torch.no_grad()
def backbone_features(model, sequences: list[Sequence], n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """{"rgb": (n,C), "<x modality>": (n,C)} features of search crops around the target."""
    model.eval()
    ds = PairDataset(sequences, model.template_size, model.search_size, model.template_factor,
                     model.search_factor, length=n, seed=seed, augment=False, scale_jitter=0, center_jitter=0)
    rgb, xs = [], []
    for i in range(n):
        s = ds[i]
        z, x, zb = s["z"][None], s["x"][None], s["z_box"][None]
        zx, xx = s["zx"][None], s["xx"][None]
        mod = [s["modality"]]
        rgb.append(model(z, zx, x, xx, zb, mod)["feat_rgb"][0])
        xs.append(model(zx, zx, xx, xx, zb, mod)["feat_rgb"][0])  # the X image through the RGB stream
    return {"rgb": torch.stack(rgb), sequences[0].x_modality: torch.stack(xs)}


def modality_distances(model, sequences_by_task: dict[str, list[Sequence]], n: int = 64,
                       seed: int = 0) -> dict:
    """Pairwise MMD^2 between RGB and every X modality found, plus each task's mean distance of its X
    to the other tasks' X modalities (what the paper relates to per-task degradation)."""
    feats: dict[str, list[torch.Tensor]] = {}
    task_mod = {}
    for task, seqs in sequences_by_task.items():
        f = backbone_features(model, seqs, n, seed)
        task_mod[task] = seqs[0].x_modality
        for k, v in f.items():
            feats.setdefault(k, []).append(v)
    pooled = {k: torch.cat(v) for k, v in feats.items()}
    pairs = {f"{a}-{b}": mmd_rbf(pooled[a], pooled[b]) for a, b in itertools.combinations(sorted(pooled), 2)}
    per_task = {}
    for t, m in task_mod.items():
        others = [pairs.get(f"{min(m, o)}-{max(m, o)}") for o in task_mod.values() if o != m]
        per_task[t] = float(np.mean(others)) if others else float("nan")
    return {"pairs": pairs, "per_task": per_task, "samples": n, "kernel": "rbf, median-heuristic bandwidth"}
