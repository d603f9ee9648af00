"""LasHeR SR / PR / NPR as the ``rgbt`` Python package (PyPI, ``rgbt.metrics.SR_LasHeR`` / ``PR_LasHeR`` /
``NPR``) computes them: protocol ``"lasher_rgbt"``.

Papers that evaluated with that package report these digits, and they are not the MATLAB toolkit's
(protocol ``"lasher"``, see docs/protocols.md). The package reads result files as float32 and rounds them
half to even (``load_text(...).round(0)``); sets frame 1 to the gt BEFORE replacing a row with w or h <= 0
by the previous one (the toolkit fills first, then forces); computes IoU and centre errors in float32
(0.2 becomes 0.20000000298 and passes the 0.2 threshold); adds 1e-8 to the gt size when normalising (a
no-op in float32 for sizes >= 1); gives -1 to a gt row with any value <= 0 (as the toolkit) but never
replaces a NaN prediction; and averages every sequence, all-zero curves included. Thresholds are
``np.linspace`` (0..1 in 21, 0..50 in 51, 0..0.5 in 51), PR / NPR the 21st value.

Every step below is vectorised over frames; float32 element-wise arithmetic is IEEE-exact either way, so the
numbers equal the package's per-frame Python loop (tests/test_toolkits.py runs the package itself).
"""

from __future__ import annotations

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
PRECISION_THRESHOLDS = np.linspace(0, 50, 51)
NORM_THRESHOLDS = np.linspace(0, 0.5, 51)


def _iou32(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``rgbt.utils.IoU``: inclusive corners (x2 = x + w - 1), +1 on the intersection sides, in float32."""
    one = np.float32(1)
    ww = np.maximum(np.float32(0), np.minimum(g[:, 0] + g[:, 2] - one, p[:, 0] + p[:, 2] - one)
                    - np.maximum(g[:, 0], p[:, 0]) + one)
    hh = np.maximum(np.float32(0), np.minimum(g[:, 1] + g[:, 3] - one, p[:, 1] + p[:, 3] - one)
                    - np.maximum(g[:, 1], p[:, 1]) + one)
    inter = ww * hh
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (p[:, 3] * p[:, 2] + g[:, 3] * g[:, 2] - inter)


def _centres32(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = np.float32(2)
    return (b[:, 2] - np.float32(1)) / half + b[:, 0], (b[:, 3] - np.float32(1)) / half + b[:, 1]


def _errors32(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rgbt.utils.CLE`` and ``normalize_CLE`` (strict mode): pixel centres, float32."""
    px, py = _centres32(p)
    gx, gy = _centres32(g)
    err = np.sqrt((px - gx) ** 2 + (py - gy) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        w, h = g[:, 2] + np.float32(1e-8), g[:, 3] + np.float32(1e-8)
        nerr = np.sqrt((px / w - gx / w) ** 2 + (py / h - gy / h) ** 2)
    return err, nerr


def prepare(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, gt) as float32 after the package's reading and frame bookkeeping."""
    g = np.round(np.asarray(gt, dtype=np.float64).reshape(-1, 4).astype(np.float32))
    p = np.round(np.asarray(pred, dtype=np.float64).reshape(-1, 4).astype(np.float32))
    n = len(g)
    if len(p) < n:
        raise ValueError(f"prediction has {len(p)} frames but the ground truth has {n}")
    p = p.copy()
    p[0] = g[0]  # serial[0] = gt[0], before the cut and the fill
    p = p[:n]
    with np.errstate(invalid="ignore"):
        bad = (p[:, 2] <= 0) | (p[:, 3] <= 0)
    for i in np.flatnonzero(bad[1:]) + 1:  # serial[i] = serial[i-1], in order
        p[i] = p[i - 1]
    return p, g


def sequence_curves(pred, gt) -> dict:
    """Per-sequence curves and SR / PR / NPR with the package's rules (keys as metrics.sequence_curves)."""
    p, g = prepare(pred, gt)
    n = len(g)
    if n == 0:
        raise ValueError("empty ground truth")
    ious = _iou32(p, g)
    err, nerr = _errors32(p, g)
    with np.errstate(invalid="ignore"):
        invalid = (g <= 0).any(1)
    for a in (ious, err, nerr):
        a[invalid] = -1
    out: dict = {"protocol": "lasher_rgbt", "frames": n, "denominator": n, "valid": ~invalid,
                 "counted": np.ones(n, bool)}
    with np.errstate(invalid="ignore"):  # float32 values against float64 thresholds, as numpy compares them
        for key, values, thr, above in (("success", ious, SUCCESS_THRESHOLDS, True),
                                        ("precision", err, PRECISION_THRESHOLDS, False),
                                        ("norm_precision", nerr, NORM_THRESHOLDS, False)):
            v = values.astype(np.float64)[:, None]
            counts = (v > thr[None, :] if above else v <= thr[None, :]).sum(0).astype(np.float64)
            out[f"{key}_counts"] = counts
            out[key] = counts / n
            out[f"{key}_thresholds"] = thr
    out.update({"SR": float(np.mean(out["success"])), "PR": float(out["precision"][20]),
                "NPR": float(out["norm_precision"][20]), "iou": ious.astype(np.float64),
                "err": err.astype(np.float64), "norm_err": nerr.astype(np.float64)})
    return out
