"""`unitrack report`: turn one run or a whole multirun tree into the paper's tables and plots.

Every run folder holds config.yaml (written at start) and, when finished, matrix.json. A method is named
by the `method` tag every experiment config carries (an untagged run is named from its fields and marked
"untagged"). Runs are averaged only like with like: a group is every run whose full resolved config is
the same except the seed and path/run-dir keys, and the report lists which keys tell the groups of one
method apart. Numbers are mean ± sample std (ddof=1) over the seeds of a group with a bootstrap interval
(unitrack/stats.py). A run that scored its test split (test_metrics.json, unitrack/train/test_split.py)
enters the test tables and the paper's claims (unitrack/claims.py): paired differences over seeds and test
sequences with a verdict each. The report needs only these records: no checkpoint, no dataset (the
optional analyses of one checkpoint excepted). Unfinished or failed runs are listed as such, never dropped
silently.

Continual metrics beside BWT and today's forgetting (max over ALL stages − final): forgetting as
Chaudhry et al. 2018 define it (max over the stages from the one that trained the task up to the one
before last, minus final; negative when the task improved later) and forward transfer as Lopez-Paz &
Ranzato 2017 (GEM) define it, mean over tasks k>0 of R[k-1][k] − b_k, with b_k the static-box
baseline's SR on task k (the no-learning reference of matrix.json) in place of GEM's random-init model.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from unitrack import TASKS
from unitrack.atomic import write_text_atomic
from unitrack.claims import all_claims, group_scores
from unitrack.eval.metrics import task_forgetting
from unitrack.stats import POOLED, Bootstrap, align, detectable, sample_sd, spearman
from unitrack.train import test_split


def inferred_method(cfg) -> str:
    """A name from the config fields, for runs written before every experiment carried `method`."""
    mode = cfg.train.mode
    if mode == "single":
        return f"single_{cfg.train.order[0]}"
    if mode == "parallel":
        return "parallel"
    name = "serial"
    if cfg.cl.replay.kind != "none":
        name += "+replay" if cfg.cl.replay.kind == "full" else f"+{cfg.cl.replay.kind}"
    for key, tag in (("kd", "kd"), ("rkd", "rkd"), ("ewc", "ewc")):
        if (cfg.cl.get(key) or {}).get("weight", 0) > 0:
            name += f"+{tag}"
    der = cfg.cl.get("der") or {}
    if der.get("alpha", 0) > 0 or der.get("beta", 0) > 0:
        name += "+der"
    if cfg.model.get("experts", "shared") != "shared":
        name += "+experts"
    return name


def method_of(cfg) -> str:
    """The experiment's explicit `method` tag; never guessed from fields when present."""
    tag = cfg.get("method")
    return str(tag) if tag else f"{inferred_method(cfg)} (untagged)"


#: Keys that say where a run lives, not what it is: never a reason to keep runs apart.
IGNORED_PREFIXES = ("seed", "paths.", "hydra.")


def _ignored(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return key.startswith(IGNORED_PREFIXES) or leaf in ("root", "benchmark", "dirpath") or leaf.endswith("dir")


def flat_config(cfg) -> dict[str, str]:
    """Resolved config as dotted key -> JSON value, minus the seed and path/run-dir keys."""
    from unitrack.fingerprint import flatten

    flat = flatten(OmegaConf.to_container(cfg, resolve=False))
    # 0 and 0.0 are one setting (a command-line override writes an int)
    return {k: json.dumps(float(v) if isinstance(v, int) and not isinstance(v, bool) else v, sort_keys=True)
            for k, v in flat.items() if not _ignored(k)}


def group_runs(runs: list[dict]) -> list[dict]:
    """Like-with-like groups: runs whose flat config (minus seed and paths) is identical. Each group gets
    `differs`: the keys (and its values) on which it differs from the other groups of its method."""
    groups: dict[tuple, dict] = {}
    for r in runs:
        key = (r["method"], tuple(sorted(r["config"].items())))
        groups.setdefault(key, {"method": r["method"], "config": r["config"], "runs": []})["runs"].append(r)
    out = sorted(groups.values(), key=lambda g: (METHOD_ORDER.index(g["method"]) if g["method"] in METHOD_ORDER
                                                  else 99, g["method"], sorted(g["config"].items())))
    for g in out:
        same = [h for h in out if h["method"] == g["method"]]
        keys = sorted({k for h in same for k in set(h["config"]) | set(g["config"])
                       if h["config"].get(k) != g["config"].get(k)})
        g["differs"] = {k: g["config"].get(k, "–") for k in keys}
    return out


def chaudhry_forgetting(R) -> list[float]:
    """Per task k < T-1: max_{k <= l <= T-2} R[l][k] − R[T-1][k] (Chaudhry et al. 2018); may be negative."""
    M = np.asarray(R, dtype=np.float64)
    T = M.shape[0]
    return [float(M[k:T - 1, k].max() - M[T - 1, k]) for k in range(T - 1)]


def forward_transfer(R, baseline: list[float]) -> float | None:
    """GEM's FWT: mean_{k>=1} R[k-1][k] − b_k (None for one stage)."""
    M = np.asarray(R, dtype=np.float64)
    if M.shape[0] < 2:
        return None
    return float(np.mean([M[k - 1, k] - baseline[k] for k in range(1, M.shape[0])]))


def continual_extras(matrix: dict) -> dict[str, Any]:
    """Chaudhry forgetting (mean and per task) and FWT of a square stage x task SR matrix; {} otherwise."""
    R, tasks = np.asarray(matrix["SR"], dtype=np.float64), matrix["tasks"]
    if R.ndim != 2 or R.shape != (len(tasks), len(tasks)) or len(tasks) < 2:
        return {}
    fg = chaudhry_forgetting(R)
    sb = (matrix.get("static_box") or {}).get("per_task") or {}
    base = [float(sb[t]["SR"]) if t in sb else float("nan") for t in tasks]
    return {"forgetting_chaudhry": float(np.mean(fg)), "forgetting_chaudhry_by_task": dict(zip(tasks, fg)),
            "fwt": forward_transfer(R, base)}


#: A failed multirun job's record in its job folder (written by the apps' launcher, unitrack/apps).
FAILED_FILE = "failed.json"


def collect(root: Path) -> tuple[list[dict], list[dict]]:
    """(finished runs, unfinished/failed runs) under root, found by their config.yaml (or, for a job that
    failed before writing one, its failed.json)."""
    done, broken = [], []
    for rec in sorted(root.rglob(FAILED_FILE)):
        run = rec.parent
        if ".hydra" not in rec.parts and not (run / "config.yaml").is_file():
            broken.append({"run": str(run.relative_to(root)) if run != root else ".", "method": "?",
                           "status": job_status(run)})
    for cfg_path in sorted(root.rglob("config.yaml")):
        if ".hydra" in cfg_path.parts:
            continue
        run = cfg_path.parent
        cfg = OmegaConf.load(cfg_path)
        info = {"run": str(run.relative_to(root)) if run != root else ".", "method": method_of(cfg),
                "config": flat_config(cfg),
                "seed": int(cfg.seed), "depth": int(cfg.model.x_branch.depth), "rank": int(cfg.model.lora.rank),
                "order": "".join(t[-1].upper() for t in cfg.train.order), "tasks": list(cfg.train.order)}
        m = run / "matrix.json"
        if m.exists():
            info["matrix"] = json.loads(m.read_text())
            info["test"] = test_split.read(run)
            done.append(info)
        else:
            info["status"] = job_status(run)
            broken.append(info)
    return done, broken


def job_status(run: Path) -> str:
    """Why a run folder has no matrix.json: failed (its failed.json's reason) or unfinished (stages done)."""
    stages = json.loads((run / "stages.json").read_text()) if (run / "stages.json").exists() else []
    done = f"{len(stages)} stage(s) evaluated, no matrix.json"
    if (run / FAILED_FILE).is_file():
        try:
            reason = json.loads((run / FAILED_FILE).read_text()).get("reason", "?")
        except (OSError, ValueError, AttributeError):
            reason = f"unreadable {FAILED_FILE}"
        return f"failed: {reason} ({done})"
    return f"unfinished: {done}"


def final_scores(r: dict) -> dict[str, float]:
    """Per-task SR/PR after the last stage, plus pooled (mean over the run's tasks)."""
    f = r["matrix"]["final"]
    out = {f"{t}_{m}": f["per_task"][t][m] for t in f["per_task"] for m in ("SR", "PR")}
    out["pooled_SR"], out["pooled_PR"] = f["overall"]["SR"], f["overall"]["PR"]
    return out


def forgetting_by_task(matrix: dict) -> dict[str, float]:
    """SR forgetting per task learned before the last stage ({} unless the matrix is stage x task)."""
    R, tasks = np.asarray(matrix["SR"], dtype=np.float64), matrix["tasks"]
    if R.ndim != 2 or R.shape != (len(tasks), len(tasks)):
        return {}
    return {t: float(v) for t, v in zip(tasks, task_forgetting(R))}


def _ms(vals: list[float], boot: Bootstrap | None = None) -> str:
    """mean ± sample std over seeds, and with `boot` the bootstrap interval over seeds."""
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "–"
    text = f"{np.mean(vals):.3f}" + (f" ± {sample_sd(vals):.3f}" if len(vals) > 1 else "")
    if boot is not None and len(vals) > 1:
        e = boot.mean(vals)
        text += f" [{e.lo:.3f}, {e.hi:.3f}]"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


METHOD_ORDER = ["single_rgbt", "single_rgbd", "single_rgbe", "parallel", "finetune", "lwf", "ewc", "replay",
                "replay+kd", "er_reservoir", "er_balanced", "er+kd", "der", "samm", "replay+experts"]


def pick_checkpoint(done: list[dict], root: Path) -> Path | None:
    """The final-stage checkpoint of a serial run (serial+replay preferred), else any finished run's."""
    ranked = sorted(done, key=lambda r: (r["matrix"]["mode"] != "serial", r["method"] != "replay", r["run"]))
    for r in ranked:
        ckpts = sorted((root / r["run"] / "checkpoints").glob("stage_*.ckpt"))
        if ckpts:
            return max(ckpts, key=lambda p: int(p.name.split("_")[1]))
    return None


def analyse(ckpt: Path, benchmark: Path, out: Path, cap: dict, n: int, robustness: bool, distance: bool) -> list[str]:
    """Modality distance (MMD) and missing-modality robustness for one checkpoint on the benchmark."""
    from unitrack.data.formats import load_dataset
    from unitrack.eval.modality_distance import modality_distances
    from unitrack.eval.runner import run_benchmark
    from unitrack.eval.score import score
    from unitrack.model.checkpoint import load_model

    model, _ = load_model(ckpt, "analysis.checkpoint")
    seqs = load_dataset("manifest", benchmark)
    by_task: dict[str, list] = defaultdict(list)
    for s in seqs:
        by_task[s.task].append(s)
    md = [f"## Analyses of `{ckpt}` on `{benchmark}`\n"]
    res: dict[str, Any] = {"checkpoint": str(ckpt)}
    if distance:
        d = modality_distances(model, dict(by_task), n=n)
        res["modality_distance"] = d
        md += ["### Modality distance (MMD², RBF kernel, median-heuristic bandwidth; backbone features)\n",
               _table(["pair", "MMD²"], [[k, f"{v:.4f}"] for k, v in d["pairs"].items()]), ""]
        rows = []
        for meth in sorted({m for m, _ in cap}):
            tasks = [t for t in d["per_task"] if (meth, t) in cap]
            if len(tasks) < 2:
                continue
            degr = [float(np.mean([v for vs in cap[(meth, t)].values() for v in vs])) for t in tasks]
            rho = spearman([d["per_task"][t] for t in tasks], [-x for x in degr])
            rows.append([meth, ", ".join(f"{t}: {d['per_task'][t]:.4f} / {g:+.3f}" for t, g in zip(tasks, degr)),
                         f"{rho:+.2f}"])
        md += ["Per task: mean distance of its X modality to the other tasks' X modalities / SR degradation "
               "(unified − single). ρ = Spearman rank correlation between distance and degradation size "
               "(+1: the farther the modality, the larger the drop, as the paper claims).\n",
               _table(["method", "task: distance / degradation", "ρ"], rows) if rows else
               "No single-task runs to measure degradation against.", ""]
    if robustness:
        variants = {"both modalities": {}, "RGB dropped": {"drop_modality": "rgb"},
                    "X dropped": {"drop_modality": "x"}, "X noise σ=0.1": {"x_noise": 0.1}}
        rows = []
        rob = {}
        for name, kw in variants.items():
            d = out / "robustness" / name.replace(" ", "_").replace("=", "").replace(".", "")
            run_benchmark(model, seqs, d, batch_size=16, workers=2, tracker_kwargs=kw, progress=False)
            m = score(seqs, d)
            rob[name] = {t: m["per_task"][t]["SR"] for t in m["per_task"]} | {"pooled": m["overall"]["SR"]}
            rows.append([name] + [f"{rob[name].get(t, float('nan')):.3f}" for t in TASKS] + [f"{rob[name]['pooled']:.3f}"])
        res["robustness"] = rob
        md += ["### Missing-modality robustness (SR)\n", _table(["input", *TASKS, "pooled"], rows), ""]
    (out / "analysis.json").write_text(json.dumps(res, indent=2))
    return md


VERDICT_COLOURS = {"reproduced": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:grey"}


def _bars(ests) -> list[np.ndarray]:
    """Error-bar lengths below and above each estimate (a percentile interval need not hold its point
    estimate: a bar is never negative; a NaN interval draws none)."""
    v = np.array([e.value for e in ests])
    lo = np.nan_to_num(np.array([e.lo for e in ests]), nan=np.nan_to_num(v))
    hi = np.nan_to_num(np.array([e.hi for e in ests]), nan=np.nan_to_num(v))
    return [np.maximum(v - lo, 0.0), np.maximum(hi - v, 0.0)]


def _errorbar(ax, x, ests, **kw) -> None:
    """Points with their interval as error bars."""
    ax.errorbar(x, [e.value for e in ests], yerr=_bars(ests), fmt="o", capsize=3, **kw)


def _depth_figure(plt, path: Path, ylabel: str, series: list[tuple[str, list[float], list]]) -> None:
    """Differences against X-branch depth, one series (label, depths, Estimates) each, with error bars."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for k, (label, xs, ests) in enumerate(series):
        _errorbar(ax, [x + 0.05 * k for x in xs], ests, label=label)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("X-branch depth (blocks)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def methods_on_test_split(groups: list[dict], boot: Bootstrap, out: Path, plt) -> list[str]:
    """Per group: each task's and the pooled test SR/PR, mean ± sample std over seeds [bootstrap interval over
    seeds and test sequences]; test_methods.csv and test_methods.png."""
    keys = [(t, m) for t in TASKS for m in ("SR", "PR")] + [(POOLED, "SR"), (POOLED, "PR")]
    rows, csv_rows, pooled = [], [], []
    for g in groups:
        cells, csv_cells = [], []
        sc = {m: group_scores(g, m) for m in ("SR", "PR")}
        if sc["SR"] is None:
            continue
        stats = {}
        for m, s in sc.items():
            seeds, uids, tasks, X = align([s])
            stats[m] = (s, *boot.means(X, tasks))
        for key, m in keys:
            s, point, reps = stats[m]
            if key not in point:
                cells.append("–")
                csv_cells += ["", "", "", ""]
                continue
            e = boot.interval(float(point[key][0]), reps[key][:, 0])
            sd = sample_sd(list(s.per_seed(key)))
            cells.append(f"{e.value:.3f}" + (f" ± {sd:.3f}" if np.isfinite(sd) else "") + f" [{e.lo:.3f}, {e.hi:.3f}]")
            csv_cells += [e.value, sd if np.isfinite(sd) else "", e.lo, e.hi]
            if (key, m) == (POOLED, "SR"):
                pooled.append((g["method"], e))
        s = sc["SR"]
        setting = ", ".join(f"{k}={v}" for k, v in g["differs"].items()) or "–"
        rows.append([g["method"], setting, ",".join(map(str, s.seeds)), str(len(s.uids)), *cells])
        csv_rows.append([g["method"], setting, len(s.seeds), len(s.uids), *csv_cells])
    if not rows:
        return ["## Methods on the test split\n", "No run holds test scores (test_metrics.json): train with "
                "test.enabled=true.", ""]
    names = [f"{t}_{m}" for t, m in keys]
    _write_csv(out / "test_methods.csv", ["method", "setting", "seeds", "sequences",
                                          *(f"{n}_{x}" for n in names for x in ("mean", "sd", "lo", "hi"))], csv_rows)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(pooled) + 1), 3.2))
    _errorbar(ax, range(len(pooled)), [e for _, e in pooled])
    ax.set_xticks(range(len(pooled)), [m for m, _ in pooled], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("pooled test SR")
    fig.tight_layout()
    fig.savefig(out / "test_methods.png", dpi=110)
    plt.close(fig)
    return ["## Methods on the test split (test_metrics.json)\n",
            "Each cell: mean over seeds of the run's score ± sample std over seeds (ddof=1) [interval over "
            "seeds and test sequences]. `sequences`: the test sequences every seed of the row was scored on.\n",
            _table(["method", "setting", "seeds", "sequences", *names], rows), "", "![](test_methods.png)", ""]


def claims_section(groups: list[dict], boot: Bootstrap, margin: float, out: Path, plt) -> list[str]:
    """The paper's claims as paired statistics with verdicts (unitrack/claims.py); claims.csv, claims.png,
    capacity_test.png and orders_test.png."""
    found = all_claims(groups, boot, margin)
    cl = found["claims"]
    md = ["## The paper's claims (test split, paired)\n"]
    if not cl:
        return md + ["No comparable runs with test scores (test_metrics.json): nothing to test.", ""]
    md += ["Differences pair runs of the same seed (same RGB foundation) on the same test sequences; groups are "
           "compared only when their configs agree on every key but the method's. Verdict: reproduced = the "
           "interval excludes 0 in the paper's direction, contradicted = it excludes 0 the other way, else "
           f"inconclusive; for the order spread: the interval lies below (above) the margin {margin:g}. "
           "`detectable`: the smallest true difference these seeds and sequences find 80 % of the time "
           "(unitrack.stats.detectable); an effect below it is out of reach, not absent.\n",
           _table(["claim", "comparison", "setting", "metric", "paper", "estimate [interval]", "detectable",
                   "seeds", "sequences", "verdict"],
                  [[c.claim, c.comparison, c.setting, c.metric, c.paper, c.estimate.fmt(sign=c.kind != "spread"),
                    f"{detectable(c.estimate, boot.level):.3f}" if c.kind == "difference" else "–",
                    str(c.seeds), str(c.sequences), f"**{c.verdict}**"] for c in cl]), ""]
    _write_csv(out / "claims.csv", ["claim", "comparison", "setting", "metric", "paper", "kind", "estimate", "lo",
                                    "hi", "detectable", "seeds", "sequences", "verdict"],
               [[c.claim, c.comparison, c.setting, c.metric, c.paper, c.kind, c.estimate.value, c.estimate.lo,
                 c.estimate.hi, detectable(c.estimate, boot.level) if c.kind == "difference" else "",
                 c.seeds, c.sequences, c.verdict] for c in cl])
    diffs = [c for c in cl if c.kind == "difference"]
    if diffs:
        fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(diffs) + 1.2))
        for i, c in enumerate(diffs):
            ax.errorbar([c.estimate.value], [i], xerr=_bars([c.estimate]), fmt="o", capsize=3,
                        color=VERDICT_COLOURS[c.verdict])
        ax.axvline(0, color="k", lw=0.5)
        ax.set_yticks(range(len(diffs)), [f"{c.comparison} ({c.metric})" for c in diffs], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("paired difference (green: reproduced, red: contradicted, grey: inconclusive)", fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "claims.png", dpi=110)
        plt.close(fig)
        md += ["![](claims.png)", ""]
    cap = [r for r in found["capacity"] if r["task"] == POOLED]
    if cap:
        series = []
        for meth in sorted({r["method"] for r in cap}):
            rs = [r for r in cap if r["method"] == meth]
            series.append((meth, [r["depth"] for r in rs], [r["estimate"] for r in rs]))
        _depth_figure(plt, out / "capacity_test.png", "pooled test SR, unified − single", series)
        _write_csv(out / "capacity_test.csv", ["method", "x_branch_depth", "task", "difference", "lo", "hi", "seeds",
                                               "sequences"],
                   [[r["method"], r["depth"], r["task"], r["estimate"].value, r["estimate"].lo, r["estimate"].hi,
                     r["seeds"], r["sequences"]] for r in found["capacity"]])
        md += ["Capacity: paired unified − single-task difference at each X-branch depth (test, pooled SR; "
               "capacity_test.csv has every task).\n", "![](capacity_test.png)", ""]
    if found["orders"]:
        rows = found["orders"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        _errorbar(ax, range(len(rows)), [r["estimate"] for r in rows])
        ax.set_xticks(range(len(rows)), [f"{r['method']} {r['order']}" for r in rows], rotation=45, ha="right",
                      fontsize=7)
        ax.set_ylabel("pooled test SR")
        fig.tight_layout()
        fig.savefig(out / "orders_test.png", dpi=110)
        plt.close(fig)
        md += ["Task order: pooled test SR of each order.\n", "![](orders_test.png)", ""]
    return md


def build_report(root: Path, out: Path, analysis: dict | None = None, stats: dict | None = None) -> dict:
    """report.md, CSV tables and figures from the runs under `root`; `stats`: resamples, seed, level,
    order_margin (conf/report.yaml)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = {"resamples": 10000, "seed": 0, "level": 0.95, "order_margin": 0.02, **(stats or {})}
    boot = Bootstrap(int(st["resamples"]), int(st["seed"]), float(st["level"]))
    done, broken = collect(root)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# unitrack report\n\nSource: `{root}` — {len(done)} finished run(s), {len(broken)} unfinished.\n",
          f"Statistics: mean ± sample std (ddof=1) over seeds; {boot.describe()}.\n"]
    cols = [f"{t}_{m}" for t in TASKS for m in ("SR", "PR")] + ["pooled_SR", "pooled_PR"]
    groups = group_runs(done)
    md += claims_section(groups, boot, float(st["order_margin"]), out, plt)
    md += methods_on_test_split(groups, boot, out, plt)

    # 1. paper-style table: one row per like-with-like group (same config but the seed); seeds averaged
    rows, csv_rows = [], []
    for g in groups:
        runs = g["runs"]
        sc = [final_scores(r) for r in runs]
        seeds = ",".join(str(r["seed"]) for r in runs)
        setting = ", ".join(f"{k}={v}" for k, v in g["differs"].items()) or "–"
        r0 = runs[0]
        rows.append([g["method"], setting, str(r0["depth"]), str(r0["rank"]), r0["order"], seeds]
                    + [_ms([s.get(c) for s in sc], boot) for c in cols])
        csv_rows.append([g["method"], setting, r0["depth"], r0["rank"], r0["order"], len(runs)]
                        + [float(np.mean([s[c] for s in sc if c in s])) if any(c in s for s in sc) else ""
                           for c in cols])
    md += ["## Methods on the validation split (matrix.json final row; mean ± sample std [interval over seeds])\n",
           "Runs are averaged only when their whole resolved config is the same except the seed (and paths); "
           "`setting` lists the keys on which a row differs from the other rows of its method.\n",
           _table(["method", "setting", "x depth", "rank", "order", "seeds", *cols], rows), ""]
    _write_csv(out / "methods.csv", ["method", "setting", "x_branch_depth", "lora_rank", "order", "runs", *cols],
               csv_rows)
    by_method = {g["method"]: g for g in groups}

    # 2. stage x task heatmaps with BWT / forgetting for serial runs
    md.append("## Stage × task (SR) of serial runs\n")
    for r in [r for r in done if r["matrix"]["mode"] == "serial"]:
        R = np.asarray(r["matrix"]["SR"])
        s = r["matrix"].get("SR_summary") or {}
        name = r["run"].replace("/", "_") or "run"
        fig, ax = plt.subplots(figsize=(3.6, 3))
        im = ax.imshow(R, vmin=0, vmax=max(0.01, float(R.max())), cmap="viridis")
        ax.set_xticks(range(len(r["tasks"])), r["tasks"])
        ax.set_yticks(range(len(r["matrix"]["stages"])), [f"after {x}" for x in r["matrix"]["stages"]])
        for (i, j), v in np.ndenumerate(R):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_title(f"{r['method']} seed {r['seed']}", fontsize=9)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        fig.savefig(out / f"heatmap_{name}.png", dpi=110)
        plt.close(fig)
        bwt, fg = s.get("bwt"), s.get("forgetting")
        ex = continual_extras(r["matrix"])
        md.append(f"- `{r['run']}` ({r['method']}, order {r['order']}, seed {r['seed']}): BWT "
                  f"{bwt:+.3f}, forgetting {fg:.3f}, forgetting (Chaudhry) {ex['forgetting_chaudhry']:+.3f}, "
                  f"FWT {ex['fwt']:+.3f} — ![](heatmap_{name}.png)" if bwt is not None and ex else
                  f"- `{r['run']}`: single stage")
    md.append("")

    # 3. capacity vs degradation (unified minus single-task at the same X-branch depth)
    single = {(r["method"][7:], r["depth"]): final_scores(r) for r in done if r["method"].startswith("single_")}
    cap_rows, cap = [], defaultdict(dict)
    for r in done:
        if r["method"].startswith("single_"):
            continue
        sc = final_scores(r)
        for t in TASKS:
            base = single.get((t, r["depth"]))
            if base and f"{t}_SR" in sc:
                cap[(r["method"], t)].setdefault(r["depth"], []).append(sc[f"{t}_SR"] - base[f"{t}_SR"])
    for (meth, t), d in sorted(cap.items()):
        for depth, vals in sorted(d.items()):
            cap_rows.append([meth, t, depth, float(np.mean(vals)), len(vals)])
    if cap_rows:
        _write_csv(out / "capacity.csv", ["method", "task", "x_branch_depth", "degradation_SR", "runs"], cap_rows)
        _depth_figure(plt, out / "capacity.png", "SR unified − single",
                      [(f"{meth} {t}", sorted(d), [boot.mean(d[k]) for k in sorted(d)])
                       for (meth, t), d in sorted(cap.items())])
        md += ["## Capacity vs degradation (SR, unified − single-task)\n",
               _table(["method", "task", "depth", "degradation", "runs"],
                      [[a, b, str(c), f"{d:+.3f}", str(e)] for a, b, c, d, e in cap_rows]), "", "![](capacity.png)", ""]
    else:
        md += ["## Capacity vs degradation\n", "No single-task runs at a matching X-branch depth: nothing to "
               "compare.", ""]

    # 4. task order: pooled SR, BWT and which task is forgotten most (the paper: RGBT > RGBD > RGBE)
    orders = defaultdict(list)
    for gi, g in enumerate(groups):
        for r in g["runs"]:
            if r["matrix"]["mode"] == "serial":
                orders[(g["method"], r["order"], gi)].append(r)
    if orders:
        rows, csv_rows = [], []
        for (m, o, _gi), runs in sorted(orders.items()):
            pooled = [final_scores(r)["pooled_SR"] for r in runs]
            bwt = [(r["matrix"].get("SR_summary") or {}).get("bwt") for r in runs]
            fg = {t: [v for r in runs if (v := forgetting_by_task(r["matrix"]).get(t)) is not None] for t in TASKS}
            ex = [continual_extras(r["matrix"]) for r in runs]
            fc = [e.get("forgetting_chaudhry") for e in ex]
            fwt = [e.get("fwt") for e in ex]
            rows.append([m, o, _ms(pooled, boot), _ms(bwt, boot), *(_ms(fg[t], boot) for t in TASKS), _ms(fc, boot),
                         _ms(fwt, boot),
                         str(len(runs))])
            csv_rows.append([m, o, float(np.mean(pooled)), *(float(np.mean([x for x in v if x is not None]))
                                                             if any(x is not None for x in v) else ""
                                                             for v in (bwt, *fg.values(), fc, fwt)), len(runs)])
        md += ["## Task order (pooled SR, BWT, per-task forgetting of SR, Chaudhry forgetting, FWT)\n",
               _table(["method", "order", "pooled SR", "BWT", *(f"forgetting {t}" for t in TASKS),
                       "forgetting (Chaudhry)", "FWT", "runs"], rows),
               "", "Forgetting of a task = its best SR after any stage minus its final SR (the last-trained "
               "task has none). Chaudhry forgetting takes the best only over the stages from the one that "
               "trained the task to the one before last (negative: the task improved later). FWT (GEM) = mean "
               "over tasks k > 0 of the SR on task k just before it is trained minus the static-box SR.", ""]
        _write_csv(out / "orders.csv", ["method", "order", "pooled_SR", "bwt", *(f"forgetting_{t}" for t in TASKS),
                                        "forgetting_chaudhry", "fwt", "runs"], csv_rows)

    # 5. LoRA rank vs score and trainable parameters
    ranks = defaultdict(list)
    for r in done:
        ranks[(r["method"], r["rank"])].append((final_scores(r)["pooled_SR"], r["matrix"].get("params_trainable")))
    if len({k[1] for k in ranks}) > 1:
        rr = [[m, k, float(np.mean([v[0] for v in vs])), vs[0][1], len(vs)] for (m, k), vs in sorted(ranks.items())]
        _write_csv(out / "ranks.csv", ["method", "lora_rank", "pooled_SR", "params_trainable", "runs"], rr)
        md += ["## LoRA rank\n", _table(["method", "rank", "pooled SR", "trainable params", "runs"],
                                        [[a, str(b), f"{c:.3f}", str(d), str(e)] for a, b, c, d, e in rr]), ""]

    analysis = dict(analysis or {})
    if analysis.get("enabled") and done:
        ckpt = Path(analysis["checkpoint"]) if analysis.get("checkpoint") else pick_checkpoint(done, root)
        run_cfg = OmegaConf.load(root / done[0]["run"] / "config.yaml")
        bench = Path(analysis.get("benchmark") or run_cfg.data.benchmark)
        if ckpt is None:
            md += ["## Analyses\n", "No checkpoint found in the runs: skipped.", ""]
        else:
            md += analyse(ckpt, bench, out, cap, int(analysis.get("samples_per_task", 64)),
                          bool(analysis.get("robustness", True)), bool(analysis.get("modality_distance", True)))

    md += ["## Unfinished or failed runs\n"]
    md += [f"- `{b['run']}` ({b['method']}): {b['status']}" for b in broken] or ["none"]
    text = "\n".join(md) + "\n"
    write_text_atomic(out / "report.md", text)
    return {"finished": len(done), "unfinished": len(broken), "methods": sorted(by_method)}
