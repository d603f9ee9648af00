"""`python -m unitrack.commands.foundation [overrides]`: build the RGB foundation that `model.init=foundation`
loads (unitrack.train.foundation) from `unitrack train`'s config with those overrides, and print its
checkpoint path as the one line on stdout (progress goes to stderr)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """`python -m unitrack.commands.foundation [overrides]`: build (or reuse) the cache entry, print its checkpoint path."""
    from unitrack.data.synth import ensure_default
    from unitrack.errors import UnitrackError
    from unitrack.train.foundation import compose_foundation, ensure_foundation
    from unitrack.train.unification import train

    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            cfg = compose_foundation(argv)
            if cfg.data.get("generate_if_missing"):
                ensure_default(Path(cfg.data.root), cfg.data.get("synth"))
            ckpt, trained = ensure_foundation(cfg, train)
            print(("trained" if trained else "reused") + f" RGB foundation {ckpt.parent.parent}")
    except UnitrackError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(ckpt, file=out)


if __name__ == "__main__":
    main()
