"""The world calibrated: trivial reference trackers on the test split, so the world's difficulty is a
measured number (world.json), not a claim.

- static box: the frame-0 box held forever.
- X-only blob detectors, one per modality, with no memory of the target: the hottest blob of the thermal
  frame, the nearest blob of the depth frame, the densest event blob (a window of the initial box's size).
  If one of these scored well, X would give the target away.
- RGB template matcher: normalised cross-correlation of the first frame's template, searched in a window
  around the last position, the box's size fixed. The floor of an appearance tracker.

A world is honest when every X-only rule stays low, template matching is possible but weak, and the
trained tracker clearly beats all of them (targets in conf/synth.yaml and docs/benchmarks.md).
Frames are read through the dataset readers, as any tracker would read them.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from unitrack.data.sequence import Sequence, read_depth_raw, read_rgb
from unitrack.data.synth.events import event_mask
from unitrack.eval import metrics as M

MIN_BLOB_PX = 12


def _box_of(stats_row) -> np.ndarray:
    x, y, w, h = stats_row[:4]
    return np.array([x, y, w, h], np.float64)


def _components(mask: np.ndarray):
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_BLOB_PX]
    return lab, stats, keep


def _track(seq: Sequence, step: Callable[[int, np.ndarray], np.ndarray | None]) -> np.ndarray:
    """Run a per-frame rule; frame 0 is the given box, a frame without an answer keeps the last box."""
    out = np.repeat(seq.boxes[:1], len(seq), 0).astype(np.float64)
    last = seq.boxes[0].copy()
    for i in range(1, len(seq)):
        b = step(i, last)
        if b is not None:
            last = b
        out[i] = last
    return out


def static_box(seq: Sequence) -> np.ndarray:
    return np.repeat(seq.boxes[:1], len(seq), 0)


def hottest_blob(seq: Sequence) -> np.ndarray:
    def step(i, last):
        g = cv2.GaussianBlur(cv2.cvtColor(read_rgb(seq.x_frames[i]), cv2.COLOR_RGB2GRAY), (0, 0), 1.5)
        lab, stats, keep = _components(g >= np.percentile(g, 97))
        if not keep:
            return None
        means = [float(g[lab == k].mean()) for k in keep]
        return _box_of(stats[keep[int(np.argmax(means))]])

    return _track(seq, step)


def nearest_blob(seq: Sequence) -> np.ndarray:
    def step(i, last):
        z = read_depth_raw(seq.x_frames[i]).astype(np.float32)
        valid = z > 0
        if not valid.any():
            return None
        z = cv2.medianBlur(z, 5)
        near = np.percentile(z[valid], 3)
        lab, stats, keep = _components(valid & (z > 0) & (z <= near + 250))
        if not keep:
            return None
        med = [float(np.median(z[lab == k])) for k in keep]
        return _box_of(stats[keep[int(np.argmin(med))]])

    return _track(seq, step)


def densest_events(seq: Sequence) -> np.ndarray:
    w0, h0 = max(2, int(seq.boxes[0, 2])), max(2, int(seq.boxes[0, 3]))

    def step(i, last):
        ev = event_mask(cv2.cvtColor(read_rgb(seq.x_frames[i]), cv2.COLOR_RGB2BGR)).astype(np.float32)
        dens = cv2.boxFilter(ev, -1, (w0, h0), normalize=True, borderType=cv2.BORDER_CONSTANT)
        y, x = np.unravel_index(int(np.argmax(dens)), dens.shape)
        return np.array([x - w0 / 2, y - h0 / 2, w0, h0], np.float64)

    return _track(seq, step)


def template_ncc(seq: Sequence, search: float = 1.0) -> np.ndarray:
    """NCC (TM_CCOEFF_NORMED) of the first-frame grey template within `search` box sizes of the last box."""
    g0 = cv2.cvtColor(read_rgb(seq.rgb_frames[0]), cv2.COLOR_RGB2GRAY)
    x, y, w, h = (int(round(v)) for v in seq.boxes[0])
    H, W = g0.shape
    x, y = max(0, min(x, W - 2)), max(0, min(y, H - 2))
    w, h = max(2, min(w, W - x)), max(2, min(h, H - y))
    tpl = g0[y:y + h, x:x + w]

    def step(i, last):
        g = cv2.cvtColor(read_rgb(seq.rgb_frames[i]), cv2.COLOR_RGB2GRAY)
        cx, cy = last[0] + w / 2, last[1] + h / 2
        mx, my = search * w + w / 2, search * h + h / 2
        xa, ya = int(max(0, cx - mx)), int(max(0, cy - my))
        xb, yb = int(min(W, cx + mx)), int(min(H, cy + my))
        if xb - xa < w or yb - ya < h:
            return None
        r = cv2.matchTemplate(g[ya:yb, xa:xb], tpl, cv2.TM_CCOEFF_NORMED)
        _, _, _, (bx, by) = cv2.minMaxLoc(r)
        return np.array([xa + bx, ya + by, w, h], np.float64)

    return _track(seq, step)


X_BLOB = {"thermal": hottest_blob, "depth": nearest_blob, "event": densest_events}
TRACKERS = ("static_box", "x_blob", "rgb_template")


def run_tracker(name: str, seq: Sequence) -> np.ndarray:
    if name == "static_box":
        return static_box(seq)
    if name == "x_blob":
        return X_BLOB[seq.x_modality](seq)
    if name == "rgb_template":
        return template_ncc(seq)
    raise ValueError(f"unknown trivial tracker {name!r}; choose from {', '.join(TRACKERS)}")


def calibrate(sequences: list[Sequence], protocol: str = "pytracking") -> dict:
    """Pooled and per-task SR/PR of each trivial tracker over `sequences` (one task's X rule per task)."""
    table: dict = {"protocol": protocol, "sequences": len(sequences), "trackers": {}}
    tasks = list(dict.fromkeys(s.task for s in sequences))
    for name in TRACKERS:
        curves = {s.uid: M.sequence_curves(run_tracker(name, s), s.boxes, protocol, absent=~s.visible)
                  for s in sequences}
        row = {"pooled": _pick(M.pooled_metrics(list(curves.values()), protocol)), "per_task": {}}
        for t in tasks:
            cs = [curves[s.uid] for s in sequences if s.task == t]
            row["per_task"][t] = _pick(M.pooled_metrics(cs, protocol))
        if name == "x_blob":
            row["rule"] = {t: X_BLOB[next(s.x_modality for s in sequences if s.task == t)].__name__ for t in tasks}
        table["trackers"][name] = row
    best = max(table["trackers"], key=lambda k: table["trackers"][k]["pooled"]["SR"])
    table["best_trivial"] = {"tracker": best, "SR": table["trackers"][best]["pooled"]["SR"]}
    return table


def _pick(m: dict) -> dict:
    return {"SR": float(m["SR"]), "PR": float(m["PR"])}


def format_table(table: dict) -> str:
    """The calibration as a small text table (SR; PR in brackets)."""
    tasks = list(next(iter(table["trackers"].values()))["per_task"])
    head = f"{'trivial tracker (test split)':<30}" + "".join(f"{t:>14}" for t in tasks) + f"{'pooled':>14}"
    rows = [head]
    for name, r in table["trackers"].items():
        cells = "".join(f"{r['per_task'][t]['SR']:>7.3f} ({r['per_task'][t]['PR']:.2f})" for t in tasks)
        rows.append(f"{name:<30}{cells}{r['pooled']['SR']:>7.3f} ({r['pooled']['PR']:.2f})")
    return "\n".join(rows)
