"""Run the ORIGINAL evaluation toolkits on tests/toolkit_cases.py's inputs and write the expected numbers
to tests/fixtures/toolkits/<kit>.json (the default test suite compares the project with these files;
`UNITRACK_TOOLKITS=DIR pytest tests/test_toolkits.py` reruns Octave live).

Not run by the tests' default path and never vendored: the toolkits are public repositories, checked out
(or exported) side by side under one folder DIR:

    DIR/RGBT-Tracking/            github xuboyue1999/RGBT-Tracking: LasHeR_Toolkit/utils/*.m, GTOT-toolkit/*.m
    DIR/MM/                       github jelymewang/MM: RGBT_workspace/MPR-MSR-Evaluation/.../*.m (RGBT234 kit)
    DIR/VisEvent_SOT_Benchmark/   github wangxiao5791509/VisEvent_SOT_Benchmark: utils/*.m, annos/annos.zip

Usage (GNU Octave >= 7 on PATH; the `rgbt` package installed for the real annotations):

    python scripts/toolkit_expected.py DIR [--kits lasher rgbt234 gtot visevent] [--out tests/fixtures/toolkits]
    VOTPY=/path/to/venv-with-vot-toolkit/bin/python
    $VOTPY scripts/toolkit_expected.py --vot [--out tests/fixtures/toolkits]   # DepthTrack F-score

How each kit is run (its .m files are executed unchanged unless said here):
- LasHeR / VisEvent: ``eval_tracker.m`` (-> ``calc_seq_err_robust.m``, ``calc_rect_int.m``) for norm_dst
  false and true, then ``plot_draw_save.m`` with ranking 'AUC' (SR) and 'threshold' (PR / NPR, rank_idx 21).
  Its drawing calls (figure, plot, legend, print ...) are stubs; the ``plot`` stub keeps the pooled curve
  ``bb`` plot_draw_save.m hands it, so SR = mean(bb) and PR = bb(21) are the file's own numbers.
- RGBT234: ``calcPlotErr_TPR.m`` then the script ``main_attrDrawCurve_RGBT234.m``; GTOT: ``calcPlotErr.m``
  then ``main_attrDrawCurve.m``. These hard-code Windows / author paths and tracker lists: exactly those
  assignment lines are rewritten (basePath, resultPath, resultMatPath, attrMat, algs, attrDisplay(s) -- the
  RGBT234 script's own value 'ALl' selects no sequence), drawing is stubbed as above, and MPR / MSR are read
  from the script's workspace (precisionY / precisionthr, successthr).
- Octave only: ``isdir`` is given a one-line shim where Octave lacks it. Octave's colon operator counts
  0:0.05:1 as k * 0.05 while MATLAB counts from both ends (5 of 21 thresholds differ in the last bit); the
  cases avoid frames whose IoU falls between the two (see toolkit_cases.predictions), so Octave's numbers
  are MATLAB's.
- VOT (DepthTrack): the `vot-toolkit` package's long-term analysis (vot.analysis.longterm) on a DepthTrack-
  layout workspace this script writes (placeholder images of the real size, VOT result files); see vot_main.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import toolkit_cases as C  # noqa: E402

LASHER_KIT = "RGBT-Tracking/LasHeR_Toolkit/utils"
GTOT_KIT = "RGBT-Tracking/GTOT-toolkit"
RGBT234_KIT = "MM/RGBT_workspace/MPR-MSR-Evaluation/MPR-MSR-Evaluation"
VISEVENT_KIT = "VisEvent_SOT_Benchmark"
TRACKER = "T"

#: Drawing functions the kits call, as no-ops; ``plot`` keeps its y values (the pooled curve).
STUBS = {
    "plot": "function h = plot(varargin)\n  global CAPTURED\n  CAPTURED{end+1} = varargin{2};\n  h = 1;\nend\n",
    # the driver's writer (a file: the kits' scripts start with `clear all`, which drops command-line functions)
    "put": "function put(fid, key, v)\n  fprintf(fid, '%s', key); fprintf(fid, ' %.17g', v); fprintf(fid, '\\n');\nend\n",
    # Octave versions without isdir (MATLAB's, used by calcPlotErr*.m)
    "isdir": "function t = isdir(p)\n  t = isfolder(p);\nend\n",
    **{f: f"function varargout = {f}(varargin)\n  varargout = repmat({{1}}, 1, max(nargout, 0));\nend\n"
       for f in ("figure", "axes", "set", "hold", "grid", "legend", "title", "xlabel", "ylabel", "ylim", "axis",
                 "print", "saveas", "gca", "gcf", "clf", "close", "pause")},
}


def octave(script: str, cwd: Path) -> str:
    """Run an Octave script text in cwd; its stdout (errors raise with Octave's message)."""
    f = cwd / "driver_main.m"
    # the kits' `if (a | b) & c` rely on MATLAB's short-circuit `|` / `&` in conditions; Octave does the
    # same and warns on every frame
    f.write_text("warning('off', 'Octave:possible-matlab-short-circuit-operator');\n" + script)
    r = subprocess.run(["octave-cli", "--no-gui", "--quiet", "--no-init-file", f.name], cwd=cwd,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0 or not (cwd / "out.txt").is_file():
        raise RuntimeError(f"octave failed ({r.returncode}):\n{r.stderr[-3000:]}\n{r.stdout[-2000:]}")
    return r.stdout


def _stubs(d: Path) -> Path:
    s = d / "stubs"
    s.mkdir()
    for name, body in STUBS.items():
        (s / f"{name}.m").write_text(body)
    return s


def _cellstr(names: list[str]) -> str:
    return "{" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "}"


def _numbers(path: Path) -> dict[str, list[float]]:
    """The drivers write `key v1 v2 ...` lines with %.17g."""
    out = {}
    for ln in path.read_text().splitlines():
        k, *v = ln.split()
        out[k] = [float(x) for x in v]
    return out




# ------------------------------------------------------------------------------ LasHeR / VisEvent
def run_lasher_like(kits: Path, cases: list[dict], visevent: bool) -> dict:
    kit = kits / (f"{VISEVENT_KIT}/utils" if visevent else LASHER_KIT)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        stubs = _stubs(d)
        anno = d / "annos"
        gt_dir = anno / "gt_rect" if visevent else anno
        gt_dir.mkdir(parents=True)
        res = d / "tracking_results" / f"{TRACKER}_tracking_result"
        res.mkdir(parents=True)
        for c in cases:
            (gt_dir / f"{c['name']}.txt").write_text("\n".join(c["gt"]) + "\n")
            (res / f"{c['name']}.txt").write_text("\n".join(c["pred"]) + "\n")
            if visevent:
                (anno / "absent").mkdir(exist_ok=True)
                (anno / "absent" / f"{c['name']}.txt").write_text("\n".join(map(str, c["absent"])) + "\n")
        script = f"""
addpath('{kit}'); addpath('{stubs}');
global CAPTURED
seqs = {_cellstr([c['name'] for c in cases])};
trackers = {{struct('name', '{TRACKER}')}};
names = {{'{TRACKER}'}};
style = {{struct('color', [1 0 0], 'lineStyle', '-')}};
fid = fopen('{d / 'out.txt'}', 'w');
for norm_dst = [false true]
  eval_tracker(seqs, trackers, 'OPE', names, '{d}/tmp_mat/', '{anno}/', '{d}/tracking_results/', norm_dst);
  thr_err = 0:50;
  if norm_dst, thr_err = thr_err / 100; key = 'npr'; else, key = 'pr'; end
  load('{d}/tmp_mat/aveSuccessRatePlot_1alg_error_OPE.mat');
  put(fid, [key '_per_seq'], ave_success_rate_plot(1, :, 21));
  CAPTURED = {{}};
  plot_draw_save(1, style, ave_success_rate_plot, 1:numel(seqs), 1, 'threshold', 21, names, thr_err, ...
                 't', 'x', 'y', 'fig', '{d}/fig/', 'png');
  put(fid, [key '_curve'], CAPTURED{{1}}); put(fid, key, CAPTURED{{1}}(21));
end
load('{d}/tmp_mat/aveSuccessRatePlot_1alg_overlap_OPE.mat');
put(fid, 'sr_per_seq', mean(reshape(ave_success_rate_plot(1, :, :), numel(seqs), []), 2));
CAPTURED = {{}};
plot_draw_save(1, style, ave_success_rate_plot, 1:numel(seqs), 1, 'AUC', 11, names, 0:0.05:1, ...
               't', 'x', 'y', 'fig', '{d}/fig/', 'png');
put(fid, 'sr_curve', CAPTURED{{1}}); put(fid, 'sr', mean(CAPTURED{{1}}));
fclose(fid);
"""
        octave(script, d)
        n = _numbers(d / "out.txt")
    names = [c["name"] for c in cases]
    return {"SR": n["sr"][0], "PR": n["pr"][0], "NPR": n["npr"][0],
            "success": n["sr_curve"], "precision": n["pr_curve"], "norm_precision": n["npr_curve"],
            "per_sequence": {nm: {"SR": a, "PR": b, "NPR": c} for nm, a, b, c in
                             zip(names, n["sr_per_seq"], n["pr_per_seq"], n["npr_per_seq"])}}


# ------------------------------------------------------------------------------ RGBT234 / GTOT
def _patch(text: str, assignments: dict[str, str]) -> str:
    """Rewrite `name=...;` assignment lines (the kits' hard-coded paths / lists); each must exist once."""
    for name, value in assignments.items():
        pat = re.compile(rf"^(\s*){re.escape(name)}\s*=.*$", re.M)
        if len(pat.findall(text)) != 1:
            raise RuntimeError(f"expected one assignment to {name} in the kit file")
        text = pat.sub(lambda m, v=value, n=name: f"{m.group(1)}{n}={v};", text)
    return text


def run_mpr(kits: Path, cases: list[dict], variant: str) -> dict:
    kit = kits / (RGBT234_KIT if variant == "rgbt234" else GTOT_KIT)
    gen, draw = (("calcPlotErr_TPR.m", "main_attrDrawCurve_RGBT234.m") if variant == "rgbt234"
                 else ("calcPlotErr.m", "main_attrDrawCurve.m"))
    gt_names = ("visible.txt", "infrared.txt") if variant == "rgbt234" else ("groundTruth_v.txt", "groundTruth_i.txt")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        stubs = _stubs(d)
        data, results, patched = d / "dataset", d / "BBresults", d / "patched"
        for p in (data, results / TRACKER, patched):
            p.mkdir(parents=True)
        for c in cases:
            (data / c["name"]).mkdir()
            (data / c["name"] / gt_names[0]).write_text("\n".join(c["gt"]) + "\n")
            (data / c["name"] / gt_names[1]).write_text("\n".join(c["gt_x"]) + "\n")
            rf = (results / f"{TRACKER}{c['name']}.txt" if variant == "rgbt234"
                  else results / TRACKER / f"{TRACKER}_{c['name']}.txt")
            rf.write_text("\n".join(c["pred"]) + "\n")
        src = (kit / gen).read_text(encoding="latin-1")
        res_path = f"'{results}/'"
        (patched / gen).write_text(_patch(src, {"basePath": f"'{data}/'", "resultPath": res_path}), encoding="latin-1")
        src = (kit / draw).read_text(encoding="latin-1")
        common = {"basePath": f"'{data}/'", "resultMatPath": f"'{d}/ERRresults/'", "algs": f"{{'{TRACKER}'}}"}
        if variant == "rgbt234":
            common |= {"attrMat": f"'{kit}/AttrMat_RGBT234.mat'", "attrDisplays": "{'ALL'}"}
        else:
            common |= {"attrMat": f"'{kit}/sequencesAttr/AttrMat.mat'", "attrDisplay": "'ALL'"}
        (patched / draw).write_text(_patch(src, common), encoding="latin-1")
        fn = gen[:-2]
        scale = "" if variant == "rgbt234" else " / allFramesNum"  # the RGBT234 script divides in place
        take = ("put(fid, 'mpr', precisionY(21, 1)); put(fid, 'msr', successthr(1));" if variant == "rgbt234"
                else "put(fid, 'mpr', precisionthr(1)); put(fid, 'msr', successthr(1));")
        script = f"""
addpath('{kit}'); addpath('{stubs}'); addpath('{patched}');
{fn}({_cellstr([c['name'] for c in cases])}, {{'{TRACKER}'}}, 1);
run('{patched / draw}');
fid = fopen('{d / 'out.txt'}', 'w');
{take}
put(fid, 'precision', precisionY(:, 1)'{scale});
put(fid, 'success', successY(:, 1)'{scale});
fclose(fid);
"""
        octave(script, d)
        n = _numbers(d / "out.txt")
    return {"MPR": n["mpr"][0], "MSR": n["msr"][0], "precision": n["precision"], "success": n["success"]}


# ------------------------------------------------------------------------------ VOT long-term (DepthTrack)
VOT_STACK = "vot2020/rgbd"  # the VOT-RGBD long-term stack DepthTrack is scored with
VOT_EXPERIMENT = "rgbd-unsupervised"


def vot_main(out: Path) -> None:
    """`vot analysis` (the package's CLI) on the DepthTrack-layout workspace; Pr / Re / F and the curves."""
    import vot

    cases = C.depthtrack_cases()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "workspace"
        C.write_vot_workspace(ws, cases, TRACKER, VOT_EXPERIMENT, VOT_STACK)
        r = subprocess.run([sys.executable, "-m", "vot", "analysis", "--workspace", str(ws), "--format", "json",
                            "--name", "out", TRACKER], capture_output=True, text=True, timeout=900)
        if r.returncode != 0 or not (ws / "analysis" / "out.json").is_file():
            raise RuntimeError(f"vot analysis failed:\n{r.stderr[-3000:]}")
        doc = json.loads((ws / "analysis" / "out.json").read_text())
    # the stack's analyses in order: average_tpr [[Pr, Re, F]], pr_curve [(Re, Pr) x 100], f_curve [F x 100]
    (tpr,), (curve,), (f_curve,) = doc["results"][VOT_EXPERIMENT]["results"]
    pr, re, f = tpr
    expected = {"Pr": pr, "Re": re, "F": f, "recall_curve": [c[0] for c in curve[0]],
                "precision_curve": [c[1] for c in curve[0]], "f_curve": f_curve[0]}
    doc = {"kit": "vot", "produced_by": f"scripts/toolkit_expected.py --vot, vot-toolkit {vot.__version__}",
           **_inputs(cases), "expected": expected}
    out.mkdir(parents=True, exist_ok=True)
    (out / "depthtrack_vot.json").write_text(json.dumps(doc, indent=1) + "\n")
    print("vot", {k: expected[k] for k in ("Pr", "Re", "F")})


# ------------------------------------------------------------------------------ main
def visevent_annotations(kits: Path) -> dict:
    """gt_rect/<seq>.txt and absent/<seq>.txt of the chosen sequences, from the kit's annos.zip."""
    out = {}
    with zipfile.ZipFile(kits / VISEVENT_KIT / "annos" / "annos.zip") as z:
        for name in C.VISEVENT:
            gt = [ln for ln in z.read(f"gt_rect/{name}.txt").decode().splitlines() if ln.strip()]
            ab = [int(float(ln)) for ln in z.read(f"absent/{name}.txt").decode().split()]
            out[name] = {"gt": gt, "absent": ab}
    return out


def _inputs(cases: list[dict]) -> dict:
    return {"digest": C.digest(cases), "sequences": [{"name": c["name"], "source": c["source"], "frames": len(c["gt"])}
                                                      for c in cases]}


def octave_version() -> str:
    r = subprocess.run(["octave-cli", "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.stdout else "?"


def kit_main(kits: Path, which: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ver = octave_version()
    for kit in which:
        if kit == "visevent":
            fixture = {"annotations": visevent_annotations(kits)}
            cases = C.visevent_cases(fixture)
            expected = run_lasher_like(kits, cases, visevent=True)
        elif kit == "lasher":
            fixture, cases = {}, C.lasher_cases()
            expected = run_lasher_like(kits, cases, visevent=False)
        else:
            fixture, cases = {}, C.mpr_cases(kit)
            expected = run_mpr(kits, cases, kit)
        doc = {"kit": kit, "produced_by": f"scripts/toolkit_expected.py under {ver}", **_inputs(cases),
               **fixture, "expected": expected}
        (out / f"{kit}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(kit, {k: v for k, v in expected.items() if isinstance(v, float)})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kits", nargs="?", type=Path, help="folder holding the toolkit checkouts")
    ap.add_argument("--kits", dest="which", nargs="+", default=["lasher", "rgbt234", "gtot", "visevent"])
    ap.add_argument("--vot", action="store_true", help="DepthTrack F-score with the vot-toolkit package")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "toolkits")
    a = ap.parse_args(argv)
    if a.vot:
        vot_main(a.out)
        return
    if a.kits is None:
        ap.error("give the folder holding the toolkit checkouts (see the module docstring)")
    if shutil.which("octave-cli") is None:
        ap.error("octave-cli not found (Debian: apt-get install octave)")
    kit_main(a.kits, a.which, a.out)


if __name__ == "__main__":
    main()
