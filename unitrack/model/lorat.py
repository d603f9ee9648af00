"""The tracker: LoRAT's one-stream LoRA-ViT with an X branch and per-modality LoRA experts.

Input embedding (exactly LoRAT's, which keeps the pre-trained ViT's structure intact for LoRA):
one patch embedding shared by template and search; the ViT's position encoding resized to the SEARCH
grid (timm resamples it when the backbone is built at ``img_size=search_size``), the template taking its
top-left crop; a (3, C) token-type table (template background / template foreground / search) added on
top, foreground = template cells covered by the template box; no CLS token. Template and search tokens
are concatenated, run through every block and the final norm; the MLP head reads the search tokens.

Build it with ``build_model(cfg)`` or ``hydra.utils.instantiate(cfg.model)`` (conf/model/*.yaml target
:class:`LoRATTracker`).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from omegaconf import DictConfig, OmegaConf
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from unitrack import NO_X
from unitrack.errors import ConfigError
from unitrack.model import experts as ex
from unitrack.model.checkpoint import read_weights
from unitrack.model.head import MlpHead
from unitrack.model.init import load_init
from unitrack.model.loss import box_cell_mask
from unitrack.model.xbranch import XBranch

FINETUNE_MODES = ("lora", "full", "frozen")
HEAD_MODES = ("fused", "fused+unimodal")
HEAD_INITS = ("torch", "lorat")


def _plain(d: Any) -> dict:
    if d is None:
        return {}
    if isinstance(d, DictConfig):
        return OmegaConf.to_container(d, resolve=True)  # type: ignore[return-value]
    return dict(d)


POS_RESAMPLE = ("timm", "lorat")


def _file_grid(path: Path) -> int | None:
    """Side of the position grid stored in a weights file (None: unknown, leave it to timm)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                shape = f.get_slice("pos_embed").get_shape() if "pos_embed" in f.keys() else None
        else:
            sd = read_weights(path, "model.weights", mmap=True, allow=(argparse.Namespace,))
            sd = sd.get("state_dict", sd.get("model", sd)) if isinstance(sd, dict) else {}
            shape = tuple(sd["pos_embed"].shape) if "pos_embed" in sd else None
    except Exception:  # noqa: BLE001 - create_backbone reports unreadable or refused files itself
        return None
    if shape is None:
        return None
    n = int(shape[1])
    for prefix in (0, 1, 2, 5):  # no class slot, cls, cls+reg tokens
        side = int(round((n - prefix) ** 0.5))
        if side * side == n - prefix:
            return side
    return None


def lorat_pos_backbone(backbone: str, pretrained: bool, weights: str | None, img_size: int, kw: dict) -> nn.Module:
    """The pre-trained ViT at `img_size` with its position grid resized as LoRAT does (bicubic, no
    antialias) rather than by timm (antialiased when shrinking: DINOv2's 37x37 to 16x16 differs by 6e-2):
    built at the weights' native grid, then every tensor copied and the grid resized by us."""
    from unitrack.model.lorat_import import resample_pos

    patch = int(kw.get("patch_size") or timm.create_model(backbone, pretrained=False, **{**kw, "img_size": img_size})
                .patch_embed.patch_size[0])
    native_kw = {k: v for k, v in kw.items() if k != "img_size"}
    if weights:
        side = _file_grid(Path(weights).expanduser())
        if side is not None:
            native_kw["img_size"] = side * patch
    native = create_backbone(backbone, pretrained, weights, native_kw.get("img_size"), native_kw, "timm")
    target = timm.create_model(backbone, pretrained=False, **kw)
    sd = native.state_dict()
    prefix = 0 if getattr(native, "no_embed_class", False) else native.num_prefix_tokens
    grid = resample_pos(sd["pos_embed"][:, prefix:], img_size // patch)
    sd["pos_embed"] = torch.cat([sd["pos_embed"][:, :prefix], grid], dim=1)
    target.load_state_dict(sd)
    target.pretrained_cfg = getattr(native, "pretrained_cfg", {})
    return target


def create_backbone(
    backbone: str, pretrained: bool, weights: str | None, img_size: int | None, backbone_kwargs: Mapping,
    pos_resample: str = "timm",
) -> nn.Module:
    """The timm ViT, with weights from a local file, the timm hub, or (with a warning) random init.
    `pos_resample`: who resizes pre-trained position grids to the search grid (timm | lorat)."""
    if not timm.is_model(backbone):
        raise ConfigError("model.backbone", f"'{backbone}' is not a timm model name")
    if pos_resample not in POS_RESAMPLE:
        raise ConfigError("model.pos_resample", f"'{pos_resample}' is not one of {', '.join(POS_RESAMPLE)}")
    kw = dict(backbone_kwargs)
    if kw.pop("img_size", img_size) != img_size:
        raise ConfigError("model.backbone_kwargs.img_size", f"must equal search_size ({img_size}) or be left out")
    kw.update(num_classes=0)
    if img_size is not None:
        kw["img_size"] = img_size
    if pos_resample == "lorat" and (weights or pretrained):
        return lorat_pos_backbone(backbone, pretrained, weights, int(img_size), kw)
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError("model.weights", f"weights file not found: {path}")
        # read as data first (tensors mapped, not read): timm's own loader is weights-only in the versions we
        # test, this makes it so for every version; argparse.Namespace (timm's training args) is plain data
        read_weights(path, "model.weights", mmap=True, allow=(argparse.Namespace,))
        try:
            return timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kw)
        except Exception as e:  # noqa: BLE001 - any load failure is a bad file for this backbone
            raise ConfigError("model.weights", f"cannot load {path} into {backbone}: {e}") from e
    if pretrained:
        try:
            return timm.create_model(backbone, pretrained=True, **kw)
        except Exception as e:  # noqa: BLE001 - offline hub, missing cache, ...
            raise ConfigError(
                "model.pretrained",
                f"could not fetch pre-trained weights for {backbone} ({type(e).__name__}: {e}); "
                "set model.weights=PATH to a local file or model.pretrained=false",
            ) from e
    warnings.warn(
        f"model: no pre-trained weights for {backbone} (model.pretrained=false, model.weights=null); "
        "the backbone is randomly initialised",
        stacklevel=3,
    )
    return timm.create_model(backbone, pretrained=False, **kw)


class LoRATTracker(nn.Module):
    """forward(z, zx, x, xx, z_box, modality) -> {"score","box","feat_rgb","feat_x"[,unimodal heads]}.

    z/zx: template RGB/X crops, x/xx: search RGB/X crops, (B,3,H,W) floats in [0,1]; z_box (B,4)
    normalised xyxy of the target in the template crop; modality: B names from MODALITIES or a LongTensor
    of indices into it. "score" (B,N) logits and "box" (B,N,4) normalised xyxy of the search crop (clamped
    to [0,1] in eval mode), N = feat_size**2; "feat_rgb"/"feat_x" (B,C) pooled search tokens of the
    pre-fusion RGB stream and of the X branch (equal to feat_rgb when x_branch.depth=0).
    """

    modalities = ex.MODALITIES

    def __init__(
        self,
        backbone: str,
        pretrained: bool = False,
        weights: str | None = None,
        template_size: int = 112,
        search_size: int = 224,
        template_factor: float = 2.0,
        search_factor: float = 4.0,
        lora: Mapping | None = None,
        finetune: str = "lora",
        experts: str = "shared",
        x_branch: Mapping | None = None,
        heads: str = "fused",
        backbone_kwargs: Mapping | None = None,
        name: str | None = None,
        init: str | None = None,
        init_strict: bool = True,
        pos_resample: str = "timm",
        head_init: str = "torch",
    ):
        super().__init__()
        lora_cfg = {"rank": 64, "alpha": 64, "dropout": 0.0, "init": "peft", **_plain(lora)}
        xb_cfg = {"depth": 0, "dim": 32, **_plain(x_branch)}
        for key, value, allowed in (
            ("model.finetune", finetune, FINETUNE_MODES),
            ("model.experts", experts, ex.EXPERT_MODES),
            ("model.heads", heads, HEAD_MODES),
            ("model.lora.init", lora_cfg["init"], ex.LORA_INITS),
            ("model.head_init", head_init, HEAD_INITS),
        ):
            if value not in allowed:
                raise ConfigError(key, f"'{value}' is not one of {', '.join(allowed)}")
        if experts != "shared" and finetune != "lora":
            raise ConfigError("model.experts", f"'{experts}' experts are LoRA adapters; they need finetune=lora")

        self.name = name or backbone
        self.template_size, self.search_size = int(template_size), int(search_size)
        self.template_factor, self.search_factor = float(template_factor), float(search_factor)
        self.finetune, self.experts, self.heads = finetune, experts, heads
        self.merged_modality: str | None = None  # set on the copies returned by merge()

        self.vit = create_backbone(backbone, pretrained, weights, self.search_size, _plain(backbone_kwargs),
                                   pos_resample)
        pe = self.vit.patch_embed
        pe.strict_img_size = False  # template and search crops differ in size; only divisibility matters
        self.patch_size = self.stride = int(pe.patch_size[0])
        for key, size in (("model.template_size", self.template_size), ("model.search_size", self.search_size)):
            if size % self.patch_size:
                raise ConfigError(key, f"{size} is not a multiple of the backbone patch size {self.patch_size}")
        self.template_feat_size = self.template_size // self.patch_size
        self.feat_size = self.search_size // self.patch_size
        dim = self.vit.embed_dim
        self.embed_dim = dim
        n_blocks = len(self.vit.blocks)
        depth = int(xb_cfg["depth"])
        if not 0 <= depth <= n_blocks:
            raise ConfigError("model.x_branch.depth", f"{depth} is outside 0..{n_blocks} (backbone blocks)")
        if heads == "fused+unimodal" and depth == 0:
            raise ConfigError("model.heads", "fused+unimodal needs an X branch (x_branch.depth >= 1)")
        self.x_depth = depth

        cfg_px = getattr(self.vit, "pretrained_cfg", {}) or {}
        mean = cfg_px.get("mean", IMAGENET_DEFAULT_MEAN)
        std = cfg_px.get("std", IMAGENET_DEFAULT_STD)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

        self.token_type = nn.Parameter(torch.empty(3, dim))  # template bg, template fg, search
        nn.init.trunc_normal_(self.token_type, std=0.02)
        self.xbranch = XBranch(pe, dim, depth, int(xb_cfg["dim"])) if depth else None
        self.head = MlpHead(dim, self.feat_size)
        self.head_rgb = MlpHead(dim, self.feat_size) if heads == "fused+unimodal" else None
        self.head_x = MlpHead(dim, self.feat_size) if heads == "fused+unimodal" else None

        self.lora_cfg = lora_cfg
        self.uses_lora = finetune == "lora"
        if self.uses_lora:
            ex.inject_lora(
                self.vit, ex.adapter_names(experts), int(lora_cfg["rank"]), float(lora_cfg["alpha"]),
                float(lora_cfg["dropout"]),
            )
            ex.activate(self.vit, ex.adapter_names(experts)[:1])
            if lora_cfg["init"] == "lorat":
                ex.lorat_init(self.vit)
        if head_init == "lorat":  # LoRAT's MlpAnchorFreeHead: truncated-normal(0.02) weights, zero biases
            for h in (self.head, self.head_rgb, self.head_x):
                for lin in (m for m in (h.modules() if h is not None else ()) if isinstance(m, nn.Linear)):
                    nn.init.trunc_normal_(lin.weight, std=0.02)
                    nn.init.zeros_(lin.bias)
        self._set_trainable()
        # start weights (the RGB foundation, any unitrack checkpoint): key report kept for matrix.json
        self.init_report = load_init(self, init, init_strict)
        if self.init_report is not None and self.uses_lora and lora_cfg["init"] == "lorat" and any(
                ".lora_" in k for k in self.init_report["model_init"]):
            ex.absorb_start(self.vit)  # fresh LoRAT-init adapters on loaded weights: the start stays exact
            self.init_report["lora_start"] = "absorbed"

    # ------------------------------------------------------------------ parameters
    def _set_trainable(self) -> None:
        """lora: LoRA + token types + X branch + heads; full: all; frozen: token types + X branch + heads."""
        for p in self.vit.parameters():
            p.requires_grad_(self.finetune == "full")
        for n in ("cls_token", "reg_token", "mask_token"):  # unused: no prefix tokens in LoRAT
            if isinstance(getattr(self.vit, n, None), nn.Parameter):
                getattr(self.vit, n).requires_grad_(False)
        if self.uses_lora:
            for p in ex.lora_parameters(self.vit).values():
                p.requires_grad_(True)
        for m in (self.xbranch, self.head, self.head_rgb, self.head_x):
            if m is not None:
                m.requires_grad_(True)
        self.token_type.requires_grad_(True)

    def _pos_grid(self) -> torch.Tensor:
        pos = self.vit.pos_embed
        if not getattr(self.vit, "no_embed_class", False):
            pos = pos[:, self.vit.num_prefix_tokens :]
        return pos.reshape(1, self.feat_size, self.feat_size, -1)

    # ------------------------------------------------------------------ forward
    def _route(self, modality: str) -> str:
        """An RGB-only sample (x_modality 'none', the RGB foundation stage) goes through the shared
        adapter like every other sample when experts are shared (its tag then selects nothing); a
        per-modality expert has no adapter for it."""
        if modality != NO_X:
            return modality
        if self.experts != "shared":
            raise ValueError(f"RGB-only samples (modality {NO_X!r}) need model.experts=shared, not {self.experts}")
        return self.modalities[0]

    def _modality_index(self, modality: Sequence[str] | torch.Tensor, batch: int, device) -> torch.Tensor:
        if isinstance(modality, torch.Tensor):
            idx = modality.to(device=device, dtype=torch.long).reshape(-1)
            if idx.numel() and (idx.min() < 0 or idx.max() >= len(self.modalities)):
                raise ValueError(f"modality indices must be in 0..{len(self.modalities) - 1}, got {idx.tolist()}")
        else:
            if isinstance(modality, str):
                modality = [modality] * batch
            modality = [self._route(m) for m in modality]
            bad = [m for m in modality if m not in self.modalities]
            if bad:
                raise ValueError(f"unknown modality {bad[0]!r}; expected one of {self.modalities}")
            idx = torch.tensor([self.modalities.index(m) for m in modality], dtype=torch.long, device=device)
        if idx.numel() != batch:
            raise ValueError(f"got {idx.numel()} modality tags for a batch of {batch}")
        if self.merged_modality is not None and self.experts != "shared":
            want = self.modalities.index(self.merged_modality)
            if bool((idx != want).any()):
                raise ValueError(f"this model was merged for '{self.merged_modality}' samples only")
        return idx

    def _embed(self, img: torch.Tensor, patch_embed: nn.Module) -> torch.Tensor:
        img = (img - self.pixel_mean.to(img.dtype)) / self.pixel_std.to(img.dtype)
        return patch_embed(img)

    def _template_tokens(self, z: torch.Tensor, type_z: torch.Tensor, patch_embed: nn.Module) -> torch.Tensor:
        t = self.template_feat_size
        tz = self._embed(z, patch_embed) + self._pos_grid()[:, :t, :t].flatten(1, 2) + type_z
        return self.vit.norm_pre(tz)  # a per-token norm: applying it per part equals applying it to the concat

    def _search_tokens(self, x: torch.Tensor, patch_embed: nn.Module) -> torch.Tensor:
        tx = self._embed(x, patch_embed) + self._pos_grid().flatten(1, 2) + self.token_type[2]
        return self.vit.norm_pre(tx)

    def _blocks(self, h: torch.Tensor, u: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Run the blocks; returns (final tokens, pre-fusion RGB tokens, X tokens), all before the norm."""
        blocks = self.vit.blocks
        first_fused = len(blocks) - self.x_depth
        splits = [self.template_feat_size**2, self.feat_size**2]
        pre = h
        for k, blk in enumerate(blocks):
            if k == first_fused:
                pre = h
            if u is not None and k >= first_fused:
                h, u = self.xbranch.prompters[k - first_fused](h, u, splits)
            h = blk(h)
        if self.x_depth == 0:
            pre = h
        return h, pre, u

    def forward(
        self,
        z: torch.Tensor,
        zx: torch.Tensor | None,
        x: torch.Tensor,
        xx: torch.Tensor | None,
        z_box: torch.Tensor,
        modality: Sequence[str] | torch.Tensor,
        features: bool = True,
    ) -> dict[str, torch.Tensor]:
        """LoRAT's whole forward (what training runs): `embed_template` then `forward_search`; see the class
        docstring for the shapes. Tracking embeds the template once and calls `forward_search` per frame."""
        tz, tzx = self.embed_template(z, zx, z_box)
        return self.forward_search(tz, tzx, x, xx, modality, features=features)

    def embed_template(
        self, z: torch.Tensor, zx: torch.Tensor | None, z_box: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Template tokens (B, nz, C) of the RGB and X streams: patch embedding + position + token type.

        They depend on the template crop and box only (LoRA sits in the blocks, after them), so online
        tracking embeds the frame-0 template once and passes these to `forward_search` every frame, as
        LoRAT's tracker does: the template half of the input embedding is not recomputed per frame.
        """
        if self.xbranch is not None and zx is None:
            raise ValueError("this model has an X branch (x_branch.depth > 0): zx is required")
        fg = box_cell_mask(z_box, self.template_feat_size, self.template_feat_size)
        # (B, nz, C): bg / fg. A select, not `token_type[fg.long()]`: that row gather's backward (index_put
        # accumulate) sums the rows' gradients in a thread-dependent order on CPU, so same-seed runs drifted
        type_z = torch.where(fg[..., None], self.token_type[1], self.token_type[0])
        tz = self._template_tokens(z, type_z, self.vit.patch_embed)
        tzx = self._template_tokens(zx, type_z, self.xbranch.patch_embed) if self.xbranch is not None else None
        return tz, tzx

    def forward_search(
        self,
        tz: torch.Tensor,
        tzx: torch.Tensor | None,
        x: torch.Tensor,
        xx: torch.Tensor | None,
        modality: Sequence[str] | torch.Tensor,
        features: bool = True,
    ) -> dict[str, torch.Tensor]:
        """The blocks and heads on embedded template tokens (`embed_template`) and new search crops.

        ``features=False`` skips the pooled ``feat_rgb``/``feat_x`` outputs (two norms and means that
        only the continual-learning losses read); tracking asks for scores and boxes alone.
        """
        b = x.shape[0]
        if self.xbranch is not None and (tzx is None or xx is None):
            raise ValueError("this model has an X branch (x_branch.depth > 0): zx and xx are required")
        idx = self._modality_index(modality, b, x.device)
        h = torch.cat([tz, self._search_tokens(x, self.vit.patch_embed)], dim=1)
        u = torch.cat([tzx, self._search_tokens(xx, self.xbranch.patch_embed)], dim=1) \
            if self.xbranch is not None else None

        if self.uses_lora and self.experts != "shared":
            outs, order = [], []
            for m, sel in ex.modality_groups(idx):
                ex.activate(self.vit, ex.adapters_for(self.experts, self.modalities[m]))
                outs.append(self._blocks(h[sel], None if u is None else u[sel]))
                order.append(sel)
            inv = torch.argsort(torch.cat(order))
            h, pre, u = (None if o[0] is None else torch.cat(o)[inv] for o in zip(*outs))
        else:
            h, pre, u = self._blocks(h, u)

        nz = self.template_feat_size**2
        # contiguous: a linear on the strided (B>1) token slice takes another GEMM path than on the
        # contiguous batch-1 slice, and rounds differently; copied, every row's output is the same
        # whatever batch it is in (CPU), so sharded and batched evaluation match the sequential one.
        search = self.vit.norm(h)[:, nz:].contiguous()
        score, box = self.head(search)
        out = {"score": score, "box": box}
        unimodal = self.head_rgb is not None
        if features or unimodal:
            search_rgb = self.vit.norm(pre[:, nz:].contiguous()) if self.x_depth else search
            search_x = self.xbranch.norm(u[:, nz:].contiguous()) if u is not None else search_rgb
            if features:
                out["feat_rgb"] = search_rgb.mean(1)
                out["feat_x"] = search_x.mean(1) if u is not None else out["feat_rgb"]
            if unimodal:
                out["score_rgb"], out["box_rgb"] = self.head_rgb(search_rgb)
                out["score_x"], out["box_x"] = self.head_x(search_x)
        return out

    # ------------------------------------------------------------------ inference
    def merge(self, modality: str) -> LoRATTracker:
        """A plain copy (no peft modules) with the shared + ``modality`` LoRA folded into the weights."""
        modality = self._route(modality)
        if modality not in self.modalities:
            raise ValueError(f"unknown modality {modality!r}; expected one of {self.modalities}")
        m = copy.deepcopy(self)
        if m.uses_lora:
            ex.merge_lora(m.vit, ex.adapters_for(m.experts, modality))
            m.uses_lora = False
            m.merged_modality = modality
        return m

    def param_counts(self) -> dict[str, int]:
        """Total / trainable parameter counts, plus the trainable LoRA, head and X-branch parts."""
        def n(ps):
            return sum(p.numel() for p in ps)

        heads = [m for m in (self.head, self.head_rgb, self.head_x) if m is not None]
        return {
            "total": n(self.parameters()),
            "trainable": n(p for p in self.parameters() if p.requires_grad),
            "lora": n(ex.lora_parameters(self.vit).values()),
            "head": n(p for h in heads for p in h.parameters()),
            "x_branch": n(self.xbranch.parameters()) if self.xbranch is not None else 0,
        }


def build_model(cfg: Mapping | DictConfig) -> LoRATTracker:
    """conf/model/<name>.yaml (with or without its ``_target_``) -> LoRATTracker."""
    kw = _plain(cfg)
    kw.pop("_target_", None)
    kw.pop("defaults", None)  # a model file read as plain YAML: its Hydra defaults list (optim=lorat ...)
    known = set(inspect.signature(LoRATTracker.__init__).parameters) - {"self"}
    for key in kw:
        if key not in known:
            raise ConfigError(f"model.{key}", f"unknown key; expected some of {', '.join(sorted(known))}")
    return LoRATTracker(**kw)
