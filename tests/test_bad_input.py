"""Bad input cases not covered elsewhere (docs/reliability.md): each is one clear error naming file and line
(or a reported, skipped sequence), never a plausible number."""

from __future__ import annotations

import cv2
import pytest

from tests.test_formats import lasher_seq, rows
from tests.test_tracker import FakeModel, bright_oracle, write_sequence
from unitrack.data.formats import load_dataset
from unitrack.errors import DatasetError


def test_inf_in_a_ground_truth_box_is_an_error_naming_the_line(tmp_path):
    lasher_seq(tmp_path / "s", rows((1, 2, 10, 10), (1, 2, "inf", 10), (1, 2, 10, 10)))
    with pytest.raises(DatasetError, match=r"visible.txt, line 2: .*inf"):
        load_dataset("lasher", tmp_path)


@pytest.mark.parametrize("box0, phrase", [((0, 0, 0, 0), "frame 0 has no target box"),
                                          ((500, 300, 10, 10), "lies outside")])
def test_a_frame_zero_box_absent_or_outside_is_an_error(tmp_path, box0, phrase):
    d = lasher_seq(tmp_path / "test" / "s", rows(box0, (5, 5, 4, 4), (6, 6, 4, 4)))
    assert d.is_dir()
    with pytest.raises(DatasetError, match=rf"visible.txt, line 1: .*{phrase}"):
        load_dataset("lasher", tmp_path, "test")


def test_a_frame_size_change_mid_sequence_skips_that_sequence_in_eval_naming_the_frame(tmp_path):
    from unitrack.eval.runner import run_benchmark

    good = write_sequence(tmp_path / "d", "good", 5)
    bad = write_sequence(tmp_path / "d", "resized", 6)
    img = cv2.imread(str(bad.rgb_frames[3]))
    cv2.imwrite(str(bad.rgb_frames[3]), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    stats = run_benchmark(FakeModel(bright_oracle), [bad, good], tmp_path / "res", batch_size=2, progress=False)
    (f,) = stats["failed"]
    assert f["name"] == "resized" and str(bad.rgb_frames[3]) in f["error"] and "frame sizes must be constant" \
        in f["error"]
    assert (tmp_path / "res" / "good.txt").is_file() and not (tmp_path / "res" / "resized.txt").exists()


def test_a_truncated_jpeg_mid_sequence_names_the_file(tmp_path):
    from unitrack.eval.runner import run_benchmark

    seq = write_sequence(tmp_path / "d", "trunc", 5)
    jpg = seq.rgb_frames[2].with_suffix(".jpg")
    cv2.imwrite(str(jpg), cv2.imread(str(seq.rgb_frames[2])))
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 3])
    seq.rgb_frames[2] = jpg
    stats = run_benchmark(FakeModel(bright_oracle), [seq], tmp_path / "res", batch_size=1, progress=False)
    (f,) = stats["failed"]
    assert str(jpg) in f["error"]
    assert not (tmp_path / "res" / "trunc.txt").exists()
