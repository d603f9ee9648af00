"""`unitrack inspect`: read a dataset the way training will and say what is in it, or exactly what is wrong.

Reading already checks the annotation files (parse, frame counts, box format, frame 0, boxes inside the
image). On top of that `inspect` reads the header of EVERY frame (constant frame size per sequence) and
decodes the first RGB and X frame of every sequence (catches e.g. an 8-bit depth PNG); `deep=True`
decodes every frame and lists each one that fails (garbage or truncated JPEG, 8-bit depth mid-sequence).
The report holds a per-dataset summary (absent frames, invalid gt rows by reason, frames the toolkits
score as invalid) and the warnings of `formats.dataset_warnings`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unitrack import NO_X
from unitrack.data.formats import dataset_warnings, load_dataset
from unitrack.data.formats.common import ROW_REASONS
from unitrack.data.imagesize import image_size
from unitrack.data.sequence import Sequence, load_frame
from unitrack.data.validation import CROSSING, check_constant_size, decode_all
from unitrack.errors import DatasetError


def toolkit_invalid(seq: Sequence) -> int:
    """Frames the LasHeR / VisEvent / pytracking kits score as invalid: any gt value <= 0 or NaN."""
    with np.errstate(invalid="ignore"):
        return int((~(seq.gt > 0).all(1)).sum())


def _size_or_none(path) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except DatasetError:
        return None


def _row(seq: Sequence, size: tuple[int, int] | None) -> dict:
    return {
        "name": seq.name,
        "dataset": seq.dataset,
        "task": seq.task,
        "frames": len(seq),
        "absent_frames": int((~seq.visible).sum()),
        "absent_reasons": dict(seq.absent_reasons),
        "toolkit_invalid": toolkit_invalid(seq),
        "x_modality": seq.x_modality,
        "size": f"{size[0]}x{size[1]}" if size else "?",
        "gt_file": str(seq.gt_file) if seq.gt_file else None,
        **({"stats": dict(seq.stats)} if seq.stats else {}),
        **({"outside_rows": list(seq.outside_rows)} if seq.outside_rows else {}),
    }


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per dataset: sequences, frames, absent frames, invalid rows by reason and the files holding them, and
    the boxes outside the frame (centres outside: rows; crossing the border: boxes)."""
    out: dict[str, dict] = {}
    for r in rows:
        d = out.setdefault(r["dataset"], {"sequences": 0, "frames": 0, "absent_frames": 0, "toolkit_invalid": 0,
                                          "absent_reasons": {}, "invalid_rows": {}, "centre_outside": 0,
                                          "crossing_border": 0})
        d["sequences"] += 1
        for k in ("frames", "absent_frames", "toolkit_invalid"):
            d[k] += r[k]
        d["centre_outside"] += len(r.get("outside_rows", []))
        d["crossing_border"] += r.get("stats", {}).get(CROSSING, 0)
        for reason, n in r["absent_reasons"].items():
            d["absent_reasons"][reason] = d["absent_reasons"].get(reason, 0) + n
        rows_bad = {k: v for k, v in r["absent_reasons"].items() if k in ROW_REASONS}
        if rows_bad:
            d["invalid_rows"][r["gt_file"]] = rows_bad
    return out


def inspect_dataset(name: str, root: str | Path, split: str | None = None, deep: bool = False,
                    **options) -> dict:
    """Summary and per-sequence rows; raises DatasetError (naming the file) on the first invalid sequence.

    Frames that fail to decode in `deep` mode are collected in report["errors"] instead (all of them).
    """
    sequences = load_dataset(name, root, split, warn=False, **options)
    rows, errors = [], []
    for seq in sequences:
        if deep:  # every frame decoded: bad ones are collected, not raised
            bad = decode_all(seq)
            errors += bad
            size = image_size(seq.rgb_frames[0]) if not bad else _size_or_none(seq.rgb_frames[0])
        else:
            size = check_constant_size(seq.rgb_frames, every=True)
            if seq.x_modality != NO_X:
                check_constant_size(seq.x_frames, every=True)
            load_frame(seq, 0)
        rows.append(_row(seq, size))
    return {"dataset": name, "root": str(root), "split": split, "deep": bool(deep), "summary": summarise(rows),
            "warnings": dataset_warnings(sequences, **options), "errors": errors, "sequences": rows}


def print_table(report: dict, console=None, max_rows: int = 40) -> None:
    """A summary row per dataset, one row per sequence when there are at most `max_rows`, the warnings."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    seqs = report["sequences"]
    if len(seqs) <= max_rows:
        table = Table(title=f"dataset {report['dataset']}: {len(seqs)} sequences")
        for col, justify in (("sequence", "left"), ("task", "left"), ("frames", "right"), ("absent", "right"),
                             ("invalid rows", "right"), ("size", "right"), ("X modality", "left")):
            table.add_column(col, justify=justify)
        for r in seqs:
            bad = sum(v for k, v in r["absent_reasons"].items() if k in ROW_REASONS)
            table.add_row(r["name"], r["task"], str(r["frames"]), str(r["absent_frames"]), str(bad), r["size"],
                          r["x_modality"])
        console.print(table)
    summary = Table(title=f"{report['dataset']} {report.get('split') or 'all splits'}: per-dataset summary")
    for col in ("dataset", "sequences", "frames", "absent", "absent by reason", "toolkit-invalid"):
        summary.add_column(col, justify="left" if col in ("dataset", "absent by reason") else "right")
    for ds, d in report["summary"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(d["absent_reasons"].items())) or "-"
        summary.add_row(ds, str(d["sequences"]), str(d["frames"]), str(d["absent_frames"]), reasons,
                        str(d["toolkit_invalid"]))
    console.print(summary)
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    for e in report["errors"][:20]:
        console.print(f"[red]bad frame:[/red] {e}")
    if len(report["errors"]) > 20:
        console.print(f"[red]... {len(report['errors']) - 20} more bad frames (inspect.json lists all)[/red]")
