"""The synthetic world: deterministic bytes, native layouts and attribute files, sensor models on
hand-made scenes, attributes that match what was rendered, atomic writes, and the calibration command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unitrack.data import synth
from unitrack.data.formats import attributes as fattr
from unitrack.data.synth import depth as sdepth
from unitrack.data.synth import events as sevents
from unitrack.data.synth import thermal as sthermal
from unitrack.errors import ConfigError, DatasetError

SMALL = dict(sequences=2, frames=16, size=(96, 72))  # test split defaults to max(2, 2 // 2) = 2
TINY = dict(sequences=1, test_sequences=1, frames=8, size=(64, 48), rgb_sequences=0)  # for the file-handling tests


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return synth.generate(tmp_path_factory.mktemp("synth") / "data", seed=1, **SMALL)


def test_same_seed_same_bytes_other_seed_differs_and_workers_do_not_matter(small, tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "PARALLEL_ABOVE", 0)  # force the process pool even for this tiny world
    again = synth.generate(tmp_path / "again", seed=1, workers=2, **SMALL)
    other = synth.generate(tmp_path / "other", seed=2, workers=1, **SMALL)
    a, b, c = tree_digest(small), tree_digest(again), tree_digest(other)
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.endswith((".jpg", ".png", ".bmp"))]
    assert sum(a[k] != c[k] for k in images) > 0.9 * len(images)


def test_sequence_content_does_not_depend_on_how_many_are_generated(small, tmp_path):
    more = synth.generate(tmp_path / "more", seed=1, sequences=3, frames=16, size=(96, 72), test_sequences=1,
                          rgb_sequences=0)
    a, b = tree_digest(small), tree_digest(more)
    shared = [k for k in a if k.startswith(("lasher/train/", "depthtrack/train/", "visevent/train/"))
              and not k.endswith("list.txt")]
    assert shared and all(a[k] == b[k] for k in shared)


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


def test_layout_matches_the_native_datasets(small):
    root = small
    # LasHeR: split lists at the root, CRLF annotation files, v/i frames from 000000.
    train = _lines(root / "lasher/trainingsetList.txt")
    test = _lines(root / "lasher/testingsetList.txt")
    assert len(train) == 2 and len(test) == 2
    for split, names in (("train", train), ("test", test)):
        for name in names:
            d = root / "lasher" / split / name
            vis = sorted((d / "visible").iterdir())
            ir = sorted((d / "infrared").iterdir())
            assert [p.name for p in vis][:2] == ["v000000.jpg", "v000001.jpg"]
            assert len(vis) == len(ir) == 16 and ir[0].name == "i000000.jpg"
            raw = (d / "visible.txt").read_bytes()
            assert raw.count(b"\r\n") == 16 and raw.count(b"\n") == 16
            assert (d / "infrared.txt").read_bytes() == raw == (d / "init.txt").read_bytes()
            assert cv2.imread(str(vis[0]), cv2.IMREAD_UNCHANGED).shape == (72, 96, 3)
            assert cv2.imread(str(ir[0]), cv2.IMREAD_UNCHANGED).shape == (72, 96, 3)
            # attributes as in the LasHeR toolkit: one line of 19 flags, no newline
            att = (root / "lasher" / "AttriSeqsTxt" / f"{name}.txt").read_bytes()
            assert b"\n" not in att and len(att.split(b",")) == 19 and set(att.split(b",")) <= {b"0", b"1"}
    assert (root / "lasher/Attributes_order.txt").read_text().startswith("NO, PO, TO, HO, MB")
    # DepthTrack: 8-digit frames from 1, 16-bit depth PNG, VOT-style per-frame tags.
    for split in ("train", "test"):
        for d in sorted((root / "depthtrack" / split).iterdir()):
            color, depth = sorted((d / "color").iterdir()), sorted((d / "depth").iterdir())
            assert color[0].name == "00000001.jpg" and depth[-1].name == "00000016.png"
            assert len(color) == len(depth) == len(_lines(d / "groundtruth.txt")) == 16
            raw = cv2.imread(str(depth[0]), cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint16 and raw.shape == (72, 96)
            assert len(_lines(d / "full-occlusion.tag")) == 16
    # VisEvent: split lists inside the split folders, bmp numbering from 1, labels per frame, annos/att.
    for split, lst in (("train", "trainlist.txt"), ("test", "testlist.txt")):
        names = _lines(root / "visevent" / split / lst)
        assert sorted(names) == sorted(p.name for p in (root / "visevent" / split).iterdir() if p.is_dir())
        for name in names:
            d = root / "visevent" / split / name
            vis, ev = sorted((d / "vis_imgs").iterdir()), sorted((d / "event_imgs").iterdir())
            assert vis[0].name == "frame0001.bmp" and len(vis) == len(ev) == 16
            assert len(_lines(d / "groundtruth.txt")) == len(_lines(d / "absent_label.txt")) == 16
            assert len(_lines(root / "visevent" / "annos" / "att" / f"{name}.txt")) == 17
    # Manifest over the three test splits, names distinct across tasks.
    rows = _lines(root / "unibench.txt")
    assert rows[0].startswith("#")
    entries = [r.split(",") for r in rows[1:]]
    assert len(entries) == 6
    assert {(t, ds) for t, ds, _ in entries} == {("rgbt", "lasher"), ("rgbd", "depthtrack"), ("rgbe", "visevent")}
    assert [n for t, _, n in entries if t == "rgbt"] == test
    all_names = train + test + [p.name for s in ("train", "test") for p in (root / "depthtrack" / s).iterdir()] \
        + [p.name for s in ("train", "test") for p in (root / "visevent" / s).iterdir() if p.is_dir()]
    assert len(all_names) == len(set(all_names)) == 12


def test_absent_frames_are_marked_in_each_native_format(small):
    lasher = [ln for p in small.glob("lasher/*/*/visible.txt") for ln in _lines(p)]
    depth = [ln for p in small.glob("depthtrack/*/*/groundtruth.txt") for ln in _lines(p)]
    for p in small.glob("visevent/*/*/groundtruth.txt"):
        gt, lab = _lines(p), _lines(p.parent / "absent_label.txt")
        assert set(lab) <= {"0", "1"}
        for g, a in zip(gt, lab):
            assert (g == "0,0,0,0") == (a == "0")
    for ln in lasher:
        x, y, w, h = map(int, ln.split(","))  # integers only
        assert (w > 0 and h > 0) or (x, y, w, h) == (0, 0, 0, 0)
    assert all(ln == "nan,nan,nan,nan" or min(float(v) for v in ln.split(",")[2:]) > 0 for ln in depth)
    # the first frame initialises a tracker: it is always annotated
    for p in list(small.glob("*/*/*/visible.txt")) + list(small.glob("*/*/*/groundtruth.txt")):
        assert _lines(p)[0] not in ("0,0,0,0", "nan,nan,nan,nan")


def test_readers_load_what_was_written_with_attributes(small):
    from unitrack.data.formats import load_dataset

    for name, task in (("lasher", "rgbt"), ("depthtrack", "rgbd"), ("visevent", "rgbe")):
        for split in ("train", "test"):
            seqs = load_dataset(name, small / name, split)
            assert len(seqs) == 2 and all(len(s) == 16 and s.task == task for s in seqs)
            for s in seqs:
                assert s.visible[0]
                assert np.isnan(s.boxes[~s.visible]).all() and (s.boxes[s.visible, 2:] > 0).all()
    bench = fattr.attach(load_dataset("manifest", small / "unibench.txt"))
    assert [s.task for s in bench] == ["rgbt"] * 2 + ["rgbd"] * 2 + ["rgbe"] * 2
    assert all(s.attributes and "camera_motion" in s.attributes for s in bench)
    rgb = load_dataset("got10k", small / "got10k", "train")
    assert len(rgb) == 4 * 2 and all(s.task == "rgb" and len(s) == 16 for s in rgb)


# ---------------------------------------------------------------- sensor models on hand-made scenes
def test_events_static_scene_fires_only_noise_moving_edge_fires_on_and_off():
    rng = np.random.default_rng(0)
    h, w = 60, 80
    tex = np.random.default_rng(1).uniform(20, 230, (h, w, 3)).astype(np.float32)  # textured, but static
    cam = sevents.EventCamera(rng, (h, w), noise_rate=0.002)
    cam.capture(sevents.log_intensity(tex))
    static = [np.count_nonzero(cam.capture(sevents.log_intensity(tex))) / (h * w) for _ in range(5)]
    assert max(static) < 0.004  # noise only (rate 0.002)

    def bar(x0):
        img = np.full((h, w, 3), 40, np.float32)
        img[:, x0:x0 + 10] = 220
        return sevents.log_intensity(img)

    cam = sevents.EventCamera(np.random.default_rng(2), (h, w), noise_rate=0.0)
    cam.capture(bar(20))
    net = cam.capture(bar(24))  # the bright bar moves 4 px right
    assert (net[:, 30:34] > 0).mean() > 0.95  # leading edge brightens: ON
    assert (net[:, 20:24] < 0).mean() > 0.95  # trailing edge darkens: OFF
    assert np.count_nonzero(net[:, 40:]) == 0 and np.count_nonzero(net[:, :20]) == 0
    frame = sevents.event_frame(net)
    assert tuple(frame[5, 31]) == sevents.EVENT_POS and tuple(frame[5, 21]) == sevents.EVENT_NEG
    assert tuple(frame[5, 60]) == sevents.EVENT_BG


def test_event_refractory_period_and_thresholds_limit_firing():
    h, w = 20, 20
    lo = np.full((h, w), np.log(40.0), np.float32)
    hi = lo + 1.0  # five thresholds of 0.2 in one frame
    fast = sevents.EventCamera(np.random.default_rng(0), (h, w), threshold_sigma=0.0, refractory=0, substeps=1,
                               noise_rate=0.0)
    slow = sevents.EventCamera(np.random.default_rng(0), (h, w), threshold_sigma=0.0, refractory=5, substeps=3,
                               noise_rate=0.0)
    for c in (fast, slow):
        c.capture(lo)
    assert (fast.capture(hi) == 5).all()  # one event per threshold crossed
    assert (slow.capture(hi) < 5).all()  # blind after firing: fewer events


def test_depth_holes_read_zero_and_noise_grows_with_distance():
    rng = np.random.default_rng(0)
    h, w = 60, 80
    sensor = sdepth.DepthSensor(rng, (h, w))
    sensor.patches[:] = False
    sensor.dropout = 0.0
    z = np.full((h, w), 2000.0, np.float32)
    z[:, 60:] = 8000.0
    z[:5, :5] = 12000.0  # beyond the working range
    hole = np.zeros((h, w), bool)
    hole[20:30, 20:30] = True
    out = sensor.capture(z, hole)
    assert out.dtype == np.uint16
    assert (out[20:30, 20:30] == 0).all() and (out[:5, :5] == 0).all()
    near, far = out[35:, 5:50].astype(float), out[35:, 65:].astype(float)
    assert abs(np.median(near) - 2000) < 20 and (near > 0).all()
    assert np.std(far[far > 0]) > 5 * np.std(near)  # sigma ~ z^2


def test_thermal_crossover_lowers_target_contrast_and_a_hot_prop_dims_it():
    h, w = 60, 80
    box = (30, 20, 16, 16)

    def contrast(target_delta, hot_prop=False):
        cam = sthermal.ThermalCamera(np.random.default_rng(0), (h, w), ambient=20.0)
        temp = np.full((h, w), 20.0, np.float32)
        temp[20:36, 30:46] += target_delta
        if hot_prop:
            temp[2:12, 2:12] = 60.0
        frames = [cam.capture(temp) for _ in range(6)]
        return sthermal.contrast(frames[-1], box)

    warm, crossover = contrast(10.0), contrast(0.5)
    assert warm > 100 and crossover < 0.2 * warm
    assert contrast(10.0, hot_prop=True) < 0.6 * warm  # the AGC spends its range on the hotter object


# ---------------------------------------------------------------- rendered sequences
def test_night_darkens_rgb_only():
    day = synth.render_sequence("rgbt", np.random.default_rng(5), 12, (96, 72), "day")
    night = synth.render_sequence("rgbt", np.random.default_rng(5), 12, (96, 72), "night")
    d_rgb, n_rgb = np.stack(day.rgb).astype(np.float32), np.stack(night.rgb).astype(np.float32)
    assert n_rgb.mean() < 0.4 * d_rgb.mean() and n_rgb.std() < 0.4 * d_rgb.std()
    assert all(np.array_equal(a, b) for a, b in zip(day.x, night.x))
    np.testing.assert_array_equal(day.boxes, night.boxes)
    assert night.attributes["low_illumination"] and not day.attributes["low_illumination"]


def _box_stats(boxes: np.ndarray, present: np.ndarray, size=(96, 72)) -> dict:
    """The attribute definitions re-measured from the boxes alone."""
    b = boxes.astype(float)
    area = b[:, 2] * b[:, 3]
    r = area[present] / area[0]
    ar = (b[present, 2] / b[present, 3]) / (b[0, 2] / b[0, 3])
    return {"scale_change": bool(((r > 2) | (r < 0.5)).any()), "aspect_change": bool(((ar > 2) | (ar < 0.5)).any()),
            "low_resolution": bool(np.median(area[present]) < 0.005 * size[0] * size[1])}


@pytest.mark.parametrize("task,kind", [("rgbt", "day"), ("rgbd", "plain"), ("rgbe", "fast")])
def test_attributes_match_what_was_rendered(task, kind):
    for k in range(3):
        s = synth.render_sequence(task, np.random.default_rng(100 + k), 24, (96, 72), kind)
        a = s.attributes
        for key, v in _box_stats(s.boxes, s.present).items():
            assert a[key] == v, (key, k)
        assert a["out_of_view"] == bool((s.in_frame < 0.5).any())
        assert a["full_occlusion"] == bool((s.occluded >= 0.9).any())
        assert a["camera_motion"] == (s.plan.camera != "static")
        assert a["similar_object"] == s.plan.similar
        # the native encodings round-trip through the readers
        lasher = dict(zip(fattr.LASHER_ORDER, map(int, synth.attributes.lasher_line(a).split(","))))
        assert lasher["OV"] == a["out_of_view"] and lasher["SV"] == a["scale_change"] and lasher["TO"] == a[
            "full_occlusion"]
        assert lasher["NO"] == int(not (a["partial_occlusion"] or a["full_occlusion"]))


def test_modality_challenges_are_measurable_in_the_frames():
    # thermal crossover: the target's scene contrast is small when planned, large otherwise
    on = [synth.render_sequence("rgbt", np.random.default_rng(k), 16, (96, 72), "day", {"crossover": True})
          for k in range(3)]
    off = [synth.render_sequence("rgbt", np.random.default_rng(k), 16, (96, 72), "day", {"crossover": False})
           for k in range(3)]
    assert all(s.attributes["thermal_crossover"] for s in on) and not any(s.attributes["thermal_crossover"]
                                                                          for s in off)
    gap = lambda ss: np.median([np.median(np.abs(s.target_contrast[s.present])) for s in ss])  # noqa: E731
    assert gap(on) < 0.4 * gap(off)
    # depth holes on the target: zeros inside its box in the written depth
    holes = synth.render_sequence("rgbd", np.random.default_rng(3), 16, (96, 72), "plain",
                                  {"depth_holes": True, "occlusion": "none"})
    share = [float((x[y:y + h, x0:x0 + w] == 0).mean()) for x, (x0, y, w, h), p
             in zip(holes.x, holes.boxes, holes.present) if p]
    assert np.median(share) > 0.15 and holes.attributes["depth_holes"]
    # a distractor at the target's depth
    dd = synth.render_sequence("rgbd", np.random.default_rng(4), 16, (96, 72), "plain", {"depth_distractor": True})
    assert np.abs(dd.distractor_depth[:, 0] - dd.target_depth).max() < 0.05 * dd.target_depth.max()


def test_failure_leaves_no_output_and_no_temp(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "_write_manifest", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.generate(tmp_path / "data", seed=0, **TINY)
    assert list(tmp_path.iterdir()) == []


def test_existing_dataset_needs_overwrite_and_foreign_folders_are_refused(small, tmp_path):
    with pytest.raises(DatasetError, match="overwrite=True"):
        synth.generate(small, seed=1, **SMALL)
    out = synth.generate(tmp_path / "d", seed=3, **TINY)
    before = tree_digest(out)
    synth.generate(out, seed=4, overwrite=True, **TINY)
    assert tree_digest(out) != before and [p.name for p in tmp_path.iterdir()] == ["d"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        synth.generate(foreign, overwrite=True, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_ensure_default_generates_only_when_missing_or_an_older_default(tmp_path, monkeypatch, capsys):
    import json

    calls = []
    monkeypatch.setattr(synth, "generate", lambda root, **k: calls.append((root, k)) or root)
    x = tmp_path / "x"
    marker = x / synth.DEFAULT_MARKER
    assert synth.ensure_default(x) == x
    assert len(calls) == 1 and "generating" in capsys.readouterr().out
    p = synth.default_parameters()
    assert calls[0][1]["sequences"] == p["sequences"] == 24 and calls[0][1]["test_sequences"] == 16
    assert calls[0][1]["rgb_sequences"] == 96 and not calls[0][1]["overwrite"]
    assert json.loads(marker.read_text()) == p
    (x / synth.MANIFEST).write_text("# task,dataset,sequence\n")
    synth.ensure_default(x)  # the current default: kept
    assert len(calls) == 1 and capsys.readouterr().out == ""
    marker.write_text(json.dumps({**p, "sequences": 8}))  # made by an earlier default: regenerated
    synth.ensure_default(x)
    assert len(calls) == 2 and calls[1][1]["overwrite"] and "other defaults" in capsys.readouterr().out
    marker.unlink()  # worlds from before the marker, recognised by their files
    synth.ensure_default(x)  # a dataset from before the RGB-only world
    assert len(calls) == 3 and "predates" in capsys.readouterr().out
    marker.unlink()
    (x / synth.RGB_DATASET / "train").mkdir(parents=True)
    (x / synth.RGB_DATASET / "train" / "list.txt").write_text("")
    synth.ensure_default(x)  # ... and one from before the photographic world
    assert len(calls) == 4 and "photographic" in capsys.readouterr().out
    marker.unlink()
    (x / "lasher").mkdir()
    (x / "lasher" / "Attributes_order.txt").write_text("NO")
    (x / "lasher" / "trainingsetList.txt").write_text("".join(f"t_{i:03d}\n" for i in range(8)))
    synth.ensure_default(x)  # ... and the earlier 8-sequence default
    assert len(calls) == 5 and "8-sequence" in capsys.readouterr().out
    marker.unlink()
    (x / "lasher" / "trainingsetList.txt").write_text("".join(f"t_{i:03d}\n" for i in range(5)))
    synth.ensure_default(x)  # a custom `unitrack synth` world without the marker: kept
    assert len(calls) == 5 and capsys.readouterr().out == ""


def test_data_synth_sizes_the_default_world_and_a_change_regenerates_it(tmp_path, monkeypatch, capsys):
    """`data.synth` (train's data config) sets the generated world's split sizes; null keeps the default."""
    import json

    calls = []
    monkeypatch.setattr(synth, "generate", lambda root, **k: calls.append(k) or root)
    x = tmp_path / "x"
    nulls = {k: None for k in synth.WORLD_KEYS}
    assert synth.default_parameters(nulls) == synth.default_parameters()  # the defaults are unchanged
    synth.ensure_default(x, {**nulls, "test_sequences": 12})
    assert calls[-1]["test_sequences"] == 12 and calls[-1]["sequences"] == 24
    (x / synth.MANIFEST).write_text("# task,dataset,sequence\n")
    assert json.loads((x / synth.DEFAULT_MARKER).read_text())["configured"] is True
    synth.ensure_default(x, {**nulls, "test_sequences": 12})  # the same settings: kept
    synth.ensure_default(x)  # a command without data.synth (eval's unibench): the configured world is kept
    assert len(calls) == 1
    synth.ensure_default(x, {"sequences": 48})  # other settings: regenerated; derived counts follow
    assert len(calls) == 2 and calls[-1]["overwrite"] and "data.synth" in capsys.readouterr().out
    assert (calls[-1]["sequences"], calls[-1]["test_sequences"], calls[-1]["rgb_sequences"]) == (48, 32, 192)
    with pytest.raises(ConfigError, match="data.synth.tests"):
        synth.default_parameters({"tests": 3})


@pytest.mark.parametrize("kw,key", [(dict(frames=3), "frames"), (dict(sequences=0), "sequences"),
                                    (dict(size=(20, 20)), "size"), (dict(seed=-1), "seed")])
def test_bad_arguments_name_the_parameter(tmp_path, kw, key):
    with pytest.raises(ConfigError, match=key):
        synth.generate(tmp_path / "d", **kw)
    assert not (tmp_path / "d").exists()


def test_synth_command_writes_world_json_with_every_trivial_tracker(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    GlobalHydra.instance().clear()
    data, run = tmp_path / "data", tmp_path / "run"
    main(["synth", f"out={data}", "synth.sequences=1", "synth.test_sequences=2", "synth.frames=12",
          "synth.size=[96,72]", "synth.rgb_sequences=0", f"hydra.run.dir={run}"])
    world = json.loads((data / "world.json").read_text())
    assert (run / "world.json").read_text() == (data / "world.json").read_text()
    assert set(world["trackers"]) == {"static_box", "x_blob", "rgb_template"}
    for row in world["trackers"].values():
        assert set(row["per_task"]) == {"rgbt", "rgbd", "rgbe"} and 0 <= row["pooled"]["SR"] <= 1
    assert world["trackers"]["x_blob"]["rule"] == {"rgbt": "hottest_blob", "rgbd": "nearest_blob",
                                                   "rgbe": "densest_events"}
    assert world["best_trivial"]["SR"] == max(r["pooled"]["SR"] for r in world["trackers"].values())
