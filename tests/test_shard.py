"""Sharded one-pass evaluation: balanced split, per-rank resume, 2 gloo ranks equal 1 process byte for byte;
and the property it rests on: a sequence's model outputs do not depend on which batch it is in."""

from __future__ import annotations

import pytest
import torch


def test_model_rows_do_not_depend_on_batch_composition():
    """A 256-d model: the head's linears on a strided token slice rounded differently from batch 1, and so
    did a softmax over a middle dimension (docs/evaluation.md, "Sharded over ranks and nodes"); every row
    must come out bit-identical in any batch."""
    lorat = pytest.importorskip("unitrack.model.lorat")
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="randomly initialised"):
        model = lorat.LoRATTracker(
            "vit_tiny_patch16_224", template_size=32, search_size=64, lora={"rank": 4, "alpha": 8},
            x_branch={"depth": 1, "dim": 8}, heads="fused+unimodal",
            backbone_kwargs={"depth": 1, "embed_dim": 256, "num_heads": 4, "patch_size": 16})
    net = model.merge("thermal").eval()
    g = torch.Generator().manual_seed(1)
    b = 6
    z, zx = torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 3, 32, 32, generator=g)
    x, xx = torch.rand(b, 3, 64, 64, generator=g), torch.rand(b, 3, 64, 64, generator=g)
    z_box = torch.tensor([[0.25, 0.25, 0.75, 0.75]] * b)
    with torch.inference_mode():
        tz, tzx = net.embed_template(z, zx, z_box)
        full = net.forward_search(tz, tzx, x, xx, ["thermal"] * b, features=False)
        for idx in ([0], [3], [1, 2], [5, 0, 4], [4, 1, 3, 2, 0]):
            part = net.forward_search(tz[idx], tzx[idx], x[idx], xx[idx], ["thermal"] * len(idx), features=False)
            for k, v in part.items():
                assert torch.equal(v, full[k][idx]), (k, idx)


def test_balanced_shards_are_longest_first_onto_the_least_loaded_rank():
    from unitrack.eval.shard import balanced_shards, merge_stats

    lengths = [5, 30, 7, 30, 12, 1, 20, 8]
    shards = balanced_shards(lengths, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(lengths)))
    assert all(s == sorted(s) for s in shards)
    # by hand: 30->r0, 30->r1, 20->r2, 12->r2 (32), 8->r0 (38), 7->r1 (37), 5->r2 (37), 1->r1 (38)
    assert shards == [[1, 7], [2, 3, 5], [0, 4, 6]]
    assert [sum(lengths[i] for i in s) for s in shards] == [38, 38, 37]
    assert balanced_shards([3, 3], 4) == [[0], [1], [], []]
    m = merge_stats([{"frames": 10, "seconds": 2.0, "fps": 5.0, "sequences": 2, "skipped": 1, "failed": []},
                     {"frames": 30, "seconds": 4.0, "fps": 7.5, "sequences": 3, "skipped": 0,
                      "failed": [{"uid": "a/b"}]}])
    assert m["frames"] == 40 and m["seconds"] == 4.0 and m["fps"] == 10.0 and m["sequences"] == 5
    assert m["skipped"] == 1 and m["failed"] == [{"uid": "a/b"}] and m["ranks"] == 2


def _rank_main(rank: int, world: int, init_file: str, seqs, out: str, stats_dir: str) -> None:
    """One rank of the 2-process gloo test (spawned: module-level so it pickles by reference)."""
    import json

    import torch.distributed as dist

    from tests.test_tracker import FakeModel, bright_oracle
    from unitrack.eval.shard import current_ranks, run_sharded

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ranks = current_ranks()
        assert (ranks.rank, ranks.world) == (rank, world)
        model = FakeModel(bright_oracle)
        stats = run_sharded(model, seqs, out, ranks, batch_size=2, workers=1, progress=False,
                            tracker_kwargs={"x_noise": 0.05})
        stats["my_sequences"] = sorted({c["modality"][0] for c in model.calls})
        with open(f"{stats_dir}/stats{rank}.json", "w") as fh:
            json.dump(stats, fh)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_write_the_single_process_result_files_byte_for_byte(tmp_path):
    """A mixed-task benchmark (thermal, depth, event; one bad sequence; one finished before): 2 ranks
    split it by frames, skip the finished one, report the bad one on both ranks, and every result file
    equals a single process's (another batch size too: batch companions do not change a sequence)."""
    import json

    import numpy as np
    import torch.multiprocessing as tmp_mp

    from tests.test_tracker import FakeModel, bright_oracle, write_sequence
    from unitrack.eval.results import write_results
    from unitrack.eval.runner import run_benchmark

    specs = [("t1", 9, "thermal"), ("d1", 7, "depth"), ("e1", 4, "event"), ("t2", 6, "thermal"),
             ("e2", 8, "event"), ("d2", 3, "depth"), ("t3", 5, "thermal")]
    seqs = [write_sequence(tmp_path / "data", n, k, m, start=(8 + 2 * i, 10), speed=(1, i % 2))
            for i, (n, k, m) in enumerate(specs)]
    bad = write_sequence(tmp_path / "data", "bad", 5, "event")
    bad.rgb_frames[2].write_bytes(b"")
    seqs.insert(3, bad)
    one = run_benchmark(FakeModel(bright_oracle), seqs, tmp_path / "one", batch_size=3, progress=False,
                        tracker_kwargs={"x_noise": 0.05})
    two = tmp_path / "two"
    done = seqs[1]
    write_results(two, done.name, np.tile([1.0, 2.0, 3.0, 4.0], (len(done), 1)), np.full(len(done), 0.5))
    sentinel = (two / f"{done.name}.txt").read_bytes()
    tmp_mp.spawn(_rank_main, args=(2, str(tmp_path / "pg"), seqs, str(two), str(tmp_path)), nprocs=2, join=True)
    st = [json.loads((tmp_path / f"stats{r}.json").read_text()) for r in (0, 1)]
    assert st[0] == {**st[1], "my_sequences": st[0]["my_sequences"]}  # every rank has the merged figures
    s = st[0]
    assert s["ranks"] == 2 and s["skipped"] == 1 and [f["name"] for f in s["failed"]] == ["bad"]
    per = [r["frames"] for r in s["per_rank"]]
    assert min(per) > 0 and abs(per[0] - per[1]) <= 9  # balanced within one sequence
    assert s["frames"] == one["frames"] - len(done)
    assert (two / f"{done.name}.txt").read_bytes() == sentinel  # finished before: not tracked again
    assert not (two / "bad.txt").exists() and [f["name"] for f in one["failed"]] == ["bad"]
    for q in seqs:
        if q is bad or q is done:
            continue
        for suffix in (".txt", "_confidence.txt"):
            assert (two / f"{q.name}{suffix}").read_bytes() == (tmp_path / "one" / f"{q.name}{suffix}").read_bytes()


def test_slurm_launcher_renders_a_multi_node_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=slurm with trainer=ddp on 2 nodes x 4 GPUs: the real submitit launcher builds the
    job; its sbatch script (rendered, never submitted) asks for 2 nodes and 4 tasks and GPUs per node,
    which is what Lightning needs to let SLURM own the processes (SLURM_NTASKS = devices x num_nodes)."""
    submitit = pytest.importorskip("submitit")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra.utils import instantiate

    from tests.conftest import compose

    cfg = compose("train", ["+experiment=serial_replay", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                            "hydra/launcher=slurm", "hydra.launcher.partition=gpu", f"paths.output_root={tmp_path}",
                            f"hydra.launcher.submitit_folder={tmp_path}/submitit", f"hydra.sweep.dir={tmp_path}/sweep"])
    assert cfg.hydra.launcher.nodes == 2 and cfg.trainer.num_nodes == 2
    rendered = {}

    def fake_map_array(self, fn, *args):
        ex = self._executor
        rendered["sbatch"] = ex._make_submission_file_text("python -m submitit.core._submit '%j'", "uid")
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", fake_map_array)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun here
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert launcher.launch([["seed=0"]], initial_job_idx=0) == []
    text = rendered["sbatch"]
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --partition=gpu", "#SBATCH --time=720", "export WANDB_MODE=offline"):
        assert line in text, (line, text)


SCRIPT = __import__("pathlib").Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def test_gpu_check_script_parses_and_its_gpu_overrides_compose():
    """bash -n, and the GPU run's overrides (printed by GPU_CHECK_PRINT=1) are valid keys of conf/bench.yaml
    with the sizes the check promises (b224, batch-128 training with AMP, random weights: no download)."""
    import os
    import subprocess

    from tests.conftest import compose

    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    args = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "GPU_CHECK_PRINT": "1"}, check=True,
                          capture_output=True, text=True).stdout.split()
    cfg = compose("bench", args)
    assert cfg.model.name == "lorat_b224" and cfg.model.pretrained is False and cfg.model.weights is None
    assert cfg.device == "cuda" and cfg.bench.amp and cfg.bench.train_batch == 128
    assert list(cfg.parts) == ["model", "data", "train", "eval"] and cfg.bench.eval_decode == "process"


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu_writes_one_bench_json(tmp_path):
    """GPU_CHECK_DRY=1: every part of the check runs at tiny sizes on the CPU and bench.json holds the
    figures the GPU run reports (about a minute on an idle 2-core machine)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "GPU_CHECK_DRY": "1", "GPU_CHECK_OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "bench.json").read_text())
    for k in ("device_name", "model_fps", "model_batched_fps", "eval_batched_fps", "runner_over_model_batched_paired",
              "train_pairs_per_s", "train_peak_mem_mb", "full_train_peak_mem_mb", "lora_over_full_mem",
              "decode_process1_fps_per_worker", "decode_workers_needed"):
        assert k in res, k
    assert res["device"] == "cpu" and res["eval_decode"] == "process" and res["eval_batched_fps"] > 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_two_nodes(args: list[str], cwd, timeout: int = 1200) -> None:
    """`torchrun --nnodes 2 --node_rank R --nproc_per_node 1` x 2 on localhost (static rendezvous, gloo)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONHASHSEED": "0",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": "1"}  # one thread per rank, as Lightning gives the 2 ddp_spawn ranks on 2 cores
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(port)]
    procs = [subprocess.Popen([*torchrun, "--node_rank", str(r), "-m", "unitrack.cli", *args], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    return outs


@pytest.mark.slow
def test_two_nodes_torchrun_train_a_stage_and_shard_its_evaluation(tmp_path, synth_root):
    """2 "nodes" x 1 process on localhost (torchrun, gloo, CPU): a tiny parallel stage trains with DDP and its
    per-stage evaluation (3 tasks' validation sequences) is sharded over the 2 ranks; then `unitrack eval`
    of that checkpoint is sharded the same way over the mixed-task benchmark.
    - the trained weights equal a 1-node x 2-process DDP run's (same DDP math, other topology) bit for bit;
    - against ONE process the weights differ: each rank normalises its loss by its own positive-token count
      (lorat_loss), so DDP's averaged gradient is not the 1-process batch's; stated, and bounded loosely;
    - every sharded result file equals a single-process evaluation's byte for byte, metrics equal."""
    import json

    import torch

    from tests.conftest import compose, tiny_train_overrides
    from unitrack.train.checkpoint import load_model
    from unitrack.train.unification import evaluate_tasks, train, val_sequences

    base = ["+experiment=parallel", *tiny_train_overrides(synth_root, tmp_path), "train.steps_per_stage=2",
            "data.val_sequences=1", "data.val_max_frames=8"]
    run = tmp_path / "nodes2"
    _torchrun_two_nodes(["train", *base, "trainer=ddp_cpu", "trainer.strategy=ddp_find_unused_parameters_true",
                         "trainer.devices=1", "trainer.num_nodes=2", f"hydra.run.dir={run}"], cwd=tmp_path)
    ckpt = run / "checkpoints" / "stage_1_parallel.ckpt"

    def cfg_of(extra):
        from omegaconf import open_dict

        c = compose("train", [*base, *extra])
        with open_dict(c):
            del c["hydra"]
        return c

    spawn = cfg_of(["trainer=ddp_cpu", "trainer.devices=2"])
    train(spawn, tmp_path / "spawn2")
    single = cfg_of([])
    train(single, tmp_path / "single")
    w = {k: torch.load(d / "checkpoints" / "stage_1_parallel.ckpt", weights_only=False)["state_dict"]
         for k, d in (("nodes", run), ("spawn", tmp_path / "spawn2"), ("single", tmp_path / "single"))}
    assert all(torch.equal(w["nodes"][k], w["spawn"][k]) for k in w["nodes"])
    diff = max((w["nodes"][k].float() - w["single"][k].float()).abs().max().item() for k in w["nodes"])
    assert 0 < diff < 1e-2, diff  # 2 AdamW steps at lr 1e-4-ish move a weight by ~1e-4 per step
    a, b = (json.loads((d / "matrix.json").read_text()) for d in (run, tmp_path / "spawn2"))
    assert a["SR"] == b["SR"] and a["PR"] == b["PR"]

    # the per-stage evaluation that the 2 ranks sharded == one process evaluating the same checkpoint
    model, _ = load_model(ckpt)
    val = {t: val_sequences(single.data, t) for t in single.train.order}
    assert sum(len(v) for v in val.values()) == 3
    one = tmp_path / "stage_eval_one"
    evaluate_tasks(model, val, one, single.eval)
    sharded = run / "eval" / "stage_1_parallel"
    names = sorted(p.name for p in one.iterdir())
    assert names and names == sorted(p.name for p in sharded.iterdir() if not p.name.startswith("."))
    assert all((one / n).read_bytes() == (sharded / n).read_bytes() for n in names)

    # `unitrack eval` sharded over 2 nodes == 1 process, on the mixed-task benchmark
    ev = ["eval", f"ckpt={ckpt}", f"benchmark={synth_root / 'unibench.txt'}", "device=cpu", "eval.batch_size=2"]
    _torchrun_two_nodes([*ev, f"hydra.run.dir={tmp_path / 'ev2'}"], cwd=tmp_path)
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "unitrack.cli", *ev, f"hydra.run.dir={tmp_path / 'ev1'}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res1, res2 = tmp_path / "ev1" / "results", tmp_path / "ev2" / "results"
    files = sorted(p.name for p in res1.iterdir() if p.name != "fingerprint.json")  # the run's, not a result
    assert len(files) == 2 * 3 and files == sorted(p.name for p in res2.iterdir() if p.name != "fingerprint.json")
    assert all((res1 / n).read_bytes() == (res2 / n).read_bytes() for n in files)
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("ev1", "ev2"))
    assert m2["timing"]["ranks"] == 2 and m1["timing"]["ranks"] == 1 and m2["complete"] is True
    assert {k: v for k, v in m1.items() if k not in ("timing", "results_dir")} == \
        {k: v for k, v in m2.items() if k not in ("timing", "results_dir")}
