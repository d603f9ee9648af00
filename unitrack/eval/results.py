"""Tracker result files: the pytracking layout we write and score, plus exporters for got10k and VOT.

Our layout (pytracking's): ``<dir>/<name>.txt`` with one ``x,y,w,h`` line per frame (frame 0 = the
initial box) and ``<dir>/<name>_confidence.txt`` with one confidence per frame. Sequence ids may be
uids ``"dataset/name"``; only the part after the last '/' names the files, so results of one benchmark
live in one flat folder like the official toolkits expect. Every file is written to a temporary file
and renamed into place, so an interrupted run never leaves a half-written result that looks complete.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack.errors import ResultsError

BOX_FMT = "%.4f"
CONF_FMT = "%.6f"
_SPLIT = re.compile(r"[,\t ]+")


def file_stem(seq_name: str) -> str:
    """The name used for files: a uid ``dataset/name`` contributes only ``name``."""
    stem = str(seq_name).replace("\\", "/").rstrip("/").split("/")[-1]
    if not stem or stem in (".", ".."):
        raise ValueError(f"sequence name {seq_name!r} gives no usable file name")
    return stem


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter before Python 3.13)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would give 0666 - umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fmt(v: float, fmt: str) -> str:
    return "nan" if not np.isfinite(v) else fmt % v


def _box_lines(boxes: np.ndarray, sep: str = ",") -> list[str]:
    return [sep.join(_fmt(v, BOX_FMT) for v in row) for row in boxes]


def _check_boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x,y,w,h, got shape {b.shape}")
    return b


def _check_values(values, n: int, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) != n:
        raise ValueError(f"{what} has {len(v)} values for {n} boxes")
    return v


def write_results(dir: Path | str, seq_name: str, boxes, confidences=None) -> Path:
    """Write ``<dir>/<name>.txt`` (comma x,y,w,h, 4 decimals) and, when given, ``<name>_confidence.txt``."""
    b = _check_boxes(boxes)
    stem = file_stem(seq_name)
    out = write_text_atomic(Path(dir) / f"{stem}.txt", "\n".join(_box_lines(b)) + "\n")
    if confidences is not None:
        c = _check_values(confidences, len(b), "confidences")
        write_text_atomic(Path(dir) / f"{stem}_confidence.txt", "\n".join(_fmt(v, CONF_FMT) for v in c) + "\n")
    return out


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ResultsError(path, "result file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(path, f"cannot read result file ({e})") from e
    lines = text.splitlines()  # handles CRLF (LasHeR-style files)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _check_count(path: Path, n: int, expected_frames: int | None, allow_longer: bool) -> None:
    if expected_frames is None:
        return
    if n < expected_frames:
        raise ResultsError(path, f"has {n} lines but the sequence has {expected_frames} frames (truncated run?)")
    if n > expected_frames and not allow_longer:
        raise ResultsError(path, f"has {n} lines but the sequence has {expected_frames} frames")


def read_results(path: Path | str, expected_frames: int | str | None = None, allow_longer: bool = False):
    """Read x,y,w,h boxes separated by commas, tabs or spaces -> (N, 4) float64.

    With ``expected_frames`` the line count must match; ``allow_longer`` accepts longer files and cuts
    them to the sequence length (the LasHeR / VisEvent / got10k toolkits truncate). 'nan' is accepted.
    ``read_results(results_dir, seq_name)`` (a name instead of a count) is :func:`read_sequence_results`.
    """
    if isinstance(expected_frames, str):
        return read_sequence_results(path, expected_frames)
    path = Path(path)
    lines = _lines(path)
    if not lines:
        raise ResultsError(path, "result file is empty")
    _check_count(path, len(lines), expected_frames, allow_longer)
    out = read_results_text(path, lines)
    return out[:expected_frames] if expected_frames is not None else out


def read_confidences(path: Path | str, expected_frames: int | None = None, allow_longer: bool = False) -> np.ndarray:
    """One confidence per line -> (N,) float64; an empty line (VOT's initialisation frame) reads as NaN."""
    path = Path(path)
    lines = _lines(path)
    if not lines:
        raise ResultsError(path, "confidence file is empty")
    _check_count(path, len(lines), expected_frames, allow_longer)
    vals = []
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        try:
            vals.append(float(s) if s else float("nan"))
        except ValueError:
            raise ResultsError(path, f"cannot parse a confidence from {s!r}", line=i) from None
    out = np.asarray(vals, dtype=np.float64)
    return out[:expected_frames] if expected_frames is not None else out


def read_sequence_results(results_dir: Path | str, seq_name: str, expected_frames: int | None = None,
                          allow_longer: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(boxes, confidences or None when ``<name>_confidence.txt`` does not exist) of one sequence."""
    stem = file_stem(seq_name)
    boxes = read_results(Path(results_dir) / f"{stem}.txt", expected_frames, allow_longer)
    cpath = Path(results_dir) / f"{stem}_confidence.txt"
    conf = read_confidences(cpath, expected_frames, allow_longer) if cpath.is_file() else None
    return boxes, conf


#: result layouts `score` reads (`results_layout=`): ours, pytracking's per-dataset folders, and the
#: got10k / VOT long-term exports of `eval.export` (and of those toolkits).
LAYOUTS = ("pytracking", "pytracking_nested", "got10k", "vot")


def layout_paths(results_dir: Path | str, seq_uid: str, layout: str) -> tuple[Path, Path]:
    """(box file, confidence file) of a sequence (uid ``dataset/name``) in a results layout."""
    d, stem = Path(results_dir), file_stem(seq_uid)
    if layout == "pytracking":
        return d / f"{stem}.txt", d / f"{stem}_confidence.txt"
    if layout == "pytracking_nested":  # <dir>/<dataset>/<name>.txt, or found once anywhere below <dir>
        parts = str(seq_uid).replace("\\", "/").split("/")
        direct = d.joinpath(*parts[:-1]) / f"{stem}.txt"
        if not direct.is_file():
            hits = sorted(d.rglob(f"{stem}.txt"))
            if len(hits) > 1:
                raise ResultsError(d, f"{len(hits)} files named {stem}.txt below it ({hits[0]}, {hits[1]}, ...); "
                                   "give the dataset's own folder")
            direct = hits[0] if hits else direct
        return direct, direct.with_name(f"{stem}_confidence.txt")
    if layout == "got10k":
        return d / stem / f"{stem}_001.txt", d / stem / f"{stem}_001_confidence.value"
    if layout == "vot":
        base = d / "longterm" if (d / "longterm").is_dir() else d
        return base / stem / f"{stem}_001.txt", base / stem / f"{stem}_001_confidence.value"
    raise ValueError(f"unknown results layout {layout!r}; choose one of {', '.join(LAYOUTS)}")


def read_layout(results_dir: Path | str, seq_uid: str, init_box, layout: str = "pytracking"
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """(boxes, confidences or None) of one sequence in `layout`, uncut (the caller compares lengths).

    VOT files start with the initialisation marker ``1`` (frame 0 is the given box, `init_box`) and
    write a reported absence as ``0,0,0,0`` (read as NaN); their confidence files start empty (NaN).
    """
    bpath, cpath = layout_paths(results_dir, seq_uid, layout)
    if layout == "vot":
        lines = _lines(bpath)
        if not lines or lines[0].strip() != "1":
            raise ResultsError(bpath, "a VOT result file starts with the initialisation line '1'", line=1)
        rest = read_results_text(bpath, lines[1:], first_line=2) if len(lines) > 1 else np.zeros((0, 4))
        rest[(rest == 0).all(1)] = np.nan
        boxes = np.concatenate([np.asarray(init_box, dtype=np.float64).reshape(1, 4), rest])
    else:
        boxes = read_results(bpath)
    conf = read_confidences(cpath) if cpath.is_file() else None
    return boxes, conf


def read_results_text(path: Path, lines: list[str], first_line: int = 1) -> np.ndarray:
    """Lines of x,y,w,h (any of comma / tab / space) -> (N, 4); errors name the file and line."""
    rows = []
    for i, line in enumerate(lines, start=first_line):
        fields = [f for f in _SPLIT.split(line.strip()) if f]
        if len(fields) != 4:
            raise ResultsError(path, f"expected 4 values x,y,w,h, found {len(fields)}: {line.strip()!r}", line=i)
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise ResultsError(path, f"cannot parse numbers in {line.strip()!r}", line=i) from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def export_got10k(dir: Path | str, seq_name: str, boxes, times: Iterable[float] | None = None) -> Path:
    """got10k layout: ``<dir>/<name>/<name>_001.txt`` (comma boxes) and ``<name>_time.txt`` (seconds)."""
    b = _check_boxes(boxes)
    stem = file_stem(seq_name)
    folder = Path(dir) / stem
    out = write_text_atomic(folder / f"{stem}_001.txt", "\n".join(_box_lines(b)) + "\n")
    if times is not None:
        t = _check_values(list(times), len(b), "times")
        write_text_atomic(folder / f"{stem}_time.txt", "\n".join(f"{v:.8f}" for v in t) + "\n")
    return out


def export_vot(dir: Path | str, seq_name: str, boxes, confidences, times: Iterable[float] | None = None) -> Path:
    """VOT long-term layout: ``<dir>/longterm/<name>/<name>_001.txt`` whose first line is ``1`` (the
    initialisation marker) followed by the boxes of frames 1..N-1, and ``<name>_001_confidence.value``
    whose first line is empty (no confidence at initialisation). A NaN box (target reported absent) is
    written as the empty rectangle ``0,0,0,0``."""
    b = _check_boxes(boxes)
    c = _check_values(confidences, len(b), "confidences")
    if len(b) == 0:
        raise ValueError("no boxes to export")
    stem = file_stem(seq_name)
    folder = Path(dir) / "longterm" / stem
    body = np.where(np.isfinite(b).all(1, keepdims=True), b, 0.0)[1:]
    out = write_text_atomic(folder / f"{stem}_001.txt", "\n".join(["1", *_box_lines(body)]) + "\n")
    write_text_atomic(folder / f"{stem}_001_confidence.value",
                      "\n".join(["", *(_fmt(v, CONF_FMT) for v in c[1:])]) + "\n")
    if times is not None:
        t = _check_values(list(times), len(b), "times")
        write_text_atomic(folder / f"{stem}_001_time.value", "\n".join(f"{v:.8f}" for v in t) + "\n")
    return out
