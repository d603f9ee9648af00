"""Frame decoders of the one-pass runner: every kind returns load_frame's pixels in the order asked for,
whatever order its workers finish in, and a bad frame's error names its file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unitrack.data.sequence import Sequence, load_frame
from unitrack.errors import DatasetError
from unitrack.eval import decode as D


def _sequence(root, name, n, ext=".jpg", modality="thermal", size=(48, 64)) -> Sequence:
    """Random-texture frames (JPEG by default; depth as 16-bit PNG) so that decoders have work to do."""
    d = root / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    rgb, x = [], []
    for i in range(n):
        img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        rgb.append(d / f"rgb_{i:03d}{ext}")
        cv2.imwrite(str(rgb[-1]), img)
        if modality == "depth":
            x.append(d / f"d_{i:03d}.png")
            cv2.imwrite(str(x[-1]), rng.integers(500, 9000, size, dtype=np.uint16))
        else:
            x.append(d / f"x_{i:03d}{ext}")
            cv2.imwrite(str(x[-1]), img[..., ::-1] // 2)
    boxes = np.tile([10.0, 10.0, 12.0, 12.0], (n, 1))
    return Sequence(name, {"thermal": "rgbt", "depth": "rgbd", "event": "rgbe"}[modality], "t", rgb, x, boxes,
                    modality)


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dec")
    return [_sequence(root, "a", 9), _sequence(root, "dd", 7, ext=".png", modality="depth"),
            _sequence(root, "eee", 5, ext=".bmp", modality="event")]


def _all(dec, seqs):
    """Submit every frame up front, then take them in order (the runner's pattern, at its extreme)."""
    handles = [(s, i, dec.submit(s, i)) for s in seqs for i in range(len(s))]
    out = []
    for s, i, h in handles:
        rgb, x = h.result()
        out.append((s.name, i, rgb.copy(), x.copy()))
        h.release()
    return out


@pytest.mark.parametrize("kind,workers", [("inline", 0), ("thread", 2), ("process", 2)])
def test_decoders_give_load_frames_pixels_in_order(seqs, kind, workers):
    dec = D.make_decoder(kind, workers, slots=64)
    try:
        got = _all(dec, seqs)
    finally:
        dec.close()
    assert [(n, i) for n, i, _, _ in got] == [(s.name, i) for s in seqs for i in range(len(s))]
    for (name, i, rgb, x) in got:
        s = next(q for q in seqs if q.name == name)
        ref = load_frame(s, i)
        assert np.array_equal(rgb, ref[0]) and np.array_equal(x, ref[1]), (kind, name, i)


def test_process_pool_reuses_slots_and_pickles_frames_too_big_for_one(seqs):
    """Few slots, released as frames are taken: slot reuse never hands out another frame's pixels; a
    slot smaller than a frame falls back to pickling, with the same pixels."""
    dec = D.ProcessDecoder(2, slots=3)
    try:
        for s in seqs:
            for i in range(len(s)):
                h = dec.submit(s, i)
                rgb, x = h.result()
                ref = load_frame(s, i)
                assert np.array_equal(rgb, ref[0]) and np.array_equal(x, ref[1])
                h.release()
        assert dec.pickled == 0 and len(dec.free) == 3
    finally:
        dec.close()
    small = D.ProcessDecoder(1, slots=2, slot_bytes=5000)
    try:
        got = _all(small, seqs[:1])
        assert small.pickled == len(seqs[0])
        assert all(np.array_equal(r, load_frame(seqs[0], i)[0]) for _, i, r, _ in got)
    finally:
        small.close()


@pytest.mark.parametrize("kind", ["inline", "thread", "process", "gpu"])
def test_a_bad_frame_raises_at_that_frame_naming_its_file_and_the_rest_still_decodes(tmp_path, kind):
    s = _sequence(tmp_path, "s", 6)
    s.x_frames[3].write_bytes(b"\xff\xd8 truncated jpeg")
    dec = D.make_decoder(kind, 2, slots=16, device="cpu")
    try:
        handles = [dec.submit(s, i) for i in range(len(s))]
        for i, h in enumerate(handles):
            if i == 3:
                with pytest.raises(DatasetError, match=str(s.x_frames[3])):
                    h.result()
            else:
                assert h.result()[0].shape == (48, 64, 3)
            h.release()
    finally:
        dec.close()


def test_gpu_decoder_path_on_cpu_matches_opencv_closely(seqs):
    """nvJPEG's code path run with torchvision's CPU decoder: frames in order, JPEGs within a grey level
    or two of OpenCV's, other formats (depth PNG, BMP) decoded by OpenCV exactly."""
    pytest.importorskip("torchvision")
    dec = D.GpuJpegDecoder("cpu", workers=2)
    try:
        got = _all(dec, seqs)
    finally:
        dec.close()
    for name, i, rgb, x in got:
        s = next(q for q in seqs if q.name == name)
        ref = load_frame(s, i)
        if s.rgb_frames[i].suffix == ".jpg":
            assert np.abs(rgb.astype(int) - ref[0]).max() <= 3
        else:
            assert np.array_equal(rgb, ref[0]) and np.array_equal(x, ref[1])


def test_a_dead_worker_is_an_error_not_a_hang(seqs):
    dec = D.ProcessDecoder(1, slots=4)
    try:
        dec.procs[0].kill()
        dec.procs[0].join()
        with pytest.raises(RuntimeError, match="decode worker process died"):
            for i in range(len(seqs[0])):
                dec.submit(seqs[0], i).result()
    finally:
        dec.close()


def test_workers_needed_keeps_up_with_the_consumer():
    assert D.workers_needed(1000.0, 300.0) == 4 and D.workers_needed(10.0, 300.0) == 1
    with pytest.raises(Exception, match="eval.decode"):
        D.make_decoder("nvdec", 1, 4)
