"""The leaderboard over the LasHeR MATLAB kit's published raw results, against the kit's own output.

The public LasHeR kit (github xuboyue1999/RGBT-Tracking, folder LasHeR_Toolkit) ships 14 trackers' raw
results (`tracking_results/<tracker>_tracking_result/<seq>.txt`, commas or tabs, some longer than their
sequence, MTNet's `_time.txt` files beside them), the test annotations (`annos/`), the test list and the
per-sequence curves its MATLAB code computed from them (`tmp_mat/aveSuccessRatePlot_14alg_*.mat`; the
`error` file was saved by a run with `norm_dst = true`, so it holds normalised precision). This scores the
raw results with `unitrack.eval.leaderboard` (protocol lasher) and prints SR / NPR beside the kit's,
pooled as `plot_draw_save.m` pools them.

    python scripts/leaderboard_vs_lasher_kit.py path/to/RGBT-Tracking/LasHeR_Toolkit
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.io as sio

from unitrack.data.formats.common import read_boxes
from unitrack.data.sequence import Sequence
from unitrack.eval.leaderboard import compare, find_trackers


def kit_pooled(curves: np.ndarray, index: int | None = None) -> float:
    """plot_draw_save.m: all-zero sequence curves dropped, mean curve, then its mean (AUC) or one point."""
    kept = curves[curves.sum(1) > np.finfo(float).eps]
    mean = kept.mean(0)
    return float(mean.mean() if index is None else mean[index])


def main(kit: Path) -> None:
    names = [n.strip() for n in (kit / "sequence_evaluation_config" / "all_dataset_lashertest.txt").read_text()
             .splitlines() if n.strip()]
    seqs = []
    for n in names:  # annotations only: no frames are needed to score
        gt = read_boxes(kit / "annos" / f"{n}.txt", "xywh")
        seqs.append(Sequence(n, "rgbt", "lasher", [Path(n)] * len(gt), [Path(n)] * len(gt), gt.boxes, "thermal",
                             raw_boxes=gt.raw))
    t0 = time.perf_counter()
    trackers, _ = find_trackers(kit / "tracking_results", seqs)
    board = compare(seqs, trackers, protocol="lasher")
    print(f"{len(trackers)} trackers x {board['sequences']} sequences in {time.perf_counter() - t0:.1f} s")
    sr = sio.loadmat(kit / "tmp_mat" / "aveSuccessRatePlot_14alg_overlap_OPE.mat")
    npr = sio.loadmat(kit / "tmp_mat" / "aveSuccessRatePlot_14alg_error_OPE.mat")
    order = [str(x[0][0]) for x in sr["name_tracker_all"]]
    worst = {"SR": 0.0, "NPR": 0.0}
    print(f"{'tracker':10s} {'SR':>8s} {'kit SR':>8s} {'NPR':>8s} {'kit NPR':>8s} {'PR':>8s}")
    for name in board["ranking"]:
        o, i = board["trackers"][name]["overall"], order.index(name)
        k_sr, k_npr = kit_pooled(sr["ave_success_rate_plot"][i]), kit_pooled(npr["ave_success_rate_plot"][i], 20)
        worst = {"SR": max(worst["SR"], abs(o["SR"] - k_sr)), "NPR": max(worst["NPR"], abs(o["NPR"] - k_npr))}
        print(f"{name:10s} {o['SR']:8.5f} {k_sr:8.5f} {o['NPR']:8.5f} {k_npr:8.5f} {o['PR']:8.5f}")
    print(f"max |unitrack - kit|: SR {worst['SR']:.3g}, NPR {worst['NPR']:.3g}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(Path(sys.argv[1]))
