"""One sequence, end to end: draw the plan, build the scene, move everything, image it with the task's
sensors, and record the ground truth (boxes, visibility, and what each challenge measured).

Every random number comes from the sequence's own Generator, so a sequence is a pure function of
(seed, task, split, index) whatever else is generated (see __init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from unitrack.data.synth import attributes as A
from unitrack.data.synth import depth as D
from unitrack.data.synth import events as E
from unitrack.data.synth import motion as M
from unitrack.data.synth import thermal as T
from unitrack.data.synth.photos import Cutout, library
from unitrack.data.synth.rgb import RGBCamera, blur_patch, illumination
from unitrack.data.synth.scene import (
    TASK_FIELDS,
    Fields,
    Look,
    background,
    composite,
    make_look,
    patch_box,
    pose,
    view,
)
from unitrack.data.synth.scene import object_temperature as surface_temp

ABSENT_BELOW = 0.1  # visible share of the target below which a frame is annotated absent


@dataclass
class SynthSequence:
    """One rendered sequence in memory: frames as written to disk, plus the ground truth tests check."""

    task: str
    kind: str  # day | night (rgbt, rgb); plain (rgbd); normal | fast (rgbe)
    rgb: list[np.ndarray]  # uint8 HxWx3 BGR
    x: list[np.ndarray]  # thermal/event uint8 HxWx3 BGR; depth uint16 HxW millimetres; [] for task rgb
    boxes: np.ndarray  # (N, 4) int x,y,w,h of the whole target clipped to the frame; zeros where absent
    present: np.ndarray  # (N,) bool
    occluded: np.ndarray  # (N,) share of the in-frame target hidden by nearer objects
    in_frame: np.ndarray  # (N,) share of the target inside the frame
    distractor_boxes: np.ndarray  # (N, D, 4) int x,y,w,h, not clipped
    plan: A.Plan
    attributes: dict = field(default_factory=dict)
    per_frame: dict = field(default_factory=dict)  # challenge -> (N,) bool
    target_depth: np.ndarray | None = None  # (N,) mm (rgbd)
    distractor_depth: np.ndarray | None = None  # (N, D) mm (rgbd)
    target_contrast: np.ndarray | None = None  # (N,) deg C, target minus its surround in the scene (rgbt)


def _other(rng: np.random.Generator, objects: tuple[Cutout, ...], not_group: str) -> Cutout:
    pool = [o for o in objects if o.group != not_group]
    return pool[int(rng.integers(len(pool)))]


def _lookalike(rng: np.random.Generator, lib, target: Look) -> Look:
    """Another member of the target's group (another coin, another face) or the same object recoloured."""
    mates = [o for o in lib.group(target.cut.group) if o.name != target.cut.name]
    cut = mates[int(rng.integers(len(mates)))] if mates else target.cut
    look = make_look(rng, cut, lib, 0.0, target.temp)
    bgr = look.bgr if mates else np.clip(look.bgr * rng.uniform(0.85, 1.15, 3).astype(np.float32), 0, 255)
    if cut.name == target.cut.name and target.bgr.shape == look.bgr.shape:  # same photo: keep the target's tint
        bgr = np.clip(0.7 * target.bgr + 0.3 * bgr, 0, 255) if rng.random() < 0.5 else bgr
    return Look(cut, np.ascontiguousarray(bgr, np.float32), look.alpha, look.temp, look.temp_texture)


def _board(rng: np.random.Generator, lib, w: int, h: int) -> np.ndarray:
    """An occluding board: a crop of another photo (a sign, a wall piece)."""
    bg = lib.backgrounds[int(rng.integers(len(lib.backgrounds)))].bgr
    y, x = int(rng.integers(0, bg.shape[0] - 64)), int(rng.integers(0, bg.shape[1] - 64))
    side = int(rng.integers(48, 64))
    return cv2.resize(bg[y:y + side, x:x + side], (w, h), interpolation=cv2.INTER_LINEAR)


def _sizes(rng: np.random.Generator, n: int, base: float, cut: Cutout, W: int, H: int, plan: A.Plan,
           strong: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (w, h) of the object's alpha box and its scale (1 = frame 0): size, aspect, scale trends."""
    h0, w0 = cut.alpha.shape
    a0 = w0 / h0
    u = np.linspace(0, 1, n)
    if strong and plan.scale_change:
        log_s = rng.choice([-1, 1]) * rng.uniform(0.8, 1.1) * u + M.walk(rng, n, 0.004, -0.08, 0.08, start=0.0)
    else:
        log_s = M.walk(rng, n, 0.004, -0.15, 0.15, start=0.0)
    if strong and plan.aspect_change:
        log_a = rng.choice([-1, 1]) * rng.uniform(0.8, 1.0) * u
    else:
        log_a = M.walk(rng, n, 0.003, -0.1, 0.1, start=0.0)
    scale = np.exp(log_s)
    a = a0 * np.exp(log_a)
    w = base * scale * np.sqrt(a)
    h = base * scale / np.sqrt(a)
    k = np.minimum(1.0, np.minimum(0.6 * W / np.maximum(w, 1), 0.7 * H / np.maximum(h, 1)))
    return np.maximum(4, np.rint(w * k)).astype(int), np.maximum(4, np.rint(h * k)).astype(int), scale


def render_sequence(task: str, rng: np.random.Generator, frames: int, size: tuple[int, int], kind: str,
                    overrides: dict | None = None) -> SynthSequence:
    """Render one sequence of `task` ('rgbt', 'rgbd', 'rgbe' or 'rgb'); `overrides` replace plan fields."""
    W, H = size
    n = frames + 1  # frame -1 is rendered too: the first event frame (and the AGC) need a predecessor
    lib = library()
    plan = A.draw(rng, task, kind)
    for k, v in (overrides or {}).items():
        setattr(plan, k, v)
    need = TASK_FIELDS[task]
    px = W / 320.0  # speeds and offsets are stated for a 320-pixel-wide frame

    # ---- scene: canvas larger than the frame (the camera moves over it), props at their own depths
    margin = 0.18 * W
    Wc, Hc = int(W + 2 * margin + 0.2 * W), int(H + 2 * margin + 0.2 * H)
    bg, disp, horizon, _name = background(rng, lib, Wc, Hc)
    ambient = float(rng.uniform(10, 28))
    canvas = Fields(bg)
    temp_bg = T.scene_temperature(rng, bg, ambient)
    depth_bg = D.scene_depth(rng, Hc, Wc, horizon, disp)
    canvas.temp = temp_bg if "temp" in need else None
    canvas.depth = depth_bg if "depth" in need else None
    wall = float(np.median(depth_bg[depth_bg > 0])) if (depth_bg > 0).any() else 6000.0
    n_props = int(rng.integers(5, 9)) if plan.clutter else int(rng.integers(1, 4))
    for _ in range(n_props):
        cut = lib.objects[int(rng.integers(len(lib.objects)))]
        look = make_look(rng, cut, lib, rng.uniform(0, 0.5), ambient + (rng.uniform(8, 20) if rng.random() < 0.45
                                                                         else rng.uniform(-2, 3)))
        side = rng.uniform(0.12, 0.3) * H
        h0, w0 = cut.alpha.shape
        pw, ph = max(6, int(side * np.sqrt(w0 / h0))), max(6, int(side / np.sqrt(w0 / h0)))
        pb, pa = pose(look, pw, ph)
        x0, y0 = int(rng.integers(0, Wc - pw)), int(rng.integers(0, Hc - ph))
        z = float(rng.uniform(1200, max(1300, 0.9 * wall)))
        composite(canvas, pb, pa, x0, y0, surface_temp(look, pb, pa) if canvas.temp is not None else None,
                  z if canvas.depth is not None else None)
    cam = M.camera_path(rng, n, margin * (1.4 if plan.camera == "strong" else 1.0), plan.camera)

    # ---- the target: a cut-out photo object with its own size/aspect/pose over time and a path
    cut = lib.objects[int(rng.integers(len(lib.objects)))]
    t_temp = ambient + (rng.uniform(-0.5, 1.0) if plan.crossover else rng.uniform(6, 13))
    target = make_look(rng, cut, lib, rng.uniform(0, 0.6), t_temp, temp_texture=1.5)
    base = (rng.uniform(0.055, 0.075) if plan.low_res else rng.uniform(0.15, 0.26)) * H
    tw, th, t_scale = _sizes(rng, n, base, cut, W, H, plan, strong=True)
    speed = (rng.uniform(6.0, 9.0) if plan.fast else rng.uniform(0.8, 2.4)) * px
    centre = M.trajectory(rng, n, W, H, speed, np.stack([tw, th], 1) / 2)
    if plan.out_of_view and frames >= 12:
        M.out_of_view(rng, centre, frames, W, H, float(max(tw.max(), th.max())))
    angle = (M.walk(rng, n, 1.2, -75, 75, inertia=0.95, start=0.0) if plan.rotation else np.zeros(n))
    deform = rng.uniform(0.05, 0.09) if plan.deformation else 0.0
    phase_rate = rng.uniform(0.15, 0.35)
    t_depth = rng.uniform(1500, 3500) / t_scale
    holes = None
    if plan.depth_holes:
        holes = D.target_holes(rng, target.alpha, rng.uniform(0.35, 0.6)).astype(np.float32)
    occ = M.occlusion(rng, frames, int(tw.max()), int(th.max()), plan.occlusion == "full") \
        if plan.occlusion != "none" and frames >= 8 else None
    occ_look = _board(rng, lib, occ.w, occ.h) if occ is not None else None
    occ_temp = ambient + rng.uniform(-2, 2)

    # ---- distractors: most look like something else; a look-alike when the plan says so
    n_d = int(rng.integers(1, 4))
    dist = []
    for j in range(n_d):
        if j == 0 and plan.similar:
            look = _lookalike(rng, lib, target)
        else:
            look = make_look(rng, _other(rng, lib.objects, cut.group), lib, rng.uniform(0, 0.6), 0.0)
        warm = rng.random() < 0.5
        look.temp = ambient + (rng.uniform(6, 16) if warm else rng.uniform(-2, 4))
        ds = rng.uniform(0.8, 1.2) if j == 0 and plan.similar else rng.uniform(0.6, 1.4)
        dw, dh, _ = _sizes(rng, n, base * ds, look.cut, W, H, plan, strong=False)
        dhalf = np.stack([dw, dh], 1) / 2
        dspeed = max(0.5 * px, speed * rng.uniform(0.4, 1.0))
        for _try in range(20):
            dc = M.trajectory(rng, n, W, H, dspeed, dhalf)
            gap = np.abs(dc[1] - centre[1]) - (dhalf[1] + np.array([tw[1], th[1]]) / 2)
            if (gap > 2).any():
                break
        if j == 0 and plan.depth_distractor:
            dz = t_depth * rng.uniform(0.96, 1.04)
        else:
            dz = np.maximum(600.0, t_depth + rng.choice([-1, 1]) * rng.uniform(900, 2000))
        dist.append(dict(look=look, w=dw, h=dh, c=dc, z=dz, phase=rng.uniform(0, 6)))

    gain = illumination(rng, n, plan.illumination_change)
    rgb_cam = RGBCamera(rng, (H, W), plan.night)
    th_cam = T.ThermalCamera(rng, (H, W), ambient) if task == "rgbt" else None
    d_cam = D.DepthSensor(rng, (H, W)) if task == "rgbd" else None
    ev_cam = (E.EventCamera(rng, (H, W), threshold=rng.uniform(0.16, 0.24)) if task == "rgbe" else None)

    rgb_out, x_out = [], []
    N = frames
    boxes = np.zeros((N, 4), np.int64)
    present = np.zeros(N, bool)
    occluded = np.zeros(N, np.float64)
    in_frame = np.zeros(N, np.float64)
    dboxes = np.zeros((N, n_d, 4), np.int64)
    contrast = np.zeros(N) if task == "rgbt" else None
    hole_frames = np.zeros(N, bool)
    near_depth = np.zeros(N, bool)
    for t in range(n):
        f = view(canvas, cam.centre[t, 0], cam.centre[t, 1], float(cam.zoom[t]), W, H)
        fb = Fields(f.bgr.copy()) if plan.fast else None  # what the RGB camera integrates (blurred movers)
        layers = []  # (depth, kind, index)
        for j, d in enumerate(dist):
            layers.append((float(d["z"][t] if np.ndim(d["z"]) else d["z"]), "d", j))
        layers.append((float(t_depth[t]), "t", 0))
        layers.sort(key=lambda v: -v[0])  # far to near
        t_alpha = None
        t_total = 1.0
        cover = np.zeros((H, W), np.float32)
        t_holes = None
        for z, what, j in layers:
            if what == "d":
                d = dist[j]
                w_, h_ = int(d["w"][t]), int(d["h"][t])
                pb, pa = pose(d["look"], w_, h_, 0.0, 0.0, 0.0)
                x0, y0 = int(round(d["c"][t, 0] - pa.shape[1] / 2)), int(round(d["c"][t, 1] - pa.shape[0] / 2))
                temp = surface_temp(d["look"], pb, pa) if f.temp is not None else None
                placed = composite(f, pb, pa, x0, y0, temp, z if f.depth is not None else None)
                if t > 0:
                    dboxes[t - 1, j] = (x0, y0, pa.shape[1], pa.shape[0])
                vel = d["c"][t] - d["c"][t - 1] if t > 0 else np.zeros(2)
            else:
                w_, h_ = int(tw[t]), int(th[t])
                pb, pa = pose(target, w_, h_, float(angle[t]), deform, phase_rate * t)
                x0, y0 = int(round(centre[t, 0] - pa.shape[1] / 2)), int(round(centre[t, 1] - pa.shape[0] / 2))
                temp = surface_temp(target, pb, pa) if f.temp is not None else None
                placed = composite(f, pb, pa, x0, y0, temp, z if f.depth is not None else None)
                t_alpha, t_total, t_box0 = placed, float(pa.sum()), (x0, y0, pa)
                if holes is not None:
                    _, hp = pose(Look(target.cut, target.bgr, holes, 0, 0), w_, h_, float(angle[t]), deform,
                                 phase_rate * t)
                    t_holes = np.zeros((H, W), bool)
                    ya, xa = max(y0, 0), max(x0, 0)
                    yb, xb = min(y0 + hp.shape[0], H), min(x0 + hp.shape[1], W)
                    if ya < yb and xa < xb:
                        t_holes[ya:yb, xa:xb] = hp[ya - y0:yb - y0, xa - x0:xb - x0] > 0.5
                vel = centre[t] - centre[t - 1] if t > 0 else np.zeros(2)
                cover[:] = 0
            if what == "d" and t_alpha is not None:  # a nearer distractor over the target
                cover = 1 - (1 - cover) * (1 - placed)
            if fb is not None:
                cb, ca, p = blur_patch(pb, pa, float(vel[0]), float(vel[1]))
                composite(fb, cb, ca, x0 - p, y0 - p, None, None)
        if occ is not None and occ.active(t):
            ocx, ocy = occ.centre(t, centre[t], int(tw[t]), int(th[t]))
            ox0, oy0 = int(round(ocx - occ.w / 2)), int(round(ocy - occ.h / 2))
            ones = np.ones((occ.h, occ.w), np.float32)
            oz = float(max(500.0, t_depth[t] - 700))
            placed = composite(f, occ_look, ones, ox0, oy0, occ_temp if f.temp is not None else None,
                               oz if f.depth is not None else None)
            if fb is not None:
                composite(fb, occ_look, ones, ox0, oy0, None, None)
            cover = 1 - (1 - cover) * (1 - placed)

        # ---- ground truth of this frame
        seen = float((t_alpha * (1 - cover)).sum())
        inside = float(t_alpha.sum())
        share_in = inside / max(t_total, 1e-6)
        share_occ = 1 - seen / max(inside, 1e-6) if inside > 0 else 0.0
        if t > 0:
            i = t - 1
            in_frame[i], occluded[i] = share_in, share_occ
            x0, y0, pa = t_box0
            b = patch_box(pa, x0, y0)
            if b is not None and seen / max(t_total, 1e-6) >= ABSENT_BELOW:
                xa, ya, xb, yb = max(b[0], 0), max(b[1], 0), min(b[2], W), min(b[3], H)
                if xa < xb and ya < yb:
                    boxes[i] = (xa, ya, xb - xa, yb - ya)
                    present[i] = True

        # ---- sensors
        g = float(gain[t])
        out_rgb = rgb_cam.capture(fb.bgr if fb is not None else f.bgr, t, g)
        if th_cam is not None:
            x_img = th_cam.capture(f.temp)
            if t > 0 and present[t - 1]:
                front = t_alpha * (1 - cover) > 0.5
                ring = cv2.dilate(front.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~front
                if front.any() and ring.any():
                    contrast[t - 1] = float(f.temp[front].mean() - f.temp[ring].mean())
        elif d_cam is not None:
            vis_holes = t_holes & (t_alpha * (1 - cover) > 0.5) if t_holes is not None else None
            x_img = d_cam.capture(f.depth, vis_holes)
            if t > 0 and present[t - 1]:
                bx, by, bw, bh = boxes[t - 1]
                roi = x_img[by:by + bh, bx:bx + bw]
                hole_frames[t - 1] = roi.size > 0 and float((roi == 0).mean()) > 0.25
                near_depth[t - 1] = any(abs(float(np.asarray(d["z"])[t] if np.ndim(d["z"]) else d["z"])
                                            - float(t_depth[t])) < 300 for d in dist)
        elif ev_cam is not None:
            scene = f.bgr * np.float32(g * rgb_cam.gain)
            x_img = E.event_frame(ev_cam.capture(E.log_intensity(scene)))
        else:
            x_img = None
        if t == 0:
            continue
        rgb_out.append(out_rgb)
        if x_img is not None:
            x_out.append(x_img)

    per_frame = A.measure(boxes, present, (W, H), occluded, in_frame)
    extra: dict[str, bool] = {}
    if task == "rgbt":
        c = contrast[present]
        extra["thermal_crossover"] = bool(c.size and np.median(np.abs(c)) < 2.5)
    if task == "rgbd":
        per_frame["depth_holes"] = hole_frames
        per_frame["depth_distractor"] = near_depth
        z = t_depth[1:]
        per_frame["depth_change"] = (z / z[0] > 1.5) | (z / z[0] < 1 / 1.5)
    seq = SynthSequence(task, kind, rgb_out, x_out, boxes, present, occluded, in_frame, dboxes, plan)
    seq.per_frame = per_frame
    seq.attributes = A.sequence_attributes(plan, per_frame, task, extra)
    if task == "rgbd":
        seq.target_depth = t_depth[1:].copy()
        seq.distractor_depth = np.stack([np.broadcast_to(np.asarray(d["z"], np.float64), (n,))[1:] for d in dist], 1)
    if task == "rgbt":
        seq.target_contrast = contrast
    return seq
