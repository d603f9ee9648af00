"""The native layouts the readers in unitrack/data/formats read unchanged, plus their attribute files.

LasHeR: <seq>/visible/v000000.jpg, infrared/i000000.jpg, CRLF visible.txt = infrared.txt = init.txt
(integers, 0,0,0,0 absent); AttriSeqsTxt/<seq>.txt + Attributes_order.txt at the root.
DepthTrack: <seq>/color/00000001.jpg, depth/00000001.png (16-bit mm), groundtruth.txt (nan rows absent),
and VOT-style per-frame <tag>.tag files. VisEvent: <seq>/vis_imgs/frame0001.bmp, event_imgs/, integer
groundtruth.txt, absent_label.txt (1 = present, as the raw release), annos/att/<seq>.txt at the root.
GOT-10k: <split>/<seq>/00000001.jpg, groundtruth.txt, absence.label, cover.label, list.txt per split.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unitrack.data.formats.attributes import LASHER_ORDER
from unitrack.data.synth.attributes import depth_tags, lasher_line, visevent_lines
from unitrack.data.synth.render import SynthSequence

TASK_DATASET = {"rgbt": "lasher", "rgbd": "depthtrack", "rgbe": "visevent"}
RGB_DATASET = "got10k"
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; the file stays lossless
_JPG = [cv2.IMWRITE_JPEG_QUALITY, 90]


def lines(rows: list[str], crlf: bool = False) -> str:
    nl = "\r\n" if crlf else "\n"
    return nl.join(rows) + nl


def imwrite(path: Path, img: np.ndarray) -> None:
    params = _PNG if path.suffix == ".png" else _JPG if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), img, params):
        raise OSError(f"cannot write image {path}")


def _frames(seq_dir: Path, s: SynthSequence, rgb: str, x: str, start: int) -> None:
    """RGB and X frames into their folders; `rgb`/`x` are 'folder/name{i}.ext' patterns."""
    for pattern in (rgb, x):
        (seq_dir / pattern).parent.mkdir(parents=True)
    for i, (a, b) in enumerate(zip(s.rgb, s.x), start=start):
        imwrite(seq_dir / rgb.format(i=i), a)
        imwrite(seq_dir / x.format(i=i), b)


def write_lasher(seq_dir: Path, s: SynthSequence) -> None:
    _frames(seq_dir, s, "visible/v{i:06d}.jpg", "infrared/i{i:06d}.jpg", 0)
    text = lines([",".join(str(int(v)) for v in b) for b in s.boxes], crlf=True)
    for name in ("visible.txt", "infrared.txt", "init.txt"):
        (seq_dir / name).write_bytes(text.encode())
    att = seq_dir.parent.parent / "AttriSeqsTxt"
    att.mkdir(exist_ok=True)
    (att / f"{seq_dir.name}.txt").write_text(lasher_line(s.attributes))


def write_lasher_order(root: Path) -> None:
    (root / "Attributes_order.txt").write_text(", ".join(LASHER_ORDER) + " ")  # as released: trailing space


def write_depthtrack(seq_dir: Path, s: SynthSequence) -> None:
    _frames(seq_dir, s, "color/{i:08d}.jpg", "depth/{i:08d}.png", 1)
    rows = [",".join(f"{float(v):.4f}" for v in b) if p else "nan,nan,nan,nan" for b, p in zip(s.boxes, s.present)]
    (seq_dir / "groundtruth.txt").write_text(lines(rows))
    for tag, v in depth_tags(s.attributes, s.per_frame, len(s.boxes)).items():
        (seq_dir / f"{tag}.tag").write_text(lines([str(int(x)) for x in v]))


def write_visevent(seq_dir: Path, s: SynthSequence) -> None:
    _frames(seq_dir, s, "vis_imgs/frame{i:04d}.bmp", "event_imgs/frame{i:04d}.bmp", 1)
    (seq_dir / "groundtruth.txt").write_text(lines([",".join(str(int(v)) for v in b) for b in s.boxes]))
    (seq_dir / "absent_label.txt").write_text(lines([str(int(p)) for p in s.present]))
    att = seq_dir.parent.parent / "annos" / "att"
    att.mkdir(parents=True, exist_ok=True)
    (att / f"{seq_dir.name}.txt").write_text(lines(visevent_lines(s.attributes)))


def write_got10k(seq_dir: Path, s: SynthSequence) -> None:
    """RGB frames only, 1-based 8-digit names; absence.label 1 = absent, cover.label in eighths (0 / 8)."""
    seq_dir.mkdir(parents=True)
    for i, rgb in enumerate(s.rgb):
        imwrite(seq_dir / f"{i + 1:08d}.jpg", rgb)
    (seq_dir / "groundtruth.txt").write_text(lines([",".join(f"{float(v):.4f}" for v in b) for b in s.boxes]))
    (seq_dir / "absence.label").write_text(lines([str(int(not p)) for p in s.present]))
    cover = [str(int(np.clip(np.ceil(8 * (1 - o) * f), 1, 8))) if p else "0"
             for p, o, f in zip(s.present, s.occluded, s.in_frame)]
    (seq_dir / "cover.label").write_text(lines(cover))


WRITERS = {"rgbt": write_lasher, "rgbd": write_depthtrack, "rgbe": write_visevent, "rgb": write_got10k}


def write_lists(root: Path, task: str, names: dict[str, list[str]]) -> None:
    """Each dataset's split lists where its readers look for them."""
    if task == "rgbt":
        (root / "trainingsetList.txt").write_text(lines(names["train"]))
        (root / "testingsetList.txt").write_text(lines(names["test"]))
        write_lasher_order(root)
    elif task == "rgbe":
        (root / "train" / "trainlist.txt").write_text(lines(names["train"]))
        (root / "test" / "testlist.txt").write_text(lines(names["test"]))
    elif task == "rgb":
        for split, ns in names.items():
            (root / split / "list.txt").write_text(lines(ns))
