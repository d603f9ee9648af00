"""Many trackers on one benchmark, compared as the toolkits compare them: a table ranked by SR, every
tracker's success / precision / normalised-precision curve in one plot, SR per challenge attribute with
a radar plot, and the long-term precision / recall / F curves of DepthTrack (VOT).

Which folders are trackers: ``results=[DIR_A, DIR_B]`` makes each folder one tracker; ``results=DIR``
whose own files hold no sequence's result while its sub-folders do is the toolkits'
``tracking_results/`` (one sub-folder per tracker; sub-folders without any result are listed and
skipped). A tracker is named by its folder, less the LasHeR / VisEvent kits' ``_tracking_result``
suffix (``APFNet_tracking_result`` -> ``APFNet``); equal names get their parent folders in front. In a
folder, files are ``<seq>.txt`` or ``<prefix><seq>.txt`` (the GTOT kit's ``ADRNet_BlackCar.txt``), the
prefix found per folder (:func:`unitrack.eval.results.find_prefix`).

Every tracker is scored by :func:`unitrack.eval.score.score` alone, so its row equals a single
``unitrack score`` of its folder on the same sequences. A tracker without a result file for some
sequences is an error naming them; ``common_subset=True`` scores every tracker on the sequences all of
them have and says which were left out (a comparison on different sequences would not be one).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from pathlib import Path

from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError, ResultsError
from unitrack.eval.plots import plot_norm_precision, plot_precision, plot_prf, plot_radar, plot_success
from unitrack.eval.results import file_stem, find_prefix, layout_paths, write_text_atomic
from unitrack.eval.score import _jsonable, print_table, score, write_score_outputs

KIT_SUFFIX = "_tracking_result"
SCORES = ("SR", "PR", "NPR")
#: native scores some scopes add: VOT long-term (rgbd) and RGBT234 / GTOT MPR / MSR.
EXTRAS = ("F", "Pr", "Re", "MPR", "MSR")
_SHOWN = 8  # sequence names listed in one error line


@dataclass(frozen=True)
class Tracker:
    """One tracker's raw results: its name, folder and the file-name prefix its files carry."""

    name: str
    folder: Path
    prefix: str = ""


# ------------------------------------------------------------------------------------------ finding trackers
def check_folders(results: str | Seq[str]) -> list[Path]:
    """The `results` folders (one, or a list); a path that is not a folder is a config error."""
    paths = [results] if isinstance(results, (str, Path)) else list(results)
    if not paths:
        raise ConfigError("results", "an empty list; give a results folder or a list of them")
    for p in paths:
        if not Path(p).is_dir():
            raise ConfigError("results", f"{p} is not a folder of result files")
    return [Path(p) for p in paths]


def _prefix(folder: Path, sequences: Seq[Sequence], layout: str) -> str:
    return find_prefix(folder, [s.name for s in sequences]) if layout == "pytracking" else ""


def _has(folder: Path, seq: Sequence, layout: str, prefix: str, direct: bool = False) -> bool:
    if layout == "pytracking_nested" and direct:  # no search below: in a trackers' folder that is another tracker
        parts = seq.uid.replace("\\", "/").split("/")
        return (folder.joinpath(*parts[:-1]) / f"{file_stem(seq.uid)}.txt").is_file() or (
            folder / f"{file_stem(seq.uid)}.txt").is_file()
    try:
        return layout_paths(folder, seq.uid, layout, prefix)[0].is_file()
    except ResultsError:  # several files below could be it: score names them
        return True


def _holds_any(folder: Path, sequences: Seq[Sequence], layout: str) -> bool:
    prefix = _prefix(folder, sequences, layout)
    return any(_has(folder, s, layout, prefix, direct=True) for s in sequences)


def _base_name(folder: Path) -> str:
    name = folder.resolve().name
    return name[: -len(KIT_SUFFIX)] if name.endswith(KIT_SUFFIX) and len(name) > len(KIT_SUFFIX) else name


def _named(folders: list[Path], sequences: Seq[Sequence], layout: str) -> list[Tracker]:
    """Trackers named by their folders; equal names get as many parent folders as make them differ."""
    resolved = [f.resolve() for f in folders]
    seen: dict[Path, Path] = {}
    for f, r in zip(folders, resolved):
        if r in seen:
            raise ConfigError("results", f"{f} is given twice (as {seen[r]})")
        seen[r] = f
    names = [_base_name(f) for f in folders]
    for k in range(2, max(len(r.parts) for r in resolved) + 1):
        dup = {n for n in names if names.count(n) > 1}
        if not dup:
            break
        names = ["/".join([*r.parts[-k:-1], n.split("/")[-1]]) if n in dup else n for n, r in zip(names, resolved)]
    return [Tracker(n, f, _prefix(f, sequences, layout)) for n, f in zip(names, folders)]


def find_trackers(results: str | Seq[str], sequences: Seq[Sequence], layout: str = "pytracking"
                  ) -> tuple[list[Tracker], list[str]] | None:
    """(trackers, skipped sub-folders) when `results` names several trackers, None when it is one
    tracker's folder (a single `score`, unchanged). See the module docstring for the rules."""
    if not isinstance(results, (str, Path)):
        return _named([Path(r) for r in results], sequences, layout), []
    root = Path(results)
    if _holds_any(root, sequences, layout):
        return None
    subs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    found = [p for p in subs if _holds_any(p, sequences, layout)]
    if not found:
        return None  # no tracker anywhere: the single score names the first missing file
    return _named(found, sequences, layout), [p.name for p in subs if p not in found]


def present(tracker: Tracker, sequences: Seq[Sequence], layout: str) -> list[Sequence]:
    """The sequences the tracker's folder holds a result file for."""
    return [s for s in sequences if _has(tracker.folder, s, layout, tracker.prefix)]


def _lacks(t: Tracker, uids: Seq[str], n: int, layout: str) -> str:
    where = layout_paths(t.folder, uids[0], layout, t.prefix)[0].name
    return f"has no result file (like {where}) for {len(uids)} of {n} sequences: {_listed(uids)}"


def _listed(uids: Seq[str]) -> str:
    more = f" and {len(uids) - _SHOWN} more" if len(uids) > _SHOWN else ""
    return ", ".join(uids[:_SHOWN]) + more


# ------------------------------------------------------------------------------------------------ scoring
def compare(sequences: Seq[Sequence], trackers: Seq[Tracker], *, protocol: str = "pytracking",
            layout: str = "pytracking", results_format: str = "xywh", common_subset: bool = False) -> dict:
    """Score every tracker on the benchmark (or, with `common_subset`, on the sequences all of them have).

    Returns ``{"protocol", "sequences", "benchmark_sequences", "left_out", "ranking", "trackers",
    "curves", "notes"}``: ``trackers[name]`` is the tracker's single-``score`` metrics, ``curves[name]``
    its curves, ``ranking`` the names by overall SR (best first), ``left_out[name]`` the uids its folder
    lacks.
    """
    if not trackers:
        raise ValueError("no trackers to compare")
    have = {t.name: {s.uid for s in present(t, sequences, layout)} for t in trackers}
    left_out = {t.name: [s.uid for s in sequences if s.uid not in have[t.name]] for t in trackers}
    short = [t for t in trackers if left_out[t.name]]
    if short and not common_subset:
        t = short[0]
        others = "; ".join(f"{u.name} lacks {len(left_out[u.name])}" for u in short[1:])
        raise ResultsError(t.folder, f"tracker '{t.name}' " + _lacks(t, left_out[t.name], len(sequences), layout)
                           + (f" (also: {others})" if others else "")
                           + "; add them, or pass score.common_subset=true to score every tracker on the "
                           "sequences all of them have")
    scored = [s for s in sequences if all(s.uid in have[t.name] for t in trackers)]
    if not scored:
        raise ResultsError(trackers[0].folder, f"no sequence has a result file from every one of the "
                           f"{len(trackers)} trackers ({', '.join(t.name for t in trackers)})")
    notes: list[str] = []
    if short:
        notes.append(f"scored on the {len(scored)} of {len(sequences)} sequences every tracker has "
                     "(score.common_subset=true); " + "; ".join(
                         f"{t.name} lacks {_listed(left_out[t.name])}" for t in short))
    per: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    said: dict[str, list[str]] = {}
    for t in trackers:
        per[t.name], curves[t.name] = score(scored, t.folder, protocol, return_curves=True, results_layout=layout,
                                            results_prefix=t.prefix, results_format=results_format)
        per[t.name]["tracker"], per[t.name]["results_prefix"] = t.name, t.prefix
        for n in per[t.name]["notes"]:
            said.setdefault(n, []).append(t.name)
    for n, who in said.items():  # one note said by every tracker is said once
        notes.append(n if len(who) == len(trackers) else f"{', '.join(who)}: {n}")
    ranking = sorted(per, key=lambda n: (per[n]["overall"]["SR"] is None, -(per[n]["overall"]["SR"] or 0.0)))
    return {"protocol": protocol, "sequences": len(scored), "benchmark_sequences": len(sequences),
            "left_out": {k: v for k, v in left_out.items() if v}, "ranking": ranking, "trackers": per,
            "curves": curves, "notes": notes}


# -------------------------------------------------------------------------------------------------- tables
def _scopes(board: Mapping) -> list[tuple[str, str, str]]:
    """(column prefix, metrics section, key) of every scope worth a column: overall, each task, each
    dataset; a scope over the same sequences as one before it whose scores all equal that one's (one task;
    one dataset per task) has no columns of its own."""
    first = board["trackers"][board["ranking"][0]]
    per_seq = first["per_sequence"]
    tasks = list(first["per_task"])

    def members(field: str, name: str) -> frozenset:
        return frozenset(u for u, r in per_seq.items() if r[field] == name)

    candidates = [("", "overall", "", frozenset(per_seq))]
    candidates += [(f"{t}_", "per_task", t, members("task", t)) for t in tasks]
    candidates += [(f"{d}_dataset_" if d in tasks else f"{d}_", "per_dataset", d, members("dataset", d))
                   for d in first["per_dataset"]]
    kept: list[tuple[str, str, str, frozenset]] = []
    for pre, section, key, seqs in candidates:
        if not any(seqs == k_seqs and _repeats(board, (section, key), (k_section, k_key))
                   for _, k_section, k_key, k_seqs in kept):
            kept.append((pre, section, key, seqs))
    return [(pre, section, key) for pre, section, key, _ in kept]


def _repeats(board: Mapping, scope: tuple[str, str], earlier: tuple[str, str]) -> bool:
    """Every score of `scope` is in `earlier` with the same value, for every tracker."""
    for m in board["trackers"].values():
        a, b = _row_of(m, *scope), _row_of(m, *earlier)
        if any(k in a and (k not in b or a[k] != b[k]) for k in (*SCORES, *EXTRAS)):
            return False
    return True


def _row_of(m: Mapping, section: str, key: str) -> Mapping:
    return m[section] if section == "overall" else m[section].get(key, {})


def table(board: Mapping) -> tuple[list[str], list[dict]]:
    """(columns, one row per tracker in rank order): tracker, sequences, SR / PR / NPR overall, then per
    task and per dataset, each scope followed by the native scores it has (F / Pr / Re, MPR / MSR)."""
    spec = []  # (column, section, key, metric)
    for pre, section, key in _scopes(board):
        have = [k for k in EXTRAS if any(k in _row_of(m, section, key) for m in board["trackers"].values())]
        spec += [(f"{pre}{k}", section, key, k) for k in (*SCORES, *have)]
    rows = []
    for name in board["ranking"]:
        m = board["trackers"][name]
        rows.append({"tracker": name, "sequences": m["overall"]["sequences"],
                     **{c: _row_of(m, section, key).get(k) for c, section, key, k in spec}})
    return ["tracker", "sequences", *(c for c, _, _, _ in spec)], rows


def attribute_table(board: Mapping) -> tuple[list[str], dict[str, dict[str, float | None]], dict[str, int]]:
    """(attributes, tracker -> attribute -> SR, attribute -> number of sequences) over the trackers in
    rank order; empty when the benchmark ships no attribute files."""
    per = {n: board["trackers"][n].get("per_attribute") or {} for n in board["ranking"]}
    names = list(dict.fromkeys(a for p in per.values() for a in p))
    first = next((p for p in per.values() if p), {})
    return names, {n: {a: p.get(a, {}).get("SR") for a in names} for n, p in per.items()}, {
        a: first.get(a, {}).get("sequences", 0) for a in names}


def _csv(cols: list[str], rows: list[Mapping]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:  # str(float) is the shortest text that reads back to the same float
        w.writerow(["" if r.get(c) is None else r[c] for c in cols])
    return buf.getvalue()


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|")


def _markdown(board: Mapping, cols: list[str], rows: list[dict]) -> str:
    n = len(board["trackers"])
    lines = [f"# Leaderboard: {n} tracker{'s' * (n != 1)} on {board['sequences']} sequences", "",
             f"Protocol `{board['protocol']}`, ranked by SR; scores x100 (leaderboard.csv holds the fractions). A task "
             "or dataset whose sequences and scores are those of a broader scope has no columns of its own.", ""]
    head = ["rank", *(c.replace("_", " ") for c in cols)]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if c not in ("tracker",) else "---"
                                                               for c in ["rank", *cols]) + "|"]
    for i, r in enumerate(rows, 1):
        cells = [str(i), _md_cell(r["tracker"]), str(r["sequences"]), *(_pct(r.get(c)) for c in cols[2:])]
        lines.append("| " + " | ".join(cells) + " |")
    names, sr, counts = attribute_table(board)
    if names:
        trackers = list(sr)
        lines += ["", "## SR per attribute (x100)", "",
                  "| attribute | seqs | " + " | ".join(_md_cell(t) for t in trackers) + " |",
                  "|---|---:|" + "---:|" * len(trackers)]
        lines += [f"| {a} | {counts[a]} | " + " | ".join(_pct(sr[t][a]) for t in trackers) + " |" for a in names]
    if board["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in board["notes"])]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- outputs
def _curve_scopes(board: Mapping) -> dict[str, str | None]:
    """Plot scope -> task (None: overall): the tasks that have columns in the table."""
    return {"overall": None} | {f"task_{key}": key for _, section, key in _scopes(board) if section == "per_task"}


def _scope_curves(curves: Mapping, task: str | None) -> Mapping | None:
    return curves.get("overall") if task is None else curves.get("per_task", {}).get(task)


def write_outputs(board: Mapping, out_dir: Path | str) -> dict[str, Path]:
    """leaderboard.csv / .md / .json, every tracker's curves per scope (success, precision, normalised
    precision; precision / recall / F where VOT long-term scores apply), and attributes.csv plus a radar
    plot when the benchmark has attribute files. Returns the written paths by name."""
    out = Path(out_dir)
    cols, rows = table(board)
    written = {"csv": write_text_atomic(out / "leaderboard.csv", _csv(cols, rows)),
               "md": write_text_atomic(out / "leaderboard.md", _markdown(board, cols, rows))}
    body = {k: v for k, v in board.items() if k != "curves"}
    written["json"] = write_text_atomic(out / "leaderboard.json", json.dumps(_jsonable(body), indent=2))
    for scope, task in _curve_scopes(board).items():
        per = {n: c for n in board["ranking"] if (c := _scope_curves(board["curves"][n], task))}
        title = scope.replace("task_", "")
        for kind, plot, score_key in (("success", plot_success, "SR"), ("precision", plot_precision, "PR"),
                                      ("norm_precision", plot_norm_precision, "NPR")):
            lines = {n: (c[f"{kind}_thresholds"], c[kind], c.get(score_key)) for n, c in per.items()
                     if c.get(kind) is not None}
            if lines:
                written[f"{kind}_{scope}"] = plot(lines, out / f"{kind}_{scope}.png",
                                                  title=f"{kind.replace('_', ' ').capitalize()} plot - {title}")
        vot = {n: c["vot"] for n, c in per.items() if c.get("vot")}
        if vot:
            row = {n: _row_of(board["trackers"][n], "overall" if task is None else "per_task", task or "")
                   for n in vot}
            written[f"prf_{scope}"] = plot_prf(
                {n: (v["precision_curve"], v["recall_curve"], v["f_curve"], row[n].get("F")) for n, v in vot.items()},
                out / f"prf_{scope}.png", title=title)
    names, sr, counts = attribute_table(board)
    if names:
        acols = ["attribute", "sequences", *sr]
        arows = [{"attribute": a, "sequences": counts[a], **{t: sr[t][a] for t in sr}} for a in names]
        written["attributes"] = write_text_atomic(out / "attributes.csv", _csv(acols, arows))
        if len(names) >= 3:
            written["radar"] = plot_radar(sr, out / "radar_SR.png", title="SR per attribute")
    return written


def print_board(board: Mapping, console=None) -> None:
    """The ranked table (x100) and the notes on the console."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    cols, rows = table(board)
    tasks = [f"{key}_" for _, section, key in _scopes(board) if section == "per_task"]
    shown = [c for c in cols[2:] if c in (*SCORES, "F") or (c.startswith(tuple(tasks)) and c.endswith(("_SR", "_F")))]
    t = Table(title=f"Leaderboard ({board['protocol']} protocol, {board['sequences']} sequences, x100)")
    for c in ("rank", "tracker", *shown):
        t.add_column(c.replace("_", " "), justify="left" if c == "tracker" else "right")
    for i, r in enumerate(rows, 1):
        t.add_row(str(i), r["tracker"], *(_pct(r.get(c)) for c in shown))
    console.print(t)
    for n in board["notes"]:
        console.print(f"[yellow]note:[/yellow] {n}")


# ------------------------------------------------------------------------------------------------- command
def score_results(results: str | Seq[str], sequences: Seq[Sequence], out_dir: Path | str, *,
                  protocol: str = "pytracking", layout: str = "pytracking", results_format: str = "xywh",
                  common_subset: bool = False) -> dict:
    """`unitrack score`: one tracker's folder -> metrics.json as always; several -> the leaderboard."""
    found = find_trackers(results, sequences, layout)
    out = Path(out_dir)
    if found is None:
        folder = Path(results)
        tracker = Tracker(folder.name, folder, _prefix(folder, sequences, layout))
        seqs = list(sequences)
        have = present(tracker, sequences, layout)
        if have and len(have) < len(seqs):  # (none at all: score names the first file it looked for)
            if not common_subset:
                kept = {s.uid for s in have}
                raise ResultsError(folder, "results folder " + _lacks(tracker, [
                    s.uid for s in seqs if s.uid not in kept], len(seqs), layout) + "; add them, or pass "
                    f"score.common_subset=true to score the {len(have)} it has")
            seqs = have
        metrics, curves = score(seqs, folder, protocol=protocol, return_curves=True, results_layout=layout,
                                results_prefix=tracker.prefix, results_format=results_format)
        if len(seqs) < len(sequences):
            kept = {s.uid for s in seqs}
            lacking = [s.uid for s in sequences if s.uid not in kept]
            metrics["notes"].append(f"scored the {len(seqs)} of {len(sequences)} sequences with a result file "
                                    f"(score.common_subset=true); without one: {_listed(lacking)}")
        write_score_outputs(metrics, curves, out)
        print_table(metrics)
        print(f"wrote {out / 'metrics.json'}")
        return metrics
    trackers, skipped = found
    board = compare(sequences, trackers, protocol=protocol, layout=layout, results_format=results_format,
                    common_subset=common_subset)
    if skipped:
        board["notes"].append(f"sub-folders without any result file, not trackers: {', '.join(skipped)}")
    write_outputs(board, out)
    print_board(board)
    print(f"wrote {out / 'leaderboard.md'} ({len(trackers)} trackers)")
    return {k: v for k, v in board.items() if k != "curves"}
