"""Challenge attributes as the datasets ship them, read into one vocabulary so scores can be split per
challenge across a unified benchmark.

Layouts (as released):
- LasHeR (toolkit repository, ``Attributes&Order.zip``): ``AttriSeqsTxt/<seq>.txt`` holds ONE line of
  19 comma-separated 0/1 flags (no final newline) in the order of ``Attributes_order.txt``:
  ``NO, PO, TO, HO, MB, LI, HI, AIV, LR, DEF, BC, SA, CM, TC, FL, OV, FM, SV, ARV``.
- VisEvent (evaluation kit, ``annos/att/<seq>.txt``, also ``<seq>_attribute.txt``): one 0/1 a line,
  17 lines in the kit's order ``CM, ROT, DEF, FOC, LI, OV, POC, VC, SV, BC, MB, ARC, FM, NMO, IV, OE, BOM``.
- DepthTrack / VOT workspaces: per-frame tag files ``<seq>/<tag>.tag`` (one 0/1 a frame), e.g.
  ``full-occlusion.tag``, ``dark-scene.tag``; a sequence has a tag when any frame has it.

Attributes are looked up next to the sequence (VOT tags) and in the dataset folders above it, so the
same call serves a dataset read by name or through a manifest; readers stay untouched (the
`Sequence.attributes` field is filled here). A sequence with no attribute file keeps None.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import read_table
from unitrack.data.sequence import Sequence
from unitrack.errors import DatasetError

LASHER_ORDER = ("NO", "PO", "TO", "HO", "MB", "LI", "HI", "AIV", "LR", "DEF", "BC", "SA", "CM", "TC", "FL",
                "OV", "FM", "SV", "ARV")
VISEVENT_ORDER = ("CM", "ROT", "DEF", "FOC", "LI", "OV", "POC", "VC", "SV", "BC", "MB", "ARC", "FM", "NMO", "IV",
                  "OE", "BOM")

#: Native code -> the shared vocabulary (codes without an equivalent keep a dataset-prefixed name).
LASHER_CANONICAL = {"NO": "no_occlusion", "PO": "partial_occlusion", "TO": "full_occlusion",
                    "HO": "hyaline_occlusion", "MB": "motion_blur", "LI": "low_illumination",
                    "HI": "high_illumination", "AIV": "illumination_change", "LR": "low_resolution",
                    "DEF": "deformation", "BC": "background_clutter", "SA": "similar_object", "CM": "camera_motion",
                    "TC": "thermal_crossover", "FL": "frame_lost", "OV": "out_of_view", "FM": "fast_motion",
                    "SV": "scale_change", "ARV": "aspect_change"}
VISEVENT_CANONICAL = {"CM": "camera_motion", "ROT": "rotation", "DEF": "deformation", "FOC": "full_occlusion",
                      "LI": "low_illumination", "OV": "out_of_view", "POC": "partial_occlusion",
                      "VC": "viewpoint_change", "SV": "scale_change", "BC": "background_clutter", "MB": "motion_blur",
                      "ARC": "aspect_change", "FM": "fast_motion", "NMO": "no_motion",
                      "IV": "illumination_change", "OE": "over_exposure", "BOM": "background_motion"}
DEPTHTRACK_CANONICAL = {"aspect-change": "aspect_change", "background-clutter": "background_clutter",
                        "dark-scene": "low_illumination", "deformable": "deformation", "depth-change": "depth_change",
                        "fast-motion": "fast_motion", "full-occlusion": "full_occlusion",
                        "moving-view": "camera_motion", "out-of-frame": "out_of_view", "out-of-plane": "rotation",
                        "partial-occlusion": "partial_occlusion", "reflective-target": "depth_holes",
                        "similar-objects": "similar_object", "size-change": "scale_change",
                        "similar-depth": "depth_distractor", "event-clutter": "event_clutter"}
#: VOT's catch-all tag (frames with no other tag): not a challenge.
NOT_ATTRIBUTES = ("unassigned",)


def _flags(path: Path, values: list[float], order: tuple[str, ...], canonical: dict[str, str]) -> dict[str, bool]:
    bad = [v for v in values if v not in (0.0, 1.0)]
    if bad:
        raise DatasetError(path, f"attribute flags must be 0 or 1, got {bad[0]:g}")
    if len(values) > len(order):
        raise DatasetError(path, f"{len(values)} attribute flags, expected at most {len(order)} ({', '.join(order)})")
    return {canonical[c]: bool(v) for c, v in zip(order, values)}


def read_lasher(path: Path) -> dict[str, bool]:
    """One line of comma-separated 0/1 flags in LASHER_ORDER."""
    text = Path(path).read_text(encoding="utf-8-sig").strip()
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise DatasetError(path, f"expected comma-separated 0/1 flags, got {text[:40]!r}") from None
    if len(values) != len(LASHER_ORDER):
        raise DatasetError(path, f"{len(values)} attribute flags, expected {len(LASHER_ORDER)} "
                                 f"({', '.join(LASHER_ORDER)})")
    return _flags(path, values, LASHER_ORDER, LASHER_CANONICAL)


def read_visevent(path: Path) -> dict[str, bool]:
    """One 0/1 flag a line in VISEVENT_ORDER (the kit's files hold 17 lines)."""
    values = [float(v) for v in read_table(Path(path), 1)[:, 0]]
    return _flags(path, values, VISEVENT_ORDER, VISEVENT_CANONICAL)


def read_vot_tags(seq_dir: Path, frames: int | None = None) -> dict[str, bool] | None:
    """Per-frame `<tag>.tag` files of a VOT-style sequence folder; a tag holds when any frame has it."""
    out: dict[str, bool] = {}
    for tag in sorted(Path(seq_dir).glob("*.tag")):
        if tag.stem in NOT_ATTRIBUTES:
            continue
        v = read_table(tag, 1)[:, 0]
        if frames is not None and len(v) > frames:
            raise DatasetError(tag, f"{len(v)} tag lines but {frames} frames")
        out[DEPTHTRACK_CANONICAL.get(tag.stem, tag.stem.replace("-", "_"))] = bool((v > 0).any())
    return out or None


def _sequence_dir(seq: Sequence) -> Path | None:
    return Path(seq.rgb_frames[0]).parent.parent if seq.rgb_frames else None


def _find_up(start: Path, candidates: Iterable[str], name: str, levels: int = 4) -> Path | None:
    d = start
    for _ in range(levels):
        d = d.parent
        for c in candidates:
            p = d / c / name
            if p.is_file():
                return p
    return None


LASHER_DIRS = ("AttriSeqsTxt", "Attributes&Order/AttriSeqsTxt", "Attributes/AttriSeqsTxt")
VISEVENT_DIRS = ("annos/att", "att")


def sequence_attributes(seq: Sequence) -> dict[str, bool] | None:
    """The attributes of one sequence from its dataset's files, or None when it ships none."""
    seq_dir = _sequence_dir(seq)
    if seq_dir is None:
        return None
    if seq.dataset == "lasher":
        p = _find_up(seq_dir, LASHER_DIRS, f"{seq.name}.txt")
        return read_lasher(p) if p else None
    if seq.dataset == "visevent":
        p = _find_up(seq_dir, VISEVENT_DIRS, f"{seq.name}.txt") or _find_up(seq_dir, VISEVENT_DIRS,
                                                                           f"{seq.name}_attribute.txt")
        return read_visevent(p) if p else None
    if seq.dataset in ("depthtrack", "rgbd1k"):
        return read_vot_tags(seq_dir, len(seq))
    return None


def attach(sequences: list[Sequence]) -> list[Sequence]:
    """Fill `attributes` of every sequence that has attribute files (in place; returns the list)."""
    for s in sequences:
        if s.attributes is None:
            s.attributes = sequence_attributes(s)
    return sequences
