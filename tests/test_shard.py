"""Sharded one-pass evaluation: balanced split, per-rank resume, 2 gloo ranks equal 1 process byte for byte;
and the property it rests on: a sequence's model outputs do not depend on which batch it is in."""

from __future__ import annotations

import pytest
import torch


def test_model_rows_do_not_depend_on_batch_composition():
    """A 256-d model: the head's linears on a strided token slice rounded differently from batch 1 (see
    /work/notes/finding-batch-composition.md); every row must come out bit-identical in any batch."""
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
