"""Score result files against ground truth: per sequence, per dataset, per task and pooled over all.

One protocol (default ``"pytracking"``) scores every sequence and gives the pooled numbers, so the
unified benchmark is never a blend of toolkits; ``task_protocols`` may give a task its native toolkit
(e.g. ``{"rgbt": "lasher", "rgbe": "visevent"}``) for that task's row only. Pooling is the mean over
sequences (:func:`unitrack.eval.metrics.pool`). On top of SR / PR / NPR:

- rgbd tasks / datasets (every scope with ``protocol="vot"``, a task mapped to ``"vot"``) get the VOT
  long-term F, Pr, Re from the per-frame confidences
  (``<name>_confidence.txt``; 1.0 everywhere, with a note, when a file is missing), overlaps bounded to
  the image size read from the first RGB frame;
- rgbt234 and gtot datasets get MPR / MSR from the visible and infrared ground truths;
- sequences that carry challenge attributes (``Sequence.attributes``: LasHeR, VisEvent, DepthTrack tags,
  the synthetic world) get ``per_attribute`` scores: SR / PR / NPR pooled over the sequences that have
  each attribute, as the toolkits' per-attribute plots do, under the main protocol.

Result files are ``<results_dir>/<seq.name>.txt`` while sequences are reported by uid ``dataset/name``.
A missing or short result file is an error (a crashed run must not score as a weak one); longer files
are cut to the ground-truth length as the toolkits do.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from pathlib import Path

import numpy as np

from unitrack.data.sequence import Sequence
from unitrack.errors import ResultsError
from unitrack.eval import metrics as M
from unitrack.eval.plots import plot_precision, plot_success
from unitrack.eval.results import file_stem, layout_paths, read_layout, write_text_atomic

log = logging.getLogger(__name__)
DEFAULT_PROTOCOL = "pytracking"
MPR_DATASETS = ("rgbt234", "gtot")
VOT_TASKS = ("rgbd",)
_CURVE_KEYS = ("success", "precision", "norm_precision", "success_thresholds", "precision_thresholds",
               "norm_precision_thresholds")


def _check_protocol(p: str, where: str) -> str:
    if p not in (*M.CURVE_PROTOCOLS, "vot"):
        raise ValueError(f"{where}: unknown protocol {p!r}; choose one of {', '.join(M.CURVE_PROTOCOLS)} or vot")
    return p


def _curve_protocol(p: str) -> str:
    """VOT long-term defines no SR/PR/NPR: those then come from the default protocol."""
    return DEFAULT_PROTOCOL if p == "vot" else p


def _image_size(seq: Sequence) -> tuple[int, int] | None:
    """(width, height) of the first RGB frame, for VOT's image-bounded overlaps."""
    if not seq.rgb_frames:
        return None
    import cv2

    img = cv2.imread(str(seq.rgb_frames[0]), cv2.IMREAD_UNCHANGED)
    return None if img is None else (int(img.shape[1]), int(img.shape[0]))


def _load(sequences: Seq[Sequence], results_dir: Path, layout: str = "pytracking",
          notes: list[str] | None = None, prefix: str = "", box_format: str = "xywh"
          ) -> list[tuple[Sequence, np.ndarray, np.ndarray | None]]:
    """Every sequence's boxes (and confidences) cut to its length; a longer file (the LasHeR / VisEvent /
    got10k toolkits truncate too) is a warning with the count, a shorter one an error."""
    seen: dict[str, Sequence] = {}
    out = []
    extra: list[str] = []
    for s in sequences:
        stem = file_stem(s.name)
        if stem in seen:
            raise ResultsError(results_dir / f"{stem}.txt", f"sequences {seen[stem].uid} and {s.uid} share one "
                               "result file name; score these datasets from separate results directories")
        seen[stem] = s
        boxes, conf = read_layout(results_dir, s.uid, s.boxes[0], layout, prefix, box_format)
        n = len(s.boxes)
        bpath, cpath = layout_paths(results_dir, s.uid, layout, prefix)
        for arr, path in ((boxes, bpath), (conf, cpath)):
            if arr is not None and len(arr) < n:
                raise ResultsError(path, f"has {len(arr)} lines but the sequence has {n} frames (truncated run?)")
            if arr is not None and len(arr) > n:
                extra.append(f"{path.name}: {len(arr) - n} extra lines")
        inf = np.isinf(boxes[:n]).any(1)
        if inf.any():  # not a box and not "absent" (nan): scoring it would be a silent guess
            raise ResultsError(bpath, "infinite box value (inf); write nan for a lost target",
                               line=int(inf.argmax()) + 1)
        out.append((s, boxes[:n], None if conf is None else conf[:n]))
    if extra:
        msg = (f"{len(extra)} result file(s) longer than their sequence, extra lines ignored: "
               + "; ".join(extra[:5]) + (" ..." if len(extra) > 5 else ""))
        log.warning("%s", msg)
        if notes is not None:
            notes.append(msg)
    return out


def _curves(seq: Sequence, pred: np.ndarray, protocol: str, notes: list[str]) -> dict | None:
    try:
        # seq.gt: the gt file's values (a LasHeR row with w = -1 stays -1), as the toolkits read them
        return M.sequence_curves(pred, seq.gt, protocol, absent=~seq.visible)
    except ValueError as e:
        notes.append(f"{seq.uid}: {e}; left out of the pooled {protocol} scores")
        return None


def _pooled(curves: list[dict], protocol: str) -> dict:
    if not curves:
        return {"SR": None, "PR": None, "NPR": None}
    return M.pooled_metrics(curves, protocol)


def _vot(group: list[tuple[Sequence, np.ndarray, np.ndarray | None]], sizes: dict, resolution: int) -> dict:
    return M.vot_prf([{"pred": p, "gt": s.boxes, "confidence": c, "image_size": sizes.get(s.uid)}
                      for s, p, c in group], resolution=resolution)


def _mpr(group: list[tuple[Sequence, np.ndarray, np.ndarray | None]], variant: str) -> dict:
    return M.mpr_msr([(p, s.gt, s.gt if s.gt_x is None else s.gt_x) for s, p, _ in group], variant)


def _vot_record(v: dict) -> dict:
    return {k: np.asarray(v[k], dtype=float).tolist() for k in ("precision_curve", "recall_curve", "f_curve")}


def _curve_record(pooled: dict, protocol: str) -> dict:
    rec = {"protocol": protocol, **{k: pooled.get(k) for k in ("SR", "PR", "NPR")}}
    for k in _CURVE_KEYS:
        if k in pooled:
            rec[k] = np.asarray(pooled[k], dtype=float).tolist()
    return rec


def score(
    sequences: Seq[Sequence],
    results_dir: Path | str,
    protocol: str | None = None,
    task_protocols: Mapping[str, str] | None = None,
    *,
    return_curves: bool = False,
    vot_resolution: int = 100,
    results_layout: str = "pytracking",
    results_prefix: str = "",
    results_format: str = "xywh",
):
    """Score every sequence's result file; see the module docstring for the rules. ``results_prefix`` /
    ``results_format``: file-name prefix and box format of raw results (unitrack.eval.results).

    Returns ``{"protocol", "overall", "per_task", "per_dataset", "per_sequence", "notes", "curves"}``
    (fractions in [0, 1]); with ``return_curves=True`` returns ``(metrics_without_curves, curves)``.
    ``protocol="vot"`` adds F/Pr/Re to every scope, SR/PR/NPR then follow the default protocol.
    """
    requested = _check_protocol(protocol or DEFAULT_PROTOCOL, "protocol")
    task_requested = {t: _check_protocol(p, f"task_protocols[{t!r}]") for t, p in (task_protocols or {}).items()}
    if not sequences:
        raise ValueError("no sequences to score")
    protocol = _curve_protocol(requested)
    task_protocols = {t: _curve_protocol(p) for t, p in task_requested.items()}
    vot_tasks = set(VOT_TASKS) | {t for t, p in task_requested.items() if p == "vot"}
    results_dir = Path(results_dir)
    notes: list[str] = []
    if "vot" in (requested, *task_requested.values()):
        notes.append(f"VOT long-term defines no SR/PR/NPR; those use the {DEFAULT_PROTOCOL} protocol")
    loaded = _load(sequences, results_dir, results_layout, notes, results_prefix, results_format)

    main = {s.uid: _curves(s, p, protocol, notes) for s, p, _ in loaded}
    per_sequence: dict[str, dict] = {}
    for s, _, _ in loaded:
        c = main[s.uid]
        per_sequence[s.uid] = {"task": s.task, "dataset": s.dataset, "frames": len(s.boxes),
                               **{k: (c[k] if c else None) for k in ("SR", "PR", "NPR")}}

    overall_pool = _pooled([c for c in main.values() if c], protocol)
    overall = {"sequences": len(loaded), "frames": int(sum(len(s.boxes) for s, _, _ in loaded)),
               **{k: overall_pool[k] for k in ("SR", "PR", "NPR")}}
    curves: dict = {"overall": _curve_record(overall_pool, protocol), "per_task": {}}

    rgbd_uids = {s.uid for s, _, _ in loaded if s.task in vot_tasks or requested == "vot"}
    sizes = {s.uid: _image_size(s) for s, _, _ in loaded if s.uid in rgbd_uids}
    if any(v is None for v in sizes.values()):
        notes.append("VOT overlaps left unbounded where the first RGB frame could not be read for its size")
    no_conf = [s.uid for s, _, c in loaded if s.uid in rgbd_uids and c is None]
    if no_conf:
        notes.append(f"no confidence file for {len(no_conf)} sequence(s) scored with VOT F (e.g. {no_conf[0]}); "
                     "confidence 1.0 used for every frame, so F/Pr/Re reduce to a single threshold")
    if requested == "vot":
        v = _vot(loaded, sizes, vot_resolution)
        overall.update({"F": v["F"], "Pr": v["Pr"], "Re": v["Re"]})
        curves["overall"]["vot"] = _vot_record(v)

    def task_curves(task: str, group) -> tuple[str, list[dict]]:
        tp = task_protocols.get(task, protocol)
        if tp == protocol:
            return tp, [main[s.uid] for s, _, _ in group if main[s.uid]]
        out = []
        for s, p, _ in group:
            c = _curves(s, p, tp, notes)
            if c:
                out.append(c)
                per_sequence[s.uid]["task_protocol"] = {"protocol": tp, **{k: c[k] for k in ("SR", "PR", "NPR")}}
        return tp, out

    def summary(group, tp: str, cs: list[dict]) -> dict:
        pooled = _pooled(cs, tp)
        row = {"protocol": tp, "sequences": len(group), "frames": int(sum(len(s.boxes) for s, _, _ in group)),
               **{k: pooled[k] for k in ("SR", "PR", "NPR")}}
        if requested == "vot" or all(s.task in vot_tasks for s, _, _ in group):
            v = _vot(group, sizes, vot_resolution)
            row.update({"F": v["F"], "Pr": v["Pr"], "Re": v["Re"]})
            row["_vot"] = v
        datasets = {s.dataset for s, _, _ in group}
        if len(datasets) == 1 and (d := next(iter(datasets))) in MPR_DATASETS:
            mm = _mpr(group, d)
            row.update({"MPR": mm["MPR"], "MSR": mm["MSR"]})
            row["_mpr"] = mm
        row["_pooled"] = pooled
        return row

    per_task: dict[str, dict] = {}
    for task in dict.fromkeys(s.task for s, _, _ in loaded):
        group = [g for g in loaded if g[0].task == task]
        tp, cs = task_curves(task, group)
        row = summary(group, tp, cs)
        rec = _curve_record(row.pop("_pooled"), tp)
        if "_vot" in row:
            rec["vot"] = _vot_record(row.pop("_vot"))
        row.pop("_mpr", None)
        per_task[task] = row
        curves["per_task"][task] = rec

    per_dataset: dict[str, dict] = {}
    for ds in dict.fromkeys(s.dataset for s, _, _ in loaded):
        group = [g for g in loaded if g[0].dataset == ds]
        tasks = {s.task for s, _, _ in group}
        tp = task_protocols.get(next(iter(tasks)), protocol) if len(tasks) == 1 else protocol
        cs = [main[s.uid] for s, _, _ in group if main[s.uid]] if tp == protocol else [
            c for s, p, _ in group if (c := _curves(s, p, tp, []))]
        row = summary(group, tp, cs)
        row.pop("_pooled")
        row.pop("_vot", None)
        if (mm := row.pop("_mpr", None)) is not None:
            for (s, _, _), r in zip(group, mm["per_sequence"]):
                per_sequence[s.uid].update({"MPR": r["MPR"], "MSR": r["MSR"]})
        per_dataset[ds] = row

    metrics = {"protocol": requested, "task_protocols": dict(task_requested), "results_dir": str(results_dir),
               "overall": overall, "per_task": per_task, "per_dataset": per_dataset,
               "per_sequence": per_sequence, "notes": notes}
    per_attribute = attribute_scores(loaded, main, protocol)
    if per_attribute:
        metrics["per_attribute"] = per_attribute
    if return_curves:
        return metrics, curves
    metrics["curves"] = curves
    return metrics


def attribute_scores(loaded, curves: Mapping[str, dict | None], protocol: str) -> dict:
    """Per challenge attribute: SR/PR/NPR pooled over the sequences that have it (and how many per task)."""
    names = sorted({k for s, _, _ in loaded if s.attributes for k, v in s.attributes.items() if v})
    out = {}
    for name in names:
        group = [s for s, _, _ in loaded if s.attributes and s.attributes.get(name)]
        cs = [curves[s.uid] for s in group if curves.get(s.uid)]
        pooled = _pooled(cs, protocol)
        tasks: dict[str, int] = {}
        for s in group:
            tasks[s.task] = tasks.get(s.task, 0) + 1
        out[name] = {"sequences": len(group), "tasks": tasks, **{k: pooled[k] for k in ("SR", "PR", "NPR")}}
    return out


# ----------------------------------------------------------------------------- outputs
def _jsonable(o):
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def write_score_outputs(metrics: Mapping, curves: Mapping | None = None, out_dir: Path | str | None = None) -> dict:
    """Write ``metrics.json`` and ``curves.json`` (atomically) and success / precision PNGs for the overall
    pool and each task into ``out_dir``; returns the written paths by name."""
    if out_dir is None:
        raise ValueError("out_dir is required")
    out_dir = Path(out_dir)
    curves = curves if curves is not None else metrics.get("curves", {})
    body = {k: v for k, v in metrics.items() if k != "curves"}
    written = {"metrics": write_text_atomic(out_dir / "metrics.json", json.dumps(_jsonable(body), indent=2))}
    written["curves"] = write_text_atomic(out_dir / "curves.json", json.dumps(_jsonable(curves), indent=2))
    scopes = {"overall": curves.get("overall")} | {f"task_{t}": c for t, c in curves.get("per_task", {}).items()}
    for key, c in scopes.items():
        if not c or c.get("success") is None:
            continue
        label = f"unitrack ({c.get('protocol')})"
        title = key.replace("task_", "")
        written[f"success_{key}"] = plot_success(
            {label: (c["success_thresholds"], c["success"], c.get("SR"))}, out_dir / f"success_{key}.png",
            title=f"Success plot - {title}")
        written[f"precision_{key}"] = plot_precision(
            {label: (c["precision_thresholds"], c["precision"], c.get("PR"))}, out_dir / f"precision_{key}.png",
            title=f"Precision plot - {title}")
    return written


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def print_table(metrics: Mapping, console=None) -> None:
    """Overall, per-task and per-dataset scores (x100) as a rich table, then any notes."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    extras = [k for k in ("F", "Pr", "Re", "MPR", "MSR")
              if any(k in r for r in [*metrics.get("per_task", {}).values(), *metrics.get("per_dataset", {}).values()])]
    table = Table(title=f"Tracking scores ({metrics.get('protocol')} protocol, x100)")
    for col in ("scope", "protocol", "seqs", "SR", "PR", "NPR", *extras):
        table.add_column(col, justify="left" if col in ("scope", "protocol") else "right")

    def add(name: str, r: Mapping, proto: str) -> None:
        table.add_row(name, proto, str(r.get("sequences", "")), *(_pct(r.get(k)) for k in ("SR", "PR", "NPR")),
                      *(_pct(r.get(k)) for k in extras))

    add("overall", metrics["overall"], metrics.get("protocol", ""))
    for t, r in metrics.get("per_task", {}).items():
        add(f"task {t}", r, r.get("protocol", ""))
    for d, r in metrics.get("per_dataset", {}).items():
        add(f"  {d}", r, r.get("protocol", ""))
    console.print(table)
    if metrics.get("per_attribute"):
        att = Table(title="Per attribute (sequences that have it, x100)")
        for col in ("attribute", "seqs", "tasks", "SR", "PR", "NPR"):
            att.add_column(col, justify="left" if col in ("attribute", "tasks") else "right")
        for name, r in metrics["per_attribute"].items():
            att.add_row(name, str(r["sequences"]), " ".join(f"{t}:{n}" for t, n in r["tasks"].items()),
                        *(_pct(r.get(k)) for k in ("SR", "PR", "NPR")))
        console.print(att)
    for n in metrics.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {n}")
