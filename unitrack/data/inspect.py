"""`unitrack inspect`: read a dataset the way training will and say what is in it, or exactly what is wrong.

Reading already checks frame counts and box rows; on top of that the first RGB and X frame of every
sequence is decoded, which catches wrong formats (e.g. an 8-bit depth PNG) without decoding every frame.
"""

from __future__ import annotations

from pathlib import Path

from unitrack.data.formats import load_dataset
from unitrack.data.sequence import load_frame


def inspect_dataset(name: str, root: str | Path, split: str | None = None, **options) -> dict:
    """Per-sequence summary; raises DatasetError (naming the file) on the first invalid sequence."""
    sequences = load_dataset(name, root, split, **options)
    rows = []
    for seq in sequences:
        load_frame(seq, 0)
        rows.append({
            "name": seq.name,
            "task": seq.task,
            "frames": len(seq),
            "absent_frames": int((~seq.visible).sum()),
            "x_modality": seq.x_modality,
        })
    return {"dataset": name, "sequences": rows}


def print_table(report: dict, console=None) -> None:
    """One row per sequence plus a total row."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"dataset {report['dataset']}: {len(report['sequences'])} sequences")
    for col, justify in (("sequence", "left"), ("task", "left"), ("frames", "right"),
                         ("absent", "right"), ("X modality", "left")):
        table.add_column(col, justify=justify)
    for r in report["sequences"]:
        table.add_row(r["name"], r["task"], str(r["frames"]), str(r["absent_frames"]), r["x_modality"])
    frames = sum(r["frames"] for r in report["sequences"])
    absent = sum(r["absent_frames"] for r in report["sequences"])
    table.add_section()
    table.add_row("total", "", str(frames), str(absent), "")
    console.print(table)
