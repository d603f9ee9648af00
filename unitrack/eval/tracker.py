"""Online LoRAT tracking of many sequences at once.

The template is cropped from frame 0 only and never updated; a model that offers `embed_template`
(LoRAT) has it embedded once at init, and every frame runs only `forward_search` on it. Every later
frame is searched in a context crop (search factor) around the last box; the score map is blended
with a Hann window so that large jumps need strong evidence, the best token's box is mapped back to
the frame, and the reported confidence is the raw sigmoid score of that token (no window), which
long-term protocols threshold.

Sequences of different X modalities can share one `step`: they are grouped by modality and each group
runs through that modality's merged model (LoRA folded into the weights, so no adapter overhead).
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from unitrack.data.crop import (
    box_from_crop,
    box_to_crop,
    crop_image,
    crop_window,
    crop_windows,
    frame_mean,
    norm_xyxy_to_xywh,
    xywh_to_norm_xyxy,
)
from unitrack.errors import ConfigError

#: Fill of a dropped modality: the ImageNet mean colour, i.e. an all-zero input after normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: Head names SAMM combines, in the order of the model's output keys.
SAMM_HEADS = {"fused": ("score", "box"), "rgb": ("score_rgb", "box_rgb"), "x": ("score_x", "box_x")}


@dataclass
class TrackState:
    """One sequence being tracked. `key` seeds its X-noise stream so results do not depend on batching."""

    modality: str
    key: str = ""
    box: np.ndarray | None = None  # last box x,y,w,h in frame pixels
    image_size: tuple[int, int] = (0, 0)  # (H, W)
    frame: int = 0
    z: torch.Tensor | None = None  # (3,T,T) float32 template RGB crop in [0,1], on the tracker's device
    zx: torch.Tensor | None = None
    z_box: torch.Tensor | None = None  # (4,) normalised xyxy of the target in the template crop
    tokens: tuple | None = None  # the model's embedded template tokens (nz, C) for RGB and X, made at init
    window: tuple[float, float, float] = (0.0, 0.0, 0.0)  # last search window (cx, cy, side)
    pad: tuple | None = None  # (RGB, X) per-channel means of frame 0 (eval.pad=frame0), else None
    rng: np.random.Generator | None = field(default=None, repr=False)


def hann2d(n: int) -> np.ndarray:
    """Outer product of two non-periodic (symmetric) Hann windows, flattened row-major like the tokens."""
    w = np.hanning(n)
    return np.outer(w, w).reshape(-1)


def clamp_size(box, min_size: float) -> np.ndarray:
    """Enlarge w,h to >= min_size around the same centre, so a collapsed box still gets a usable crop.

    (..., 4) boxes x,y,w,h."""
    b = np.asarray(box, dtype=np.float64)
    cx, cy = b[..., 0] + b[..., 2] / 2.0, b[..., 1] + b[..., 3] / 2.0
    w, h = np.maximum(b[..., 2], min_size), np.maximum(b[..., 3], min_size)
    return np.stack([cx - w / 2.0, cy - h / 2.0, w, h], axis=-1)


def clip_box(box, width, height) -> np.ndarray:
    """Clip x,y,w,h to the image, keeping at least 1 px of width and height inside it.

    (..., 4) boxes; width and height broadcast against the leading dims (one image size per box)."""
    b = np.asarray(box, dtype=np.float64)
    width, height = np.asarray(width, dtype=np.float64), np.asarray(height, dtype=np.float64)
    x1 = np.minimum(np.maximum(b[..., 0], 0.0), width - 1.0)
    y1 = np.minimum(np.maximum(b[..., 1], 0.0), height - 1.0)
    x2 = np.maximum(np.minimum(b[..., 0] + b[..., 2], width), x1 + 1.0)
    y2 = np.maximum(np.minimum(b[..., 1] + b[..., 3], height), y1 + 1.0)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)


#: eval.amp choices -> autocast dtype (true = bf16, as before; LoRAT infers under fp16 autocast).
AMP_DTYPES = {"false": None, "true": torch.bfloat16, "bf16": torch.bfloat16, "fp16": torch.float16}
#: eval.pad: the colour of out-of-frame search-crop pixels (current: the frame's own mean | frame0: LoRAT's).
PADS = ("current", "frame0")


def amp_dtype(amp: bool | str | None) -> torch.dtype | None:
    """The autocast dtype of an `eval.amp` value (false | true | bf16 | fp16), None = no autocast."""
    key = str(amp).lower() if amp is not None else "false"
    if key not in AMP_DTYPES:
        raise ConfigError("eval.amp", f"expected false, bf16 or fp16, got {amp!r}")
    return AMP_DTYPES[key]


def amp_autocast(device: torch.device, amp: bool | str | None):
    """Autocast on CUDA in amp's dtype (true = bf16), else no context at all: even a disabled autocast
    context costs a tiny model a few % of its frame, so the tracker and the model-only timing both skip
    it alike. On CPU it is skipped whatever `amp` says."""
    dtype = amp_dtype(amp)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None and device.type == "cuda" \
        else contextlib.nullcontext()


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' means the GPU when there is one."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class OnlineTracker:
    """LoRAT inference: frame-0 template, Hann-windowed argmax, batched over sequences."""

    def __init__(self, model, device: str | torch.device = "cpu", window_weight: float = 0.45,
                 min_size: float = 10, samm: dict | None = None, drop_modality: str | None = None,
                 x_noise: float = 0.0, seed: int = 0, amp: bool | str = False, pad: str = "current"):
        if drop_modality not in (None, "rgb", "x"):
            raise ConfigError("drop_modality", f"expected null, 'rgb' or 'x', got {drop_modality!r}")
        if not 0.0 <= window_weight <= 1.0:
            raise ConfigError("window_weight", f"expected a value in [0, 1], got {window_weight}")
        if x_noise < 0:
            raise ConfigError("x_noise", f"expected a standard deviation >= 0, got {x_noise}")
        samm = samm or None  # a config's `samm: false` means off
        if samm is not None:
            temps = samm.get("temperatures") if hasattr(samm, "get") else None
            if not hasattr(temps, "items") or not set(temps) <= set(SAMM_HEADS) or \
                    any(float(t) <= 0 for t in temps.values()):
                raise ConfigError("samm.temperatures", f"expected positive temperatures for heads among "
                                  f"{sorted(SAMM_HEADS)} (a missing head uses T=1), got {temps!r}")
            if not callable(samm.get("combine")):  # SAMM's rule is unitrack.cl.samm's (inference_kwargs)
                raise ConfigError("samm.combine", "SAMM inference needs its combination rule: build the "
                                  "tracker's samm argument with unitrack.cl.samm.inference_kwargs")
        self.model = model
        self.device = resolve_device(device)
        self.window_weight = float(window_weight)
        self.min_size = float(min_size)
        self.samm = samm
        self.drop_modality = drop_modality
        self.x_noise = float(x_noise)
        self.seed = int(seed)
        if pad not in PADS:
            raise ConfigError("eval.pad", f"expected one of {', '.join(PADS)}, got {pad!r}")
        self.pad = pad
        self.amp = amp if amp_dtype(amp) is not None and self.device.type == "cuda" else False
        self.T, self.S = int(model.template_size), int(model.search_size)
        self.template_factor, self.search_factor = float(model.template_factor), float(model.search_factor)
        self.hann_weighted = (self.window_weight * hann2d(int(model.feat_size))).astype(np.float32)
        mean = getattr(model, "pixel_mean", None)  # the model's normalisation mean, (1,3,1,1) buffer
        mean = IMAGENET_MEAN if mean is None else torch.as_tensor(mean).detach().cpu().reshape(-1)[:3]
        self.fill = np.asarray(mean, dtype=np.float32)
        self.fill_t = torch.as_tensor(self.fill, device=self.device).view(3, 1, 1)
        self._merged: dict[str, torch.nn.Module] = {}

    # -- model -----------------------------------------------------------------------------------
    def expert_key(self, modality: str) -> str:
        """Which merged model serves a modality: its own with per-modality experts, one for all with a
        shared LoRA (then sequences of every task share a forward)."""
        return "*" if getattr(self.model, "experts", None) == "shared" else modality

    def merged(self, modality: str) -> torch.nn.Module:
        """The merged plain model of a modality, built once (merging copies weights: not per frame)."""
        key = self.expert_key(modality)
        if key not in self._merged:
            m = self.model.merge(modality) if hasattr(self.model, "merge") else self.model
            self._merged[key] = m.to(self.device).eval()
        return self._merged[key]

    # -- crops -----------------------------------------------------------------------------------
    def _crops(self, states: list[TrackState], frames: list[tuple[np.ndarray, np.ndarray]],
               windows: list[tuple[float, float, float]], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB and X crops of every sequence as (B,3,size,size) float tensors in [0,1] on the device.

        Crops are warped as uint8 straight into one batch buffer and converted to floats in one pass
        (on a GPU after the copy: 4x fewer bytes over the bus); then the robustness perturbations.
        """
        buf = np.empty((2, len(states), size, size, 3), np.uint8)
        for i, ((rgb, x), (cx, cy, side)) in enumerate(zip(frames, windows)):
            pad = states[i].pad or (None, None)  # None: the frame's own mean (frame_pad)
            crop_image(rgb, cx, cy, side, size, pad=pad[0], out=buf[0, i])
            crop_image(x, cx, cy, side, size, pad=pad[1], out=buf[1, i])
        if self.device.type == "cpu":  # numpy converts a small batch in one pass, 2-3x faster than torch ops
            t = torch.from_numpy(buf.transpose(0, 1, 4, 2, 3).astype(np.float32) / np.float32(255.0))
        else:  # uint8 over the bus, converted on the device
            t = torch.from_numpy(buf).to(self.device).permute(0, 1, 4, 2, 3).float().div_(255.0).contiguous()
        a, b = t[0], t[1]
        if self.drop_modality == "rgb":
            a[:] = self.fill_t
        if self.drop_modality == "x":
            b[:] = self.fill_t
        elif self.x_noise > 0:  # per-sequence streams: the noise does not depend on the batching
            noise = np.stack([st.rng.normal(0.0, self.x_noise, (size, size, 3)).astype(np.float32)
                              for st in states])
            b = (b + torch.from_numpy(noise).to(self.device).permute(0, 3, 1, 2)).clamp_(0.0, 1.0)
        return a, b

    # -- tracking --------------------------------------------------------------------------------
    def init(self, states: list[TrackState], frames0: list[tuple[np.ndarray, np.ndarray]],
             boxes0) -> tuple[np.ndarray, np.ndarray]:
        """Crop each sequence's template; frame 0's output is its init box with confidence 1."""
        out = np.zeros((len(states), 4))
        for i, (st, (rgb, x), box) in enumerate(zip(states, frames0, boxes0)):
            box = np.asarray(box, dtype=np.float64).reshape(4)
            if not (np.isfinite(box).all() and box[2] > 0 and box[3] > 0):
                raise ConfigError("init box", f"sequence {st.key or '?'}: need finite x,y,w,h with w,h > 0, "
                                  f"got {box.tolist()}")
            st.rng = np.random.default_rng([self.seed, zlib.crc32(st.key.encode())])
            st.image_size = rgb.shape[:2]
            st.pad = (frame_mean(rgb), frame_mean(x)) if self.pad == "frame0" else None
            cx, cy, side = crop_window(box, self.template_factor)
            z, zx = self._crops([st], [(rgb, x)], [(cx, cy, side)], self.T)  # never changes: made once
            st.z, st.zx = z[0], zx[0]
            zb = xywh_to_norm_xyxy(box_to_crop(box, cx, cy, side, self.T), self.T)
            st.z_box = torch.from_numpy(np.clip(zb, 0.0, 1.0).astype(np.float32)).to(self.device)
            st.tokens = self._embed_template(st)
            st.box, st.frame = box.copy(), 0
            out[i] = box
        return out, np.ones(len(states))

    def _embed_template(self, st: TrackState) -> tuple | None:
        """The template tokens of a model that splits them off (LoRAT's `embed_template`), else None."""
        net = self.merged(st.modality)
        if not hasattr(net, "embed_template"):
            return None
        with torch.inference_mode(), self._autocast():
            tz, tzx = net.embed_template(st.z[None], st.zx[None], st.z_box[None])
        return tz[0], None if tzx is None else tzx[0]

    def _autocast(self):
        return amp_autocast(self.device, self.amp)

    def _forward(self, modality: str, states: list[TrackState], x: torch.Tensor, xx: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        one = len(states) == 1  # batch 1 (the usual single-sequence case): views, no copies
        batch = (lambda ts: ts[0][None]) if one else torch.stack  # noqa: E731
        net = self.merged(modality)
        tags = [s.modality for s in states]
        with torch.inference_mode(), self._autocast():
            if states[0].tokens is not None:  # template embedded once at init: blocks + heads only
                tz = batch([s.tokens[0] for s in states])
                tzx = None if states[0].tokens[1] is None else batch([s.tokens[1] for s in states])
                out = net.forward_search(tz, tzx, x, xx, tags, features=False)
            else:
                z, zx, z_box = (batch([getattr(s, k) for s in states]) for k in ("z", "zx", "z_box"))
                out = net(z, zx, x, xx, z_box, tags)
        return {k: v.float() for k, v in out.items() if isinstance(v, torch.Tensor)}

    def _locate(self, out: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: chosen box (normalised xyxy in the search crop) and its un-windowed confidence.

        With SAMM (and at least two heads returned) the token is chosen on the combined map and the box
        is read, at that token, from the head whose own confidence (max softmax over tokens) is highest
        for that sample: the most trusted head also regresses. Its sigmoid is the reported confidence.
        A dropped modality is NOT removed from the sum: SAMM's confidences are meant to down-weight it.
        """
        heads = [m for m, (s, b) in SAMM_HEADS.items() if s in out and b in out] if self.samm is not None else []
        if len(heads) > 1:
            temps = {m: float(self.samm["temperatures"].get(m, 1.0)) for m in heads}
            logits = {m: out[SAMM_HEADS[m][0]] for m in heads}
            score = self.samm["combine"](logits, temps)
            conf_m = torch.stack([(z / temps[m]).softmax(-1).amax(-1) for m, z in logits.items()], 1)
            boxes = torch.stack([out[SAMM_HEADS[m][1]] for m in heads], 1)  # (B,M,N,4)
            boxes = boxes[torch.arange(len(score), device=score.device), conf_m.argmax(1)]
        else:
            score, boxes = out["score"], out["box"]
        # the pick runs in numpy on the host, where its result is needed: one copy, no small device ops
        prob = score.sigmoid().cpu().numpy()
        boxes = boxes.cpu().numpy()
        idx = (self.hann_weighted + np.float32(1.0 - self.window_weight) * prob).argmax(-1)
        rows = np.arange(len(idx))
        return boxes[rows, idx].astype(np.float64), prob[rows, idx].astype(np.float64)

    def step(self, states: list[TrackState], frames: list[tuple[np.ndarray, np.ndarray]]
             ) -> tuple[np.ndarray, np.ndarray]:
        """Track one new frame of every given sequence; returns boxes (B,4) x,y,w,h and confidences (B,)."""
        windows = crop_windows(clamp_size(np.stack([st.box for st in states]), self.min_size), self.search_factor)
        rows = windows.tolist()
        for st, w in zip(states, rows):
            st.window = tuple(w)
        x, xx = self._crops(states, frames, rows, self.S)
        groups: dict[str, list[int]] = {}
        for i, st in enumerate(states):
            groups.setdefault(self.expert_key(st.modality), []).append(i)
        norm = np.zeros((len(states), 4))
        conf = np.zeros(len(states))
        for idx in groups.values():
            sel = idx if len(idx) < len(states) else slice(None)
            out = self._forward(states[idx[0]].modality, [states[i] for i in idx], x[sel], xx[sel])
            norm[idx], conf[idx] = self._locate(out)
        sizes = np.array([rgb.shape[:2] for rgb, _ in frames], dtype=np.float64)  # (B, 2) H, W
        boxes = box_from_crop(norm_xyxy_to_xywh(norm, self.S), windows[:, 0], windows[:, 1], windows[:, 2], self.S)
        boxes = clip_box(boxes, sizes[:, 1], sizes[:, 0])
        for st, b, (rgb, _) in zip(states, boxes, frames):
            st.box, st.image_size, st.frame = b, rgb.shape[:2], st.frame + 1
        return boxes, conf
