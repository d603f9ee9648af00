"""`unitrack track`: follow one target through a video or frame folder; annotated mp4 + box file."""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from unitrack.commands import pick_device, run_dir
from unitrack.eval.video import track_video
from unitrack.model.checkpoint import load_model

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    """Track one video or frame folder from `cfg.init`; writes the annotated mp4 and the box file."""
    model, _ = load_model(cfg.ckpt)
    if cfg.x_input is None and getattr(model, "xbranch", None) is not None:
        log.warning("track: no x_input given; the %s stream is fed a copy of the RGB frames, so this is an "
                    "RGB-only run of an RGB+X tracker (give x_input=PATH for real %s frames)", cfg.modality,
                    cfg.modality)
    out = cfg.out or str(run_dir() / "tracked.mp4")
    init = OmegaConf.to_container(cfg.init) if OmegaConf.is_config(cfg.init) else cfg.init
    stats = track_video(model, cfg.input, init, out, x_input=cfg.x_input, modality=cfg.modality,
                        tracker_kwargs={"device": pick_device(cfg.device)})
    print(f"tracked {stats['frames']} frames at {stats['fps']:.1f} frames/s -> {out}")
    return stats
