"""The RGB foundation, built once and reused: `python -m unitrack.train.foundation [overrides]`.

`make demo` (and any study that starts from the foundation) needs the RGB tracker of
`+experiment=rgb_foundation` before its own stage 1. Training it takes minutes, so it is cached under
`<paths.output_root>/foundation/<hash>/`, the run fingerprint's hash of the resolved config
(unitrack/fingerprint.py: everything but where outputs and logs go and worker counts). A finished run
(its checkpoint and matrix.json) is reused as is when the config matches; any change of data, model, steps or seed trains a new one.
The checkpoint path is the one line written to stdout (progress goes to stderr), so a shell can pass it
on: ``unitrack train +experiment=serial_replay model.init=$(python -m unitrack.train.foundation)``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

CKPT = "checkpoints/stage_1_rgb.ckpt"


def config_hash(cfg: DictConfig) -> str:
    """The run's own fingerprint hash (seed included; paths, logging and worker counts left out)."""
    from unitrack.fingerprint import config_hash as run_hash

    return run_hash(OmegaConf.to_container(cfg, resolve=True), with_seed=True)


def foundation_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_root) / "foundation" / config_hash(cfg)


def ensure_foundation(cfg: DictConfig) -> tuple[Path, bool]:
    """(checkpoint path, whether it was trained now): reuse the cached run of this config or train it."""
    from unitrack.train.unification import train

    run = foundation_dir(cfg)
    ckpt = run / CKPT
    if ckpt.is_file() and (run / "matrix.json").is_file():
        return ckpt, False
    train(cfg, run)
    return ckpt, True


def compose_foundation(overrides: list[str]) -> DictConfig:
    """conf/train.yaml + `+experiment=rgb_foundation` + overrides, as `unitrack train` composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["+experiment=rgb_foundation", *overrides],
                      return_hydra_config=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def main(argv: list[str] | None = None) -> None:
    from unitrack.data.synth import ensure_default
    from unitrack.errors import UnitrackError

    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            cfg = compose_foundation(argv)
            if cfg.data.get("generate_if_missing"):
                ensure_default(Path(cfg.data.root))
            ckpt, trained = ensure_foundation(cfg)
            print(("trained" if trained else "reused") + f" RGB foundation {ckpt.parent.parent}")
    except UnitrackError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(ckpt, file=out)


if __name__ == "__main__":
    main()
