"""Native dataset readers: tiny fixtures in each real layout, exact boxes, splits, and every error path."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from unitrack.data.formats import READERS, load_dataset
from unitrack.data.formats.manifest import write_manifest
from unitrack.data.inspect import inspect_dataset, print_table
from unitrack.errors import ConfigError, DatasetError

NAN = np.nan
_RGB = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
_ENC = {ext: cv2.imencode(ext, _RGB)[1].tobytes() for ext in (".jpg", ".png", ".bmp")}
_DEPTH = np.linspace(500, 4000, 12 * 16).reshape(12, 16).astype(np.uint16)
_DEPTH16 = cv2.imencode(".png", _DEPTH)[1].tobytes()


def frames(folder: Path, names: list[str], data: bytes | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(data if data is not None else _ENC.get(Path(n).suffix, b"x"))


def text(path: Path, body: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.replace("\n", newline).encode())
    return path


def rows(*r) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in r)


# ---------------------------------------------------------------------------------------------- LasHeR
def lasher_seq(d: Path, boxes: str, n: int = 3, newline: str = "\n") -> Path:
    frames(d / "visible", [f"v{i}.jpg" for i in range(n)])
    frames(d / "infrared", [f"i{i}.jpg" for i in range(n)])
    text(d / "visible.txt", boxes, newline)
    text(d / "infrared.txt", boxes, newline)
    return d


@pytest.fixture
def lasher_root(tmp_path):
    root = tmp_path / "LasHeR"
    lasher_seq(root / "train" / "seqA", rows((1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 6)))
    lasher_seq(root / "test" / "seqB", rows((5, 5, 4, 4), (0, 0, 0, 0), (6, 6, 4, 4)), newline="\r\n")
    text(root / "trainingsetList.txt", "seqA\n")
    text(root / "testingsetList.txt", "seqB\r\n")
    return root


def test_lasher_reads_nested_splits_crlf_and_zero_boxes(lasher_root):
    seqs = load_dataset("lasher", lasher_root)
    assert [s.name for s in seqs] == ["seqA", "seqB"]
    b = seqs[1]
    assert (b.task, b.dataset, b.x_modality, len(b)) == ("rgbt", "lasher", "thermal", 3)
    np.testing.assert_array_equal(b.boxes, [[5, 5, 4, 4], [NAN] * 4, [6, 6, 4, 4]])
    assert b.visible.tolist() == [True, False, True]
    assert b.rgb_frames[0].name == "v0.jpg" and b.x_frames[2].name == "i2.jpg"
    assert [s.name for s in load_dataset("lasher", lasher_root, "train")] == ["seqA"]
    assert [s.name for s in load_dataset("lasher", lasher_root, "test")] == ["seqB"]


def test_frames_sorted_naturally(tmp_path):
    d = tmp_path / "s"
    frames(d / "visible", ["v10.jpg", "v9.jpg", "v100.jpg", "notes.txt"])
    frames(d / "infrared", ["i10.jpg", "i9.jpg", "i100.jpg"])
    text(d / "visible.txt", rows((1, 1, 2, 2), (1, 1, 2, 2), (1, 1, 2, 2)))
    (seq,) = READERS["lasher"](tmp_path)
    assert [p.name for p in seq.rgb_frames] == ["v9.jpg", "v10.jpg", "v100.jpg"]


def test_lasher_split_list_errors(lasher_root):
    (lasher_root / "testingsetList.txt").unlink()
    with pytest.raises(DatasetError, match="testingsetList.txt"):
        load_dataset("lasher", lasher_root, "test")
    text(lasher_root / "trainingsetList.txt", "seqA\nghost\n")
    with pytest.raises(DatasetError, match=r"trainingsetList.txt, line 2.*ghost"):
        load_dataset("lasher", lasher_root, "train")
    with pytest.raises(ConfigError, match="split"):
        load_dataset("lasher", lasher_root, "val")


def test_separators_tab_and_space_accepted(tmp_path):
    lasher_seq(tmp_path / "tabs", "1\t2\t3\t4\n5\t6\t7\t8\n", n=2)
    lasher_seq(tmp_path / "spaces", "1 2  3 4\n 5 6 7 8 \n", n=2)
    for s in READERS["lasher"](tmp_path):
        np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("body, line, what", [
    ("1,2,3,4\n1\t2\t3\t4\n1,2,3,4\n", 2, "mixed separators"),
    ("1,2,3,4\n1,2,3\n1,2,3,4\n", 2, "expected 4 fields"),
    ("1,2,3,4\n1,2,3,4\n1,2,x,4\n", 3, "expected 4 numbers"),
    ("1,2,3,4\n1,2,-3,4\n1,2,3,4\n", 2, "negative width"),
    ("1,2,3,4\n\n1,2,3,4\n", 2, "blank line"),
])
def test_malformed_box_files_name_file_and_line(tmp_path, body, line, what):
    lasher_seq(tmp_path / "s", body)
    with pytest.raises(DatasetError, match=rf"visible.txt, line {line}: {what}") as e:
        READERS["lasher"](tmp_path)
    assert e.value.line == line


def test_count_mismatches_and_empty_sequences(tmp_path):
    d = lasher_seq(tmp_path / "s", rows((1, 1, 2, 2), (1, 1, 2, 2)))  # 2 lines, 3 frames
    with pytest.raises(DatasetError, match=r"visible.txt: 2 box lines but 3 frames"):
        READERS["lasher"](tmp_path)
    text(d / "visible.txt", rows(*[(1, 1, 2, 2)] * 3))
    (d / "infrared" / "i2.jpg").unlink()
    with pytest.raises(DatasetError, match=r"s: RGB/X frame-count mismatch: 3 frames in visible/ but 2"):
        READERS["lasher"](tmp_path)
    for f in (d / "infrared").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"infrared: empty sequence"):
        READERS["lasher"](tmp_path)
    with pytest.raises(DatasetError, match=r"nowhere: dataset root not found"):
        READERS["lasher"](tmp_path / "nowhere")


# --------------------------------------------------------------------------------------- RGBT234 / GTOT
def test_rgbt234_keeps_both_ground_truths(tmp_path):
    d = lasher_seq(tmp_path / "car", rows((1, 2, 3, 4), (2, 3, 4, 5)), n=2)
    text(d / "infrared.txt", rows((0, 1, 3, 4), (0, 0, 0, 0)))
    (s,) = load_dataset("rgbt234", tmp_path, "test")
    assert s.dataset == "rgbt234"
    np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [2, 3, 4, 5]])
    np.testing.assert_array_equal(s.boxes_x, [[0, 1, 3, 4], [NAN] * 4])
    with pytest.raises(DatasetError, match="no 'train' split"):
        load_dataset("rgbt234", tmp_path, "train")


def test_gtot_converts_corners(tmp_path):
    d = tmp_path / "BlackCar"
    frames(d / "v", ["00001v.png", "00002v.png"])
    frames(d / "i", ["00001i.png", "00002i.png"])
    text(d / "groundTruth_v.txt", "10 20 15 30\n11 21 11 31\n")
    text(d / "groundTruth_i.txt", "12 22 20 40\n12 22 20 40\n")
    (s,) = load_dataset("gtot", tmp_path)
    np.testing.assert_array_equal(s.boxes, [[10, 20, 5, 10], [NAN] * 4])  # zero width = absent
    np.testing.assert_array_equal(s.boxes_x, [[12, 22, 8, 18]] * 2)
    assert s.visible.tolist() == [True, False]
    text(d / "groundTruth_i.txt", "12 22 20 40\n20 22 12 40\n")
    with pytest.raises(DatasetError, match=r"groundTruth_i.txt, line 2: x2 < x1"):
        load_dataset("gtot", tmp_path)


# ------------------------------------------------------------------------------------ DepthTrack / RGBD1K
def rgbd_seq(d: Path, boxes: str, n: int = 2, color="color", depth="depth") -> Path:
    frames(d / color, [f"{i:08d}.jpg" for i in range(1, n + 1)])
    frames(d / depth, [f"{i:08d}.png" for i in range(1, n + 1)], _DEPTH16)
    text(d / "groundtruth.txt", boxes)
    return d


def test_depthtrack_plain_and_split_folders(tmp_path):
    rgbd_seq(tmp_path / "plain" / "adapter01", "1,2,3,4\nnan,nan,nan,nan\n")
    (s,) = load_dataset("depthtrack", tmp_path / "plain")
    assert (s.task, s.dataset, s.x_modality) == ("rgbd", "depthtrack", "depth")
    np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [NAN] * 4])
    assert s.visible.tolist() == [True, False] and s.x_frames[0].suffix == ".png"

    split_root = tmp_path / "split"
    rgbd_seq(split_root / "train" / "bag01", "1,2,3,4\n1,2,3,4\n")
    rgbd_seq(split_root / "test" / "cup02", "1,2,3,4\n1,2,3,4\n")
    assert [s.name for s in load_dataset("depthtrack", split_root)] == ["bag01", "cup02"]
    assert [s.name for s in load_dataset("depthtrack", split_root, "test")] == ["cup02"]
    with pytest.raises(DatasetError, match=r"plain/train: split folder"):
        load_dataset("depthtrack", tmp_path / "plain", "train")


def test_vot_workspace_with_metadata_and_list(tmp_path):
    ws = tmp_path / "ws"
    d = rgbd_seq(ws / "sequences" / "box_room", "1,2,3,4\n2,3,4,5\n3,4,5,6\n", n=3, color="rgb", depth="d")
    text(d / "sequence", "name=box_room\nchannels.color=rgb/%08d.jpg\nchannels.depth=d/%08d.png\n")
    frames(d / "rgb", ["cover.jpg"])  # does not match the pattern: ignored
    rgbd_seq(ws / "sequences" / "unlisted", "1,2,3,4\n1,2,3,4\n")
    text(ws / "sequences" / "list.txt", "box_room\n")
    (s,) = load_dataset("rgbd1k", ws)
    assert (s.name, s.dataset, len(s)) == ("box_room", "rgbd1k", 3)
    assert [p.name for p in s.rgb_frames] == ["00000001.jpg", "00000002.jpg", "00000003.jpg"]
    text(ws / "sequences" / "list.txt", "box_room\nmissing\n")
    with pytest.raises(DatasetError, match=r"list.txt, line 2.*missing"):
        load_dataset("depthtrack", ws)


def test_depth_checked_on_first_frame_only(tmp_path):
    d = rgbd_seq(tmp_path / "s", "1,2,3,4\n1,2,3,4\n")
    (d / "depth" / "00000002.png").write_bytes(b"not a png")  # not decoded at load time
    assert len(load_dataset("depthtrack", tmp_path)[0]) == 2
    (d / "depth" / "00000001.png").write_bytes(_ENC[".png"])  # 8-bit
    with pytest.raises(DatasetError, match=r"00000001.png: depth must be a 16-bit PNG"):
        load_dataset("depthtrack", tmp_path)


# --------------------------------------------------------------------------------------------- VisEvent
@pytest.fixture
def visevent_root(tmp_path):
    root = tmp_path / "VisEvent"
    for split, name in (("train", "dvSave-1"), ("test", "00141_tank")):
        d = root / split / name
        frames(d / "vis_imgs", ["frame0007.bmp", "frame0008.bmp", "frame0009.bmp"])
        frames(d / "event_imgs", ["frame0007.bmp", "frame0008.bmp", "frame0009.bmp"])
        text(d / "groundtruth.txt", rows((1, 2, 3, 4), (2, 3, 4, 5), (0, 0, 0, 0)))
        text(d / "absent_label.txt", "1\n0\n1\n")
    text(root / "train" / "trainlist.txt", "dvSave-1\n")
    text(root / "test" / "testlist.txt", "00141_tank\n")
    return root


def test_visevent_polarity_both_ways(visevent_root):
    s = load_dataset("visevent", visevent_root, "train")[0]
    assert (s.name, s.task, s.x_modality) == ("dvSave-1", "rgbe", "event")
    np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [NAN] * 4, [NAN] * 4])
    assert s.visible.tolist() == [True, False, False]
    s = load_dataset("visevent", visevent_root, "train", absent_polarity="absent")[0]
    np.testing.assert_array_equal(s.boxes, [[NAN] * 4, [2, 3, 4, 5], [NAN] * 4])
    (visevent_root / "train" / "dvSave-1" / "absent_label.txt").unlink()
    s = load_dataset("visevent", visevent_root, "train")[0]
    assert s.visible.tolist() == [True, True, False]
    with pytest.raises(ConfigError, match="absent_polarity"):
        load_dataset("visevent", visevent_root, absent_polarity="1=absent")


def test_visevent_splits_and_label_errors(visevent_root):
    assert [s.name for s in load_dataset("visevent", visevent_root)] == ["00141_tank", "dvSave-1"]
    (visevent_root / "test" / "testlist.txt").unlink()
    with pytest.raises(DatasetError, match="testlist.txt"):
        load_dataset("visevent", visevent_root, "test")
    text(visevent_root / "VisEvent_testing_subset.txt", "00141_tank\n")
    assert [s.name for s in load_dataset("visevent", visevent_root, "test")] == ["00141_tank"]
    text(visevent_root / "test" / "00141_tank" / "absent_label.txt", "1\n2\n1\n")
    with pytest.raises(DatasetError, match=r"absent_label.txt, line 2: expected 0 or 1"):
        load_dataset("visevent", visevent_root, "test")
    text(visevent_root / "test" / "00141_tank" / "absent_label.txt", "1\n1\n")
    with pytest.raises(DatasetError, match=r"absent_label.txt: 2 label lines but 3 frames"):
        load_dataset("visevent", visevent_root, "test")


# --------------------------------------------------------------------------------------------- manifest
@pytest.fixture
def bench(tmp_path):
    lasher_seq(tmp_path / "lasher" / "test" / "seqB", rows((5, 5, 4, 4), (0, 0, 0, 0), (6, 6, 4, 4)))
    lasher_seq(tmp_path / "lasher" / "train" / "seqA", rows(*[(1, 1, 2, 2)] * 3))
    rgbd_seq(tmp_path / "elsewhere" / "dt" / "sequences" / "cup02", "1,2,3,4\nnan,nan,nan,nan\n")
    d = tmp_path / "visevent" / "00141_tank"
    frames(d / "vis_imgs", ["1.bmp"])
    frames(d / "event_imgs", ["1.bmp"])
    text(d / "groundtruth.txt", "1,2,3,4\n")
    return tmp_path


def test_manifest_order_roots_and_roundtrip(bench):
    m = text(bench / "uni.txt", "# UniBench subset\n\nrgbe,visevent,00141_tank\n"
             "rgbd, depthtrack ,cup02  # x\nrgbt,lasher,seqB\nrgbt,lasher,seqA\n")
    seqs = load_dataset("manifest", m, roots={"depthtrack": str(bench / "elsewhere" / "dt")})
    assert [s.uid for s in seqs] == ["visevent/00141_tank", "depthtrack/cup02", "lasher/seqB", "lasher/seqA"]
    assert [s.task for s in seqs] == ["rgbe", "rgbd", "rgbt", "rgbt"]
    assert seqs[2].visible.tolist() == [True, False, True]
    out = write_manifest(bench / "copy.txt", seqs[::-1])
    again = load_dataset("manifest", out, roots={"depthtrack": str(bench / "elsewhere" / "dt")})
    assert [s.uid for s in again] == [s.uid for s in seqs[::-1]]


@pytest.mark.parametrize("line, what", [
    ("rgbx,lasher,seqA", "unknown task"),
    ("rgbt,kitti,seqA", "unknown dataset"),
    ("rgbd,lasher,seqA", "belongs to task 'rgbt'"),
    ("rgbt,lasher,ghost", "sequence 'ghost' not found"),
    ("rgbt,lasher", "expected 'task,dataset,sequence'"),
    ("rgbd,depthtrack,cup02", "root of dataset 'depthtrack' not found"),
    ("rgbt,lasher,seqB", "already listed at line 2"),
])
def test_manifest_errors_name_file_and_line(bench, line, what):
    m = text(bench / "bad.txt", f"# header\nrgbt,lasher,seqB\n{line}\n")
    with pytest.raises(DatasetError, match=rf"bad.txt, line 3: .*{what}"):
        load_dataset("manifest", m)


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(ConfigError, match=r"'dataset'.*valid: lasher, rgbt234, gtot, depthtrack, rgbd1k"):
        load_dataset("otb", tmp_path)


# ---------------------------------------------------------------------------------------------- inspect
def test_inspect_reports_and_validates_first_frames(lasher_root):
    report = inspect_dataset("lasher", lasher_root)
    assert report == {"dataset": "lasher", "sequences": [
        {"name": "seqA", "task": "rgbt", "frames": 3, "absent_frames": 0, "x_modality": "thermal"},
        {"name": "seqB", "task": "rgbt", "frames": 3, "absent_frames": 1, "x_modality": "thermal"},
    ]}
    from rich.console import Console
    console = Console(file=io.StringIO(), width=120)
    print_table(report, console)
    out = console.file.getvalue()
    assert "seqB" in out and "total" in out
    (lasher_root / "test" / "seqB" / "infrared" / "i0.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"i0.jpg: cannot read image"):
        inspect_dataset("lasher", lasher_root, "test")


def test_depth_rendering_equals_the_clipped_jet_recipe_bit_for_bit():
    """The LUT fast path must give exactly what the documented recipe gives with cv2.applyColorMap."""
    from unitrack.data.sequence import DEPTH_CLIP_MM, render_depth

    def recipe(raw):
        d = raw.astype(np.float32)
        med = float(np.median(d))
        d = np.minimum(d, min(3.0 * med, DEPTH_CLIP_MM) if med > 0 else DEPTH_CLIP_MM)
        lo, hi = float(d.min()), float(d.max())
        d8 = ((d - lo) / (hi - lo) * 255.0).astype(np.uint8) if hi > lo else np.zeros(d.shape, np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(d8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)

    rng = np.random.default_rng(0)
    for i in range(60):
        top = [40, 3000, 20000, 65535][i % 4]
        raw = rng.integers(0, top, size=(int(rng.integers(1, 70)), int(rng.integers(1, 70))), dtype=np.uint16)
        if i % 9 == 0:
            raw[:] = raw.flat[0]  # flat depth: all one colour
        if i % 13 == 0:
            raw[:] = 0  # median 0: clip at 10 m
        got = render_depth(raw)
        assert got.dtype == np.uint8 and got.shape == (*raw.shape, 3)
        np.testing.assert_array_equal(got, recipe(raw))


# --------------------------------------------------------------------------------------------- GOT-10k
def test_got10k_splits_absence_cover_and_first_frame_test_gt(tmp_path):
    from unitrack.data.sequence import load_frame

    root = tmp_path / "GOT10k"
    names = [f"{i:08d}.jpg" for i in range(1, 5)]
    tr = root / "train" / "GOT-10k_Train_000001"
    frames(tr, names)
    text(tr / "groundtruth.txt", rows((1, 2, 3, 4), (1, 2, 3, 4), (5, 6, 7, 8), (5, 6, 7, 8)))
    text(tr / "absence.label", "0\n1\n0\n0\n")
    text(tr / "cover.label", "8\n0\n0\n3\n")
    text(root / "train" / "list.txt", "GOT-10k_Train_000001\n")
    te = root / "test" / "GOT-10k_Test_000001"
    frames(te, names)
    text(te / "groundtruth.txt", rows((1, 2, 3, 4)))
    text(root / "test" / "list.txt", "GOT-10k_Test_000001\n")
    (s,) = load_dataset("got10k", root, "train")
    assert (s.task, s.dataset, s.x_modality, len(s)) == ("rgb", "got10k", "none", 4)
    assert s.visible.tolist() == [True, False, False, True]  # absent, then covered (cover 0)
    rgb, x = load_frame(s, 0)
    assert x is rgb  # RGB-only: decoded once, RGB stands in for X
    (t,) = load_dataset("got10k", root, "test")
    assert t.visible.tolist() == [True, False, False, False]
    assert len(load_dataset("got10k", root)) == 2
    with pytest.raises(DatasetError, match="no GOT-10k sequences"):
        load_dataset("got10k", (tmp_path / "empty").mkdir() or tmp_path / "empty")
    with pytest.raises(ConfigError, match="split"):
        load_dataset("got10k", root, "bogus")


def test_synthetic_rgb_world_reads_as_got10k(synth_root):
    tr, va = load_dataset("got10k", synth_root / "got10k", "train"), load_dataset("got10k", synth_root / "got10k", "val")
    assert len(tr) == 4 and len(va) == 1 and all(s.task == "rgb" and s.visible.any() for s in tr + va)
