"""Template/search training pairs: which frames to pair, and the SiamFC crops the tracker learns from.

A pair is sampled as a `PairRef` (sequence index, template frame, search frame) and only then loaded, so
a replay buffer can keep references instead of images and reload them later with the same code path.
Sampling (LoRAT recipe): a sequence uniformly at random, a template frame with the target visible, and a
search frame with the target visible within +-max_gap of it. The template crop (area factor 2) is centred
on the box; the search crop (factor 4) is jittered so the target is not always in the middle, keeping at
least `min_visible_px` of it inside the crop. Two jitter rules (`data.crop.jitter`):

* ``lorat`` (default; LoRAT's trackit/core/utils/siamfc_cropping.py): the SiamFC scale
  s = sqrt(out^2 / ((w + p)(h + p))) divided by exp(N(0,1) * scale_jitter) independently for x and y
  (the crop is stretched), then the target shifted in crop pixels by
  uniform(-1, 1) * center_jitter * (w s_x + h s_y) / 2 per axis; up to 12 draws until >= min_visible_px
  of the target stay inside on both axes, so even its centre may leave the crop. When all 12 fail,
  LoRAT drops the pair and samples another with the same generator (its worker's `while data is None`):
  `data.crop.on_fail=resample` (default) does the same; `centre` keeps the pair with the centred,
  unjittered window (always used when reloading a stored replay reference: it must stay that pair).
* ``square`` (the earlier rule, OSTrack-like): a square window around a copy of the box whose w, h are
  jittered and whose centre moves by uniform(-1, 1) * center_jitter / 2 * sqrt(w' h'); the target stays
  in view (at least min(min_visible_px, its size) inside).
RGB and X share every geometric step.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

from unitrack.data.augment import PairAugment, augment_pair
from unitrack.data.crop import box_to_crop, crop_image, crop_window, xywh_to_norm_xyxy
from unitrack.data.sequence import Sequence, load_frame
from unitrack.errors import ConfigError, DatasetError

#: How many jitter draws to try before falling back to an un-jittered search crop.
JITTER_TRIES = 10
#: LoRAT's draws per search crop (its retry_count 10: the first draw plus up to 11 more).
LORAT_TRIES = 12
JITTER_RULES = ("lorat", "square")
ON_FAIL = ("resample", "centre")
#: resampled pairs before a dataset is declared unable to give a valid search crop
MAX_RESAMPLES = 100


class PairRef(NamedTuple):
    """A training pair by reference; indices refer to the sequence list the sampler/dataset was built on."""

    seq_index: int
    template_frame: int
    search_frame: int


class PairSampler:
    """Draws `PairRef`s: sequence uniform over the usable sequences, frames uniform over visible frames.

    Sequences without a single visible frame are skipped (with one warning); if none is left, a
    DatasetError (a ValueError) names the dataset(s).
    """

    def __init__(self, sequences: list[Sequence], max_gap: int = 100):
        if max_gap < 0:
            raise ConfigError("max_gap", f"must be >= 0, got {max_gap}")
        self.max_gap = int(max_gap)
        self.sequences = sequences
        self._usable: list[int] = []
        self._visible: list[np.ndarray] = []  # sorted visible frame indices of each usable sequence
        skipped = []
        for i, seq in enumerate(sequences):
            n = len(seq.rgb_frames)
            if len(seq.x_frames) != n or len(seq.boxes) != n:
                raise DatasetError(seq.uid, f"{n} RGB frames, {len(seq.x_frames)} X frames and "
                                            f"{len(seq.boxes)} boxes; all three must match")
            vis = np.flatnonzero(seq.visible[:n])
            if vis.size == 0:
                skipped.append(seq.uid)
                continue
            self._usable.append(i)
            self._visible.append(vis)
        if not self._usable:
            names = sorted({s.dataset for s in sequences}) or ["<empty sequence list>"]
            raise DatasetError(", ".join(names), f"none of its {len(sequences)} sequences has a frame with a "
                                                 "visible target; cannot sample training pairs")
        if skipped:
            shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            warnings.warn(f"skipping {len(skipped)} sequence(s) with no visible target: {shown}", stacklevel=2)

    @property
    def usable_indices(self) -> list[int]:
        """Indices (into the list given) of the sequences pairs are drawn from."""
        return list(self._usable)

    def sample(self, rng: np.random.Generator) -> PairRef:
        k = int(rng.integers(len(self._usable)))
        vis = self._visible[k]
        t = int(vis[rng.integers(vis.size)])
        lo = np.searchsorted(vis, t - self.max_gap, side="left")
        hi = np.searchsorted(vis, t + self.max_gap, side="right")
        # Candidates are visible frames in the window other than t itself; t is the fallback when none is.
        n_other = hi - lo - 1
        if n_other <= 0:
            s = t
        else:
            j = lo + int(rng.integers(n_other))
            s = int(vis[j + 1]) if vis[j] >= t else int(vis[j])  # skip over t (it sits inside [lo, hi))
        return PairRef(self._usable[k], t, s)


def jitter_window(box_xywh, rng: np.random.Generator, factor: float, out_size: int, scale_jitter: float = 0.25,
                  center_jitter: float = 3.0, min_visible_px: float = 10.0,
                  tries: int = JITTER_TRIES, fallback: bool = True) -> tuple[float, float, float] | None:
    """Search window (cx, cy, side) around a jittered copy of the box.

    Jitter: w, h each scaled by exp(N(0,1) * scale_jitter); centre shifted per axis by
    uniform(-1, 1) * center_jitter / 2 * sqrt(w' h'). A draw is accepted when the true box keeps at least
    min(min_visible_px, its size) crop pixels inside the crop along each axis; after `tries` rejected
    draws the window is centred on the true box (which always keeps the whole target in view).
    """
    box = np.asarray(box_xywh, dtype=np.float64)
    if scale_jitter > 0 or center_jitter > 0:
        cx0, cy0 = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
        for _ in range(tries):
            w, h = box[2:] * np.exp(rng.standard_normal(2) * scale_jitter)
            shift = rng.uniform(-1.0, 1.0, 2) * (center_jitter / 2.0) * np.sqrt(w * h)
            cx, cy = cx0 + shift[0], cy0 + shift[1]
            window = crop_window((cx - w / 2.0, cy - h / 2.0, w, h), factor)
            if visible_extent_ok(box, window, out_size, min_visible_px):
                return window
        if not fallback:
            return None
    return crop_window(box, factor)


def lorat_window(box_xywh, rng: np.random.Generator, factor: float, out_size: int, scale_jitter: float = 0.25,
                 center_jitter: float = 3.0, min_visible_px: float = 10.0,
                 tries: int = LORAT_TRIES, fallback: bool = True) -> tuple[float, float, tuple[float, float]] | None:
    """LoRAT's stretched search window (cx, cy, (side_x, side_y)) in frame pixels (see the module doc).

    With per-axis scales s (crop px per frame px) and shift d (crop px), the box maps to
    (x - c) s + out / 2 + d, i.e. the crop is centred on c - d / s in the frame, its sides out / s.
    """
    box = np.asarray(box_xywh, dtype=np.float64)
    wh = box[2:]
    if scale_jitter > 0 or center_jitter > 0:
        p = (factor - 1.0) * wh.sum() / 2.0
        s0 = np.sqrt(out_size * out_size / max((wh[0] + p) * (wh[1] + p), 1e-12))
        c = box[:2] + wh / 2.0
        for _ in range(tries):
            s = s0 / np.exp(rng.standard_normal(2) * scale_jitter)
            d = rng.uniform(-1.0, 1.0, 2) * (wh * s).sum() * 0.5 * center_jitter
            lo = (box[:2] - c) * s + out_size / 2.0 + d  # the box in crop pixels
            vis = np.minimum(lo + wh * s, out_size) - np.maximum(lo, 0.0)
            if np.all(vis >= min_visible_px):
                cx, cy = c - d / s
                return float(cx), float(cy), (float(out_size / s[0]), float(out_size / s[1]))
        if not fallback:
            return None
    return crop_window(box, factor)


def visible_extent_ok(box_xywh, window: tuple[float, float, float], out_size: int,
                      min_visible_px: float) -> bool:
    """Whether the box shows >= min(min_visible_px, its own size) crop pixels inside the crop on each axis."""
    b = box_to_crop(box_xywh, *window, out_size)
    vis_w = min(b[0] + b[2], out_size) - max(b[0], 0.0)
    vis_h = min(b[1] + b[3], out_size) - max(b[1], 0.0)
    return vis_w >= min(min_visible_px, b[2]) - 1e-9 and vis_h >= min(min_visible_px, b[3]) - 1e-9


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [0, 1]; numpy does it in one pass (torch's thread pool is slower here)."""
    return torch.from_numpy(np.multiply(img.transpose(2, 0, 1), np.float32(1.0 / 255.0), dtype=np.float32))


class PairDataset(torch.utils.data.Dataset):
    """`length` random training pairs; item i is a pure function of (seed, epoch, i).

    The rng of item i is `np.random.default_rng([seed, i])` (epoch 0) or `[seed, i, epoch]` after
    `set_epoch(epoch)`, so results do not depend on worker count or order. Scale/centre jitter is
    controlled by `scale_jitter`/`center_jitter`; `augment` (True, False or a `PairAugment`) controls flip
    and colour. For a deterministic evaluation set use augment=False, scale_jitter=0, center_jitter=0.
    """

    def __init__(self, sequences: list[Sequence], template_size: int, search_size: int,
                 template_factor: float = 2.0, search_factor: float = 4.0, max_gap: int = 100,
                 length: int = 10000, seed: int = 0, augment: bool | PairAugment = True,
                 scale_jitter: float = 0.25, center_jitter: float = 3.0, task: str | None = None,
                 min_visible_px: float = 10.0, jitter: str = "lorat", on_fail: str = "resample"):
        for key, v in (("template_size", template_size), ("search_size", search_size), ("length", length)):
            if int(v) < 1:
                raise ConfigError(key, f"must be a positive integer, got {v}")
        for key, v in (("template_factor", template_factor), ("search_factor", search_factor)):
            if not v >= 1.0:
                raise ConfigError(key, f"must be >= 1 (the crop must contain the box), got {v}")
        for key, v in (("scale_jitter", scale_jitter), ("center_jitter", center_jitter)):
            if not v >= 0.0:
                raise ConfigError(key, f"must be >= 0, got {v}")
        if jitter not in JITTER_RULES:
            raise ConfigError("data.crop.jitter", f"'{jitter}' is not one of {', '.join(JITTER_RULES)}")
        if on_fail not in ON_FAIL:
            raise ConfigError("data.crop.on_fail", f"'{on_fail}' is not one of {', '.join(ON_FAIL)}")
        self.jitter, self.on_fail = jitter, on_fail
        self.sequences = sequences
        self.sampler = PairSampler(sequences, max_gap)
        self.template_size, self.search_size = int(template_size), int(search_size)
        self.template_factor, self.search_factor = float(template_factor), float(search_factor)
        self.length, self.seed, self.epoch = int(length), int(seed), 0
        if augment is True:
            augment = PairAugment()
        self.augment: PairAugment | None = augment or None
        self.scale_jitter, self.center_jitter = float(scale_jitter), float(center_jitter)
        self.min_visible_px = float(min_visible_px)
        self.task = task

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh pairs each epoch; the DataModule must call it (and recreate non-persistent workers)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def rng_for(self, i: int) -> np.random.Generator:
        key = [self.seed, int(i)] if self.epoch == 0 else [self.seed, int(i), self.epoch]
        return np.random.default_rng(key)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.length:
            raise IndexError(f"pair index {i} out of range [0, {self.length})")
        rng = self.rng_for(i)
        return self.load_pair(self.sampler.sample(rng), rng, resample=True)

    def search_window(self, ref: PairRef, rng: np.random.Generator, fallback: bool):
        """The jittered search window of `ref` (None: every draw failed and no fallback asked)."""
        rule = lorat_window if self.jitter == "lorat" else jitter_window
        box_s = self.sequences[ref.seq_index].boxes[int(ref.search_frame)]
        return rule(box_s, rng, self.search_factor, self.search_size, self.scale_jitter, self.center_jitter,
                    self.min_visible_px, fallback=fallback)

    def load_pair(self, ref: PairRef, rng: np.random.Generator, resample: bool = False) -> dict:
        """Crop, jitter and augment the pair `ref`. With `resample` (a freshly drawn pair) and
        on_fail=resample, a pair whose search crop cannot be drawn is replaced by another drawn from
        `rng` (LoRAT's rule); a stored replay reference (resample=False) keeps its pair, centred."""
        fallback = not (resample and self.on_fail == "resample")
        win_s = self.search_window(ref, rng, fallback)
        for _ in range(MAX_RESAMPLES):
            if win_s is not None:
                break
            ref = self.sampler.sample(rng)
            win_s = self.search_window(ref, rng, fallback)
        if win_s is None:
            raise DatasetError(self.sequences[ref.seq_index].uid, f"{MAX_RESAMPLES} pairs in a row gave no search "
                               f"crop with >= {self.min_visible_px} px of the target visible "
                               "(data.crop.min_visible_px too large for these boxes?)")
        seq = self.sequences[ref.seq_index]
        t, s = int(ref.template_frame), int(ref.search_frame)
        if not (seq.visible[t] and seq.visible[s]):
            raise DatasetError(seq.uid, f"pair ({t}, {s}) has a frame without a visible target")
        rgb_t, x_t = load_frame(seq, t)
        rgb_s, x_s = (rgb_t, x_t) if s == t else load_frame(seq, s)

        box_t = seq.boxes[t]
        win_t = crop_window(box_t, self.template_factor)
        box_s = seq.boxes[s]
        crops = {
            "z": _crop(rgb_t, win_t, self.template_size), "zx": _crop(x_t, win_t, self.template_size),
            "x": _crop(rgb_s, win_s, self.search_size), "xx": _crop(x_s, win_s, self.search_size),
        }
        boxes = {
            "z_box": _norm_box(box_t, win_t, self.template_size),
            "box": _norm_box(box_s, win_s, self.search_size),
        }
        if self.augment is not None:
            crops, boxes = augment_pair(crops, boxes, rng, self.augment)
        out = {k: _to_tensor(v) for k, v in crops.items()}
        out.update({k: torch.from_numpy(v.astype(np.float32)) for k, v in boxes.items()})
        out["modality"] = seq.x_modality
        out["task"] = self.task or seq.task
        out["ref"] = torch.tensor([ref.seq_index, t, s], dtype=torch.long)
        return out


def _crop(img: np.ndarray, window: tuple, size: int) -> np.ndarray:
    return crop_image(img, *window, size)  # padded with the frame mean (crop.frame_pad)


def _norm_box(box_xywh, window: tuple, size: int) -> np.ndarray:
    return np.clip(xywh_to_norm_xyxy(box_to_crop(box_xywh, *window, size), size), 0.0, 1.0)


def collate_pairs(batch: list[dict]) -> dict:
    """Stack tensors of a list of pair dicts; string fields ("modality", "task") become lists of str."""
    if not batch:
        raise ValueError("collate_pairs got an empty batch")
    out = {}
    for key, v in batch[0].items():
        vals = [b[key] for b in batch]
        out[key] = torch.stack(vals) if isinstance(v, torch.Tensor) else list(vals)
    return out
