"""Challenges: drawn per sequence before rendering (the plan), then stated as attributes measured on
what was rendered, and encoded in each dataset's native attribute files.

The plan decides what the scene does (a look-alike distractor, an occluder, a night exposure, thermal
crossover ...). The attributes written next to the data are measured from the rendered ground truth
where a definition exists (OTB/LasHeR style: scale change = box area outside [1/2, 2] x the first
frame's, aspect change likewise for w/h, fast motion = centre moving more than a quarter of the target's
size in a frame, out of view = less than half of the target inside the frame, low resolution = a median
box under 0.5 % of the frame), so a file never claims a challenge that did not happen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from unitrack.data.formats.attributes import (
    DEPTHTRACK_CANONICAL,
    LASHER_CANONICAL,
    LASHER_ORDER,
    VISEVENT_CANONICAL,
    VISEVENT_ORDER,
)

CAMERA_MODES = ("static", "pan", "shake", "zoom")


@dataclass
class Plan:
    """What a sequence's scene does (drawn before rendering)."""

    similar: bool = False  # a look-alike distractor (same kind of object)
    occlusion: str = "none"  # none | partial | full
    out_of_view: bool = False
    scale_change: bool = False
    aspect_change: bool = False
    fast: bool = False  # fast motion with motion blur
    illumination_change: bool = False
    night: bool = False
    rotation: bool = False
    deformation: bool = False
    low_res: bool = False
    camera: str = "static"  # static | pan | shake | zoom | strong
    clutter: bool = False  # many props on the background
    crossover: bool = False  # thermal: target as warm as its background
    depth_holes: bool = False  # depth: the target returns no depth over part of it
    depth_distractor: bool = False  # depth: a distractor at the target's depth

    def as_dict(self) -> dict:
        return asdict(self)


def draw(rng: np.random.Generator, task: str, kind: str) -> Plan:
    """Each challenge with its own probability; night (RGBT) and fast (RGBE) are fixed by the sequence kind."""
    p = Plan()
    p.similar = rng.random() < 0.4
    p.occlusion = str(rng.choice(["none", "partial", "full"], p=[0.35, 0.35, 0.3]))
    p.out_of_view = rng.random() < 0.35
    p.scale_change = rng.random() < 0.5
    p.aspect_change = rng.random() < 0.35
    p.fast = kind == "fast" or (task != "rgbe" and rng.random() < 0.12)
    p.illumination_change = rng.random() < 0.3
    p.night = kind == "night"
    p.rotation = rng.random() < 0.3
    p.deformation = rng.random() < 0.3
    p.low_res = rng.random() < 0.15
    p.clutter = rng.random() < 0.5
    if task == "rgbe":
        p.camera = str(rng.choice(["static", "pan", "shake", "strong"], p=[0.2, 0.3, 0.2, 0.3]))
    else:
        p.camera = str(rng.choice(CAMERA_MODES, p=[0.3, 0.35, 0.15, 0.2]))
    p.crossover = task == "rgbt" and rng.random() < 0.35
    p.depth_holes = task == "rgbd" and rng.random() < 0.35
    p.depth_distractor = task == "rgbd" and rng.random() < 0.4
    return p


def measure(boxes: np.ndarray, present: np.ndarray, frame_size: tuple[int, int], occluded_share: np.ndarray,
            in_frame_share: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame challenge flags measured on the ground truth (see the module docstring)."""
    n = len(boxes)
    W, H = frame_size
    b = boxes.astype(np.float64)
    area = b[:, 2] * b[:, 3]
    first = area[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(present, area / max(first, 1.0), 1.0)
        ar0 = b[0, 2] / max(b[0, 3], 1.0)
        ar = np.where(present, (b[:, 2] / np.maximum(b[:, 3], 1.0)) / ar0, 1.0)
    centre = b[:, :2] + b[:, 2:] / 2
    step = np.zeros(n)
    both = present[1:] & present[:-1]
    d = np.hypot(*(centre[1:] - centre[:-1]).T)
    size = np.sqrt(np.maximum(area[1:], 1.0))
    step[1:] = np.where(both, d / size, 0.0)
    small = np.median(area[present]) < 0.005 * W * H if present.any() else False
    return {
        "scale_change": present & ((ratio > 2.0) | (ratio < 0.5)),
        "aspect_change": present & ((ar > 2.0) | (ar < 0.5)),
        "fast_motion": step > 0.25,
        "out_of_view": in_frame_share < 0.5,
        "partial_occlusion": (occluded_share >= 0.1) & (occluded_share < 0.9) & (in_frame_share >= 0.1),
        "full_occlusion": occluded_share >= 0.9,
        "low_resolution": np.full(n, bool(small)),
    }


def sequence_attributes(plan: Plan, per_frame: dict[str, np.ndarray], task: str, extra: dict[str, bool]) -> dict:
    """The shared-vocabulary attributes of one sequence: measured ones from `per_frame`, the rest from the
    plan (what the renderer did), and `extra` (measured modality challenges: crossover, holes ...)."""
    a = {k: bool(v.any()) for k, v in per_frame.items()}
    a.update({
        "similar_object": plan.similar, "motion_blur": plan.fast, "illumination_change": plan.illumination_change,
        "low_illumination": plan.night, "deformation": plan.deformation, "rotation": plan.rotation,
        "background_clutter": plan.clutter, "camera_motion": plan.camera != "static",
        "background_motion": True,  # distractors always move
    })
    a["no_occlusion"] = not (a["partial_occlusion"] or a["full_occlusion"])
    if task == "rgbe":
        a["event_clutter"] = plan.camera in ("pan", "strong")
    a.update(extra)
    return a


def _native(attrs: dict, order: tuple[str, ...], canonical: dict[str, str]) -> list[int]:
    return [int(bool(attrs.get(canonical[c], False))) for c in order]


def lasher_line(attrs: dict) -> str:
    """AttriSeqsTxt/<seq>.txt content: one line, 19 comma-separated flags, no final newline (as released)."""
    return ",".join(str(v) for v in _native(attrs, LASHER_ORDER, LASHER_CANONICAL))


def visevent_lines(attrs: dict) -> list[str]:
    return [str(v) for v in _native(attrs, VISEVENT_ORDER, VISEVENT_CANONICAL)]


#: The DepthTrack tags we write (its own names, plus 'similar-depth' for a distractor at the target's depth).
DEPTH_TAGS = ("aspect-change", "background-clutter", "dark-scene", "deformable", "depth-change", "fast-motion",
              "full-occlusion", "moving-view", "out-of-frame", "partial-occlusion", "reflective-target",
              "similar-objects", "size-change", "similar-depth")


def depth_tags(attrs: dict, per_frame: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Per-frame 0/1 tag arrays: measured per frame where we can, the sequence flag elsewhere."""
    out = {}
    for tag in DEPTH_TAGS:
        key = DEPTHTRACK_CANONICAL[tag]
        v = per_frame.get(key)
        out[tag] = (v.astype(np.int8) if v is not None else np.full(n, int(bool(attrs.get(key, False))), np.int8))
    return out
