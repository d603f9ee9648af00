"""`unitrack synth`: write the synthetic RGBT/RGBD/RGBE datasets in their native layouts, then calibrate
the world: trivial reference trackers on the test split, printed and written to world.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from unitrack.commands import run_dir
from unitrack.data.synth import MANIFEST, generate


def calibrate_world(root: Path) -> dict:
    """The trivial trackers' SR/PR on the world's unified test benchmark (its manifest)."""
    from unitrack.data.formats import load_dataset
    from unitrack.eval.baselines import calibrate

    return calibrate(load_dataset("manifest", root / MANIFEST))


def run(cfg: DictConfig) -> str:
    """Generate the synthetic world into `cfg.out` and calibrate it (world.json); returns the folder."""
    from unitrack.atomic import write_text_atomic
    from unitrack.eval.baselines import format_table

    t0 = time.perf_counter()
    s = cfg.synth
    out = generate(Path(cfg.out), seed=s.seed, sequences=s.sequences, frames=s.frames, size=tuple(s.size),
                   test_sequences=s.test_sequences, overwrite=cfg.overwrite,
                   rgb_sequences=s.get("rgb_sequences"), workers=s.get("workers"))
    secs = time.perf_counter() - t0
    print(f"synthetic datasets written to {out} in {secs:.1f} s (manifest: {out / MANIFEST})")
    info = {"out": str(out), "seconds": secs, "synth": {k: (list(v) if k == "size" else v) for k, v in s.items()}}
    if cfg.calibrate:
        t1 = time.perf_counter()
        world = calibrate_world(out)
        world["seconds"] = time.perf_counter() - t1
        print(format_table(world))
        print(f"best trivial tracker: {world['best_trivial']['tracker']} (pooled SR "
              f"{world['best_trivial']['SR']:.3f}); a trained tracker should clearly beat it")
        info["world"] = world
        text = json.dumps({**world, "seed": int(s.seed)}, indent=2)
        write_text_atomic(out / "world.json", text)
        write_text_atomic(run_dir() / "world.json", text)
    write_text_atomic(run_dir() / "synth.json", json.dumps(info, indent=2, default=str))
    return str(out)
