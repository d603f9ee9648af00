"""A stage's CSV log that survives a mid-stage resume.

Lightning's CSVLogger deletes an existing metrics.csv when it opens its folder: the log of a
killed-and-resumed stage kept only the rows after the resume. This logger keeps the rows logged before the
resume point (`resume_step`, the stage steps last.ckpt holds; Lightning's restored step counter numbers the
rows after it), so the file reads as if the stage had never been interrupted (rows logged after the last
checkpoint and then lost to the kill are dropped: the resumed run logs those steps again).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger


class StageCSVLogger(CSVLogger):
    def __init__(self, *args: Any, resume_step: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the writer (which deletes metrics.csv) is made lazily, later
        kept: list[dict[str, str]] = []
        keys: list[str] = []
        old = Path(self.log_dir) / "metrics.csv"
        if resume_step > 0 and old.is_file():
            with open(old, newline="") as f:
                rows = csv.DictReader(f)
                keys = list(rows.fieldnames or [])
                kept = [r for r in rows if r.get("step", "") != "" and int(float(r["step"])) < resume_step]
        if kept:
            w = self.experiment  # opening the writer deletes the old file; write the kept rows back
            w.metrics_keys = sorted(keys)
            with open(w.metrics_file_path, "w", newline="") as f:
                out = csv.DictWriter(f, fieldnames=w.metrics_keys)
                out.writeheader()
                out.writerows(kept)
