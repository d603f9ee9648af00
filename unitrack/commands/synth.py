"""`unitrack synth`: write the synthetic RGBT/RGBD/RGBE datasets in their native layouts."""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from unitrack.commands import run_dir
from unitrack.data.synth import generate


def run(cfg: DictConfig) -> str:
    t0 = time.perf_counter()
    s = cfg.synth
    out = generate(Path(cfg.out), seed=s.seed, sequences=s.sequences, frames=s.frames, size=tuple(s.size),
                   test_sequences=s.test_sequences, overwrite=cfg.overwrite,
                   rgb_sequences=s.get("rgb_sequences"))
    secs = time.perf_counter() - t0
    print(f"synthetic datasets written to {out} in {secs:.1f} s (manifest: {out / 'unibench.txt'})")
    (run_dir() / "synth.json").write_text(json.dumps({"out": str(out), "seconds": secs}, indent=2))
    return str(out)
