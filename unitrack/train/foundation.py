"""The RGB foundation, built once and reused: `model.init=foundation`, or `python -m unitrack.train.foundation`.

Every unified tracker starts from an RGB tracker. The study's experiments (conf/experiment/serial*,
parallel, single_*) say `model.init: foundation`: before stage 1 the run loads the RGB tracker of its own
data, backbone, optimiser, trainer and seed, trained `foundation.steps` on task `rgb` (the synthetic RGB
world by default, LaSOT / GOT-10k / TrackingNet with data=rgb_sot) with the model's X branch absent,
shared LoRA, the fused head and no CL method (`foundation_config`). Training it takes minutes, so it is
cached under `<paths.output_root>/foundation/<hash>/`, the run fingerprint's hash of that derived config
(unitrack/fingerprint.py: everything but where outputs and logs go and worker counts). A finished run (its
checkpoint and matrix.json) is reused when the config matches, so every experiment, seed-for-seed, and
every LoRA rank or X-branch width of a sweep starts from the same RGB tracker (model/init.py folds its
LoRA into the base weights); a file lock keeps two processes of one machine from training it twice.
A foundation trained by other code than the running one is reused with a warning naming both versions.

`python -m unitrack.train.foundation [overrides]` builds the same cache entry from `unitrack train`'s
config with those overrides and writes its checkpoint path as the one line on stdout.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from unitrack.errors import ConfigError

log = logging.getLogger(__name__)

CKPT = "checkpoints/stage_1_rgb.ckpt"
#: The `model.init` value that means "this run's RGB foundation".
FOUNDATION = "foundation"
METHOD = "rgb_foundation"


def config_hash(cfg: DictConfig) -> str:
    """The run's own fingerprint hash (seed included; paths, logging and worker counts left out)."""
    from unitrack.fingerprint import config_hash as run_hash

    return run_hash(OmegaConf.to_container(cfg, resolve=True), with_seed=True)


def foundation_config(cfg: DictConfig) -> DictConfig:
    """The RGB foundation run that `cfg` starts from: its data, backbone, optimiser, trainer, evaluation
    and seed; one `single` stage on task rgb of `foundation.steps` steps; `foundation.model` merged into
    the model (default: no X branch, shared LoRA, fused head) and `foundation.optim` into the optimiser
    (a sweep of the study's lr or rank pins them, so every point starts from one foundation); no CL
    method, no init of its own. A
    randomly initialised backbone (no `pretrained`, no `weights`) is trained from scratch: whole
    (unless `foundation.model.finetune` says otherwise) at `foundation.scratch_lr` (unless
    `foundation.optim.lr` does); a pre-trained one keeps the model's own mode and lr (LoRAT: LoRA, 1e-4)."""
    from unitrack import conf_dir

    if "rgb" not in (cfg.data.get("tasks") or {}):
        raise ConfigError("data.tasks.rgb", "model.init=foundation trains the RGB tracker on task `rgb`, which "
                          "this data config lacks (data=synthetic has the RGB world; data=rgb_sot adds LaSOT / "
                          "GOT-10k / TrackingNet roots), or set model.init=PATH / null")
    f = copy.deepcopy(cfg)
    fd = cfg.get("foundation") or {}
    fd_model, fd_optim = fd.get("model") or {}, fd.get("optim") or {}
    with open_dict(f):
        for k in ("hydra", "foundation", "hparams_search"):
            f.pop(k, None)
        f.method, f.tags = METHOD, ["foundation", "rgb"]
        f.train.mode, f.train.order = "single", ["rgb"]
        f.train.steps_per_stage = int(fd.get("steps") or cfg.train.steps_per_stage)
        f.train.budget, f.train.schedule, f.train.optimizer_state = "stage", "restart", "reset"
        f.model = OmegaConf.merge(f.model, fd_model)
        f.optim = OmegaConf.merge(f.optim, fd_optim)
        if not (cfg.model.get("pretrained") or cfg.model.get("weights")):  # a random-init backbone: from scratch
            if "finetune" not in fd_model:
                f.model.finetune = "full"  # trained whole (LoRA on random weights learns little)
            if "lr" not in fd_optim:
                f.optim.lr = float(fd.get("scratch_lr", 1e-3))  # from scratch, not the study's fine-tuning lr
        f.model.init = None
        f.cl = OmegaConf.load(conf_dir() / "cl" / "none.yaml")
        f.eval.samm = False
    return f


def foundation_dir(cfg: DictConfig) -> Path:
    """Cache folder of a foundation config (what `foundation_config` returns)."""
    return Path(cfg.paths.output_root) / "foundation" / config_hash(cfg)


def _warn_other_code(run: Path) -> None:
    from unitrack import fingerprint

    old = (fingerprint.read(run) or {}).get("code_version")
    now = fingerprint.code_version()
    if old and old != now:
        log.warning("reusing the RGB foundation %s trained by code %s (running %s); delete the folder to "
                    "train it again", run, old, now)


def ensure_foundation(cfg: DictConfig) -> tuple[Path, bool]:
    """(checkpoint path, whether it was trained now) of a foundation config: reuse the cache or train it."""
    from filelock import FileLock
    from lightning.fabric.utilities.rank_zero import (
        rank_zero_only,  # the launcher's rank (RANK, LOCAL_RANK, ...)
    )

    from unitrack.train.unification import train

    run = foundation_dir(cfg)
    ckpt = run / CKPT
    run.mkdir(parents=True, exist_ok=True)
    # Under DDP every rank runs this and trains the foundation together (its fit is a DDP fit); only rank 0
    # takes the lock, or a rank waiting for it would hold rank 0's fit waiting for it in turn. Ranks decide
    # alike: rank 0 writes the checkpoint only at the end of the fit they share.
    lock = FileLock(str(run) + ".lock") if rank_zero_only.rank == 0 else contextlib.nullcontext()
    with lock:
        if ckpt.is_file() and (run / "matrix.json").is_file():
            _warn_other_code(run)
            return ckpt, False
        train(cfg, run)
    return ckpt, True


def resolve_init(cfg: DictConfig) -> DictConfig:
    """`cfg` with `model.init=foundation` replaced by the checkpoint of its RGB foundation (trained now if
    not cached); any other value is returned unchanged."""
    if str(cfg.model.get("init")) != FOUNDATION:
        return cfg
    from rich.console import Console

    fcfg = foundation_config(cfg)
    console = Console(stderr=True)
    console.rule(f"RGB foundation ({fcfg.train.steps_per_stage} steps on task rgb): {foundation_dir(fcfg)}")
    ckpt, trained = ensure_foundation(fcfg)
    console.print(("trained" if trained else "reused") + f" RGB foundation {ckpt}")
    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.model.init = str(ckpt)
    return out


def compose_foundation(overrides: list[str]) -> DictConfig:
    """The foundation config of `unitrack train <overrides>` (what `model.init=foundation` would build)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from unitrack import conf_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return foundation_config(cfg)


def main(argv: list[str] | None = None) -> None:
    """`python -m unitrack.train.foundation [overrides]`: build (or reuse) the cache entry, print its checkpoint path."""
    from unitrack.data.synth import ensure_default
    from unitrack.errors import UnitrackError

    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            cfg = compose_foundation(argv)
            if cfg.data.get("generate_if_missing"):
                ensure_default(Path(cfg.data.root), cfg.data.get("synth"))
            ckpt, trained = ensure_foundation(cfg)
            print(("trained" if trained else "reused") + f" RGB foundation {ckpt.parent.parent}")
    except UnitrackError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(ckpt, file=out)


if __name__ == "__main__":
    main()
