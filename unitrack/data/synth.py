"""Synthetic RGBT / RGBD / RGBE tracking data written in the native LasHeR, DepthTrack and VisEvent layouts.

Why it exists: the toolkit must train serially (RGBT -> RGBD -> RGBE), show forgetting and study fusion
without any download. So each task's X modality carries information that RGB lacks, and differently per
task: look-alike distractors defeat RGB alone, but only the target is hot (thermal), the distractors stand
at other depths (depth), and the distractors are static so the moving target alone fires events (event).
Night sequences (RGBT) hide the target in RGB; fast sequences (RGBE) motion-blur it.

Each sequence draws from its own numpy Generator seeded by (seed, task, split, index), so the files are
byte-identical for a seed whatever the order of generation. Everything is written into a hidden temporary
folder next to `out` and renamed into place at the end, so a failure never leaves a half dataset.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unitrack.errors import ConfigError, DatasetError

DEFAULT_SIZE = (160, 120)  # (W, H)
DEFAULT_FRAMES = 60
DEFAULT_SEQUENCES = 8  # training sequences per task; test defaults to max(2, sequences // 2)
MANIFEST = "unibench.txt"

TASK_DATASET = {"rgbt": "lasher", "rgbd": "depthtrack", "rgbe": "visevent"}
#: The RGB-only world (task 'rgb', for the RGB foundation stage) is written in the GOT-10k layout.
RGB_DATASET = "got10k"
RGB_SPLITS = ("train", "val")
_RGB_TASK_ID = 3
_TASK_ID = {"rgbt": 0, "rgbd": 1, "rgbe": 2}
_SPLIT_ID = {"train": 0, "test": 1}

#: Event rendering: white canvas, positive polarity red, negative blue (BGR as written by cv2).
EVENT_BG = (255, 255, 255)
EVENT_POS = (0, 0, 255)
EVENT_NEG = (255, 0, 0)
_EVENT_THRESHOLD = 0.12  # log-intensity change that fires an event
_EVENT_NOISE = 0.001  # fraction of pixels with a spurious event per frame
_ABSENT_BELOW = 0.1  # visible fraction of the target below which a frame is annotated absent


# ----------------------------------------------------------------------------------------------- scene ---
def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int, channels: int = 1) -> np.ndarray:
    """Band-limited noise in [0, 1]: coarse random grid upsampled bicubically (cheap, no per-pixel loops)."""
    h, w = shape
    gh, gw = max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))
    grid = rng.random((gh, gw, channels), dtype=np.float32)
    up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)
    lo, hi = up.min(), up.max()
    return (up - lo) / max(hi - lo, 1e-6)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Textured colour background (float32 0..255): two noise octaves tinted by a palette plus soft blobs."""
    base = _smooth_noise(rng, (h, w), 6, 3) * 0.7 + _smooth_noise(rng, (h, w), 24, 3) * 0.3
    c0, c1 = rng.uniform(30, 200, 3), rng.uniform(30, 200, 3)
    img = c0 + (c1 - c0) * base
    for _ in range(int(rng.integers(8, 16))):
        mask = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(3, max(4, w // 10))), int(rng.integers(3, max(4, h // 10))))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[..., None]
        img = img * (1 - mask) + rng.uniform(20, 235, 3) * mask
    return img.astype(np.float32)


def _sprite(rng: np.random.Generator, side: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Target look (float32 HxWx3 colour, HxW alpha): a striped/checkered/ringed ellipse or rectangle."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    kind = int(rng.integers(0, 3))
    if kind == 0:  # stripes at a random angle
        a = rng.uniform(0, np.pi)
        pat = np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / rng.uniform(8, 16)) > 0
    elif kind == 1:  # checkerboard
        p = int(rng.integers(8, 14))
        pat = ((xx // p + yy // p) % 2) > 0
    else:  # rings
        r = np.hypot(xx - side / 2, yy - side / 2)
        pat = np.sin(r * 2 * np.pi / rng.uniform(8, 14)) > 0
    c1 = rng.uniform(0, 255, 3)
    c1[rng.integers(0, 3)] = rng.uniform(200, 255)  # saturated, not grey
    c2 = 255 - c1 * rng.uniform(0.5, 1.0)
    colour = np.where(pat[..., None], c1, c2).astype(np.float32)
    alpha = np.zeros((side, side), np.float32)
    if rng.random() < 0.5:
        cv2.ellipse(alpha, (side // 2, side // 2), (side // 2 - 1, side // 2 - 1), 0, 0, 360, 1.0, -1)
    else:
        cv2.rectangle(alpha, (1, 1), (side - 2, side - 2), 1.0, -1)
    return colour, alpha


def _occluder_sprite(rng: np.random.Generator, side: int = 48) -> np.ndarray:
    """An opaque board with a coarse texture of its own (not the target's look)."""
    base = _smooth_noise(rng, (side, side), 5, 1)
    c0, c1 = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    return (c0 + (c1 - c0) * base).astype(np.float32)


def _walk(rng: np.random.Generator, n: int, step: float, lo: float, hi: float, inertia: float = 0.9) -> np.ndarray:
    """A smooth bounded random walk (velocity with inertia, reflected at the bounds)."""
    out = np.empty(n, np.float64)
    x, v = rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo)), 0.0
    for t in range(n):
        v = inertia * v + (1 - inertia) * rng.normal(0, 3 * step)
        x += v
        if x < lo or x > hi:
            x, v = float(np.clip(x, lo, hi)), -v
        out[t] = x
    return out


def _trajectory(rng: np.random.Generator, n: int, w: int, h: int, speed: float, half: np.ndarray) -> np.ndarray:
    """Centres (n, 2) moving with inertia at about `speed` px/frame, bouncing off the frame borders.

    `half` (n, 2) is the object's half size per frame, so it stays inside the frame.
    """
    c = np.empty((n, 2), np.float64)
    pos = np.array([rng.uniform(half[0, 0] + 2, w - half[0, 0] - 2), rng.uniform(half[0, 1] + 2, h - half[0, 1] - 2)])
    heading = rng.uniform(0, 2 * np.pi)
    s = speed
    for t in range(n):
        heading += rng.normal(0, 0.15)
        s = float(np.clip(0.9 * s + 0.1 * speed + rng.normal(0, 0.1 * speed), 0.3 * speed, 1.7 * speed))
        v = s * np.array([np.cos(heading), np.sin(heading)])
        nxt = pos + v
        lo, hi = half[t] + 2, np.array([w, h]) - half[t] - 2
        for k in range(2):
            if nxt[k] < lo[k] or nxt[k] > hi[k]:
                v[k] = -v[k]
        heading = float(np.arctan2(v[1], v[0]))
        pos = np.clip(pos + v, lo, np.maximum(lo, hi))
        c[t] = pos
    return c


@dataclass
class SynthSequence:
    """One rendered sequence in memory: BGR frames as written to disk, plus what tests need to check."""

    task: str
    kind: str  # day | night (rgbt); plain (rgbd); normal | fast (rgbe)
    rgb: list[np.ndarray]  # uint8 HxWx3 BGR
    x: list[np.ndarray]  # thermal/event uint8 HxWx3 BGR; depth uint16 HxW millimetres
    boxes: np.ndarray  # (N, 4) int x,y,w,h; zeros where absent
    present: np.ndarray  # (N,) bool
    occluded: np.ndarray  # (N,) bool: the occluder overlaps the target (box given while partly visible)
    distractor_boxes: np.ndarray  # (N, D, 4) int x,y,w,h, not clipped to the frame
    target_depth: np.ndarray | None = None  # (N,) mm (rgbd only)
    distractor_behind_mm: np.ndarray | None = None  # (D,) how far behind the target each distractor is


def _place(n_w: int, n_h: int, cx: float, cy: float) -> tuple[int, int]:
    return int(round(cx - n_w / 2)), int(round(cy - n_h / 2))


def _blit(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """dst = dst * (1 - alpha) + src * alpha on the part of the src rectangle that falls inside dst.

    `src` may be a scalar or an array; dst is HxW or HxWx3 float32.
    """
    H, W = dst.shape[:2]
    h, w = alpha.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if xa >= xb or ya >= yb:
        return
    a = alpha[ya - y0:yb - y0, xa - x0:xb - x0]
    s = src if np.isscalar(src) else src[ya - y0:yb - y0, xa - x0:xb - x0]
    d = dst[ya:yb, xa:xb]
    if d.ndim == 3:
        a = a[..., None]
    d += (s - d) * a


def _line_kernel(vx: float, vy: float) -> np.ndarray:
    """Normalised motion-blur kernel: a line along the motion, as long as the displacement in one frame."""
    length = max(2.0, float(np.hypot(vx, vy)))
    k = int(np.ceil(length)) | 1
    ker = np.zeros((k, k), np.float32)
    ux, uy = vx / max(np.hypot(vx, vy), 1e-6), vy / max(np.hypot(vx, vy), 1e-6)
    c = k // 2
    p0 = (int(round(c - ux * length / 2)), int(round(c - uy * length / 2)))
    p1 = (int(round(c + ux * length / 2)), int(round(c + uy * length / 2)))
    cv2.line(ker, p0, p1, 1.0, 1)
    return ker / ker.sum()


def _kind(task: str, index: int) -> str:
    """About one sequence in three is night (RGBT) or fast (RGBE); fixed by index so splits always have some."""
    special = index % 3 == 1
    if task == "rgbt":
        return "night" if special else "day"
    if task == "rgbe":
        return "fast" if special else "normal"
    return "plain"


def render_sequence(task: str, rng: np.random.Generator, frames: int, size: tuple[int, int],
                    kind: str) -> SynthSequence:
    """Render one sequence of `task` in memory (see the module docstring for what each modality shows)."""
    W, H = size
    n = frames + 1  # frame -1 is rendered too: the first event frame needs a predecessor
    M = max(8, min(W, H) // 6)  # background margin that camera drift moves through
    bg = _background(rng, H + 2 * M, W + 2 * M)
    bg_lum = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY)
    bg_relief = _smooth_noise(rng, (H + 2 * M, W + 2 * M), 4)[..., 0]  # depth unevenness of the far wall

    # Camera drift moves the background; the event camera (RGBE) is static so the background fires nothing.
    drift_speed = 0.0 if task == "rgbe" else rng.uniform(0.15, 0.4)
    offs = np.stack([_walk(rng, n, drift_speed, 0, 2 * M) if drift_speed else np.full(n, M),
                     _walk(rng, n, drift_speed, 0, 2 * M) if drift_speed else np.full(n, M)], 1)
    offs = np.rint(offs).astype(int)

    # Target: size from depth (nearer = bigger), aspect drifts, centre moves with inertia.
    look, alpha0 = _sprite(rng)
    base = rng.uniform(0.15, 0.21) * H
    log_depth = _walk(rng, n, 0.02, -0.25, 0.25)
    aspect = np.exp(_walk(rng, n, 0.01, -0.22, 0.22) + rng.uniform(-0.2, 0.2))
    scale = np.exp(-log_depth)
    tw = np.maximum(4, np.rint(base * scale * np.sqrt(aspect))).astype(int)
    th = np.maximum(4, np.rint(base * scale / np.sqrt(aspect))).astype(int)
    fast = kind == "fast"
    speed = rng.uniform(4.0, 6.5) if fast else rng.uniform(0.8, 2.2)
    half = np.stack([tw, th], 1) / 2
    centre = _trajectory(rng, n, W, H, speed, half)

    # Out-of-view excursion (half the sequences): a smooth bump pushes the target past the nearest border.
    if rng.random() < 0.5 and frames >= 12:
        L = int(np.clip(round(frames * rng.uniform(0.08, 0.14)), 5, 12))
        t0 = int(rng.integers(int(frames * 0.55), max(int(frames * 0.55) + 1, frames - L))) + 1
        tm = min(t0 + L // 2, n - 1)
        d_edges = [centre[tm, 0], W - centre[tm, 0], centre[tm, 1], H - centre[tm, 1]]
        e = int(np.argmin(d_edges))
        direction = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]][e], np.float64)
        amp = d_edges[e] + 1.5 * max(tw.max(), th.max())
        for t in range(t0, min(t0 + L, n)):
            centre[t] += direction * amp * np.sin(np.pi * (t - t0 + 0.5) / L) ** 2

    # Occlusion: an opaque board sweeps across the target (partial -> full -> partial).
    occ = None
    if frames >= 8:
        L = int(np.clip(round(frames * rng.uniform(0.12, 0.2)), 5, 14))
        t1 = int(rng.integers(max(2, int(frames * 0.15)), max(3, int(frames * 0.45)))) + 1
        ow = int(np.ceil(1.2 * tw.max()))
        oh = int(np.ceil(1.2 * th.max()))
        horiz = rng.random() < 0.5
        sign = 1.0 if rng.random() < 0.5 else -1.0
        occ = dict(t1=t1, L=L, w=ow, h=oh, horiz=horiz, sign=sign, look=_occluder_sprite(rng))

    # Distractors: the target's exact look; start away from the target so the first frame is unambiguous.
    n_d = int(rng.integers(1, 4))
    dist = []
    for _ in range(n_d):
        ds = rng.uniform(0.85, 1.15)
        dw = np.maximum(4, np.rint(tw * ds)).astype(int)
        dh = np.maximum(4, np.rint(th * ds)).astype(int)
        dhalf = np.stack([dw, dh], 1) / 2
        for _try in range(20):
            dc = _trajectory(rng, n, W, H, 0.0 if task == "rgbe" else speed * rng.uniform(0.5, 1.0), dhalf)
            gap = np.abs(dc[1] - centre[1]) - (dhalf[1] + half[1])
            if (gap > 2).any():
                break
        dist.append(dict(w=dw, h=dh, c=dc))

    # Per-task X parameters.
    hot = rng.uniform(205, 235)
    dist_heat = rng.uniform(0, 45, n_d)  # distractors are at most mildly warm
    far = rng.uniform(5500, 7500)
    near_bottom = rng.uniform(1000, 2000)
    target_mm = rng.uniform(1200, 2200) * np.exp(log_depth)
    dist_mm_off = rng.uniform(1300, 2000, n_d)
    night_gain = rng.uniform(0.18, 0.28)

    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    rgb_out, x_out, prev_lum = [], [], None
    boxes = np.zeros((frames, 4), np.int64)
    present = np.zeros(frames, bool)
    occluded = np.zeros(frames, bool)
    dboxes = np.zeros((frames, n_d, 4), np.int64)
    for t in range(n):
        ox, oy = offs[t]
        img = bg[oy:oy + H, ox:ox + W].copy()
        if task == "rgbt":
            x = 40 + 0.3 * bg_lum[oy:oy + H, ox:ox + W]
        elif task == "rgbd":
            x = (far - near_bottom * yy) + 0.03 * far * bg_relief[oy:oy + H, ox:ox + W]
        else:
            x = None

        for j, d in enumerate(dist):
            w_, h_ = int(d["w"][t]), int(d["h"][t])
            x0, y0 = _place(w_, h_, *d["c"][t])
            a = cv2.resize(alpha0, (w_, h_), interpolation=cv2.INTER_LINEAR)
            _blit(img, cv2.resize(look, (w_, h_), interpolation=cv2.INTER_LINEAR), a, x0, y0)
            if task == "rgbt":
                _blit(x, float(np.mean(x)) + dist_heat[j], a, x0, y0)
            elif task == "rgbd":
                _blit(x, float(target_mm[t] + dist_mm_off[j]), (a > 0.5).astype(np.float32), x0, y0)
            if t > 0:
                dboxes[t - 1, j] = (x0, y0, w_, h_)

        w_, h_ = int(tw[t]), int(th[t])
        x0, y0 = _place(w_, h_, *centre[t])
        a = cv2.resize(alpha0, (w_, h_), interpolation=cv2.INTER_LINEAR)
        col = cv2.resize(look, (w_, h_), interpolation=cv2.INTER_LINEAR)
        clean = None
        if fast and t > 0:
            # Event sensors see the sharp scene; the RGB camera integrates motion during exposure.
            clean = img.copy()
            _blit(clean, col, a, x0, y0)
            v = centre[t] - centre[t - 1]
            ker = _line_kernel(v[0], v[1])
            p = ker.shape[0]
            a_pad = cv2.copyMakeBorder(a, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
            c_pad = cv2.copyMakeBorder(col * a[..., None], p, p, p, p, cv2.BORDER_CONSTANT, value=0)
            a_bl = cv2.filter2D(a_pad, -1, ker, borderType=cv2.BORDER_CONSTANT)
            c_bl = cv2.filter2D(c_pad, -1, ker, borderType=cv2.BORDER_CONSTANT)
            _blit(img, c_bl / np.maximum(a_bl, 1e-4)[..., None], a_bl, x0 - p, y0 - p)
        else:
            _blit(img, col, a, x0, y0)
        if task == "rgbt":
            lum = cv2.cvtColor(col, cv2.COLOR_BGR2GRAY)
            _blit(x, hot + 0.12 * (lum - lum.mean()), a, x0, y0)
        elif task == "rgbd":
            _blit(x, float(target_mm[t]), (a > 0.5).astype(np.float32), x0, y0)

        # Visible fraction of the target: in frame and not under the occluder.
        total = float(a.sum())
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w_, W), min(y0 + h_, H)
        seen = a[max(ya - y0, 0):max(yb - y0, 0), max(xa - x0, 0):max(xb - x0, 0)].copy()
        if occ is not None and occ["t1"] <= t < occ["t1"] + occ["L"]:
            u = 1 - 2 * (t - occ["t1"]) / max(occ["L"] - 1, 1)  # +1 -> -1 across the span
            reach = ((occ["w"] + w_) / 2 + 2) if occ["horiz"] else ((occ["h"] + h_) / 2 + 2)
            off = occ["sign"] * u * reach
            ocx = centre[t, 0] + (off if occ["horiz"] else 0)
            ocy = centre[t, 1] + (0 if occ["horiz"] else off)
            ox0, oy0 = _place(occ["w"], occ["h"], ocx, ocy)
            ones = np.ones((occ["h"], occ["w"]), np.float32)
            look_o = cv2.resize(occ["look"], (occ["w"], occ["h"]), interpolation=cv2.INTER_LINEAR)
            _blit(img, look_o, ones, ox0, oy0)
            if clean is not None:
                _blit(clean, look_o, ones, ox0, oy0)
            if task == "rgbt":
                _blit(x, 70.0, ones, ox0, oy0)
            elif task == "rgbd":
                _blit(x, float(max(300.0, target_mm[t] - 600)), ones, ox0, oy0)
            # zero the seen-mask where the occluder overlaps the target's in-frame part
            qa, qb = max(ox0, xa), min(ox0 + occ["w"], xb)
            ra, rb = max(oy0, ya), min(oy0 + occ["h"], yb)
            if qa < qb and ra < rb:
                seen[ra - ya:rb - ya, qa - xa:qb - xa] = 0
                if t > 0:
                    occluded[t - 1] = True
        vis = float(seen.sum()) / max(total, 1e-6)

        if clean is None:
            clean = img
        lum_now = np.log(cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY) + 20.0)
        if t == 0:
            prev_lum = lum_now
            continue
        i = t - 1
        if vis >= _ABSENT_BELOW and xa < xb and ya < yb:
            boxes[i] = (xa, ya, xb - xa, yb - ya)
            present[i] = True

        # RGB output: sensor noise; night = dark, low contrast, noisier.
        if kind == "night":
            img = img * night_gain + 8.0
            img += 2.5 * rng.standard_normal(img.shape, dtype=np.float32)
        else:
            img += 3.0 * rng.standard_normal(img.shape, dtype=np.float32)
        rgb_out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))

        if task == "rgbt":
            x = cv2.GaussianBlur(x, (0, 0), 0.8) + 3.0 * rng.standard_normal(x.shape, dtype=np.float32)
            g = np.clip(np.rint(x), 0, 255).astype(np.uint8)
            x_out.append(cv2.merge([g, g, g]))
        elif task == "rgbd":
            x = x * (1 + 0.004 * rng.standard_normal(x.shape, dtype=np.float32))
            x_out.append(np.clip(np.rint(x), 0, 65535).astype(np.uint16))
        else:
            diff = lum_now - prev_lum
            ev = np.empty((H, W, 3), np.uint8)
            ev[:] = EVENT_BG
            u = rng.random((H, W), dtype=np.float32)
            noise = u < _EVENT_NOISE
            pos = (diff > _EVENT_THRESHOLD) | (noise & (u < _EVENT_NOISE / 2))
            neg = (diff < -_EVENT_THRESHOLD) | (noise & ~pos)
            ev[pos] = EVENT_POS
            ev[neg & ~pos] = EVENT_NEG
            x_out.append(ev)
        prev_lum = lum_now

    seq = SynthSequence(task, kind, rgb_out, x_out, boxes, present, occluded, dboxes)
    if task == "rgbd":
        seq.target_depth = target_mm[1:].copy()
        seq.distractor_behind_mm = dist_mm_off.copy()
    return seq


# ------------------------------------------------------------------------------------------- writers ---
def _lines(rows: list[str], crlf: bool = False) -> str:
    nl = "\r\n" if crlf else "\n"
    return nl.join(rows) + nl


def _imwrite(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write image {path}")


def _write_lasher(seq_dir: Path, s: SynthSequence) -> None:
    (seq_dir / "visible").mkdir(parents=True)
    (seq_dir / "infrared").mkdir()
    for i, (rgb, x) in enumerate(zip(s.rgb, s.x)):
        _imwrite(seq_dir / "visible" / f"v{i:06d}.jpg", rgb)
        _imwrite(seq_dir / "infrared" / f"i{i:06d}.jpg", x)
    text = _lines([",".join(str(int(v)) for v in b) for b in s.boxes], crlf=True)
    for name in ("visible.txt", "infrared.txt", "init.txt"):
        (seq_dir / name).write_bytes(text.encode())


def _write_depthtrack(seq_dir: Path, s: SynthSequence) -> None:
    (seq_dir / "color").mkdir(parents=True)
    (seq_dir / "depth").mkdir()
    for i, (rgb, x) in enumerate(zip(s.rgb, s.x)):
        _imwrite(seq_dir / "color" / f"{i + 1:08d}.jpg", rgb)
        _imwrite(seq_dir / "depth" / f"{i + 1:08d}.png", x)
    rows = [",".join(f"{float(v):.4f}" for v in b) if p else "nan,nan,nan,nan" for b, p in zip(s.boxes, s.present)]
    (seq_dir / "groundtruth.txt").write_text(_lines(rows))


def _write_visevent(seq_dir: Path, s: SynthSequence) -> None:
    (seq_dir / "vis_imgs").mkdir(parents=True)
    (seq_dir / "event_imgs").mkdir()
    for i, (rgb, x) in enumerate(zip(s.rgb, s.x)):
        _imwrite(seq_dir / "vis_imgs" / f"frame{i + 1:04d}.bmp", rgb)
        _imwrite(seq_dir / "event_imgs" / f"frame{i + 1:04d}.bmp", x)
    (seq_dir / "groundtruth.txt").write_text(_lines([",".join(str(int(v)) for v in b) for b in s.boxes]))
    (seq_dir / "absent_label.txt").write_text(_lines([str(int(p)) for p in s.present]))


_WRITERS = {"rgbt": _write_lasher, "rgbd": _write_depthtrack, "rgbe": _write_visevent}


def _write_got10k(seq_dir: Path, s: SynthSequence) -> None:
    """RGB frames only, 1-based 8-digit names; absence.label 1 = absent, cover.label in eighths (0 / 8)."""
    seq_dir.mkdir(parents=True)
    for i, rgb in enumerate(s.rgb):
        _imwrite(seq_dir / f"{i + 1:08d}.jpg", rgb)
    (seq_dir / "groundtruth.txt").write_text(_lines([",".join(f"{float(v):.4f}" for v in b) for b in s.boxes]))
    (seq_dir / "absence.label").write_text(_lines([str(int(not p)) for p in s.present]))
    (seq_dir / "cover.label").write_text(_lines(["8" if p else "0" for p in s.present]))


def _write_rgb_world(tmp: Path, seed: int, counts: dict[str, int], frames: int, size: tuple[int, int]) -> None:
    """The RGB-only world: the same generator's RGB render, no X image, in GOT-10k's train/ and val/."""
    for split_id, split in enumerate(RGB_SPLITS):
        names = []
        for k in range(counts[split]):
            name = f"GOT-10k_{split.capitalize()}_{k + 1:06d}"
            rng = np.random.default_rng([seed, _RGB_TASK_ID, split_id, k])
            _write_got10k(tmp / RGB_DATASET / split / name, render_sequence("rgbt", rng, frames, size, "day"))
            names.append(name)
        (tmp / RGB_DATASET / split / "list.txt").write_text(_lines(names))


def sequence_name(task: str, index: int) -> str:
    """Names are distinct across tasks and splits (t_day_000, t_night_001, d_005, e_fast_004, e_006 ...)."""
    kind = _kind(task, index)
    prefix = task[-1]  # t | d | e
    return f"{prefix}_{index:03d}" if kind in ("plain", "normal") else f"{prefix}_{kind}_{index:03d}"


def _split_dir(out: Path, task: str, split: str) -> Path:
    return out / TASK_DATASET[task] / split


def _write_task(tmp: Path, task: str, seed: int, counts: dict[str, int], frames: int,
                size: tuple[int, int]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    start = 0
    for split in ("train", "test"):
        names[split] = []
        for k in range(counts[split]):
            index = start + k
            name = sequence_name(task, index)
            rng = np.random.default_rng([seed, _TASK_ID[task], _SPLIT_ID[split], k])
            seq = render_sequence(task, rng, frames, size, _kind(task, index))
            _WRITERS[task](_split_dir(tmp, task, split) / name, seq)
            names[split].append(name)
        start += counts[split]
    root = tmp / TASK_DATASET[task]
    if task == "rgbt":
        (root / "trainingsetList.txt").write_text(_lines(names["train"]))
        (root / "testingsetList.txt").write_text(_lines(names["test"]))
    elif task == "rgbe":
        (root / "train" / "trainlist.txt").write_text(_lines(names["train"]))
        (root / "test" / "testlist.txt").write_text(_lines(names["test"]))
    return names


def _write_manifest(path: Path, tests: dict[str, list[str]], seed: int) -> None:
    rows = [f"# unified synthetic benchmark (seed {seed}): task,dataset,sequence over the test splits"]
    for task in ("rgbt", "rgbd", "rgbe"):
        rows += [f"{task},{TASK_DATASET[task]},{name}" for name in tests[task]]
    path.write_text(_lines(rows))


def _check_args(seed, sequences, frames, size, test_sequences) -> tuple[tuple[int, int], int]:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", f"expected a non-negative integer, got {seed!r}")
    if int(sequences) < 1:
        raise ConfigError("sequences", f"expected at least 1 training sequence per task, got {sequences!r}")
    if int(frames) < 8:
        raise ConfigError("frames", f"expected at least 8 frames per sequence, got {frames!r}")
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError("size", f"expected [width, height], got {size!r}") from None
    if w < 64 or h < 48:
        raise ConfigError("size", f"expected at least 64x48 pixels, got {w}x{h}")
    n_test = max(2, int(sequences) // 2) if test_sequences is None else int(test_sequences)
    if n_test < 1:
        raise ConfigError("test_sequences", f"expected at least 1, got {test_sequences!r}")
    return (w, h), n_test


def generate(out: str | Path, seed: int = 0, sequences: int = DEFAULT_SEQUENCES, frames: int = DEFAULT_FRAMES,
             size: tuple[int, int] | list = DEFAULT_SIZE, test_sequences: int | None = None,
             overwrite: bool = False, rgb_sequences: int | None = None) -> Path:
    """Write the three synthetic datasets, the RGB-only world and the unified test manifest under `out`.

    `sequences` is the number of training sequences per task; the RGB world (GOT-10k layout, for the
    RGB foundation stage) gets `rgb_sequences` training sequences (default 2 x sequences, 0 = none) and
    a quarter as many validation ones. An existing complete dataset (one with a
    manifest) is replaced only with overwrite=True; a non-empty folder that is not one is never touched.
    """
    out = Path(out).absolute()
    size, n_test = _check_args(seed, sequences, frames, size, test_sequences)
    if out.exists():
        if not out.is_dir():
            raise DatasetError(out, "exists and is not a folder; choose another output path")
        if (out / MANIFEST).is_file():
            if not overwrite:
                raise DatasetError(out, "already holds a synthetic dataset; pass overwrite=True to regenerate")
        elif any(out.iterdir()):
            raise DatasetError(out, f"folder is not empty and has no {MANIFEST}; refusing to write into it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        counts = {"train": int(sequences), "test": n_test}
        tests = {task: _write_task(tmp, task, int(seed), counts, int(frames), size)["test"] for task in TASK_DATASET}
        n_rgb = 2 * int(sequences) if rgb_sequences is None else int(rgb_sequences)
        if n_rgb > 0:
            _write_rgb_world(tmp, int(seed), {"train": n_rgb, "val": max(1, n_rgb // 4)}, int(frames), size)
        _write_manifest(tmp / MANIFEST, tests, int(seed))
        if out.exists():
            out.rename(old)  # empty folder or a dataset being overwritten
            try:
                tmp.rename(out)
            except OSError:
                old.rename(out)  # put the previous dataset back
                raise
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def ensure_default(root: Path) -> Path:
    """Generate the default synthetic data into `root` unless its manifest is already there; returns root."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        print(f"unitrack: no {MANIFEST} in {root}; generating the default synthetic dataset there")
        generate(root)
    elif not (root / RGB_DATASET / "train" / "list.txt").is_file():
        print(f"unitrack: {root} predates the RGB-only world; regenerating the default synthetic dataset")
        generate(root, overwrite=True)
    return root
