"""Continual learning for serial RGBT -> RGBD -> RGBE training: replay buffers and one file per method."""

from unitrack.cl.base import Composite, ContinualMethod, build_methods, forward
from unitrack.cl.der import DERpp, store_logits
from unitrack.cl.distill import KD
from unitrack.cl.replay import BalancedBuffer, ReservoirBuffer, items_from_batch, make_buffer, validate_replay
from unitrack.cl.rkd import RKD, rkd_loss
from unitrack.cl.samm import Calibration, center_token, combine_heads, fit_temperature

__all__ = [
    "BalancedBuffer", "Calibration", "Composite", "ContinualMethod", "DERpp", "KD", "RKD", "ReservoirBuffer",
    "build_methods", "center_token", "combine_heads", "fit_temperature", "forward", "items_from_batch",
    "make_buffer", "rkd_loss", "store_logits", "validate_replay",
]
