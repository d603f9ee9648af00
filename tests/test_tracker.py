"""Online tracker, batched runner, video tracking: behaviour checked with small fake models."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unitrack.cl.samm import combine_heads, inference_kwargs
from unitrack.data.crop import box_to_crop, crop_window, xywh_to_norm_xyxy
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError, DatasetError, ResultsError
from unitrack.eval.tracker import IMAGENET_MEAN, OnlineTracker, TrackState, clip_box

W, H = 64, 48


class FakeModel(nn.Module):
    """Obeys the model contract; `fn(z, zx, x, xx, z_box)` computes the outputs. Records every merged call."""

    template_size, search_size, template_factor, search_factor = 16, 40, 2.0, 4.0

    def __init__(self, fn, feat_size: int = 5):
        super().__init__()
        self.fn, self.feat_size = fn, feat_size
        self.calls: list[dict] = []
        self.merged_for: list[str] = []

    def merge(self, modality: str) -> nn.Module:
        self.merged_for.append(modality)
        return _Merged(self, modality)


class _Merged(nn.Module):
    def __init__(self, parent: FakeModel, modality: str):
        super().__init__()
        self.parent, self.modality = [parent], modality  # list: not a registered submodule

    def forward(self, z, zx, x, xx, z_box, modality):
        p = self.parent[0]
        assert all(m == self.modality for m in modality), (self.modality, modality)
        p.calls.append({"modality": list(modality), "z": z.clone(), "zx": zx.clone(), "x": x.clone(),
                        "xx": xx.clone(), "z_box": z_box.clone()})
        return p.fn(p, z, zx, x, xx, z_box, modality)


def bright_oracle(p, z, zx, x, xx, z_box, modality):
    """Finds the bright target in the RGB search crop; X and modality nudge the scores a little."""
    gray = x.mean(1)
    b, s = gray.shape[0], gray.shape[-1]
    boxes = torch.zeros(b, 4)
    for i in range(b):
        ys, xs = torch.nonzero(gray[i] > 0.5, as_tuple=True)
        if len(xs):
            boxes[i] = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float() / s
        else:
            boxes[i] = torch.tensor([0.45, 0.45, 0.55, 0.55])
    pooled = F.adaptive_avg_pool2d(gray[:, None], p.feat_size).flatten(1)
    pooled_x = F.adaptive_avg_pool2d(xx.mean(1, keepdim=True), p.feat_size).flatten(1)
    bias = torch.tensor([{"thermal": 0.0, "depth": 0.1, "event": 0.2}[m] for m in modality])[:, None]
    score = (pooled - 0.2) * 20 + 0.5 * pooled_x + bias
    return {"score": score, "box": boxes[:, None].expand(-1, p.feat_size ** 2, -1).contiguous()}


def write_sequence(root: Path, name: str, n: int, modality: str = "thermal", dataset: str = "synth",
                   start=(10, 12), speed=(1, 1), size=10) -> Sequence:
    """A dark frame with a bright square moving `speed` px per frame; X is a dimmer copy (or depth)."""
    d = root / dataset / name
    d.mkdir(parents=True)
    rgb_files, x_files, boxes = [], [], []
    for i in range(n):
        x0, y0 = start[0] + speed[0] * i, start[1] + speed[1] * i
        img = np.full((H, W, 3), 20, np.uint8)
        img[y0:y0 + size, x0:x0 + size] = 230
        img[:, :3] = (i * 7) % 100  # a frame-dependent stripe so frames differ
        rgb_files.append(d / f"rgb_{i:04d}.png")
        cv2.imwrite(str(rgb_files[-1]), img)
        x_files.append(d / f"x_{i:04d}.png")
        if modality == "depth":
            depth = np.full((H, W), 3000, np.uint16)
            depth[y0:y0 + size, x0:x0 + size] = 1000
            cv2.imwrite(str(x_files[-1]), depth)
        else:
            cv2.imwrite(str(x_files[-1]), img // 2)
        boxes.append([x0, y0, size, size])
    task = {"thermal": "rgbt", "depth": "rgbd", "event": "rgbe"}[modality]
    return Sequence(name, task, dataset, rgb_files, x_files, np.array(boxes, float), modality)


def frame(value=20):
    img = np.full((H, W, 3), value, np.uint8)
    return img, img.copy()


# -- tracker ---------------------------------------------------------------------------------------
def test_centre_token_box_maps_back_to_the_previous_box():
    box0 = np.array([20.0, 15.0, 14.0, 12.0])
    cx, cy, side = crop_window(box0, 4.0)
    nb = torch.tensor(xywh_to_norm_xyxy(box_to_crop(box0, cx, cy, side, 40), 40), dtype=torch.float32)

    def centre(p, z, zx, x, xx, z_box, modality):
        score = torch.full((len(x), 25), -3.0)
        score[:, 12] = 2.0  # the centre token of a 5x5 grid
        return {"score": score, "box": nb.expand(len(x), 25, 4).contiguous()}

    tr = OnlineTracker(FakeModel(centre))
    st = TrackState("thermal", "a")
    tr.init([st], [frame()], [box0])
    for _ in range(3):
        boxes, conf = tr.step([st], [frame()])
        np.testing.assert_allclose(boxes[0], box0, atol=1e-4)
        assert conf[0] == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-6)


def cell_boxes(n=5, half=0.05):
    """Per token a small box centred on the token's cell (row-major), normalised xyxy."""
    j, i = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    c = torch.stack([(i.flatten() + 0.5) / n, (j.flatten() + 0.5) / n], 1)
    return torch.cat([c - half, c + half], 1)


def test_hann_window_prefers_the_peak_nearer_the_centre_and_confidence_is_unwindowed():
    def two_peaks(p, z, zx, x, xx, z_box, modality):
        score = torch.full((len(x), 25), -4.0)
        score[:, 1 * 5 + 1] = 3.0  # row 1, col 1: window 0.25 (first in argmax order)
        score[:, 2 * 5 + 3] = 3.0  # row 2, col 3: window 0.5
        return {"score": score, "box": cell_boxes().expand(len(x), 25, 4).contiguous()}

    box0 = np.array([26.0, 18.0, 12.0, 12.0])  # centre (32, 24); search side 48
    cx, cy, side = crop_window(box0, 4.0)
    assert side == pytest.approx(48.0)

    def centre_after_step(weight):
        tr = OnlineTracker(FakeModel(two_peaks), window_weight=weight)
        st = TrackState("thermal", "a")
        tr.init([st], [frame()], [box0])
        b, c = tr.step([st], [frame()])
        return b[0, :2] + b[0, 2:] / 2, c[0]

    (ccx, ccy), conf = centre_after_step(0.45)
    assert ccx == pytest.approx(cx + (3.5 / 5 - 0.5) * side) and ccy == pytest.approx(cy)
    assert conf == pytest.approx(1 / (1 + math.exp(-3.0)), abs=1e-6)
    (ccx, ccy), _ = centre_after_step(0.0)  # without the window the first equal peak wins
    assert ccx == pytest.approx(cx + (1.5 / 5 - 0.5) * side)
    assert ccy == pytest.approx(cy + (1.5 / 5 - 0.5) * side)


def test_search_window_uses_min_size_around_the_same_centre():
    tiny = np.array([30.0, 20.0, 2.0, 3.0])
    tr = OnlineTracker(FakeModel(bright_oracle), min_size=10)
    st = TrackState("thermal", "a")
    tr.init([st], [frame()], [tiny])
    tr.step([st], [frame()])
    assert st.window == pytest.approx(crop_window([26.0, 16.5, 10.0, 10.0], 4.0))
    assert st.window[2] == pytest.approx(40.0)


def test_box_is_clipped_to_the_image_keeping_one_pixel():
    np.testing.assert_allclose(clip_box([-5, 40, 20, 20], W, H), [0, 40, 15, 8])
    np.testing.assert_allclose(clip_box([100, -30, 5, 5], W, H), [63, 0, 1, 1])


def test_init_rejects_a_missing_box():
    tr = OnlineTracker(FakeModel(bright_oracle))
    with pytest.raises(ConfigError, match="w,h > 0"):
        tr.init([TrackState("thermal", "s1")], [frame()], [[np.nan, 1, 2, 3]])


def test_drop_modality_and_x_noise_change_x_deterministically():
    img = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    box0 = [20.0, 15.0, 14.0, 12.0]

    def inputs(**kw):
        m = FakeModel(bright_oracle)
        tr = OnlineTracker(m, **kw)
        st = TrackState("thermal", "seq")
        tr.init([st], [(img, img)], [box0])
        tr.step([st], [(img, img)])
        return m.calls[0]

    clean = inputs()
    noisy, again, other = inputs(x_noise=0.1), inputs(x_noise=0.1), inputs(x_noise=0.1, seed=1)
    assert torch.equal(noisy["xx"], again["xx"]) and torch.equal(noisy["zx"], again["zx"])
    assert not torch.equal(noisy["xx"], other["xx"])
    assert torch.equal(noisy["x"], clean["x"])  # RGB untouched
    assert 0.05 < (noisy["xx"] - clean["xx"]).std() < 0.15
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    no_x = inputs(drop_modality="x")
    assert torch.allclose(no_x["xx"], mean.expand_as(no_x["xx"])) and torch.equal(no_x["x"], clean["x"])
    assert torch.allclose(no_x["zx"], mean.expand_as(no_x["zx"]))
    no_rgb = inputs(drop_modality="rgb")
    assert torch.allclose(no_rgb["x"], mean.expand_as(no_rgb["x"])) and torch.equal(no_rgb["xx"], clean["xx"])
    assert torch.allclose(no_rgb["z"], mean.expand_as(no_rgb["z"]))
    with pytest.raises(ConfigError, match="drop_modality"):
        OnlineTracker(FakeModel(bright_oracle), drop_modality="depth")


def test_samm_takes_the_token_from_the_combined_map_and_the_box_from_the_surest_head():
    def heads(p, z, zx, x, xx, z_box, modality):
        b = len(x)
        flat = torch.zeros(b, 25)
        sharp = torch.full((b, 25), -5.0)
        sharp[:, 2 * 5 + 3] = 5.0
        cells = cell_boxes().expand(b, 25, 4)
        return {"score": flat, "box": cells * 0, "score_rgb": sharp, "box_rgb": cells.contiguous(),
                "score_x": flat.clone(), "box_x": cells * 0}

    box0 = np.array([26.0, 18.0, 12.0, 12.0])
    cx, cy, side = crop_window(box0, 4.0)
    with pytest.raises(ConfigError, match="samm.combine"):  # temperatures alone: no rule to combine with
        OnlineTracker(FakeModel(heads), samm={"temperatures": {"fused": 1.0, "rgb": 2.0, "x": 1.0}})
    tr = OnlineTracker(FakeModel(heads), **inference_kwargs({"fused": 1.0, "rgb": 2.0, "x": 1.0}))
    st = TrackState("thermal", "a")
    tr.init([st], [frame()], [box0])
    b, c = tr.step([st], [frame()])
    assert b[0, 0] + b[0, 2] / 2 == pytest.approx(cx + (3.5 / 5 - 0.5) * side)
    z_rgb = torch.full((1, 25), -2.5)
    z_rgb[0, 13] = 2.5  # sharp / T_rgb
    expected = combine_heads({"fused": torch.zeros(1, 25), "rgb": z_rgb * 2, "x": torch.zeros(1, 25)},
                              {"fused": 1.0, "rgb": 2.0, "x": 1.0})[0, 13].sigmoid()
    assert c[0] == pytest.approx(float(expected), abs=1e-6)


# -- runner ----------------------------------------------------------------------------------------
@pytest.fixture
def sequences(tmp_path):
    specs = [("s1", 5, "thermal"), ("s2", 7, "depth"), ("s3", 3, "event"), ("s4", 6, "thermal"),
             ("s5", 4, "event")]
    return [write_sequence(tmp_path / "data", n, k, m, start=(8 + 3 * i, 10), speed=(1, i % 2))
            for i, (n, k, m) in enumerate(specs)]


def test_batched_run_equals_sequential_run_with_mixed_modalities(tmp_path, sequences):
    pytest.importorskip("unitrack.eval.results")
    from unitrack.eval.results import read_results
    from unitrack.eval.runner import run_benchmark, run_sequential

    seq_model, bat_model = FakeModel(bright_oracle), FakeModel(bright_oracle)
    kw = {"x_noise": 0.05}
    s_stats = run_sequential(seq_model, sequences, tmp_path / "seq", kw, progress=False)
    b_stats = run_benchmark(bat_model, sequences, tmp_path / "bat", batch_size=3, workers=2,
                            tracker_kwargs=kw, progress=False)
    total = sum(len(s) for s in sequences)
    assert s_stats["frames"] == b_stats["frames"] == total and b_stats["sequences"] == 5
    assert b_stats["skipped"] == 0 and b_stats["fps"] > 0
    assert max(len(c["modality"]) for c in bat_model.calls) > 1  # really batched
    assert sorted(set(bat_model.merged_for)) == ["depth", "event", "thermal"]
    assert len(bat_model.merged_for) == 3  # one merged model per modality, cached
    for s in sequences:
        assert (tmp_path / "bat" / f"{s.name}.txt").read_text().count("\n") == len(s)
        sb, sc = read_results(tmp_path / "seq", s.name)
        bb, bc = read_results(tmp_path / "bat", s.name)
        assert len(bb) == len(bc) == len(s)
        np.testing.assert_array_equal(sb, bb)
        np.testing.assert_array_equal(sc, bc)
        np.testing.assert_allclose(bb[0], s.boxes[0])
        assert bc[0] == 1.0
        if s.x_modality != "depth":  # the oracle follows the bright square
            assert np.abs(bb - s.boxes).max() <= 1.5


def test_resume_skips_finished_sequences(tmp_path, sequences):
    pytest.importorskip("unitrack.eval.results")
    from unitrack.eval.results import write_results
    from unitrack.eval.runner import run_benchmark

    out = tmp_path / "res"
    done = sequences[1]
    sentinel = np.tile([[1.0, 2.0, 3.0, 4.0]], (len(done), 1))
    write_results(out, done.name, sentinel, np.full(len(done), 0.5))
    before = (out / f"{done.name}.txt").read_text()
    stats = run_benchmark(FakeModel(bright_oracle), sequences, out, batch_size=2, progress=False)
    assert stats["skipped"] == 1 and stats["frames"] == sum(len(s) for s in sequences) - len(done)
    assert (out / f"{done.name}.txt").read_text() == before
    again = run_benchmark(FakeModel(bright_oracle), sequences, out, batch_size=2, progress=False)
    assert again["skipped"] == 5 and again["frames"] == 0
    redo = run_benchmark(FakeModel(bright_oracle), sequences[1:2], out, progress=False, resume=False)
    assert redo["skipped"] == 0 and (out / f"{done.name}.txt").read_text() != before


@pytest.mark.parametrize("decode", ["inline", "thread", "process"])
def test_a_bad_sequence_is_reported_and_skipped_the_rest_tracked_as_before(tmp_path, sequences, decode):
    """A corrupt frame mid-sequence, a first frame whose box lies off the image, a missing X frame and
    an initial box that is NaN: each drops its own sequence (listed with the reason naming the file),
    the good sequences get the same result files as a clean run."""
    from unitrack.eval.runner import run_benchmark

    good = sequences[:3]
    clean = run_benchmark(FakeModel(bright_oracle), good, tmp_path / "clean", batch_size=3, progress=False)
    assert clean["failed"] == []
    corrupt = write_sequence(tmp_path / "bad", "corrupt", 6)
    corrupt.rgb_frames[4].write_bytes(b"not a png")
    off = write_sequence(tmp_path / "bad", "off_image", 4)
    off.boxes[0] = [500.0, 400.0, 10.0, 10.0]
    off.visible[0] = True
    short = write_sequence(tmp_path / "bad", "short_x", 4)
    short.x_frames = short.x_frames[:3]
    nobox = write_sequence(tmp_path / "bad", "no_box", 4)
    nobox.boxes[0] = np.nan
    nobox.visible[0] = False
    mixed = [corrupt, good[0], off, good[1], short, nobox, good[2]]
    out = tmp_path / "mixed"
    stats = run_benchmark(FakeModel(bright_oracle), mixed, out, batch_size=3, workers=2, decode=decode,
                          progress=False)
    why = {f["name"]: f["error"] for f in stats["failed"]}
    assert set(why) == {"corrupt", "off_image", "short_x", "no_box"}
    assert str(corrupt.rgb_frames[4]) in why["corrupt"] and "cannot read image" in why["corrupt"]
    assert "outside the 64x48 first frame" in why["off_image"] and str(off.rgb_frames[0]) in why["off_image"]
    assert "4 RGB frames but 3 thermal frames" in why["short_x"]
    assert "frame 0 has no valid box" in why["no_box"]
    for s in good:
        assert (out / f"{s.name}.txt").read_bytes() == (tmp_path / "clean" / f"{s.name}.txt").read_bytes()
        assert (out / f"{s.name}_confidence.txt").read_bytes() == \
            (tmp_path / "clean" / f"{s.name}_confidence.txt").read_bytes()
    assert not any((out / f"{n}.txt").exists() for n in why)
    assert stats["frames"] == sum(len(s) for s in good) + 4  # `corrupt` was tracked up to its bad frame


def test_eval_command_flags_an_incomplete_score_and_exits_2(tmp_path, sequences):
    """`unitrack eval` scores the sequences that could be tracked, writes complete=false and the failures
    into metrics.json, and ends with one line (exit code 2), never a partial score that looks whole."""
    import json

    from omegaconf import OmegaConf

    import unitrack.commands.eval as ev
    from unitrack.errors import DatasetError as DE

    bad = write_sequence(tmp_path / "bad", "broken", 5)
    bad.x_frames[2].write_bytes(b"")
    seqs = [sequences[0], bad, sequences[1]]
    cfg = OmegaConf.create({"ckpt": "x", "benchmark": "b", "root": None, "split": None, "options": {},
                            "paths": {"data_dir": str(tmp_path)}, "protocol": "pytracking", "device": "cpu",
                            "eval": {"batch_size": 2, "workers": 1, "decode": "thread", "window_weight": 0.45,
                                     "samm": False, "drop_modality": None, "x_noise": 0.0, "export": [],
                                     "resume": True}})
    out = tmp_path / "run"
    import unittest.mock as um

    with um.patch.object(ev, "run_dir", return_value=out), \
            um.patch.object(ev, "load_model", return_value=(FakeModel(bright_oracle), {})), \
            um.patch.object(ev, "load_benchmark", return_value=seqs), \
            pytest.raises(DE, match=r"INCOMPLETE: 1 of 3 sequences .*broken.*x_0002"):
        ev.run(cfg)
    m = json.loads((out / "metrics.json").read_text())
    assert m["complete"] is False and [f["name"] for f in m["failed"]] == ["broken"]
    assert m["overall"]["sequences"] == 2 and set(m["per_sequence"]) == {s.uid for s in sequences[:2]}


def test_name_clash_across_datasets_is_an_error(tmp_path):
    from unitrack.eval.runner import run_benchmark

    a = write_sequence(tmp_path, "same", 2, dataset="lasher")
    b = write_sequence(tmp_path, "same", 2, dataset="visevent", modality="event")
    with pytest.raises(ResultsError, match="lasher/same and visevent/same"):
        run_benchmark(FakeModel(bright_oracle), [a, b], tmp_path / "res", progress=False)


def test_speed_helpers_report_positive_fps(tmp_path):
    from unitrack.eval.bench import measure_e2e_fps, measure_model_fps

    seq = write_sequence(tmp_path, "s", 4)
    m = measure_model_fps(FakeModel(bright_oracle), warmup=1, iters=3)
    assert m["fps"] > 0 and m["fps"] == pytest.approx(1000 / m["ms"])
    e = measure_e2e_fps(FakeModel(bright_oracle), seq)
    assert e["frames"] == 4 and e["fps"] > 0
    assert measure_model_fps(FakeModel(bright_oracle), warmup=1, iters=2, batch=3)["batch"] == 3


def test_paired_speed_ratio_counts_decoding_but_not_track_restarts(tmp_path, monkeypatch):
    """A 4 ms forward and a 4 ms decode per frame give e2e/model = 1/2; re-initialising the track
    when the sequence wraps (frame 0 here takes 40 ms to load) is set-up and must not count."""
    import time

    import unitrack.eval.bench as runner

    def slow_oracle(p, *args):
        time.sleep(0.004)
        return bright_oracle(p, *args)

    real_load = runner.load_frame

    def slow_load(seq, i):
        time.sleep(0.04 if i == 0 else 0.004)
        return real_load(seq, i)

    monkeypatch.setattr(runner, "load_frame", slow_load)
    seq = write_sequence(tmp_path, "s", 4)  # 3 tracked frames: every block of 5 restarts the track
    p = runner.measure_e2e_paired(FakeModel(slow_oracle), seq, block=5, blocks=3)
    assert p["frames"] == 15
    assert 0.35 < p["e2e_over_model"] < 0.65 and 0.35 < p["e2e_over_per_frame"] < 0.65
    assert p["model_ms"] > 3.5 and p["e2e_ms"] > 7  # sleeps only overshoot on a loaded machine: no upper bound


def test_decode_ahead_keeps_order_reraises_at_the_failing_item_and_stops_when_closed(tmp_path):
    from unitrack.eval.decode import decode_ahead

    assert list(decode_ahead(range(20), lambda i: i * i, ahead=3)) == [i * i for i in range(20)]

    def load(i):
        if i == 3:
            raise DatasetError(tmp_path / "3.jpg", "cannot read image")
        return i

    got = []
    with pytest.raises(DatasetError, match="3.jpg"):
        for v in decode_ahead(range(10), load, ahead=2):
            got.append(v)
    assert got == [0, 1, 2]
    seen = []
    gen = decode_ahead(range(10**6), seen.append, ahead=2)
    next(gen)
    gen.close()  # must return (the thread stops) rather than decode a million items
    assert len(seen) < 100


def test_decode_ahead_tracking_gives_the_same_boxes_as_inline_decoding(tmp_path):
    from unitrack.eval.runner import track_one

    seq = write_sequence(tmp_path, "s", 12)
    tracker = OnlineTracker(FakeModel(bright_oracle))
    b0, c0 = track_one(tracker, seq, len(seq))
    b1, c1 = track_one(tracker, seq, len(seq), ahead=3)
    np.testing.assert_array_equal(b0, b1)
    np.testing.assert_array_equal(c0, c1)


# -- video -----------------------------------------------------------------------------------------
def test_track_video_writes_a_readable_mp4_and_a_box_file(tmp_path):
    from unitrack.eval.video import track_video

    seq = write_sequence(tmp_path, "clip", 6)
    folder = seq.rgb_frames[0].parent / "rgb"
    folder.mkdir()
    for p in seq.rgb_frames:
        p.rename(folder / p.name)
    stats = track_video(FakeModel(bright_oracle), folder, [10, 12, 10, 10], tmp_path / "o" / "out.mp4",
                        tmp_path / "o" / "boxes.txt")
    assert stats["frames"] == 6
    cap = cv2.VideoCapture(str(tmp_path / "o" / "out.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 6
    rows = np.loadtxt(tmp_path / "o" / "boxes.txt", delimiter=",")
    assert rows.shape == (6, 4)
    np.testing.assert_allclose(rows, seq.boxes, atol=1.5)

    # the mp4 itself as input, with the frame folder as the X stream
    again = track_video(FakeModel(bright_oracle), tmp_path / "o" / "out.mp4", [10, 12, 10, 10],
                        tmp_path / "o2.mp4", x_input=folder, modality="event")
    assert again["frames"] == 6 and Path(again["boxes"]).read_text().count("\n") == 6
    with pytest.raises(DatasetError, match="has 5 frames"):
        (folder / seq.rgb_frames[-1].name).unlink()
        track_video(FakeModel(bright_oracle), tmp_path / "o" / "out.mp4", [10, 12, 10, 10],
                    tmp_path / "o3.mp4", x_input=folder)
    with pytest.raises(DatasetError, match="missing_dir"):
        track_video(FakeModel(bright_oracle), tmp_path / "missing_dir", [1, 1, 5, 5], tmp_path / "x.mp4")
    with pytest.raises(ConfigError, match="init"):
        track_video(FakeModel(bright_oracle), folder, [1, 2, 3], tmp_path / "x.mp4")
    with pytest.raises(ConfigError, match="outside"):
        track_video(FakeModel(bright_oracle), folder, [200, 2, 3, 3], tmp_path / "x.mp4")


# -- the real model --------------------------------------------------------------------------------
def test_real_model_tracks_through_the_runner(tmp_path, sequences):
    """The tiny LoRAT with per-modality experts and unimodal heads on s1..s3 (thermal, depth, event): a
    merged expert model accepts only its own modality, so a mixed batch works only if the tracker groups."""
    lorat = pytest.importorskip("unitrack.model.lorat")
    pytest.importorskip("unitrack.eval.results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: thread hand-off costs more than it saves on a busy machine
    try:
        _real_model_round(lorat, tmp_path, sequences[:3])
    finally:
        torch.set_num_threads(threads)


def _real_model_round(lorat, tmp_path, seqs):
    from unitrack.eval.bench import measure_model_fps
    from unitrack.eval.results import read_results
    from unitrack.eval.runner import run_benchmark, run_sequential

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="randomly initialised"):
        model = lorat.LoRATTracker(
            "vit_tiny_patch16_224", template_size=32, search_size=64, lora={"rank": 4, "alpha": 8},
            experts="shared+per_modality", x_branch={"depth": 1, "dim": 8}, heads="fused+unimodal",
            backbone_kwargs={"depth": 2, "embed_dim": 32, "num_heads": 2, "patch_size": 8})
    kw = inference_kwargs({"fused": 1.0, "rgb": 1.5, "x": 2.0}) | {"window_weight": 0.45}
    b = run_benchmark(model, seqs, tmp_path / "bat", batch_size=3, tracker_kwargs=kw, progress=False)
    s = run_sequential(model, seqs, tmp_path / "seq", tracker_kwargs=kw, progress=False)
    assert b["frames"] == s["frames"] == sum(len(q) for q in seqs)
    for q in seqs:
        bb, bc = read_results(tmp_path / "bat", q.name)
        sb, sc = read_results(tmp_path / "seq", q.name)
        assert bb.shape == (len(q), 4) and np.isfinite(bb).all() and ((bc > 0) & (bc <= 1)).all()
        assert (bb[:, 0] >= 0).all() and (bb[:, 0] + bb[:, 2] <= W + 1e-6).all() and (bb[:, 2:] >= 1).all()
        # a row's numbers do not depend on its batch companions: batched == sequential, bit for bit
        np.testing.assert_array_equal(bb, sb)
        np.testing.assert_array_equal(bc, sc)
    assert measure_model_fps(model, "depth", iters=2, warmup=1)["fps"] > 0
    # a dropped modality is filled with the model's own normalisation mean (zero after normalising)
    np.testing.assert_allclose(OnlineTracker(model).fill, model.pixel_mean.reshape(-1).numpy())


def test_shared_lora_tracks_every_task_in_one_forward(tmp_path):
    """With one shared LoRA the merged model is the same for all modalities: one forward per step."""
    import unitrack.eval.tracker as tr

    class Shared(torch.nn.Module):
        experts = "shared"
        template_size, search_size, template_factor, search_factor, feat_size = 16, 32, 2.0, 4.0, 4

        def __init__(self):
            super().__init__()
            self.calls, self.merges = [], 0

        def merge(self, modality):
            self.merges += 1
            return self

        def forward(self, z, zx, x, xx, z_box, modality):
            self.calls.append(list(modality))
            b = x.shape[0]
            return {"score": torch.zeros(b, 16), "box": torch.tensor([0.4, 0.4, 0.6, 0.6]).expand(b, 16, 4)}

    m = Shared()
    t = tr.OnlineTracker(m)
    states = [tr.TrackState(mod, key=mod) for mod in ("thermal", "depth", "event")]
    frame = (np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64, 3), np.uint8))
    t.init(states, [frame] * 3, [[20, 15, 10, 10]] * 3)
    t.step(states, [frame] * 3)
    assert m.calls == [["thermal", "depth", "event"]] and m.merges == 1


def test_template_is_embedded_once_per_sequence_and_tracks_like_the_whole_forward(tmp_path, sequences):
    """With a model that splits off `embed_template` the tracker embeds frame 0's template once per
    sequence and runs `forward_search` per frame; the track equals a tracker that has only the whole
    forward (the template re-embedded every frame)."""
    lorat = pytest.importorskip("unitrack.model.lorat")
    from unitrack.eval.runner import run_benchmark

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="randomly initialised"):
        model = lorat.LoRATTracker(
            "vit_tiny_patch16_224", template_size=32, search_size=64, lora={"rank": 4, "alpha": 8},
            x_branch={"depth": 1, "dim": 8}, backbone_kwargs={"depth": 2, "embed_dim": 32, "num_heads": 2,
                                                              "patch_size": 8})
    seqs = sequences[:3]
    calls = {"embed": 0, "search": 0}

    class Counting(lorat.LoRATTracker):
        def embed_template(self, *a):
            calls["embed"] += 1
            return super().embed_template(*a)

        def forward_search(self, *a, **k):
            calls["search"] += 1
            assert k.get("features") is False  # tracking never pays for the pooled features
            return super().forward_search(*a, **k)

    class WholeOnly(nn.Module):  # the model contract without the split: forward(z, zx, x, xx, z_box, m)
        def __init__(self, m):
            super().__init__()
            self.m = m
            for k in ("template_size", "search_size", "template_factor", "search_factor", "feat_size",
                      "pixel_mean"):
                setattr(self, k, getattr(m, k))

        def merge(self, modality):
            return WholeOnly(self.m.merge(modality))

        def forward(self, *a):
            return self.m(*a)

    model.__class__ = Counting
    run_benchmark(model, seqs, tmp_path / "split", batch_size=3, progress=False)
    assert calls["embed"] == len(seqs)  # once per sequence, at init
    assert calls["search"] == max(len(q) for q in seqs) - 1  # one batched call per step
    model.__class__ = lorat.LoRATTracker
    run_benchmark(WholeOnly(model), seqs, tmp_path / "whole", batch_size=3, progress=False)
    for q in seqs:
        assert (tmp_path / "split" / f"{q.name}.txt").read_text() == (tmp_path / "whole" / f"{q.name}.txt").read_text()
