"""Tracking metrics that reproduce the official toolkits' numbers, one protocol per toolkit.

Each protocol below re-implements the frame bookkeeping of one toolkit (see reference/metrics.md), because
published numbers differ between toolkits mainly in how they treat absent / invalid frames:

- ``"pytracking"``: LaSOT/OTB analysis of pytracking. A frame is valid when all four gt values are > 0;
  invalid frames are excluded from numerator and denominator (``exclude_invalid=True``) or count as
  failures (``False``). Frame 0 is forced to the gt; a zero-size prediction is replaced by the previous
  one (NaN / negative sizes too, where the source raises); a short result is padded with zero boxes (as
  the source does). ``source_exact=True`` instead follows visionml/pytracking ``extract_results.py``
  line by line: valid = w, h > 0 only, NaN / negative predictions raise, and invalid frames count as
  normalised-precision *successes* (the source sets their error to -1).
- ``"lasher"``: the LasHeR MATLAB toolkit as written (``eval_tracker.m``, ``calc_seq_err_robust.m``,
  ``calc_rect_int.m``, ``plot_draw_save.m``; docs/protocols.md cites each rule): predictions as read
  (``dlmread``, never rounded), truncated to the gt length; a row with a NaN or w / h <= 0 is replaced by
  the previous row (where the gt row has no NaN) FIRST, and only then frame 1 is set to the gt, so an
  invalid frame 2 inherits the tracker's own frame-1 box. A gt row that is not all > 0 (x = 0 at the
  border, 0,0,0,0, NaN) gets value -1: a failure for SR, a success for PR/NPR. NPR divides each centre by
  the gt w / h before subtracting. Pooled curves leave out sequences whose curve is all zero.
- ``"lasher_rgbt"``: the LasHeR numbers of the ``rgbt`` Python package (PyPI), which differ from the
  toolkit's in the last digits: predictions rounded half to even, frame 1 forced BEFORE the invalid rows
  are filled, IoU and centre errors in float32, no sequence dropped. See :mod:`unitrack.eval.rgbt_port`.
- ``"visevent"``: VisEvent MATLAB toolkit (the LasHeR kit's files plus absent labels): as lasher, plus
  frames flagged absent are dropped from the numerator while the denominator stays the full length.
- ``"got10k"``: got10k ``ExperimentOTB``: frame 0 forced, continuous IoU with eps, no special frames
  (NaN gt simply fails), normalised error divided by max(1, gt w / h).
- ``"vot"``: VOT long-term precision / recall / F (DepthTrack, VOT-RGBD), see :func:`vot_prf`.
- ``"rgbt234"`` / ``"gtot"``: MPR / MSR with two ground truths (the RGBT234 kit's ``calcPlotErr_TPR.m``
  and the GTOT kit's ``calcPlotErr.m``), see :func:`mpr_msr`.

Centre convention: every toolkit above uses c = x + (w - 1) / 2 ("pixel"); x + w / 2 ("continuous") is
kept as a named option. Errors are differences of centres, so the two give the same distances.
All values are fractions in [0, 1] (tables multiply by 100).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from unitrack.eval import rgbt_port

PROTOCOLS = ("pytracking", "lasher", "lasher_rgbt", "visevent", "got10k", "vot", "rgbt234", "gtot")
#: Protocols whose SR / PR / NPR come from :func:`sequence_curves` success / precision curves.
CURVE_PROTOCOLS = ("pytracking", "lasher", "lasher_rgbt", "visevent", "got10k")
#: Protocols whose pooled curves leave out sequences with an all-zero curve (``plot_draw_save.m``:
#: ``aa = aa(sum(aa,2)>eps, :)``, per curve: a sequence can drop out of SR and stay in PR).
DROP_ALL_ZERO = ("lasher", "visevent")
PR_PIXELS = 20.0
NPR_THRESHOLD = 0.2
#: IoU convention per protocol ("raster": VOT's rounded, image-clipped pixel masks, see vot_overlaps).
IOU_CONVENTION = {"pytracking": "pixel", "lasher": "pixel", "lasher_rgbt": "pixel", "visevent": "pixel",
                  "rgbt234": "pixel", "gtot": "pixel", "got10k": "continuous", "vot": "raster"}
#: Centre convention per protocol: every toolkit's source uses x + (w - 1) / 2 (got10k's center_error too).
CENTRE_CONVENTION = {p: "pixel" for p in PROTOCOLS if p != "vot"}


# ----------------------------------------------------------------------------- thresholds
def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB ``start:step:stop``: first half counted up from start, second half down from the end.

    MATLAB toolkits (LasHeR, VisEvent, RGBT234) build thresholds this way; a few values differ from
    ``numpy.arange`` in the last bit, which decides frames whose IoU sits exactly on a threshold.
    """
    n = int(math.floor((stop - start) / step + 1e-10))
    k = np.arange(n + 1, dtype=np.float64)
    end = start + n * step
    return np.where(k <= n / 2, start + k * step, end - (n - k) * step)


def thresholds(protocol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IoU thresholds (21), centre-error thresholds in px (51), normalised thresholds (51)) of a protocol."""
    centre = np.arange(0, 51, dtype=np.float64)
    if protocol in ("lasher", "visevent", "rgbt234", "gtot"):
        return matlab_colon(0.0, 0.05, 1.0), centre, centre / 100.0
    if protocol in ("got10k", "lasher_rgbt"):
        return np.linspace(0, 1, 21), centre, np.linspace(0, 0.5, 51)
    # pytracking: torch.arange(0, 1.05, 0.05) and arange(0, 51) / 100
    return np.arange(0.0, 1.0 + 0.05, 0.05), centre, centre / 100.0


# ----------------------------------------------------------------------------- box geometry
def _as_boxes(b) -> np.ndarray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def matlab_round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (MATLAB ``round``), unlike numpy's half-to-even."""
    x = np.asarray(x, dtype=np.float64)
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0.0)


def centres(boxes, convention: str = "pixel") -> np.ndarray:
    """Box centres: "pixel" x + (w - 1) / 2 (pytracking, MATLAB kits, got10k) or "continuous" x + w / 2."""
    b = _as_boxes(boxes)
    if convention == "pixel":
        return b[:, :2] + (b[:, 2:] - 1.0) / 2.0
    if convention == "continuous":
        return b[:, :2] + b[:, 2:] / 2.0
    raise ValueError(f"unknown centre convention {convention!r} (use 'pixel' or 'continuous')")


def centre_error(pred, gt, convention: str = "pixel") -> np.ndarray:
    """Euclidean distance between centres, in pixels."""
    d = centres(pred, convention) - centres(gt, convention)
    return np.sqrt((d**2).sum(1))


def normalised_centre_error(pred, gt, convention: str = "pixel", min_size: float | None = None) -> np.ndarray:
    """Centre distance after dividing x by gt w and y by gt h; got10k divides by max(1, w) (``min_size=1``)."""
    g = _as_boxes(gt)
    size = g[:, 2:] if min_size is None else np.maximum(min_size, g[:, 2:])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (centres(pred, convention) - centres(gt, convention)) / size
        return np.sqrt((d**2).sum(1))


def iou(pred, gt, convention: str = "pixel") -> np.ndarray:
    """Box overlap. "pixel": inclusive corners x2 = x + w - 1 with +1 on the intersection sides (OTB's
    calcRectInt, pytracking, LasHeR); "continuous": got10k's rect_iou (union + eps, clipped to [0, 1])."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        if convention == "pixel":
            tl = np.maximum(a[:, :2], b[:, :2])
            br = np.minimum(a[:, :2] + a[:, 2:] - 1.0, b[:, :2] + b[:, 2:] - 1.0)
            inter = np.clip(br - tl + 1.0, 0.0, None).prod(1)
            union = a[:, 2:].prod(1) + b[:, 2:].prod(1) - inter
            return inter / union
        if convention == "continuous":
            tl = np.maximum(a[:, :2], b[:, :2])
            br = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
            inter = np.maximum(br - tl, 0.0).prod(1)
            union = a[:, 2:].prod(1) + b[:, 2:].prod(1) - inter
            return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)
    raise ValueError(f"unknown IoU convention {convention!r} (use 'pixel' or 'continuous')")


def _visible(b: np.ndarray) -> np.ndarray:
    """A region exists when it is finite with positive width and height (same rule as data.visible_mask)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(b).all(1) & (b[:, 2] > 0) & (b[:, 3] > 0)


def _all_positive(gt: np.ndarray) -> np.ndarray:
    """MATLAB kits' ``sum(rect_anno > 0, 2) == 4``: NaN and any value <= 0 make a frame invalid."""
    with np.errstate(invalid="ignore"):
        return (gt > 0).all(1)


def _kit_invalid_row(p: np.ndarray) -> np.ndarray:
    """``calc_seq_err_robust.m``: ``sum(isnan(r)) | r(3)<=0 | r(4)<=0`` (inf is not invalid there)."""
    with np.errstate(invalid="ignore"):
        return np.isnan(p).any(1) | (p[:, 2] <= 0) | (p[:, 3] <= 0)


def _kit_frame_errors(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IoU, centre error and normalised error as ``calc_seq_err_robust.m`` computes them: the
    normalised error divides each CENTRE by the gt w / h and then subtracts (dividing the difference can
    differ in the last bit, which decides a frame lying exactly at 0.2)."""
    cp, cg = centres(p), centres(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = g[:, 2:]
        nerr = np.sqrt(((cp / size - cg / size) ** 2).sum(1))
    return iou(p, g, "pixel"), np.sqrt(((cp - cg) ** 2).sum(1)), nerr


def _bad_prediction(p: np.ndarray) -> np.ndarray:
    return ~np.isfinite(p).all(1) | ~(np.nan_to_num(p[:, 2], nan=-1.0) > 0) | ~(np.nan_to_num(p[:, 3], nan=-1.0) > 0)


def _carry_previous(pred: np.ndarray, replace: np.ndarray) -> np.ndarray:
    """Replace flagged rows (never row 0) by the previous row, in order, as the toolkits' for-loops do."""
    if len(pred) == 0:
        return pred
    replace = replace.copy()
    replace[0] = False
    if not replace.any():
        return pred
    idx = np.arange(len(pred))
    idx[replace] = 0
    np.maximum.accumulate(idx, out=idx)
    return pred[idx]


def _fit_length(pred: np.ndarray, n: int, pad: bool) -> np.ndarray:
    if len(pred) >= n:
        return pred[:n].copy()
    if pad:
        return np.concatenate([pred, np.zeros((n - len(pred), 4))], 0)
    raise ValueError(f"prediction has {len(pred)} frames but the ground truth has {n}")


# ----------------------------------------------------------------------------- curves
def success_auc(curve) -> float:
    """SR / AUC: mean of the success curve (21 thresholds 0, 0.05, ..., 1)."""
    return float(np.mean(curve))


def precision_at(curve, thresholds_, value: float) -> float:
    """Curve value at the threshold equal to ``value`` (PR at 20 px, NPR at 0.2)."""
    t = np.asarray(thresholds_, dtype=np.float64)
    hit = np.nonzero(np.isclose(t, value, rtol=0, atol=1e-9))[0]
    if len(hit) == 0:
        raise ValueError(f"threshold {value} is not on the curve")
    return float(np.asarray(curve)[hit[0]])


def _curve(values: np.ndarray, thr: np.ndarray, denominator: int, above: bool) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        hits = values[:, None] > thr[None, :] if above else values[:, None] <= thr[None, :]
    counts = hits.sum(0).astype(np.float64)
    return counts, (counts / denominator if denominator > 0 else np.full(len(thr), np.nan))


def _frame_errors(p, g, protocol: str, min_size: float | None = None):
    c = CENTRE_CONVENTION[protocol]
    return (iou(p, g, IOU_CONVENTION[protocol]), centre_error(p, g, c),
            normalised_centre_error(p, g, c, min_size=min_size))


def sequence_curves(
    pred,
    gt,
    protocol: str = "pytracking",
    gt_x=None,
    confidence=None,
    *,
    exclude_invalid: bool = True,
    source_exact: bool = False,
    absent=None,
    image_size: tuple[int, int] | None = None,
    vot_thresholds=None,
    vot_init_frame: bool = True,
) -> dict:
    """Per-sequence curves and per-frame values under one toolkit's rules.

    pred, gt: (N, 4) x,y,w,h. Returns ``success`` (21), ``precision`` (51, px), ``norm_precision`` (51),
    their thresholds, ``SR``/``PR``/``NPR``, the per-frame ``iou``/``err``/``norm_err`` after the toolkit's
    sentinels, numerator ``*_counts``, ``denominator`` and ``frames`` (for frame-pooled aggregation).

    ``absent`` (visevent): bool (N,) of frames flagged absent; default: gt not finite or w/h <= 0.
    ``gt_x``: second gt (rgbt234 / gtot), see :func:`mpr_msr`. ``vot``: see :func:`vot_sequence`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "vot":
        return vot_sequence(pred, gt, confidence, image_size=image_size, thresholds_=vot_thresholds,
                            init_frame=vot_init_frame)
    if protocol == "lasher_rgbt":
        return rgbt_port.sequence_curves(pred, gt)
    if protocol in ("rgbt234", "gtot"):
        return _mpr_msr_sequence(pred, gt, gt if gt_x is None else gt_x, protocol)

    g = _as_boxes(gt)
    n = len(g)
    if n == 0:
        raise ValueError("empty ground truth")
    p = _as_boxes(pred)
    if len(p) == 0:
        raise ValueError("empty prediction")
    thr_o, thr_c, thr_n = thresholds(protocol)
    keep = np.ones(n, dtype=bool)  # frames that may enter the numerator
    denominator = n

    if protocol == "pytracking":
        # source order: replace zero-size rows (gt not NaN), pad / truncate, then force frame 0
        m = min(len(p), n)
        p = p[:m].copy()
        if source_exact and (np.isnan(p).any() or (p[:, 2:] < 0).any()):
            raise ValueError("invalid results: NaN or negative size (pytracking raises on these)")
        p = _carry_previous(p, _bad_prediction(p) & ~np.isnan(g[:m]).any(1))
        p = _fit_length(p, n, pad=True)
        p[0] = g[0]
        with np.errstate(invalid="ignore"):
            valid = (g[:, 2:] > 0).all(1) if source_exact else (g > 0).all(1)
        ious, err, nerr = _frame_errors(p, g, protocol)
        ious[~valid] = -1.0
        err[~valid] = np.inf
        nerr[~valid] = -1.0 if source_exact else np.inf
        if exclude_invalid:
            denominator = int(valid.sum())
            if denominator == 0:
                raise ValueError("no valid ground-truth frame (pytracking excludes invalid frames)")
    elif protocol in ("lasher", "visevent"):
        # calc_seq_err_robust.m: truncate, fill invalid rows from the previous row, THEN force frame 1
        p = _fit_length(p, n, pad=False)
        p = _carry_previous(p, _kit_invalid_row(p) & ~np.isnan(g).any(1))
        p[0] = g[0]
        if protocol == "visevent":  # its eval_tracker.m reads absent/<seq>.txt and drops those rows
            absent_mask = ~_visible(g) if absent is None else np.asarray(absent, dtype=bool).reshape(-1)
            if len(absent_mask) != n:
                raise ValueError(f"absent mask has {len(absent_mask)} frames, gt has {n}")
            keep = ~absent_mask
    else:  # got10k
        p = _fit_length(p, n, pad=False)
        p[0] = g[0]
        valid = np.isfinite(g).all(1)
        ious, err, nerr = _frame_errors(p, g, protocol, min_size=1.0)
    if protocol in ("lasher", "visevent"):
        valid = _all_positive(g)
        ious, err, nerr = _kit_frame_errors(p, g)
        ious[~valid] = -1.0  # -1 > tau never holds: SR failure
        err[~valid] = -1.0  # -1 <= threshold always holds: PR / NPR success
        nerr[~valid] = -1.0

    sc, success = _curve(ious[keep], thr_o, denominator, above=True)
    pc, precision = _curve(err[keep], thr_c, denominator, above=False)
    nc, norm_precision = _curve(nerr[keep], thr_n, denominator, above=False)
    return {
        "protocol": protocol,
        "success": success,
        "precision": precision,
        "norm_precision": norm_precision,
        "success_thresholds": thr_o,
        "precision_thresholds": thr_c,
        "norm_precision_thresholds": thr_n,
        "SR": success_auc(success),
        "PR": precision_at(precision, thr_c, PR_PIXELS),
        "NPR": precision_at(norm_precision, thr_n, NPR_THRESHOLD),
        "iou": ious,
        "err": err,
        "norm_err": nerr,
        "valid": valid,
        "counted": keep,
        "success_counts": sc,
        "precision_counts": pc,
        "norm_precision_counts": nc,
        "denominator": denominator,
        "frames": n,
    }


# ----------------------------------------------------------------------------- pooling
def pool(per_sequence_metrics: Mapping[str, Mapping[str, float]] | Iterable[Mapping[str, float]],
         keys: Sequence[str] = ("SR", "PR", "NPR")) -> dict[str, float]:
    """Mean over sequences of per-sequence values: SR = (1/m) sum_j (1/t_j) sum_i 1[IoU > tau], averaged
    over tau (the UniBench300 / LaSOT-style pooling; every sequence weighs the same, whatever its length).
    Sequences lacking a key (or holding None) do not enter that key's mean."""
    rows = list(per_sequence_metrics.values()) if isinstance(per_sequence_metrics, Mapping) else list(
        per_sequence_metrics)
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def pool_curves(curves: Sequence[np.ndarray], drop_all_zero: bool = False) -> np.ndarray:
    """Mean curve over sequences; ``drop_all_zero`` leaves out all-zero curves (``plot_draw_save.m`` of the
    LasHeR / VisEvent kits). Where every curve is all zero the kits' mean of nothing is NaN; this is 0."""
    c = np.asarray([np.asarray(x, dtype=np.float64) for x in curves])
    if drop_all_zero:
        kept = c[c.sum(1) > np.finfo(float).eps]
        c = kept if len(kept) else c
    return c.mean(0)


def pooled_metrics(per_sequence_curves: Sequence[Mapping], protocol: str) -> dict:
    """SR / PR / NPR and mean curves over sequences for a curve protocol (LasHeR / VisEvent drop all-zero
    curves, see DROP_ALL_ZERO)."""
    drop = protocol in DROP_ALL_ZERO
    s = pool_curves([c["success"] for c in per_sequence_curves], drop)
    pr = pool_curves([c["precision"] for c in per_sequence_curves], drop)
    npr = pool_curves([c["norm_precision"] for c in per_sequence_curves], drop)
    first = per_sequence_curves[0]
    return {
        "SR": success_auc(s),
        "PR": precision_at(pr, first["precision_thresholds"], PR_PIXELS),
        "NPR": precision_at(npr, first["norm_precision_thresholds"], NPR_THRESHOLD),
        "success": s,
        "precision": pr,
        "norm_precision": npr,
        "success_thresholds": first["success_thresholds"],
        "precision_thresholds": first["precision_thresholds"],
        "norm_precision_thresholds": first["norm_precision_thresholds"],
    }


# ----------------------------------------------------------------------------- RGBT234 / GTOT
#: GTOT kit (main_attrDrawCurve.m): precisionX = 0:0.5:25 with ``errCenter < x`` (strict), MPR at 5 px;
#: successX = 0:0.02:1 and MSR = auc.m, a trapezoid over those 51 points.
GTOT_PRECISION_THRESHOLDS = np.linspace(0, 25, 51)
GTOT_MPR_PIXELS = 5.0


def _kit_rect_centres(rect: np.ndarray) -> np.ndarray:
    """calcPlotErr(_TPR).m: ``rect(:,1) + rect(:,3)/2`` for a tracker's box."""
    return rect[:, :2] + rect[:, 2:] / 2


def _kit_gt_centres(gt: np.ndarray) -> np.ndarray:
    """calcPlotErr(_TPR).m: the gt is held as corners x1, x2 = x1 + w and its centre is ``(x1 + x2) / 2``."""
    return (gt[:, :2] + (gt[:, :2] + gt[:, 2:])) / 2


def _mpr_msr_sequence(pred, gt_v, gt_i, variant: str) -> dict:
    gv, gi = _as_boxes(gt_v), _as_boxes(gt_i)
    if len(gv) != len(gi):
        raise ValueError(f"visible gt has {len(gv)} frames, infrared gt {len(gi)}")
    n = len(gv)
    # corner2rect.m: round([x1, y1, x2 - x1, y4 - y1]) -- both kits read '4corner' results by default
    p = matlab_round(_fit_length(_as_boxes(pred), n, pad=False))
    c = _kit_rect_centres(p)
    with np.errstate(invalid="ignore"):
        err = np.fmin(np.sqrt(((c - _kit_gt_centres(gv)) ** 2).sum(1)), np.sqrt(((c - _kit_gt_centres(gi)) ** 2).sum(1)))
        ious = np.fmax(iou(p, gv, "pixel"), iou(p, gi, "pixel"))  # MATLAB max / min skip NaN, as fmax / fmin
    if variant == "gtot":
        thr_o, thr_c = matlab_colon(0.0, 0.02, 1.0), GTOT_PRECISION_THRESHOLDS
        with np.errstate(invalid="ignore"):
            pc = (err[:, None] < thr_c[None, :]).sum(0).astype(np.float64)
        precision = pc / n
    else:
        thr_o, thr_c = matlab_colon(0.0, 0.05, 1.0), np.arange(0, 51, dtype=np.float64)
        pc, precision = _curve(err, thr_c, n, above=False)
    sc, success = _curve(ious, thr_o, n, above=True)
    return {
        "protocol": variant,
        "success": success,
        "precision": precision,
        "success_thresholds": thr_o,
        "precision_thresholds": thr_c,
        "success_counts": sc,
        "precision_counts": pc,
        "MSR": _trapezoid(success, thr_o) if variant == "gtot" else success_auc(success),
        "MPR": precision_at(precision, thr_c, GTOT_MPR_PIXELS if variant == "gtot" else PR_PIXELS),
        "iou": ious,
        "err": err,
        "frames": n,
    }


def _trapezoid(curve: np.ndarray, thr: np.ndarray) -> float:
    """The GTOT kit's auc.m: mean of the upper and lower Riemann sums over the thresholds (its invented
    last point (1, 1) has zero width)."""
    y = np.asarray(curve, dtype=np.float64)
    d = np.diff(thr)
    return float(((y[1:] * d).sum() + (y[:-1] * d).sum()) / 2)


def mpr_msr(sequences: Sequence[tuple], variant: str = "rgbt234") -> dict:
    """Maximum precision / success rate over the visible and infrared ground truths.

    sequences: (pred, gt_visible, gt_infrared) per sequence, x,y,w,h (GTOT's corner gt converted with
    w = x2 - x1, as its kit does). Per frame the smaller centre error and the larger IoU of the two gts
    count; predictions are rounded (MATLAB ``round``, the kits' ``corner2rect.m``); no frame is forced to
    the gt and no frame is special. ``rgbt234`` (calcPlotErr_TPR.m + main_attrDrawCurve_RGBT234.m):
    per-sequence curves averaged, MPR at 20 px (``<=``), MSR = mean of the 21-point curve. ``gtot``
    (calcPlotErr.m + main_attrDrawCurve.m): frames pooled over all sequences, MPR = share with error
    ``< 5`` px, MSR = trapezoid over IoU thresholds 0:0.02:1.
    """
    if variant not in ("rgbt234", "gtot"):
        raise ValueError(f"unknown MPR/MSR variant {variant!r} (use 'rgbt234' or 'gtot')")
    per = [_mpr_msr_sequence(p, gv, gi, variant) for p, gv, gi in sequences]
    if not per:
        raise ValueError("no sequences to score")
    if variant == "gtot":
        frames = sum(s["frames"] for s in per)
        prec = np.sum([s["precision_counts"] for s in per], 0) / frames
        succ = np.sum([s["success_counts"] for s in per], 0) / frames
        return {"MPR": precision_at(prec, GTOT_PRECISION_THRESHOLDS, GTOT_MPR_PIXELS),
                "MSR": _trapezoid(succ, per[0]["success_thresholds"]), "precision": prec, "success": succ,
                "per_sequence": per}
    prec = pool_curves([s["precision"] for s in per])
    succ = pool_curves([s["success"] for s in per])
    return {"MPR": float(prec[20]), "MSR": success_auc(succ), "precision": prec, "success": succ,
            "per_sequence": per}


# ----------------------------------------------------------------------------- VOT long-term
def vot_thresholds(confidences: Iterable[float], resolution: int = 100) -> np.ndarray:
    """Confidence thresholds of the VOT toolkit (``determine_thresholds``): pooled scores sorted
    descending, ``resolution - 2`` of them at evenly spaced ranks (all of them when fewer), then
    +inf first and -inf last -- ``resolution`` thresholds in all."""
    s = np.asarray([c for c in np.asarray(list(confidences), dtype=np.float64).ravel() if not math.isnan(c)])
    s = np.sort(s)[::-1]
    if len(s) > resolution - 2:
        delta = math.floor(len(s) / (resolution - 2))
        idxs = np.round(np.linspace(delta, len(s) - delta, num=resolution - 2)).astype(int)
        s = s[idxs]
    return np.concatenate([[np.inf], s, [-np.inf]])


def vot_overlaps(pred, gt, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Region overlap as the VOT toolkit rasterises it: boxes rounded, inclusive pixel spans, clipped to
    the image (``image_size`` = (width, height)) when given; no gt and no prediction = 1; a gt or a
    prediction alone = 0. Also keeps the toolkit's rule that a union box one pixel thin scores 0."""
    p, g = _as_boxes(pred), _as_boxes(gt)
    p_empty, g_empty = ~_visible(p), ~_visible(g)
    pr, gr = np.round(np.nan_to_num(p)), np.round(np.nan_to_num(g))
    lo = np.stack([np.minimum(pr[:, 0], gr[:, 0]), np.minimum(pr[:, 1], gr[:, 1])], 1)
    hi = np.stack([np.maximum(pr[:, 0] + pr[:, 2] - 1, gr[:, 0] + gr[:, 2] - 1),
                   np.maximum(pr[:, 1] + pr[:, 3] - 1, gr[:, 1] + gr[:, 3] - 1)], 1)
    if image_size is not None:
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, np.asarray(image_size, dtype=np.float64) - 1)

    def span(b):  # pixel extent of a box inside the raster window, per axis
        a0 = np.maximum(b[:, :2], lo)
        a1 = np.minimum(b[:, :2] + b[:, 2:] - 1, hi)
        return a0, a1, np.where(b[:, 2:] > 0, np.maximum(a1 - a0 + 1, 0), 0)

    p0, p1, pl = span(pr)
    g0, g1, gl = span(gr)
    inter = np.maximum(np.minimum(p1, g1) - np.maximum(p0, g0) + 1, 0)
    inter = np.where((pl > 0) & (gl > 0), inter, 0).prod(1)
    union = pl.prod(1) + gl.prod(1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    out[(lo >= hi).any(1)] = 0.0
    out[p_empty | g_empty] = 0.0
    out[p_empty & g_empty] = 1.0
    return out


def vot_sequence(pred, gt, confidence=None, image_size=None, thresholds_=None, init_frame: bool = True) -> dict:
    """Per-frame overlaps and confidences of one sequence as the VOT long-term analysis sees them.

    ``init_frame=True`` mirrors the toolkit reading a VOT result folder: frame 0 is the initialisation
    region (overlap 0) and has no confidence (counted as 0); the visible-frame count still includes it.
    With ``thresholds_`` the per-sequence precision / recall curves are added.
    """
    g = _as_boxes(gt)
    p = _fit_length(_as_boxes(pred), len(g), pad=False)
    conf = np.ones(len(g)) if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(-1)
    if len(conf) < len(g):
        raise ValueError(f"confidence has {len(conf)} values but the ground truth has {len(g)} frames")
    conf = conf[: len(g)].copy()
    ov = vot_overlaps(p, g, image_size)
    if init_frame:
        ov[0] = 0.0
        conf[0] = 0.0
    out = {"protocol": "vot", "iou": ov, "confidence": conf, "n_visible": int(_visible(g).sum()),
           "frames": len(g)}
    if thresholds_ is not None:
        out["pr_curve"], out["re_curve"] = vot_pr_curves(ov, conf, out["n_visible"], thresholds_)
    return out


def vot_pr_curves(overlaps, confidence, n_visible: int, thresholds_) -> tuple[np.ndarray, np.ndarray]:
    """Pr(tau) = mean overlap over frames with confidence >= tau (1 when none); Re(tau) = their summed
    overlap / number of frames with a visible target (0 when the target is never visible)."""
    ov = np.asarray(overlaps, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    t = np.asarray(thresholds_, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        sel = conf[None, :] >= t[:, None]
    cnt = sel.sum(1)
    tot = (sel * ov[None, :]).sum(1)
    pr = np.where(cnt > 0, tot / np.maximum(cnt, 1), 1.0)
    re = np.where(cnt > 0, tot / n_visible, 0.0) if n_visible > 0 else np.zeros(len(t))
    return pr, re


def vot_prf(sequences: Sequence[Mapping], resolution: int = 100, init_frame: bool = True) -> dict:
    """VOT long-term tracking precision, recall and F-score over several sequences.

    sequences: mappings with ``pred``, ``gt``, ``confidence`` and optional ``image_size`` (w, h).
    Thresholds come from all sequences' confidences pooled (:func:`vot_thresholds`); Pr / Re curves are
    computed per sequence and averaged; F = 2 Pr Re / (Pr + Re) (0 where both are 0); the reported
    triple is taken at the first threshold reaching the maximum F.
    """
    per = [vot_sequence(s["pred"], s["gt"], s.get("confidence"), s.get("image_size"), None, init_frame)
           for s in sequences]
    if not per:
        raise ValueError("no sequences to score")
    thr = vot_thresholds(np.concatenate([s["confidence"] for s in per]), resolution)
    for s in per:
        s["pr_curve"], s["re_curve"] = vot_pr_curves(s["iou"], s["confidence"], s["n_visible"], thr)
    pr = np.mean([s["pr_curve"] for s in per], 0)
    re = np.mean([s["re_curve"] for s in per], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(pr + re > 0, 2 * pr * re / (pr + re), 0.0)
    best = int(np.argmax(f))
    return {"F": float(f[best]), "Pr": float(pr[best]), "Re": float(re[best]), "threshold": float(thr[best]),
            "thresholds": thr, "precision_curve": pr, "recall_curve": re, "f_curve": f, "per_sequence": per}


# ----------------------------------------------------------------------------- continual learning
def task_forgetting(R: Sequence[Sequence[float]]) -> np.ndarray:
    """Per task k learned before the last stage: max_s R[s][k] - R[T-1][k] (empty for one stage)."""
    M = np.asarray(R, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"R must be a square stage x task matrix, got shape {M.shape}")
    k = np.arange(M.shape[0] - 1)
    return M[:, k].max(0) - M[-1, k]


def continual_summary(R: Sequence[Sequence[float]]) -> dict:
    """Stage x task summaries: R[s][k] = score on task k after stage s (tasks in training order).

    average = mean_k R[T-1][k]; bwt = mean_{k<T-1} (R[T-1][k] - R[k][k]);
    forgetting = mean_{k<T-1} (max_s R[s][k] - R[T-1][k]) with s over all T stages.
    bwt / forgetting are None for a single stage (no earlier task).
    """
    M = np.asarray(R, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"R must be a square stage x task matrix, got shape {M.shape}")
    T = M.shape[0]
    last = M[T - 1]
    if T == 1:
        return {"average": float(last.mean()), "bwt": None, "forgetting": None}
    k = np.arange(T - 1)
    return {
        "average": float(last.mean()),
        "bwt": float(np.mean(last[k] - M[k, k])),
        "forgetting": float(np.mean(task_forgetting(M))),
    }


def degradation(unified: Sequence[float], single: Sequence[float]) -> list[float]:
    """Per task R_unified[k] - R_single[k] (negative = the unified model is worse)."""
    if len(unified) != len(single):
        raise ValueError(f"{len(unified)} unified scores vs {len(single)} single-task scores")
    return [float(u) - float(s) for u, s in zip(unified, single)]
