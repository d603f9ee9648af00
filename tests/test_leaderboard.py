"""Many trackers in one `score` (a leaderboard equal to single scores), raw results read as trackers publish
them, and every `eval.export` layout read back by `score` to the same numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from unitrack.cli import main
from unitrack.errors import ResultsError
from unitrack.eval import results as rio

# First lines of real published raw results (github xuboyue1999/RGBT-Tracking): the LasHeR kit's
# tracking_results/APFNet_tracking_result/10runone.txt (commas) and MTNet_tracking_result/10runone.txt
# (tabs); the GTOT kit's BBresults/MaCNet/MaCNet_BlackCar.txt (x y w h, spaces) and
# BBresults/ADRNet/ADRNet_BlackCar.txt (8 corners, spaces, as written): frame 1 of BlackCar is the same
# box 209,155,100,63 in both.
APFNET_10RUNONE = "698,377,48,87\n700,380,47,87\n"
MTNET_10RUNONE = "698\t377\t48\t87\n701\t375\t46\t91\n"
MACNET_BLACKCAR = "209.0 155.0 100.0 63.0\n203.01376342773438 155.1603546142578 95.7049789428711 61.640586853027344\n"
ADRNET_BLACKCAR = ("2.090000000000000000e+02 1.550000000000000000e+02 309.0 1.550000000000000000e+02 309.0 218.0 "
                   "2.090000000000000000e+02 218.0\n")


def _run(argv: list[str]) -> None:
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    main(argv)


def test_raw_results_read_as_published(tmp_path):
    (tmp_path / "apf").mkdir()
    (tmp_path / "apf" / "10runone.txt").write_text(APFNET_10RUNONE)
    (tmp_path / "mt").mkdir()  # MTNet's folder also holds <seq>_time.txt files: not sequences
    (tmp_path / "mt" / "10runone.txt").write_text(MTNET_10RUNONE)
    (tmp_path / "mt" / "10runone_time.txt").write_text("0.03\n0.03\n")
    for d in ("apf", "mt"):
        assert rio.find_prefix(tmp_path / d, ["lasher/10runone", "lasher/11leftboy"]) == ""
        b, _ = rio.read_layout(tmp_path / d, "lasher/10runone", None)
        np.testing.assert_array_equal(b[0], [698, 377, 48, 87])
    bb = tmp_path / "BBresults"
    for tracker, text in (("MaCNet", MACNET_BLACKCAR), ("ADRNet", ADRNET_BLACKCAR)):
        (bb / tracker).mkdir(parents=True)
        (bb / tracker / f"{tracker}_BlackCar.txt").write_text(text)
        (bb / tracker / f"{tracker}_BlackSwan1.txt").write_text(text)
        prefix = rio.find_prefix(bb / tracker, ["BlackCar", "BlackSwan1", "Car"])
        assert prefix == f"{tracker}_"
        b, _ = rio.read_layout(bb / tracker, "gtot/BlackCar", None, prefix=prefix)
        np.testing.assert_array_equal(b[0], [209, 155, 100, 63])
    # the rgbt package's examples register prefixes that are not the folder name (JMMAC_234_final_), and the
    # VisEvent kit falls back to results<seq>.txt: whatever stands before the names in most files
    for prefix in ("JMMAC_234_final_", "results"):
        d = tmp_path / prefix
        d.mkdir()
        for s in ("BlackCar", "BlackSwan1"):
            (d / f"{prefix}{s}.txt").write_text(APFNET_10RUNONE)
        assert rio.find_prefix(d, ["BlackCar", "BlackSwan1"]) == prefix
    # corners x1,y1,x2,y2 only when asked: the same line is a different box
    p = tmp_path / "c.txt"
    p.write_text("10 20 40 60\n")
    np.testing.assert_array_equal(rio.read_results(p), [[10, 20, 40, 60]])
    np.testing.assert_array_equal(rio.read_results(p, box_format="corners"), [[10, 20, 30, 40]])
    p.write_text("10,20,40,60,1\n")
    with pytest.raises(ResultsError, match=r"c.txt, line 1: expected 4 values x,y,w,h \(or 8 corner values\)"):
        rio.read_results(p)


def _predictions(seqs, noise: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for s in seqs:
        b = np.where(np.isfinite(s.boxes), s.boxes, 0.0) + rng.normal(0, noise, s.boxes.shape)
        b[0] = s.boxes[0]  # frame 0 is the given box in every layout
        out[s.name] = b
    return out


def _csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {r["tracker"]: r for r in csv.DictReader(fh)}


def _metric(m: dict, column: str, tasks, datasets) -> float | None:
    scope, _, key = column.rpartition("_")
    if not scope:
        return m["overall"].get(key)
    if scope in tasks:
        return m["per_task"][scope].get(key)
    return m["per_dataset"][scope].get(key)


def test_leaderboard_of_three_trackers_equals_three_single_scores(tmp_path, synth_root, capsys):
    from unitrack.data.formats import load_dataset

    seqs = load_dataset("manifest", synth_root / "unibench.txt")
    assert len(seqs) == 3
    root = tmp_path / "tracking_results"
    # A: the LasHeR kit's folder name, commas + confidences; B: tabs; C: the GTOT kit's C_<seq>.txt corners,
    # without the last sequence
    a, b, c = (_predictions(seqs, n, i) for i, n in enumerate((1.0, 4.0, 8.0)))
    for s in seqs:
        rio.write_results(root / "A_tracking_result", s.name, a[s.name], np.linspace(1, 0.1, len(s)))
        rio.export_pytracking(root / "B", s.name, b[s.name])
        if s is not seqs[-1]:
            rio.export_gtot(root, s.name, c[s.name], tracker="C")
    (root / "notes").mkdir()  # a sub-folder with no result file is not a tracker
    bench = f"benchmark={synth_root / 'unibench.txt'}"

    with pytest.raises(SystemExit) as e:
        _run(["score", f"results={root}", bench, f"hydra.run.dir={tmp_path / 'refused'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert f"tracker 'C' has no result file (like C_{seqs[-1].name}.txt) for 1 of 3 sequences: {seqs[-1].uid}" in err
    assert "score.common_subset=true" in err and not (tmp_path / "refused" / "leaderboard.csv").exists()

    run = tmp_path / "board"
    _run(["score", f"results={root}", bench, "score.common_subset=true", f"hydra.run.dir={run}"])
    rows = _csv_rows(run / "leaderboard.csv")
    assert list(rows) == ["A", "B", "C"]  # ranked by SR: the least noise first
    srs = [float(r["SR"]) for r in rows.values()]
    assert srs == sorted(srs, reverse=True) and len(set(srs)) == 3
    # the same three trackers given as a list: the same table
    listed = tmp_path / "listed"
    _run(["score", f"results=[{root / 'C'},{root / 'A_tracking_result'},{root / 'B'}]", bench,
          "score.common_subset=true", f"hydra.run.dir={listed}"])
    assert (listed / "leaderboard.csv").read_text() == (run / "leaderboard.csv").read_text()

    # three single scores on the sequences all three have
    common = synth_root / "leaderboard_common.txt"
    common.write_text("".join(f"{s.task},{s.dataset},{s.name}\n" for s in seqs[:-1]))
    tasks, datasets = {s.task for s in seqs[:-1]}, {s.dataset for s in seqs[:-1]}
    for name, folder in (("A", "A_tracking_result"), ("B", "B"), ("C", "C")):
        single = tmp_path / f"single_{name}"
        _run(["score", f"results={root / folder}", f"benchmark={common}", f"hydra.run.dir={single}"])
        m = json.loads((single / "metrics.json").read_text())
        row = rows[name]
        assert int(row["sequences"]) == m["overall"]["sequences"] == 2
        columns = [k for k in row if k not in ("tracker", "sequences")]
        # one dataset per task here: the datasets' scores are the tasks', so they get no columns of their own
        assert {"SR", "PR", "NPR", "rgbt_SR", "rgbt_NPR", "rgbd_F", "rgbd_Re"} <= set(columns)
        assert not {"lasher_SR", "depthtrack_F"} & set(columns)
        for col in columns:
            want = _metric(m, col, tasks, datasets)
            assert (row[col] == "" and want is None) or float(row[col]) == want, (name, col)
        for att, r in m["per_attribute"].items():  # the per-attribute SR table
            assert float(_csv_attr(run)[att][name]) == r["SR"], (name, att)

    # C alone: the same refusal naming what it lacks, and with common_subset the single score above
    with pytest.raises(SystemExit) as e:
        _run(["score", f"results={root / 'C'}", bench, f"hydra.run.dir={tmp_path / 'c_refused'}"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert f"results folder has no result file (like C_{seqs[-1].name}.txt) for 1 of 3 sequences" in err
    _run(["score", f"results={root / 'C'}", bench, "score.common_subset=true", f"hydra.run.dir={tmp_path / 'c'}"])
    alone = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert alone["overall"] == json.loads((tmp_path / "single_C" / "metrics.json").read_text())["overall"]
    assert any("without one: " + seqs[-1].uid in n for n in alone["notes"])

    md = (run / "leaderboard.md").read_text()
    assert "| 1 | A | 2 |" in md and "## SR per attribute" in md and "C lacks " + seqs[-1].uid in md
    assert "not trackers: notes" in md
    for png in ("success_overall", "precision_overall", "norm_precision_overall", "success_task_rgbt",
                "prf_task_rgbd", "radar_SR"):
        assert (run / f"{png}.png").stat().st_size > 0, png
    board = json.loads((run / "leaderboard.json").read_text())
    assert board["ranking"] == ["A", "B", "C"] and board["left_out"] == {"C": [seqs[-1].uid]}
    assert board["trackers"]["C"]["results_prefix"] == "C_"


def test_columns_per_dataset_where_a_task_has_several(tmp_path):
    from unitrack.data.sequence import Sequence
    from unitrack.eval.leaderboard import Tracker, compare, table

    rng = np.random.default_rng(1)
    seqs = []
    for dataset, name in (("lasher", "a"), ("lasher", "b"), ("gtot", "c")):
        gt = np.abs(rng.normal(30, 5, (8, 4))) + 5
        seqs.append(Sequence(name, "rgbt", dataset, [Path(name)] * 8, [Path(name)] * 8, gt, "thermal"))
    trackers = []
    for t, noise in (("T1", 1.0), ("T2", 5.0)):
        for s in seqs:
            rio.write_results(tmp_path / t, s.name, s.boxes + rng.normal(0, noise, s.boxes.shape))
        trackers.append(Tracker(t, tmp_path / t))
    board = compare(seqs, trackers, protocol="lasher")
    cols, rows = table(board)
    # one task = the overall: no rgbt columns; two datasets: their own, GTOT's with its MPR / MSR
    assert cols == ["tracker", "sequences", "SR", "PR", "NPR", "lasher_SR", "lasher_PR", "lasher_NPR", "gtot_SR",
                    "gtot_PR", "gtot_NPR", "gtot_MPR", "gtot_MSR"]
    assert [r["tracker"] for r in rows] == ["T1", "T2"] and rows[0]["gtot_MPR"] == board["trackers"]["T1"][
        "per_dataset"]["gtot"]["MPR"]


def _csv_attr(run: Path) -> dict[str, dict[str, str]]:
    with open(run / "attributes.csv", newline="") as fh:
        return {r["attribute"]: r for r in csv.DictReader(fh)}


def test_every_export_layout_reads_back_to_the_same_numbers(tmp_path, synth_root):
    from unitrack.data.formats import load_dataset

    seqs = load_dataset("manifest", synth_root / "unibench.txt")
    pred = _predictions(seqs, 3.0, 7)
    out = tmp_path / "eval_run"
    for s in seqs:  # what `unitrack eval` writes, then exports (commands/eval.py calls rio.export the same way)
        conf = np.linspace(0.9, 0.2, len(s))
        rio.write_results(out / "results", s.name, pred[s.name], conf)
        boxes = rio.read_results(out / "results" / f"{s.name}.txt")
        for fmt in rio.EXPORT_FOLDERS:
            rio.export(fmt, out, s.name, boxes, conf, [0.01] * len(boxes), tracker="unitrack")
    name = seqs[0].name
    assert (out / "pytracking" / f"{name}.txt").read_text().count("\t") == 3 * len(seqs[0])
    assert (out / "pytracking" / f"{name}_time.txt").is_file()
    assert (out / "tracking_results" / "unitrack_tracking_result" / f"{name}.txt").is_file()
    assert len((out / "BBresults" / "unitrack" / f"unitrack_{name}.txt").read_text().split("\n")[0].split()) == 8

    bench = f"benchmark={synth_root / 'unibench.txt'}"

    def score_of(tag: str, *args: str) -> dict:
        _run(["score", *args, bench, "protocol=vot", f"hydra.run.dir={tmp_path / tag}"])
        return json.loads((tmp_path / tag / "metrics.json").read_text())

    ref = score_of("ref", f"results={out / 'results'}")
    backs = {
        "got10k": score_of("got10k", f"results={out / 'got10k'}", "results_layout=got10k"),
        "vot": score_of("vot", f"results={out / 'vot'}", "results_layout=vot"),
        "pytracking": score_of("pytracking", f"results={out / 'pytracking'}"),
        "lasher": score_of("lasher", f"results={out / 'tracking_results' / 'unitrack_tracking_result'}"),
        "gtot": score_of("gtot", f"results={out / 'BBresults' / 'unitrack'}"),
    }
    for fmt, m in backs.items():
        tol = 1e-12 if fmt == "gtot" else 0.0  # corners: w = x2 - x1 in floating point, equal to the last bits
        for k in ("SR", "PR", "NPR"):
            assert abs(m["overall"][k] - ref["overall"][k]) <= tol, (fmt, k)
        for t in ref["per_task"]:
            assert abs(m["per_task"][t]["SR"] - ref["per_task"][t]["SR"]) <= tol, (fmt, t)
    # the VOT layout carries the confidences: F/Pr/Re too
    assert backs["vot"]["overall"]["F"] == ref["overall"]["F"]
    # the kits' tracking_results/ folder is itself a leaderboard root: the one tracker, named as the kits name it
    _run(["score", f"results={out / 'tracking_results'}", bench, f"hydra.run.dir={tmp_path / 'kit'}"])
    row = _csv_rows(tmp_path / "kit" / "leaderboard.csv")["unitrack"]
    pyt = json.loads((tmp_path / "pytracking" / "metrics.json").read_text())
    assert float(row["SR"]) == pyt["overall"]["SR"]


@pytest.mark.parametrize("verb,overrides,key,phrase", [
    ("score", ["results=[]"], "results", "non-empty list"),
    ("score", ["results=r", "results_format=ltrb"], "results_format", "xywh, corners"),
    ("score", ["results=r", "score.common_subset=maybe"], "score.common_subset", "bool"),
    ("eval", ["ckpt=x", "eval.export=[lasher,matlab]"], "eval.export", "lasher, gtot"),
    ("eval", ["ckpt=x", "eval.export_tracker=a/b"], "eval.export_tracker", "plain file name"),
])
def test_schema_refuses_bad_leaderboard_and_export_keys(verb, overrides, key, phrase):
    from unitrack.errors import ConfigError
    from unitrack.schema import check

    with pytest.raises(ConfigError) as e:
        check(verb, overrides)
    assert e.value.key == key and phrase in str(e.value), str(e.value)


def test_schema_accepts_trackers_lists_and_every_export():
    from unitrack.schema import EXPORTS, RESULTS_FORMATS, check

    assert set(EXPORTS) == set(rio.EXPORT_FOLDERS) and set(RESULTS_FORMATS) == set(rio.BOX_FORMATS)
    check("score", ["results=[a,b/c]", "results_format=corners", "score.common_subset=true"])
    check("eval", ["ckpt=x", f"eval.export=[{','.join(EXPORTS)}]", "eval.export_tracker=MANet++"])
