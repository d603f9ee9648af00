"""The synthetic generator: deterministic bytes, native layouts, modalities that carry the target, atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from unitrack.data import synth
from unitrack.errors import ConfigError, DatasetError

SMALL = dict(sequences=2, frames=16, size=(96, 72))  # test split defaults to max(2, 2 // 2) = 2


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return synth.generate(tmp_path_factory.mktemp("synth") / "data", seed=1, **SMALL)


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = synth.generate(tmp_path / "again", seed=1, **SMALL)
    other = synth.generate(tmp_path / "other", seed=2, **SMALL)
    a, b, c = tree_digest(small), tree_digest(again), tree_digest(other)
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if k.endswith((".jpg", ".png", ".bmp"))]
    assert sum(a[k] != c[k] for k in images) > 0.9 * len(images)


def test_sequence_content_does_not_depend_on_how_many_are_generated(small, tmp_path):
    more = synth.generate(tmp_path / "more", seed=1, sequences=3, frames=16, size=(96, 72), test_sequences=2)
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
    # DepthTrack: 8-digit frames from 1, 16-bit depth PNG.
    for split in ("train", "test"):
        for d in sorted((root / "depthtrack" / split).iterdir()):
            color, depth = sorted((d / "color").iterdir()), sorted((d / "depth").iterdir())
            assert color[0].name == "00000001.jpg" and depth[-1].name == "00000016.png"
            assert len(color) == len(depth) == len(_lines(d / "groundtruth.txt")) == 16
            raw = cv2.imread(str(depth[0]), cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint16 and raw.shape == (72, 96)
    # VisEvent: split lists inside the split folders, bmp numbering from 1, labels per frame.
    for split, lst in (("train", "trainlist.txt"), ("test", "testlist.txt")):
        names = _lines(root / "visevent" / split / lst)
        assert sorted(names) == sorted(p.name for p in (root / "visevent" / split).iterdir() if p.is_dir())
        for name in names:
            d = root / "visevent" / split / name
            vis, ev = sorted((d / "vis_imgs").iterdir()), sorted((d / "event_imgs").iterdir())
            assert vis[0].name == "frame0001.bmp" and len(vis) == len(ev) == 16
            assert len(_lines(d / "groundtruth.txt")) == len(_lines(d / "absent_label.txt")) == 16
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
    assert "0,0,0,0" in lasher and "nan,nan,nan,nan" in depth
    for ln in lasher:
        x, y, w, h = map(int, ln.split(","))  # integers only
        assert (w > 0 and h > 0) or (x, y, w, h) == (0, 0, 0, 0)
    # the first frame initialises a tracker: it is always annotated
    for p in list(small.glob("*/*/*/visible.txt")) + list(small.glob("*/*/*/groundtruth.txt")):
        assert _lines(p)[0] not in ("0,0,0,0", "nan,nan,nan,nan")


def _box_mean(img: np.ndarray, b) -> float:
    x, y, w, h = (int(v) for v in b)
    return float(img[max(y, 0):y + h, max(x, 0):x + w].mean())


def test_absent_fraction_is_a_few_percent():
    absent = [1 - synth.render_sequence("rgbd", np.random.default_rng(k), 60, (128, 96), "plain").present.mean()
              for k in range(6)]
    assert 0.01 < np.mean(absent) < 0.12


def test_thermal_target_hot_distractors_not_and_night_hides_rgb_only():
    day = synth.render_sequence("rgbt", np.random.default_rng(5), 24, (160, 120), "day")
    night = synth.render_sequence("rgbt", np.random.default_rng(5), 24, (160, 120), "night")
    gaps, dgaps = [], []
    for i in np.flatnonzero(day.present):
        th = day.x[i][..., 0].astype(np.float32)
        inside = _box_mean(th, day.boxes[i])
        mask = np.ones(th.shape, bool)
        x, y, w, h = day.boxes[i]
        mask[y:y + h, x:x + w] = False
        gaps.append(inside - th[mask].mean())
        dgaps += [inside - _box_mean(th, d) for d in day.distractor_boxes[i]]
    assert np.median(gaps) > 60 and np.median(dgaps) > 40
    # night: RGB dark and low contrast, thermal unchanged (same scene for the same generator state)
    d_rgb, n_rgb = np.stack(day.rgb).astype(np.float32), np.stack(night.rgb).astype(np.float32)
    assert n_rgb.mean() < 0.4 * d_rgb.mean() and n_rgb.std() < 0.4 * d_rgb.std()
    assert all(np.array_equal(a, b) for a, b in zip(day.x, night.x))
    np.testing.assert_array_equal(day.boxes, night.boxes)


def test_depth_separates_target_from_lookalike_distractors():
    s = synth.render_sequence("rgbd", np.random.default_rng(7), 24, (160, 120), "plain")
    assert s.x[0].dtype == np.uint16
    assert s.occluded.any()
    for i in np.flatnonzero(s.present & ~s.occluded)[:10]:
        x, y, w, h = s.boxes[i]
        t_mm = np.median(s.x[i][y + h // 3:y + 2 * h // 3, x + w // 3:x + 2 * w // 3])
        assert abs(t_mm - s.target_depth[i]) < 0.05 * s.target_depth[i]
        assert t_mm < np.median(s.x[i]) - 1500  # target well in front of the background
        for dx, dy, dw, dh in s.distractor_boxes[i]:
            if 0 <= dx and 0 <= dy and dx + dw <= 160 and dy + dh <= 120:
                d_mm = np.median(s.x[i][dy + dh // 3:dy + 2 * dh // 3, dx + dw // 3:dx + 2 * dw // 3])
                assert abs(d_mm - t_mm) > 800


def test_events_fire_only_where_things_move_and_fast_blurs_rgb():
    normal = synth.render_sequence("rgbe", np.random.default_rng(3), 24, (160, 120), "normal")
    fast = synth.render_sequence("rgbe", np.random.default_rng(3), 24, (160, 120), "fast")
    away, near = [], []
    for i in np.flatnonzero(normal.present):
        ev = (normal.x[i] != np.array(synth.EVENT_BG, np.uint8)).any(2)
        x, y, w, h = normal.boxes[i]
        m = int(1.5 * max(w, h))
        mask = np.zeros(ev.shape, bool)
        mask[max(0, y - m):y + h + m, max(0, x - m):x + w + m] = True
        away.append(ev[~mask].mean())
        near.append(ev[y:y + h, x:x + w].mean())
    assert np.median(away) < 0.01 and np.median(near) > 0.1
    colours = {tuple(c) for c in np.unique(normal.x[5].reshape(-1, 3), axis=0)}
    assert colours <= {synth.EVENT_BG, synth.EVENT_POS, synth.EVENT_NEG}

    def sharpness(s):
        v = []
        for i in np.flatnonzero(s.present):
            x, y, w, h = s.boxes[i]
            g = cv2.cvtColor(s.rgb[i], cv2.COLOR_BGR2GRAY).astype(np.float32)
            v.append(cv2.Laplacian(g, cv2.CV_32F)[y:y + h, x:x + w].var())
        return np.median(v)

    step = lambda s: np.median(np.hypot(*np.diff(s.boxes[s.present][:, :2], axis=0).T))  # noqa: E731
    assert step(fast) > 2 * step(normal)
    assert sharpness(fast) < 0.5 * sharpness(normal)


def test_failure_leaves_no_output_and_no_temp(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "_write_manifest", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.generate(tmp_path / "data", seed=0, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_existing_dataset_needs_overwrite_and_foreign_folders_are_refused(small, tmp_path):
    with pytest.raises(DatasetError, match="overwrite=True"):
        synth.generate(small, seed=1, **SMALL)
    out = synth.generate(tmp_path / "d", seed=3, **SMALL)
    before = tree_digest(out)
    synth.generate(out, seed=4, overwrite=True, **SMALL)
    assert tree_digest(out) != before and [p.name for p in tmp_path.iterdir()] == ["d"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        synth.generate(foreign, overwrite=True, **SMALL)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_ensure_default_generates_only_when_manifest_missing(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(synth, "generate", lambda root, **k: calls.append(root) or root)
    assert synth.ensure_default(tmp_path / "x") == tmp_path / "x"
    assert calls == [tmp_path / "x"] and "generating" in capsys.readouterr().out
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / synth.MANIFEST).write_text("# task,dataset,sequence\n")
    synth.ensure_default(tmp_path / "x")  # a dataset from before the RGB-only world: regenerated
    assert len(calls) == 2 and "predates" in capsys.readouterr().out
    (tmp_path / "x" / synth.RGB_DATASET / "train").mkdir(parents=True)
    (tmp_path / "x" / synth.RGB_DATASET / "train" / "list.txt").write_text("")
    synth.ensure_default(tmp_path / "x")
    assert len(calls) == 2 and capsys.readouterr().out == ""


@pytest.mark.parametrize("kw,key", [(dict(frames=3), "frames"), (dict(sequences=0), "sequences"),
                                    (dict(size=(20, 20)), "size"), (dict(seed=-1), "seed")])
def test_bad_arguments_name_the_parameter(tmp_path, kw, key):
    with pytest.raises(ConfigError, match=key):
        synth.generate(tmp_path / "d", **kw)
    assert not (tmp_path / "d").exists()


def test_readers_load_what_was_written(small):
    formats = pytest.importorskip("unitrack.data.formats")
    for name, task in (("lasher", "rgbt"), ("depthtrack", "rgbd"), ("visevent", "rgbe")):
        for split in ("train", "test"):
            seqs = formats.load_dataset(name, small / name, split)
            assert len(seqs) == 2 and all(len(s) == 16 and s.task == task for s in seqs)
            for s in seqs:
                assert s.visible[0]
                assert np.isnan(s.boxes[~s.visible]).all() and (s.boxes[s.visible, 2:] > 0).all()
    bench = formats.load_dataset("manifest", small / "unibench.txt")
    assert [s.task for s in bench] == ["rgbt"] * 2 + ["rgbd"] * 2 + ["rgbe"] * 2
    assert sum((~s.visible).sum() for s in bench) > 0
