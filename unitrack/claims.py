"""The serial-unification paper's claims, tested on a study's test records with paired bootstrap intervals.

Each claim is a statistic of per-sequence test scores (test_metrics.json) that the paper says is positive
(or negative, or small), estimated with the crossed bootstrap of unitrack/stats.py over the seeds and test
sequences both sides share, and given a verdict word: reproduced (the interval excludes 0 in the paper's
direction), contradicted (it excludes 0 the other way) or inconclusive.

Only like is compared with like: two groups are compared when their configs agree on every key but the
ones that define the method (`METHOD_KEYS`: mode, task order, CL method, experts, heads, SAMM inference),
so a comparison never mixes step counts, capacities or data; a comparison pairs runs of the same seed
(the same RGB foundation) on the same test sequences.

The claims (from the paper and the study issue):
- serial + replay beats parallel: +2.3 SR, +1.2 PR (points) pooled;
- every CL method beats naive serial fine-tuning (CL cuts the degradation unification brings);
- unification degrades each task against its single-task tracker (unified − single-task < 0);
- the degradation ranks RGBT > RGBD > RGBE and follows the modality distance (MMD² between the modalities
  in the foundation's backbone features, recorded by each job): Spearman ρ > 0;
- the degradation falls as the X branch grows: Spearman ρ(depth, unified − single-task) > 0;
- task order matters little: the spread of pooled SR over the six orders is small (0.012 in the paper),
  judged against an equivalence margin (reproduced when the whole interval lies below it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from unitrack import TASKS
from unitrack.stats import (
    POOLED,
    Bootstrap,
    Estimate,
    Scores,
    align,
    equivalence_verdict,
    spearman_rows,
    verdict,
)

#: Config keys (dotted prefixes) that make a method what it is: groups that differ only here are compared.
METHOD_KEYS = ("method", "tags", "train.mode", "train.order", "train.unimodal_loss_weight", "cl.",
               "model.experts", "model.heads", "eval.samm")
SERIAL_REPLAY, PARALLEL, NAIVE = "replay", "parallel", "finetune"
#: Continual-learning methods compared with naive serial fine-tuning.
CL_METHODS = ("replay", "er_reservoir", "er_balanced", "der", "lwf", "ewc", "replay+experts", "samm", "replay+kd",
              "er+kd")
DEPTH_KEY = "model.x_branch.depth"
ORDER_KEY = "train.order"


@dataclass
class Claim:
    """One row of the claims table."""

    claim: str
    comparison: str
    metric: str
    paper: str
    estimate: Estimate
    verdict: str
    seeds: int
    sequences: int
    setting: str = "–"
    kind: str = "difference"  # difference | rho | spread
    extra: dict = field(default_factory=dict)


def _method_key(k: str) -> bool:
    return any(k == p or k.startswith(p if p.endswith(".") else p + ".") for p in METHOD_KEYS)


def shared_setting(group: dict, drop: tuple[str, ...] = ()) -> tuple:
    """A group's config minus the method-defining keys (and `drop`): equal for groups that may be compared."""
    return tuple(sorted((k, v) for k, v in group["config"].items()
                        if not _method_key(k) and not any(k == d for d in drop)))


def group_scores(group: dict, metric: str) -> Scores | None:
    """The group's per-sequence test scores (one row per seed, the sequences every run was tested on); None
    when none of its runs has test_metrics.json."""
    runs = {}
    for r in group["runs"]:
        if r.get("test") and r["seed"] not in runs:
            runs[r["seed"]] = r["test"]["per_sequence"]
    if not runs:
        return None
    seeds = sorted(runs)
    uids = sorted(set.intersection(*(set(ps) for ps in runs.values())))
    if not uids:
        return None
    tasks = [runs[seeds[0]][u]["task"] for u in uids]
    vals = np.array([[float(runs[s][u][metric]) for u in uids] for s in seeds])
    return Scores(seeds, uids, tasks, vals)


def _composite(parts: list[Scores]) -> Scores | None:
    """One reference from several groups tested on disjoint tasks (the single-task trackers): its score on
    a sequence is the score of the group that was tested on it; seeds: those every part has."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    seeds = sorted(set.intersection(*(set(p.seeds) for p in parts)))
    uids, tasks, cols = [], [], []
    for p in parts:
        rows = [p.seeds.index(s) for s in seeds]
        for i, (u, t) in enumerate(zip(p.uids, p.tasks)):
            uids.append(u)
            tasks.append(t)
            cols.append(p.values[rows, i])
    if not seeds or not cols:
        return None
    return Scores(seeds, uids, tasks, np.stack(cols, axis=1))


def _setting_label(group: dict) -> str:
    """The keys (not the method's) on which a group differs from the other groups of its method."""
    shown = {k: v for k, v in group.get("differs", {}).items() if not _method_key(k)}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "–"


def _name(group: dict) -> str:
    """The method, with its task order when the order matters (serial: TDE = rgbt, rgbd, rgbe)."""
    r = group["runs"][0]
    return f"{group['method']} ({r['order']})" if r["matrix"]["mode"] == "serial" else group["method"]


def _paired(boot: Bootstrap, a: Scores, b: Scores, key: str) -> tuple[Estimate, int, int]:
    """mean(a − b) on `key` (a task or pooled) over the seeds and sequences both have."""
    seeds, uids, tasks, X = align([a, b])
    if key != POOLED:
        keep = [i for i, t in enumerate(tasks) if t == key]
        uids, tasks, X = [uids[i] for i in keep], [tasks[i] for i in keep], X[:, :, keep]
    if not seeds or not uids:
        return Estimate(float("nan"), float("nan"), float("nan")), 0, 0
    est = boot.statistic(X[0:1] - X[1:2], tasks, lambda m: m[key][..., 0])
    return est, len(seeds), len(uids)


def _unified(groups: list[dict]) -> list[dict]:
    return [g for g in groups if g["runs"][0]["matrix"]["mode"] in ("serial", "parallel")]


def _singles(groups: list[dict], g: dict, drop: tuple[str, ...] = ()) -> dict[str, dict]:
    """The single-task groups comparable with `g`, by task."""
    key = shared_setting(g, drop)
    return {h["method"][len("single_"):]: h for h in groups
            if h["method"].startswith("single_") and shared_setting(h, drop) == key}


def paired_claims(groups: list[dict], boot: Bootstrap) -> list[Claim]:
    """Serial + replay − parallel, each CL method − naive serial, unified − single-task per task."""
    out: list[Claim] = []
    by_setting: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        by_setting[shared_setting(g)][g["method"]].append(g)

    def add(claim, a, b, metric, key, paper, direction, label):
        sa, sb = group_scores(a, metric), group_scores(b, metric)
        if sa is None or sb is None:
            return
        est, ns, nq = _paired(boot, sa, sb, key)
        if ns:
            out.append(Claim(claim, label, f"{key} {metric}", paper, est, verdict(est, direction), ns, nq,
                             _setting_label(a)))

    for methods in by_setting.values():
        for a in methods.get(SERIAL_REPLAY, []):
            for b in methods.get(PARALLEL, []):
                for metric, paper in (("SR", "+0.023"), ("PR", "+0.012")):
                    add("serial + replay beats parallel", a, b, metric, POOLED, paper, +1,
                        f"{_name(a)} − {_name(b)}")
        for m in CL_METHODS:
            for a in methods.get(m, []):
                for b in methods.get(NAIVE, []):  # serial against serial: the same task order
                    if a["config"].get(ORDER_KEY) == b["config"].get(ORDER_KEY):
                        add("CL cuts unification degradation", a, b, "SR", POOLED, "> 0", +1,
                            f"{_name(a)} − {_name(b)}")
    for g in _unified(groups):
        singles = _singles(groups, g)
        for t in TASKS:
            if t in singles:
                add("unification degrades each task", g, singles[t], "SR", t, "< 0", -1, f"{_name(g)} − single_{t}")
    return out


def _degradations(groups: list[dict], g: dict, metric: str = "SR") -> tuple[list[str], Scores, Scores] | None:
    """(tasks, unified scores, single-task reference) when every task of `g` has a comparable single."""
    singles = _singles(groups, g)
    tasks = [t for t in TASKS if t in singles]
    u = group_scores(g, metric)
    ref = _composite([group_scores(singles[t], metric) for t in tasks])
    if u is None or ref is None or len(tasks) < 2:
        return None
    return tasks, u, ref


def _distance(g: dict, tasks: list[str]) -> dict[str, float] | None:
    """Each task's mean modality distance over the group's runs (the foundation's, recorded per job)."""
    per = defaultdict(list)
    for r in g["runs"]:
        md = (r.get("test") or {}).get("modality_distance") or {}
        for t, v in (md.get("per_task") or {}).items():
            if v is not None and np.isfinite(v):
                per[t].append(float(v))
    if not all(per.get(t) for t in tasks):
        return None
    return {t: float(np.mean(per[t])) for t in tasks}


def ranking_claims(groups: list[dict], boot: Bootstrap) -> list[Claim]:
    """Degradation RGBT > RGBD > RGBE (pairwise differences of degradations) and ρ(distance, degradation)."""
    out: list[Claim] = []
    for g in _unified(groups):
        found = _degradations(groups, g)
        if found is None:
            continue
        tasks, u, ref = found
        seeds, uids, qt, X = align([u, ref])
        if not seeds:
            continue

        def degr(m, t):  # single − unified: positive = degraded
            return m[t][..., 1] - m[t][..., 0]

        present = [t for t in tasks if t in qt]
        for hi, lo in zip(present, present[1:]):
            est = boot.statistic(X, qt, lambda m, a=hi, b=lo: degr(m, a) - degr(m, b))
            out.append(Claim("degradation ranks RGBT > RGBD > RGBE", f"{_name(g)}: degradation {hi} − {lo}",
                             "SR", "> 0", est, verdict(est, +1), len(seeds), len(uids), _setting_label(g)))
        dist = _distance(g, present)
        if dist is not None and len(present) >= 3:
            d = [dist[t] for t in present]
            est = boot.statistic(X, qt, lambda m, d=d, ts=present: spearman_rows(d, np.stack([degr(m, t) for t in ts],
                                                                                             -1)))
            out.append(Claim("degradation follows modality distance", f"{_name(g)}: ρ(MMD², degradation)",
                             "SR", "ρ > 0", est, verdict(est, +1), len(seeds), len(uids), _setting_label(g),
                             kind="rho", extra={"distance": dist}))
    return out


def capacity_claims(groups: list[dict], boot: Bootstrap) -> tuple[list[Claim], list[dict]]:
    """ρ(X-branch depth, pooled unified − single-task) per unified method over the depths it was run at;
    also the per-depth differences (rows for the capacity table and figure)."""
    claims, rows = [], []
    families: dict[tuple, list[dict]] = defaultdict(list)
    for g in _unified(groups):  # one method, one task order, every setting but the depth the same
        families[(g["method"], g["config"].get(ORDER_KEY), shared_setting(g, (DEPTH_KEY,)))].append(g)
    for (method, _, _), gs in families.items():
        cells, depths, keep = [], [], []
        for g in sorted(gs, key=lambda h: float(h["config"].get(DEPTH_KEY, "0"))):
            found = _degradations(groups, g)
            if found is None:
                continue
            _, u, ref = found
            cells += [u, ref]
            depths.append(float(g["config"].get(DEPTH_KEY, "0")))
            keep.append(g)
        if not keep:
            continue
        seeds, uids, qt, X = align(cells)
        if not seeds:
            continue
        point, reps = boot.means(X, qt)
        for i, d in enumerate(depths):
            for key in [*dict.fromkeys(qt), POOLED]:
                est = boot.interval(float(point[key][2 * i] - point[key][2 * i + 1]),
                                    reps[key][:, 2 * i] - reps[key][:, 2 * i + 1])
                rows.append({"method": method, "depth": d, "task": key, "estimate": est, "seeds": len(seeds),
                             "sequences": sum(1 for t in qt if key in (POOLED, t))})
        if len(depths) >= 3:
            n = len(depths)
            point_d, reps_d = (np.stack([m[POOLED][..., 2 * i] - m[POOLED][..., 2 * i + 1] for i in range(n)], -1)
                               for m in (point, reps))
            est = boot.interval(float(spearman_rows(depths, point_d)[0]), spearman_rows(depths, reps_d))
            claims.append(Claim("degradation falls as capacity grows", f"{method}: ρ(depth, unified − single)",
                                "pooled SR", "ρ > 0", est, verdict(est, +1), len(seeds), len(uids),
                                f"depths {', '.join(f'{d:g}' for d in depths)}", kind="rho"))
    return claims, rows


def order_claims(groups: list[dict], boot: Bootstrap, margin: float) -> tuple[list[Claim], list[dict]]:
    """Spread (max − min) of pooled SR over the task orders of one method and setting, against `margin`;
    also each order's pooled SR (rows for the order figure)."""
    claims, rows = [], []
    families: dict[tuple, list[dict]] = defaultdict(list)
    for g in groups:
        if g["runs"][0]["matrix"]["mode"] == "serial":
            families[(g["method"], shared_setting(g))].append(g)
    for (method, _), gs in families.items():
        cells = [(g["runs"][0]["order"], s) for g in gs if (s := group_scores(g, "SR")) is not None]
        if len({o for o, _ in cells}) < 2:
            continue
        seeds, uids, qt, X = align([s for _, s in cells])
        if not seeds:
            continue
        point, reps = boot.means(X, qt)
        for i, (o, _) in enumerate(cells):
            rows.append({"method": method, "order": o,
                         "estimate": boot.interval(float(point[POOLED][i]), reps[POOLED][:, i])})
        est = boot.statistic(X, qt, lambda m: m[POOLED].max(-1) - m[POOLED].min(-1))
        claims.append(Claim("task order matters little", f"{method}: max − min over {len(cells)} orders",
                            "pooled SR", f"0.012 (< {margin:g})", est, equivalence_verdict(est, margin),
                            len(seeds), len(uids), kind="spread"))
    return claims, rows


def all_claims(groups: list[dict], boot: Bootstrap, margin: float) -> dict:
    """Every claim the records allow, plus the capacity and order rows behind two of them."""
    cap, cap_rows = capacity_claims(groups, boot)
    order, order_rows = order_claims(groups, boot, margin)
    return {"claims": paired_claims(groups, boot) + ranking_claims(groups, boot) + cap + order,
            "capacity": cap_rows, "orders": order_rows}
