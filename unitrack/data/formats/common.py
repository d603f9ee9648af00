"""What every native reader shares: frame listing, annotation parsing and sequence discovery.

Parsing is strict about what cannot be read (a wrong field count, text, mixed separators, `inf`: an
error naming the file and line, never a silently shifted frame index) and lenient about what the
released files really contain: a row the dataset's toolkit treats as invalid (zero or negative size,
NaN, `0,0,0,0`, a VOT one-value line) is an ABSENT frame of the sequence, counted by reason in
`Sequence.absent_reasons`, with the file's values kept in `Sequence.raw_boxes` for the toolkits' scoring.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unitrack.data.sequence import FrameList, Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE, check_sequence
from unitrack.errors import ConfigError, DatasetError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")

#: The task each native dataset belongs to (a manifest line must agree with it).
DATASET_TASK = {
    "lasher": "rgbt",
    "rgbt234": "rgbt",
    "rgbt210": "rgbt",
    "gtot": "rgbt",
    "depthtrack": "rgbd",
    "rgbd1k": "rgbd",
    "visevent": "rgbe",
    "got10k": "rgb",
    "lasot": "rgb",
    "trackingnet": "rgb",
}

SPLITS = ("train", "test")

#: Box formats a reader may be told to expect (`options.box_format`): None = x,y,w,h, and a file that
#: looks like corners is an error; "xywh" = x,y,w,h without that check; "corners" = x1,y1,x2,y2.
BOX_FORMATS = (None, "xywh", "corners")
#: Reasons a gt row is read as absent that come from the row itself (listed by `inspect` as invalid rows).
ROW_REASONS = ("zero size", "negative size", "nan", "no region")
#: Corner-format detection needs this many DISTINCT boxed rows (a static box proves nothing): on the real
#: LasHeR / RGBT234 / RGBT210 files no x,y,w,h file has w > x and h > y on every row (the closest: 125 of
#: whitecarstart126's 126), while every GTOT corner file has x2 > x1 and y2 > y1 on all of them.
CORNER_MIN_ROWS = 10
#: ... and the box must move by at least this much (std, px) along an axis for that axis to vote.
CORNER_MOVE_PX = 2.0
#: ... unless its 3rd/4th column steps against its position (a zooming x,y,w,h box near the origin)
CORNER_ANTI_CORR = -0.25

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders 'f2' before 'f10': releases differ in zero padding."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in _DIGITS.split(name))


def check_split(split: str | None, allowed: tuple[str, ...] = SPLITS) -> None:
    if split is not None and split not in allowed:
        raise ConfigError("split", f"expected null or one of {', '.join(map(repr, allowed))}, got {split!r}")


def check_box_format(box_format: str | None) -> None:
    if box_format not in BOX_FORMATS:
        raise ConfigError("options.box_format", f"expected null, 'xywh' or 'corners', got {box_format!r}")


def require_dir(path: Path, what: str = "dataset root") -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(path, f"{what} not found (expected a folder)")
    return path


def require_found(items, root: Path, dataset: str, layout: str):
    """A reader that finds no sequence fails, naming the root and the layout it looked for."""
    if not items:
        raise DatasetError(root, f"no {dataset} sequences found (expected {layout})")
    return items


_MASK = str.maketrans("0123456789", "0000000000")
_ONE_RUN = re.compile(r"(\D*)(\d+)(\D*)")


def sort_natural(names: list[str]) -> list[str]:
    """Sort in place by `natural_key`, taking the shortcuts frame folders allow (1.5M LasHeR names: the
    general key costs ~2 us a name): names with digits at the same positions sort as plain strings, and
    names that differ only in one number (TrackingNet's 0.jpg ... 999.jpg) by that number."""
    if not names:
        return names
    masks = {n.translate(_MASK) for n in names}
    if len(masks) == 1:
        names.sort()
        return names
    parts = [_ONE_RUN.fullmatch(n) for n in names]
    if all(parts) and len({(m.group(1).lower(), m.group(3).lower()) for m in parts}) == 1:
        order = sorted(range(len(names)), key=lambda i: (int(parts[i].group(2)), names[i]))
        names[:] = [names[i] for i in order]
        return names
    names.sort(key=natural_key)
    return names


def list_frames(folder: Path) -> FrameList:
    """Image files of one frame folder in natural order; an empty or missing folder is an error."""
    folder = Path(folder)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.lower().endswith(IMAGE_EXTS)]
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(folder, "frame folder not found") from None
    if not names:
        raise DatasetError(folder, f"empty sequence: no image frames ({'/'.join(IMAGE_EXTS)})")
    return FrameList(folder, sort_natural(names))


def _read_lines(path: Path) -> list[str]:
    """Lines of a text file with CRLF handled and trailing blank lines dropped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        raise DatasetError(path, "annotation file not found") from None
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not a UTF-8 text file ({e.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _fields(path: Path, lines: list[str], counts: tuple[int, ...] | None) -> list[list[str]]:
    """Fields of every line; one separator kind (comma or whitespace) per file; blank lines are errors.

    `counts`: the accepted field counts (None: any, checked by the caller).
    """
    out: list[list[str]] = []
    sep_kind: str | None = None
    sep_line = 0
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            raise DatasetError(path, "blank line (one line per frame expected)", line=i)
        kind = "comma" if "," in line else ("whitespace" if len(line.split()) > 1 else None)
        if kind is not None:
            if sep_kind is None:
                sep_kind, sep_line = kind, i
            elif kind != sep_kind:
                raise DatasetError(
                    path, f"mixed separators: {kind}-separated here but {sep_kind}-separated at line "
                    f"{sep_line} (use one separator per file)", line=i)
        fields = [f.strip() for f in line.split(",")] if kind == "comma" else line.split()
        if counts is not None and len(fields) not in counts:
            want = " or ".join(map(str, counts))
            raise DatasetError(path, f"expected {want} fields, got {len(fields)}: {line!r}", line=i)
        out.append(fields)
    return out


def _numbers(path: Path, line: int, fields: list[str]) -> list[float]:
    try:
        v = [float(f) for f in fields]
    except ValueError:
        raise DatasetError(path, f"expected numbers, got {','.join(fields)!r}", line=line) from None
    if any(math.isinf(x) for x in v):
        raise DatasetError(path, f"infinite value in {','.join(fields)!r} (write nan for an absent target)",
                           line=line)
    return v


def _fast_table(lines: list[str], ncols: int) -> np.ndarray | None:
    """The common case (one comma- or whitespace-separated row of ncols numbers a line) through numpy's
    C parser (3-4x the Python loop on LasHeR's 734K rows); None when anything is unusual, so the
    line-by-line parser finds and names the problem."""
    if not lines:
        return None
    try:
        if "," in lines[0]:
            if any(ln.count(",") != ncols - 1 for ln in lines):
                return None
            a = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        else:
            if any("," in ln or not ln.strip() for ln in lines):
                return None
            a = np.loadtxt(lines, dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        return None
    return a if a.shape == (len(lines), ncols) and not np.isinf(a).any() else None


def read_table(path: Path, ncols: int) -> np.ndarray:
    """Numeric rows of `ncols` fields; one separator kind (comma or whitespace) per file.

    Blank lines inside the file are errors because a line's position is its frame index.
    'nan' fields parse as NaN; 'inf' is an error.
    """
    path = Path(path)
    lines = _read_lines(path)
    fast = _fast_table(lines, ncols)
    if fast is not None:
        return fast
    rows = [_numbers(path, i, f) for i, f in enumerate(_fields(path, lines, (ncols,)), start=1)]
    return np.asarray(rows, dtype=np.float64).reshape(-1, ncols)


@dataclass
class GroundTruth:
    """One annotation file read: raw x,y,w,h rows and, per reason, the rows that are absent frames."""

    path: Path
    raw: np.ndarray  # (N, 4) the file's boxes as x,y,w,h (corners / polygons converted); NaN: no box
    reasons: dict[str, np.ndarray] = field(default_factory=dict)  # reason -> (N,) bool
    sources: dict[str, Path] = field(default_factory=dict)  # reason -> the file that says so (default: path)

    def __len__(self) -> int:
        return len(self.raw)

    def mark(self, reason: str, mask: np.ndarray, source: Path | None = None) -> None:
        """Add frames a label file (or cover, occlusion ...) says are absent."""
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if len(mask) != len(self):
            raise DatasetError(source or self.path, f"{len(mask)} label lines but {len(self)} frames")
        if mask.any():
            self.reasons[reason] = self.reasons.get(reason, np.zeros(len(self), bool)) | mask
            if source is not None:
                self.sources[reason] = Path(source)

    @property
    def absent(self) -> np.ndarray:
        out = np.zeros(len(self), bool)
        for m in self.reasons.values():
            out |= m
        return out

    @property
    def boxes(self) -> np.ndarray:
        """Boxes with every absent frame's row NaN (what training and the tracker use)."""
        b = self.raw.copy()
        b[self.absent] = np.nan
        return b

    def counts(self) -> dict[str, int]:
        return {k: int(v.sum()) for k, v in self.reasons.items() if v.any()}

    def pad(self, n: int, reason: str = "unannotated") -> GroundTruth:
        """Extend to n frames with unannotated rows (test splits that publish the first frame only)."""
        k = n - len(self)
        if k <= 0:
            return self
        raw = np.vstack([self.raw, np.full((k, 4), np.nan)])
        reasons = {r: np.concatenate([m, np.zeros(k, bool)]) for r, m in self.reasons.items()}
        gt = GroundTruth(self.path, raw, reasons, dict(self.sources))
        gt.mark(reason, np.arange(n) >= n - k)
        return gt

    def check_init(self) -> None:
        """Tracking starts from frame 0's box: a sequence whose frame 0 is absent cannot be tracked."""
        why = [r for r, m in self.reasons.items() if m[0]]
        if why:
            raise DatasetError(self.sources.get(why[0], self.path),
                               f"frame 0 has no target box ({', '.join(why)}: {_row(self.raw[0])}); tracking "
                               "starts from frame 0, so this sequence can only be read for training "
                               "(split=train)", line=1)


def _row(b: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in b)


def build_sequence(name: str, task: str, dataset: str, rgb: list[Path], x: list[Path], gt: GroundTruth,
                   modality: str, split: str | None, tolerance: float | None = DEFAULT_TOLERANCE,
                   gt_x: GroundTruth | None = None) -> Sequence:
    """The Sequence of a reader, checked: frame 0 present (unless read for training), constant frame
    size and boxes inside the image (see data/validation.py)."""
    if split != "train":
        gt.check_init()
    seq = Sequence(name, task, dataset, rgb, x, gt.boxes, modality,
                   boxes_x=None if gt_x is None else gt_x.boxes, raw_boxes=gt.raw,
                   raw_boxes_x=None if gt_x is None else gt_x.raw, gt_file=gt.path, absent_reasons=gt.counts())
    check_sequence(seq, tolerance, gt_x_file=None if gt_x is None else gt_x.path, init_frame=split != "train")
    return seq


def _vot_row(path: Path, line: int, fields: list[str]) -> tuple[list[float], str | None]:
    """One VOT region line as x,y,w,h and the absence reason (None: a box).

    As the VOT toolkit parses regions (vot/region/io.py): one value = a special code (no region); four =
    a rectangle; an even count >= 6 = a polygon, converted to its axis-aligned bounding box
    (left, top, right - left, bottom - top); any NaN makes the whole region empty.
    """
    if fields and fields[0].startswith("m"):
        raise DatasetError(path, "VOT mask regions ('m...') are not supported; expected rectangles or polygons",
                           line=line)
    n = len(fields)
    if n == 1:
        _numbers(path, line, fields)
        return [math.nan] * 4, "no region"
    if n != 4 and (n < 6 or n % 2):
        raise DatasetError(path, f"expected a VOT region: 1 value, 4 (x,y,w,h) or an even count >= 6 (polygon), "
                           f"got {n}: {','.join(fields)!r}", line=line)
    v = _numbers(path, line, fields)
    if any(math.isnan(x) for x in v):
        return [math.nan] * 4, "nan"
    if n == 4:
        return v, None
    xs, ys = v[0::2], v[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], None


def read_boxes(path: Path, box_format: str | None = None) -> GroundTruth:
    """An annotation file of boxes, one line a frame.

    box_format: None / "xywh" / "corners" (see BOX_FORMATS; corners convert with w = x2 - x1) or "vot"
    (region lines: rectangles, polygons, one-value lines). Zero, negative and NaN sizes become absent rows
    with their reason; unparsable lines and `inf` are errors naming the line.
    """
    path = Path(path)
    lines = _read_lines(path)
    no_region = np.zeros(len(lines), bool)
    if box_format == "vot":
        parsed = [_vot_row(path, i, f) for i, f in enumerate(_fields(path, lines, None), start=1)]
        raw = np.asarray([p[0] for p in parsed], dtype=np.float64).reshape(-1, 4)
        no_region = np.asarray([p[1] == "no region" for p in parsed], dtype=bool)
    else:
        raw = read_table(path, 4)
        if box_format == "corners":
            raw = np.stack([raw[:, 0], raw[:, 1], raw[:, 2] - raw[:, 0], raw[:, 3] - raw[:, 1]], axis=1)
        elif box_format is None:
            _check_not_corners(path, raw)
    nan = ~np.isfinite(raw).all(1) & ~no_region
    with np.errstate(invalid="ignore"):
        zero = ~nan & ~no_region & ((raw[:, 2] == 0) | (raw[:, 3] == 0))
        neg = ~nan & ~no_region & ((raw[:, 2] < 0) | (raw[:, 3] < 0))
    gt = GroundTruth(path, raw)
    for reason, mask in zip(ROW_REASONS, (zero, neg, nan, no_region)):
        gt.mark(reason, mask)
    return gt


def _moves_with_corner(b: np.ndarray) -> bool:
    """In a corner file read as x,y,w,h the "width" is x2 = x1 + true width, so it travels with x as the
    target moves; a real x,y,w,h file's size stays put while its position moves. Along the axis the box
    moves most (if it moves at all: std >= CORNER_MOVE_PX) the 3rd/4th column must vary at least half as
    much as the position, so a fixed-size target parked near the top-left corner is not taken for corners
    (all 100 GTOT corner files still are). A box whose 3rd/4th column moves AGAINST its position frame to
    frame (correlation of the steps below CORNER_ANTI_CORR) is a zooming x,y,w,h box growing towards the
    origin, not corners: a corner x2 follows x1 (the real GTOT files: correlation >= -0.07)."""
    axis = int(np.argmax([b[:, 0].std(), b[:, 1].std()]))
    pos, size = b[:, axis], b[:, axis + 2]
    if pos.std() < CORNER_MOVE_PX:
        return True
    dp, ds = np.diff(pos), np.diff(size)
    if dp.std() > 0 and ds.std() > 0 and np.corrcoef(dp, ds)[0, 1] < CORNER_ANTI_CORR:
        return False
    return bool(size.std() >= 0.5 * pos.std())


def _check_not_corners(path: Path, raw: np.ndarray) -> None:
    """x1,y1,x2,y2 read as x,y,w,h gives w > x and h > y on every row: say so instead of scoring it."""
    with np.errstate(invalid="ignore"):
        boxed = np.isfinite(raw).all(1) & (raw[:, 2] > 0) & (raw[:, 3] > 0)
        b = raw[boxed]
        if len(b) >= CORNER_MIN_ROWS and ((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all() \
                and len(np.unique(b, axis=0)) >= CORNER_MIN_ROWS and _moves_with_corner(b):
            raise DatasetError(
                path, f"looks like corner format x1,y1,x2,y2, not x,y,w,h (on all {len(b)} boxed rows the 3rd "
                "value exceeds the 1st and the 4th the 2nd): set options.box_format=corners to read it as "
                "corners, or options.box_format=xywh to keep x,y,w,h")


def read_names(path: Path) -> list[tuple[int, str]]:
    """(line number, name) of a split list: one sequence name a line, blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "split list not found")
    return [(i, ln.strip()) for i, ln in enumerate(_read_lines(path), start=1) if ln.strip()]


def check_lengths(seq_dir: Path, rgb: list, x: list, n_boxes: int, rgb_dir: Path, x_dir: Path,
                  box_file: Path) -> None:
    """RGB, X and box rows must align one to one."""
    if len(rgb) != len(x):
        raise DatasetError(seq_dir, f"RGB/X frame-count mismatch: {len(rgb)} frames in {rgb_dir.name}/ "
                           f"but {len(x)} in {x_dir.name}/")
    if n_boxes != len(rgb):
        raise DatasetError(box_file, f"{n_boxes} box lines but {len(rgb)} frames in {rgb_dir.name}/")


def discover(root: Path, is_sequence: Callable[[Path], bool], max_depth: int = 3) -> dict[str, Path]:
    """Sequence folders at most `max_depth` levels down (root/<seq>, root/test/<seq>, root/A/b/<seq>).

    A folder that looks like a sequence is not searched further. The same name found twice is an error:
    picking one silently would mix releases.
    """
    found: dict[str, Path] = {}
    level = [Path(root)]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                entries = sorted((e for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")),
                                 key=lambda e: natural_key(e.name))
            except OSError:
                continue
            for e in entries:
                p = Path(e.path)
                if is_sequence(p):
                    if e.name in found:
                        raise DatasetError(p, f"sequence {e.name!r} found twice (also at {found[e.name]})")
                    found[e.name] = p
                else:
                    nxt.append(p)
        level = nxt
    return found


def select(found: dict[str, Path], list_file: Path | None, root: Path) -> list[tuple[str, Path]]:
    """Sequences named by a split list (in its order), or all found in natural order when no list."""
    if list_file is None:
        return sorted(found.items(), key=lambda kv: natural_key(kv[0]))
    out = []
    for line, name in read_names(list_file):
        if name not in found:
            raise DatasetError(list_file, f"sequence {name!r} not found under {root}", line=line)
        out.append((name, found[name]))
    return out


def split_by_folder(found: dict[str, Path], root: Path, split: str) -> list[tuple[str, Path]]:
    """Sequences whose path below root has a folder naming the split (TrainingSet/, test/, ...)."""
    out = []
    for name, p in sorted(found.items(), key=lambda kv: natural_key(kv[0])):
        parts = [q.lower() for q in p.relative_to(root).parts[:-1]]
        if any(split in q for q in parts):
            out.append((name, p))
    return out


def keep_only(items: list[tuple[str, Path]], only: Iterable[str] | None) -> list[tuple[str, Path]]:
    """Restrict to the named sequences (used by the manifest so it does not parse whole datasets)."""
    if only is None:
        return items
    wanted = set(only)
    return [(n, p) for n, p in items if n in wanted]
