"""What every native reader shares: frame listing, strict annotation parsing and sequence discovery.

Annotation files come from different toolkits, so the separator (comma, tab or spaces) is accepted as
long as one file uses one kind; anything ambiguous is an error naming the file and line rather than a
silently shifted frame index.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from unitrack.errors import ConfigError, DatasetError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")

#: The task each native dataset belongs to (a manifest line must agree with it).
DATASET_TASK = {
    "lasher": "rgbt",
    "rgbt234": "rgbt",
    "gtot": "rgbt",
    "depthtrack": "rgbd",
    "rgbd1k": "rgbd",
    "visevent": "rgbe",
    "got10k": "rgb",
}

SPLITS = ("train", "test")

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders 'f2' before 'f10': releases differ in zero padding."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in _DIGITS.split(name))


def check_split(split: str | None, allowed: tuple[str, ...] = SPLITS) -> None:
    if split is not None and split not in allowed:
        raise ConfigError("split", f"expected null or one of {', '.join(map(repr, allowed))}, got {split!r}")


def require_dir(path: Path, what: str = "dataset root") -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(path, f"{what} not found (expected a folder)")
    return path


def list_frames(folder: Path) -> list[Path]:
    """Image files of one frame folder in natural order; an empty or missing folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "frame folder not found")
    names = [e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_EXTS)]
    if not names:
        raise DatasetError(folder, f"empty sequence: no image frames ({'/'.join(IMAGE_EXTS)})")
    names.sort(key=natural_key)
    return [folder / n for n in names]


def _read_lines(path: Path) -> list[str]:
    """Lines of a text file with CRLF handled and trailing blank lines dropped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "annotation file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not a UTF-8 text file ({e.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_table(path: Path, ncols: int) -> np.ndarray:
    """Numeric rows of `ncols` fields; one separator kind (comma or whitespace) per file.

    Blank lines inside the file are errors because a line's position is its frame index.
    'nan' fields parse as NaN.
    """
    path = Path(path)
    rows: list[list[float]] = []
    sep_kind: str | None = None
    sep_line = 0
    for i, raw in enumerate(_read_lines(path), start=1):
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
        if len(fields) != ncols:
            raise DatasetError(path, f"expected {ncols} fields, got {len(fields)}: {line!r}", line=i)
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise DatasetError(path, f"expected {ncols} numbers, got {line!r}", line=i) from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, ncols)


def read_boxes(path: Path, corners: bool = False) -> np.ndarray:
    """Boxes (N,4) x,y,w,h float64; NaN rows where the target is absent (NaN field or zero size).

    `corners=True` reads x1 y1 x2 y2 and converts with w = x2 - x1 (GTOT). A negative width or height
    is an annotation error, not an absence marker, so it raises.
    """
    b = read_table(path, 4)
    if corners:
        b = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    absent = ~np.isfinite(b).all(1)
    with np.errstate(invalid="ignore"):
        neg = ~absent & ((b[:, 2] < 0) | (b[:, 3] < 0))
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            what = "x2 < x1 or y2 < y1" if corners else "negative width or height"
            raise DatasetError(path, f"{what} (w={b[i, 2]:g}, h={b[i, 3]:g})", line=i + 1)
        absent |= (b[:, 2] == 0) | (b[:, 3] == 0)
    b[absent] = np.nan
    return b


def read_names(path: Path) -> list[tuple[int, str]]:
    """(line number, name) of a split list: one sequence name a line, blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "split list not found")
    return [(i, ln.strip()) for i, ln in enumerate(_read_lines(path), start=1) if ln.strip()]


def check_lengths(seq_dir: Path, rgb: list, x: list, boxes: np.ndarray, rgb_dir: Path, x_dir: Path,
                  box_file: Path) -> None:
    """RGB, X and box rows must align one to one."""
    if len(rgb) != len(x):
        raise DatasetError(seq_dir, f"RGB/X frame-count mismatch: {len(rgb)} frames in {rgb_dir.name}/ "
                           f"but {len(x)} in {x_dir.name}/")
    if len(boxes) != len(rgb):
        raise DatasetError(box_file, f"{len(boxes)} box lines but {len(rgb)} frames in {rgb_dir.name}/")


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


def keep_only(items: list[tuple[str, Path]], only: Iterable[str] | None) -> list[tuple[str, Path]]:
    """Restrict to the named sequences (used by the manifest so it does not parse whole datasets)."""
    if only is None:
        return items
    wanted = set(only)
    return [(n, p) for n, p in items if n in wanted]
