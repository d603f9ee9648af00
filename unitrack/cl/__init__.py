"""Continual learning for serial RGBT -> RGBD -> RGBE training: replay buffers and one file per method."""

from unitrack.cl.base import Composite, ContinualMethod, forward
from unitrack.cl.der import DERpp
from unitrack.cl.distill import KD
from unitrack.cl.ewc import OnlineEWC
from unitrack.cl.methods import build_methods
from unitrack.cl.rehearsal import Rehearsal, store_outputs
from unitrack.cl.replay import (
    BalancedBuffer,
    ReservoirBuffer,
    batch_layout,
    items_from_batch,
    make_buffer,
    validate_replay,
)
from unitrack.cl.rkd import RKD, rkd_loss
from unitrack.cl.samm import Calibration, Consistency, center_token, combine_heads, fit_temperature

__all__ = [
    "BalancedBuffer", "Calibration", "Composite", "Consistency", "ContinualMethod", "DERpp", "KD", "OnlineEWC",
    "RKD", "Rehearsal", "ReservoirBuffer", "batch_layout", "build_methods", "center_token", "combine_heads",
    "fit_temperature", "forward", "items_from_batch", "make_buffer", "rkd_loss", "store_outputs",
    "validate_replay",
]
