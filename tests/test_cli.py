"""The CLI: verbs listed, unknown verbs refused, synth/inspect/score/eval/track end to end on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from unitrack.cli import VERBS, main


def _run(argv: list[str]) -> None:
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    main(argv)


def test_help_lists_every_verb_and_unknown_verb_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "unitrack.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for verb in ("train", "eval", "score", "track", "bench", "synth", "inspect", "report"):
        assert verb in VERBS and f"  {verb}" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "unitrack.cli", "trian"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown verb 'trian'" in bad.stderr and "Traceback" not in bad.stderr


def test_synth_then_inspect_writes_inspect_json(tmp_path):
    data = tmp_path / "data"
    _run(["synth", f"out={data}", "synth.sequences=1", "synth.test_sequences=1", "synth.frames=12",
          "synth.size=[80,60]", f"hydra.run.dir={tmp_path / 'synth_run'}"])
    assert (data / "unibench.txt").is_file()
    run = tmp_path / "inspect_run"
    _run(["inspect", "dataset=manifest", f"root={data / 'unibench.txt'}", f"hydra.run.dir={run}"])
    rep = json.loads((run / "inspect.json").read_text())
    assert rep["dataset"] == "manifest"
    assert {s["task"] for s in rep["sequences"]} == {"rgbt", "rgbd", "rgbe"}
    assert all(s["frames"] == 12 for s in rep["sequences"])
    assert {s["x_modality"] for s in rep["sequences"]} == {"thermal", "depth", "event"}
    run2 = tmp_path / "inspect_lasher"
    _run(["inspect", "dataset=lasher", f"root={data / 'lasher'}", "split=train", f"hydra.run.dir={run2}"])
    rep2 = json.loads((run2 / "inspect.json").read_text())
    assert len(rep2["sequences"]) == 1 and rep2["sequences"][0]["task"] == "rgbt"


def test_inspect_bad_dataset_is_one_line_error(tmp_path, capsys):
    (tmp_path / "LasHeR").mkdir()
    with pytest.raises(SystemExit) as e:
        _run(["inspect", "dataset=lasher", f"root={tmp_path / 'LasHeR'}", "split=test",
              f"hydra.run.dir={tmp_path / 'r'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no LasHeR sequences found (expected" in err


def test_score_verb_on_ground_truth_results_is_perfect(tmp_path, synth_root):
    from unitrack.data.formats import load_dataset
    from unitrack.eval.results import write_results

    seqs = load_dataset("manifest", synth_root / "unibench.txt")
    res = tmp_path / "res"
    for s in seqs:
        boxes = np.where(np.isfinite(s.boxes), s.boxes, 0.0)
        write_results(res, s.name, boxes, np.ones(len(s)))
    run = tmp_path / "score_run"
    _run(["score", f"results={res}", f"benchmark={synth_root / 'unibench.txt'}", f"hydra.run.dir={run}"])
    m = json.loads((run / "metrics.json").read_text())
    # success counts IoU > tau: at tau = 1.0 even a perfect box fails, so a perfect SR is 20/21
    assert m["overall"]["SR"] == pytest.approx(20 / 21) and m["overall"]["PR"] == pytest.approx(1.0)
    assert set(m["per_task"]) == {"rgbt", "rgbd", "rgbe"}
    assert any(p.suffix == ".png" for p in run.iterdir())


def test_score_missing_results_names_the_file(tmp_path, synth_root, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        _run(["score", f"results={tmp_path / 'empty'}", f"benchmark={synth_root / 'unibench.txt'}",
              f"hydra.run.dir={tmp_path / 'r'}"])
    assert ".txt" in capsys.readouterr().err


def test_train_then_eval_and_track_from_the_checkpoint(tmp_path, synth_root):
    run = tmp_path / "train_run"
    _run(["train", "+experiment=single_rgbt", "debug=fast", f"data.root={synth_root}",
          "model.backbone_kwargs.depth=2", f"hydra.run.dir={run}"])
    ckpt = run / "checkpoints" / "stage_1_rgbt.ckpt"
    assert ckpt.is_file() and (run / "matrix.json").is_file()
    ev = tmp_path / "eval_run"
    _run(["eval", f"ckpt={ckpt}", f"benchmark={synth_root / 'unibench.txt'}", "eval.batch_size=3",
          "eval.export=[got10k,vot]", f"hydra.run.dir={ev}"])
    m = json.loads((ev / "metrics.json").read_text())
    assert set(m["per_task"]) == {"rgbt", "rgbd", "rgbe"} and 0 <= m["overall"]["SR"] <= 1
    assert m["timing"]["frames"] == 3 * 24 and m["timing"]["frames_per_s"] > 0
    assert len(list((ev / "results").glob("*_confidence.txt"))) == 3
    assert (ev / "got10k").is_dir() and (ev / "vot").is_dir()
    frames = sorted((synth_root / "lasher" / "test").glob("*/visible"))[0]
    tr = tmp_path / "track_run"
    _run(["track", f"ckpt={ckpt}", f"input={frames}", "init=[30,20,12,10]", f"out={tr / 'out.mp4'}",
          f"hydra.run.dir={tr}"])
    assert (tr / "out.mp4").stat().st_size > 0
    assert len((tr / "out.txt").read_text().splitlines()) == 24


def test_bench_writes_every_figure_in_one_run(tmp_path, synth_root):
    run = tmp_path / "bench_run"
    _run(["bench", f"data.root={synth_root}", "model.backbone_kwargs.depth=2", "bench.train_batch=4",
          "bench.model_steps=1", "bench.loader_batches=2", "bench.train_steps=2", "bench.decode_size=[96,72]",
          "bench.decode_frames=8", "bench.eval_sequences=3", "bench.eval_batch_size=3", "bench.eval_frames=8", "bench.model_iters=3", "bench.repeats=1",
          "device=cpu", f"hydra.run.dir={run}"])
    b = json.loads((run / "bench.json").read_text())
    for key in ("params_total", "params_trainable", "forward_ms", "backbone_forward_ms", "train_step_ms",
                "train_peak_mem_mb", "lora_over_full_mem", "decode_fps", "loader_pairs_per_s", "train_pairs_per_s",
                "model_fps", "model_per_frame_fps", "model_batched_fps", "e2e_fps", "eval_sequential_fps",
                "eval_batched_fps", "e2e_over_per_frame_paired", "batched_over_sequential_paired"):
        assert isinstance(b[key], (int, float)) and b[key] > 0, key
    assert b["params_trainable"] < b["params_total"]


def test_allocator_tuning_applies_on_glibc_and_can_be_switched_off(monkeypatch):
    import platform

    from unitrack.runtime import tune_allocator

    monkeypatch.setenv("UNITRACK_MALLOC", "default")
    assert tune_allocator() is False
    monkeypatch.delenv("UNITRACK_MALLOC")
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tune_allocator() is True
