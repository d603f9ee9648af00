"""The one `Sequence` type every reader returns, and the image loader shared by training and tracking.

Boxes are x,y,w,h float64 in pixels with NaN rows where the target is absent; `visible` is the mask of
frames with a valid (finite, positive-size) box. `raw_boxes` keeps the annotation file's own values (rows a
dataset's rule turns absent included) because the official toolkits score against the file as written:
LasHeR's kit scores a row with w = -1 differently from a NaN row. X frames are returned as uint8 HxWx3 RGB images: thermal
and event are ordinary colour images, depth is a 16-bit PNG rendered with the clipped JET colour map.
"""

from __future__ import annotations

import copy
from collections import abc
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from unitrack import NO_X
from unitrack.errors import DatasetError

#: Upper clip for depth in millimetres (see reference/datasets.md).
DEPTH_CLIP_MM = 10000


class FrameList(abc.Sequence):
    """The frame paths of one folder, each Path made when asked for.

    A dataset read builds one list per modality per sequence: as Path objects up front that is 1.5M
    Paths for LasHeR (~35 s of a 100 s read, measured), while a frame's Path is needed only when it is
    decoded. Behaves as a read-only list of Paths (index, slice, iterate, len, ==).
    """

    __slots__ = ("folder", "names")

    def __init__(self, folder: Path | str, names: list[str]):
        self.folder, self.names = Path(folder), list(names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return FrameList(self.folder, self.names[i])
        return self.folder / self.names[i]

    def __iter__(self):
        folder = self.folder
        return (folder / n for n in self.names)

    def __eq__(self, other) -> bool:
        if isinstance(other, FrameList):
            return self.folder == other.folder and self.names == other.names
        return isinstance(other, (list, tuple, abc.Sequence)) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"FrameList({str(self.folder)!r}, {len(self)} frames)"


@dataclass
class Sequence:
    """One tracking sequence as every reader returns it: frame paths, boxes and what the toolkits need.

    `boxes` are x,y,w,h in pixels with NaN where the target is absent (what training and tracking use);
    `gt` / `gt_x` are the annotation file's own values, which scoring uses so that each toolkit's rules
    see what they would see. Frames are decoded on demand (`load_frame`); `len(seq)` is the frame count.
    """

    name: str
    task: str  # rgbt | rgbd | rgbe | rgb (RGB-only)
    dataset: str  # lasher | rgbt234 | gtot | depthtrack | rgbd1k | visevent | got10k | ...
    rgb_frames: list[Path]  # or a FrameList (same behaviour, Paths made on access)
    x_frames: list[Path]
    boxes: np.ndarray  # (N, 4) float64 x,y,w,h; NaN where absent
    x_modality: str  # thermal | depth | event | none (RGB-only: x_frames is rgb_frames)
    visible: np.ndarray = field(default=None)  # (N,) bool
    boxes_x: np.ndarray | None = None  # second ground truth (RGBT234/GTOT infrared), same convention
    raw_boxes: np.ndarray | None = None  # the gt file's rows as x,y,w,h (None: same as boxes)
    raw_boxes_x: np.ndarray | None = None  # the same for boxes_x
    gt_file: Path | None = None  # the annotation file boxes come from (named in errors and warnings)
    absent_reasons: dict[str, int] = field(default_factory=dict)  # frames read as absent, by reason
    stats: dict[str, int] = field(default_factory=dict)  # reader-specific counts `inspect` shows (labels ...)
    #: challenge attributes (shared vocabulary, see data/formats/attributes.py); None = none shipped
    attributes: dict[str, bool] | None = None
    #: gt rows whose box centre lies outside the frame ("<file>, line N: box ...: centre ... px beyond ..."):
    #: scored as they are, as the toolkits do, and reported (data/validation.py)
    outside_rows: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if self.visible is None:
            self.visible = visible_mask(self.boxes)
        self.visible = np.asarray(self.visible, dtype=bool)

    def __len__(self) -> int:
        return len(self.rgb_frames)

    @property
    def gt(self) -> np.ndarray:
        """The ground truth as the toolkits read it (raw file values; NaN only where the file has no box)."""
        return self.boxes if self.raw_boxes is None else self.raw_boxes

    @property
    def gt_x(self) -> np.ndarray | None:
        """The second ground truth as the toolkits read it (None when the dataset has one)."""
        if self.boxes_x is None:
            return None
        return self.boxes_x if self.raw_boxes_x is None else self.raw_boxes_x

    def head(self, n: int) -> Sequence:
        """The first n frames (all when n <= 0) as a new Sequence; every per-frame array is cut alike."""
        if n <= 0 or n >= len(self):
            return copy.copy(self)
        cut = (lambda a: None if a is None else a[:n])  # noqa: E731
        return replace(self, rgb_frames=self.rgb_frames[:n], x_frames=self.x_frames[:n], boxes=self.boxes[:n],
                       visible=self.visible[:n], boxes_x=cut(self.boxes_x), raw_boxes=cut(self.raw_boxes),
                       raw_boxes_x=cut(self.raw_boxes_x), absent_reasons=dict(self.absent_reasons),
                       stats=dict(self.stats))

    @property
    def uid(self) -> str:
        """Unique across a unified benchmark: datasets may reuse sequence names."""
        return f"{self.dataset}/{self.name}"


def visible_mask(boxes: np.ndarray) -> np.ndarray:
    """A frame's target is visible when its box is finite with positive width and height."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.isfinite(b).all(1) & (np.nan_to_num(b[:, 2]) > 0) & (np.nan_to_num(b[:, 3]) > 0)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB; a clear error names the file when it cannot be decoded.

    (A truncated JPEG decodes grey-padded with only libjpeg's warning; `inspect deep=true` finds those,
    see data/validation.py: checking here would cost every decode an extra read.)
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(path, "cannot read image (missing or not a decodable image file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_depth_raw(path: Path) -> np.ndarray:
    """Read a depth PNG unchanged; it must be single-channel 16-bit (millimetres)."""
    d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if d is None:
        raise DatasetError(path, "cannot read depth image (missing or not a decodable PNG)")
    if d.dtype != np.uint16:
        raise DatasetError(path, f"depth must be a 16-bit PNG, got dtype {d.dtype}")
    if d.ndim == 3:
        d = d[..., 0]
    return d


#: OpenCV's JET colour map as an RGB lookup table (1, 256, 3) for cv2.LUT: cv2.applyColorMap rebuilds
#: its table on every call (0.33 ms of a 160x120 frame's 0.47 ms rendering; numpy indexing: 0.45 ms).
_JET_RGB = cv2.cvtColor(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_JET),
                        cv2.COLOR_BGR2RGB)


def render_depth(raw: np.ndarray) -> np.ndarray:
    """Clip at min(3 x median, 10000), min-max normalise to 0..255, JET colour map -> uint8 HxWx3 RGB."""
    med = float(np.median(raw))
    clip = min(3.0 * med, DEPTH_CLIP_MM) if med > 0 else DEPTH_CLIP_MM
    d = raw.astype(np.float32)
    np.minimum(d, clip, out=d)
    lo, hi = float(d.min()), float(d.max())
    if hi <= lo:
        return np.broadcast_to(_JET_RGB[0, 0], (*d.shape, 3)).copy()
    d -= lo
    d /= hi - lo
    d *= 255.0
    d8 = d.astype(np.uint8)
    return cv2.LUT(cv2.merge([d8, d8, d8]), _JET_RGB)


def read_x(path: Path, modality: str) -> np.ndarray:
    """The X frame as the model sees it: uint8 HxWx3 RGB."""
    if modality == "depth":
        return render_depth(read_depth_raw(path))
    return read_rgb(path)


def load_frame(seq: Sequence, i: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB and X of frame i as uint8 HxWx3; X is resized to RGB's size if a dataset stores it differently.

    An RGB-only sequence (x_modality 'none') is decoded once and its RGB image stands in for X (a model
    without an X branch never reads it).
    """
    rgb = read_rgb(seq.rgb_frames[i])
    if seq.x_modality == NO_X:
        return rgb, rgb
    x = read_x(seq.x_frames[i], seq.x_modality)
    if x.shape[:2] != rgb.shape[:2]:
        x = cv2.resize(x, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return rgb, x
