"""Native dataset readers, one module per layout, all returning `list[Sequence]`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from unitrack.data.formats import (
    depthtrack,
    got10k,
    gtot,
    lasher,
    lasot,
    manifest,
    rgbd1k,
    rgbt210,
    rgbt234,
    trackingnet,
    visevent,
)
from unitrack.data.formats.common import ROW_REASONS
from unitrack.data.sequence import Sequence
from unitrack.data.validation import CROSSING
from unitrack.errors import ConfigError

log = logging.getLogger(__name__)

READERS: dict[str, Callable[..., list[Sequence]]] = {
    "lasher": lasher.load,
    "rgbt234": rgbt234.load,
    "rgbt210": rgbt210.load,
    "gtot": gtot.load,
    "depthtrack": depthtrack.load,
    "rgbd1k": rgbd1k.load,
    "visevent": visevent.load,
    "got10k": got10k.load,
    "lasot": lasot.load,
    "trackingnet": trackingnet.load,
    "manifest": manifest.load,
}
#: A sequence whose frames are at least this share absent is listed by the warnings (a flipped label,
#: a wrong box format, a test split without annotations read as training ...).
ALMOST_ALL_ABSENT = 0.9


def load_dataset(name: str, root: str | Path, split: str | None = None, warn: bool = True,
                 **options) -> list[Sequence]:
    """Read dataset `name` from its native layout at `root` (for 'manifest', root is the manifest file).

    With `warn`, `dataset_warnings` go to the log in short (inspect prints them in full).
    """
    reader = READERS.get(str(name).lower())
    if reader is None:
        raise ConfigError("dataset", f"unknown dataset {name!r}; valid: {', '.join(READERS)}")
    seqs = reader(root, split, **options)
    if warn:
        for w in dataset_warnings(seqs, detail=False, **options):
            log.warning("%s %s: %s", name, root, w)
    return seqs


def dataset_warnings(seqs: list[Sequence], absent_polarity: str = "present", detail: bool = True,
                     **options) -> list[str]:
    """What a reader accepted but a user should know: invalid gt rows read as absent (files and counts),
    boxes whose centre lies outside the frame (each row listed) or that cross its border (counted), both
    scored as they are, sequences that are (almost) all absent, and a VisEvent absent polarity that looks
    flipped.
    `detail=False` names no files (the one-line form training logs)."""
    out = []
    bad = [(s, {r: s.absent_reasons[r] for r in ROW_REASONS if s.absent_reasons.get(r)}) for s in seqs]
    bad = [(s, c) for s, c in bad if c]
    if bad:
        rows = sum(sum(c.values()) for _, c in bad)
        kinds = {r: sum(c.get(r, 0) for _, c in bad) for r in ROW_REASONS}
        what = ", ".join(f"{n} {r}" for r, n in kinds.items() if n)
        head = f"{rows} gt rows in {len(bad)} of {len(seqs)} sequences read as absent frames ({what})"
        if detail:
            shown = "; ".join(f"{s.gt_file}: " + ", ".join(f"{n} {r}" for r, n in c.items()) for s, c in bad[:8])
            more = f"; ... and {len(bad) - 8} more files (inspect.json lists all)" if len(bad) > 8 else ""
            out.append(f"{head}: {shown}{more}")
        else:
            out.append(f"{head}; `unitrack inspect` lists the files")
    out += outside_warnings(seqs, detail)
    empty = [s for s in seqs if len(s) and "unannotated" not in s.absent_reasons
             and (~s.visible).mean() >= ALMOST_ALL_ABSENT]
    if empty:
        names = ", ".join(f"{s.name} ({int((~s.visible).sum())}/{len(s)})" for s in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        out.append(f"{len(empty)} sequences are (almost) all absent: {names}{more}")
    ve = [s for s in seqs if s.dataset == "visevent"]
    if ve:
        out += visevent.polarity_warnings(ve, absent_polarity)
    return out


def outside_warnings(seqs: list[Sequence], detail: bool = True) -> list[str]:
    """Rows with the box centre outside the frame (listed) and boxes crossing the border (counted): what the
    toolkits score as it is, so never an error for the dataset (data/validation.py)."""
    out = []
    rows = [r for s in seqs for r in s.outside_rows]
    if rows:
        n_seq = sum(1 for s in seqs if s.outside_rows)
        head = (f"{len(rows)} gt rows in {n_seq} of {len(seqs)} sequences have their box centre outside the frame "
                "(scored as they are, as the toolkits do)")
        if detail:
            more = f"; ... and {len(rows) - 8} more (inspect.json lists all)" if len(rows) > 8 else ""
            out.append(f"{head}: " + "; ".join(rows[:8]) + more)
        else:
            out.append(f"{head}; `unitrack inspect` lists them")
    crossing = {s.uid: s.stats[CROSSING] for s in seqs if s.stats.get(CROSSING)}
    if crossing:
        out.append(f"{sum(crossing.values())} gt boxes in {len(crossing)} of {len(seqs)} sequences extend past the "
                   "frame border (scored as they are)")
    return out
