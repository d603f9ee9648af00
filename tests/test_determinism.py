"""Same seed, same numbers on CPU: gradients are bit-identical run to run with several threads, and two
same-seed trainings (side by side, one of them killed and resumed) give identical matrices."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import CONF, kill_mid_stage, tiny_train_overrides


def _tiny_model():
    from hydra.utils import instantiate

    cfg = OmegaConf.load(CONF / "model" / "lorat_tiny.yaml")
    cfg.backbone_kwargs.depth = 2
    torch.manual_seed(0)
    return instantiate(cfg)


def test_gradients_are_bit_identical_with_two_threads():
    """The template token-type lookup used to be a row gather whose backward (index_put accumulate) sums
    B x nz gradient rows into 2 in a thread-dependent order: token_type.grad differed between two
    backward passes of the same batch. Every parameter's gradient must now repeat exactly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        m = _tiny_model()
        g = torch.Generator().manual_seed(1)
        b = 16
        z, zx = torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 3, 32, 32, generator=g)
        x, xx = torch.rand(b, 3, 64, 64, generator=g), torch.rand(b, 3, 64, 64, generator=g)
        zb = torch.tensor([[0.3, 0.3, 0.7, 0.7]]).repeat(b, 1)

        def grads():
            m.zero_grad()
            out = m(z, zx, x, xx, zb, ["thermal"] * b)
            sum(v.float().pow(2).mean() for v in out.values() if torch.is_tensor(v) and v.is_floating_point()).backward()
            return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

        ref = grads()
        assert "token_type" in ref
        for _ in range(4):
            again = grads()
            assert [n for n in ref if not torch.equal(ref[n], again[n])] == []
    finally:
        torch.set_num_threads(threads)


def _cli(args):
    return [sys.executable, "-m", "unitrack.cli", "train", *args]


@pytest.mark.slow
def test_same_seed_runs_side_by_side_and_a_killed_resumed_run_give_identical_matrices(tmp_path, synth_root):
    """Demo-shaped (serial_replay, 3 stages); UNITRACK_DET_STEPS=200 is the demo's own length."""
    steps = int(os.environ.get("UNITRACK_DET_STEPS", "40"))
    args = ["+experiment=serial_replay", "seed=123", *tiny_train_overrides(synth_root, tmp_path),
            f"train.steps_per_stage={steps}", f"train.ckpt_every={max(2, steps // 8)}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "killed"]
    procs = [subprocess.Popen(_cli([*args, f"hydra.run.dir={r}"]), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for r in runs]
    killed = kill_mid_stage(procs[2], runs[2], stage=1, steps=steps, timeout=1800)
    for p in procs:
        p.wait(timeout=1800)
    assert killed, "did not catch the run mid-stage"
    for p in procs[:2]:
        assert p.returncode == 0, p.stderr.read()[-3000:]
    again = subprocess.run(_cli([*args, f"hydra.run.dir={runs[2]}"]), env=env, capture_output=True, text=True,
                           timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming stage 2" in again.stdout
    a, b, c = (json.loads((r / "matrix.json").read_text()) for r in runs)
    for key in ("SR", "PR", "static_box"):
        assert a[key] == b[key] == c[key], key
