"""Which continual-learning methods a run uses: the `cl` config group read into a `Composite`.

Each method lives in its own file (Mammoth's layout) on the `ContinualMethod` interface of `base.py`; this
module alone knows them all, so the base and the methods do not import each other. A method is active when
its weight is > 0, so methods compose; a combination that cannot work is a ConfigError naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unitrack.cl.base import Composite, ContinualMethod
from unitrack.cl.der import DERpp
from unitrack.cl.distill import KD
from unitrack.cl.ewc import OnlineEWC
from unitrack.cl.replay import BOUNDED_KINDS, validate_replay
from unitrack.cl.rkd import RKD
from unitrack.cl.samm import Calibration, Consistency
from unitrack.errors import ConfigError


def _section(cfg: Mapping[str, Any], key: str) -> dict[str, Any]:
    sec = cfg.get(key) if cfg is not None else None
    return dict(sec) if sec is not None else {}


def _number(sec: Mapping[str, Any], key: str, path: str, default: float, positive: bool = False) -> float:
    value = sec.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(path, f"expected a number, got {value!r}") from None
    if positive and value <= 0:
        raise ConfigError(path, f"must be > 0, got {value}")
    if value < 0:
        raise ConfigError(path, f"must be >= 0, got {value}")
    return value


def _starts_from_init(model_cfg: Mapping[str, Any] | None) -> bool:
    """A tracker-level foundation/pretrained init (`model.init`): heads and X branch already trained."""
    return model_cfg is not None and bool(model_cfg.get("init"))


def build_methods(cfg_cl: Mapping[str, Any] | None, model_cfg: Mapping[str, Any] | None = None) -> Composite:
    """Build the active methods from the `cl` config group; a method is active when its weight > 0."""
    cfg_cl = cfg_cl or {}
    replay = validate_replay(cfg_cl.get("replay"))
    methods: list[ContinualMethod] = []

    kd = _section(cfg_cl, "kd")
    kd_weight = _number(kd, "weight", "cl.kd.weight", 0.0)
    if kd_weight > 0:
        teacher = kd.get("teacher", "previous")
        inputs = kd.get("inputs", "replay")
        if teacher not in KD.TEACHERS:
            raise ConfigError("cl.kd.teacher", f"expected one of {KD.TEACHERS}, got {teacher!r}")
        if teacher == "pretrained" and not _starts_from_init(model_cfg):
            raise ConfigError("cl.kd.teacher", "'pretrained' distils towards the model before stage 1, whose "
                                               "heads and X branch are random unless the run starts from a "
                                               "trained tracker (set model.init); use 'previous'")
        if inputs not in KD.INPUTS:
            raise ConfigError("cl.kd.inputs", f"expected one of {KD.INPUTS}, got {inputs!r}")
        if inputs == "replay" and replay["kind"] == "none":
            raise ConfigError("cl.kd.inputs", "'replay' distils on replayed pairs but cl.replay.kind is 'none' "
                                              "(use inputs=current for LwF without replay)")
        methods.append(KD(kd_weight, _number(kd, "temperature", "cl.kd.temperature", 2.0, positive=True),
                          _number(kd, "box_weight", "cl.kd.box_weight", 0.0), teacher=teacher, inputs=inputs))

    der = _section(cfg_cl, "der")
    alpha = _number(der, "alpha", "cl.der.alpha", 0.0)
    beta = _number(der, "beta", "cl.der.beta", 0.0)
    if alpha > 0 or beta > 0:
        if replay["kind"] not in BOUNDED_KINDS or replay["ratio"] in (None, 0.0):
            raise ConfigError("cl.der.alpha", "DER replays stored outputs, so it needs cl.replay.kind "
                                              f"'reservoir' or 'balanced' and cl.replay.ratio > 0, got "
                                              f"{replay['kind']!r} / {replay['ratio']}")
        methods.append(DERpp(alpha, beta, box_weight=_number(der, "box_weight", "cl.der.box_weight", 0.0)))

    rkd = _section(cfg_cl, "rkd")
    rkd_weight = _number(rkd, "weight", "cl.rkd.weight", 0.0)
    if rkd_weight > 0:
        methods.append(RKD(rkd_weight))

    samm = _section(cfg_cl, "samm")
    cons = _number(samm, "consistency_weight", "cl.samm.consistency_weight", 0.0)
    if cons > 0 or bool(samm.get("fit_temperature", False)):
        if replay["kind"] not in BOUNDED_KINDS:
            key = "cl.samm.consistency_weight" if cons > 0 else "cl.samm.fit_temperature"
            raise ConfigError(key, "SAMM's consistency and calibration use the replay buffer: needs "
                                   f"cl.replay.kind 'reservoir' or 'balanced', got {replay['kind']!r}")
    if cons > 0:
        methods.append(Consistency(cons, _number(samm, "unimodal_weight", "cl.samm.unimodal_weight", 0.01)))
    if bool(samm.get("fit_temperature", False)):
        methods.append(Calibration(init=_number(samm, "init_temperature", "cl.samm.init_temperature", 1.5,
                                                positive=True),
                                   max_samples=int(samm.get("max_samples", 4096))))

    ewc = _section(cfg_cl, "ewc")
    ewc_weight = _number(ewc, "weight", "cl.ewc.weight", 0.0)
    if ewc_weight > 0:
        gamma = _number(ewc, "gamma", "cl.ewc.gamma", 1.0)
        if gamma > 1:
            raise ConfigError("cl.ewc.gamma", f"online EWC decays old Fisher terms: must be in [0, 1], got {gamma}")
        batches = int(_number(ewc, "fisher_batches", "cl.ewc.fisher_batches", 8, positive=True))
        methods.append(OnlineEWC(ewc_weight, gamma, batches))
    return Composite(methods)
