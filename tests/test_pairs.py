"""Training pairs: frame sampling rule, crop geometry, augmentation consistency between RGB, X and boxes."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from unitrack.data.augment import PairAugment, color_jitter
from unitrack.data.crop import box_to_crop
from unitrack.data.pairs import PairDataset, PairRef, PairSampler, collate_pairs, jitter_window
from unitrack.data.sequence import Sequence
from unitrack.errors import ConfigError, DatasetError

W, H = 160, 120
RGB_BG, RGB_FG = (20, 30, 40), (250, 240, 230)
X_BG, X_FG = 80, 255


def _write_seq(root: Path, name: str, boxes: np.ndarray, task: str = "rgbt", modality: str = "thermal",
               dataset: str = "fixds") -> Sequence:
    """Frames with a bright axis-aligned rectangle exactly on the (integer) box; X registered with RGB."""
    d = root / name
    (d / "rgb").mkdir(parents=True)
    (d / "x").mkdir()
    rgb_paths, x_paths = [], []
    for i, b in enumerate(boxes):
        rgb = np.empty((H, W, 3), np.uint8)
        rgb[:] = RGB_BG
        if modality == "depth":
            x = np.full((H, W), 3000, np.uint16)
        else:
            x = np.full((H, W, 3), X_BG, np.uint8)
        if np.isfinite(b).all():
            x0, y0, w, h = (int(v) for v in b)
            rgb[y0:y0 + h, x0:x0 + w] = RGB_FG
            x[y0:y0 + h, x0:x0 + w] = 1000 if modality == "depth" else X_FG
        rp, xp = d / "rgb" / f"{i:04d}.jpg", d / "x" / (f"{i:04d}.png" if modality == "depth" else f"{i:04d}.jpg")
        cv2.imwrite(str(rp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(xp), x, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rgb_paths.append(rp)
        x_paths.append(xp)
    return Sequence(name=name, task=task, dataset=dataset, rgb_frames=rgb_paths, x_frames=x_paths,
                    boxes=boxes, x_modality=modality)


def _moving_boxes(n: int, nan_frames=()) -> np.ndarray:
    b = np.array([[10 + 7 * i, 20 + 4 * i, 30 + i, 24] for i in range(n)], dtype=np.float64)
    b[list(nan_frames)] = np.nan
    return b


@pytest.fixture(scope="module")
def seqs(tmp_path_factory) -> dict[str, Sequence]:
    root = tmp_path_factory.mktemp("pairs")
    lone = np.full((8, 4), np.nan)
    lone[5] = [60, 40, 28, 30]
    return {
        "a": _write_seq(root, "a", _moving_boxes(12, nan_frames=(3, 4, 7))),
        "lone": _write_seq(root, "lone", lone),  # a single visible frame: the pair must be (5, 5)
        "empty": _write_seq(root, "empty", np.full((3, 4), np.nan)),
        "d": _write_seq(root, "d", _moving_boxes(4), task="rgbd", modality="depth", dataset="fixdepth"),
    }


def _ds(seqs, **kw) -> PairDataset:
    args = dict(template_size=32, search_size=64, length=100, seed=0)
    args.update(kw)
    return PairDataset([seqs["a"], seqs["lone"]], **args)


def test_sampler_frames_visible_within_gap(seqs):
    with pytest.warns(UserWarning, match="fixds/empty"):
        sampler = PairSampler([seqs["a"], seqs["empty"], seqs["lone"]], max_gap=2)
    assert sampler.usable_indices == [0, 2]
    rng = np.random.default_rng(1)
    refs = [sampler.sample(rng) for _ in range(600)]
    counts = np.bincount([r.seq_index for r in refs], minlength=3)
    assert counts[1] == 0 and 200 < counts[0] < 400  # uniform over usable sequences
    distinct = 0
    for r in refs:
        seq = [seqs["a"], seqs["empty"], seqs["lone"]][r.seq_index]
        assert seq.visible[r.template_frame] and seq.visible[r.search_frame]
        assert abs(r.template_frame - r.search_frame) <= 2
        if r.seq_index == 2:
            assert r.template_frame == r.search_frame == 5
        distinct += r.template_frame != r.search_frame
    assert distinct > 250  # another visible frame in reach is preferred over the template frame itself
    # frame 2's only visible neighbours within 2 are 0, 1: every search frame of template 2 is one of them
    s_of_2 = {r.search_frame for r in refs if r.seq_index == 0 and r.template_frame == 2}
    assert s_of_2 == {0, 1}


def test_no_visible_frame_is_an_error_naming_the_dataset(seqs):
    with pytest.raises(ValueError, match="fixds"):
        PairSampler([seqs["empty"]])
    with pytest.raises(ValueError):
        PairSampler([])


def test_items_deterministic_per_seed_and_index(seqs):
    ds = _ds(seqs, seed=3)
    a = ds[7]
    _ = ds[3], ds[50]
    b = ds[7]
    c = _ds(seqs, seed=3)[7]
    for k, v in a.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b[k]) and torch.equal(v, c[k]), k
    other = ds[8]
    assert not torch.equal(a["x"], other["x"])
    assert not torch.equal(a["x"], _ds(seqs, seed=4)[7]["x"])
    ds.set_epoch(1)
    assert not torch.equal(a["x"], ds[7]["x"])
    with pytest.raises(IndexError):
        ds[100]


def test_shapes_types_and_collate(seqs):
    ds = PairDataset([seqs["a"], seqs["d"]], template_size=32, search_size=64, length=10, task=None)
    items = [ds[i] for i in range(6)]
    it = items[0]
    assert it["z"].shape == it["zx"].shape == (3, 32, 32)
    assert it["x"].shape == it["xx"].shape == (3, 64, 64)
    assert it["z"].dtype == torch.float32 and 0.0 <= float(it["x"].min()) and float(it["x"].max()) <= 1.0
    assert it["box"].shape == it["z_box"].shape == (4,)
    mods = {(i["modality"], i["task"]) for i in items}
    assert mods <= {("thermal", "rgbt"), ("depth", "rgbd")} and len(mods) == 2
    batch = collate_pairs(items)
    assert batch["x"].shape == (6, 3, 64, 64) and batch["ref"].shape == (6, 3)
    assert batch["ref"].dtype == torch.long
    assert isinstance(batch["modality"], list) and len(batch["task"]) == 6
    assert _ds(seqs, task="rgbe")[0]["task"] == "rgbe"


def test_box_equals_analytic_crop_box_without_jitter(seqs):
    ds = _ds(seqs, augment=False, scale_jitter=0.0, center_jitter=0.0)
    for i in range(20):
        it = ds[i]
        seq_i, t, s = it["ref"].tolist()
        seq = ds.sequences[seq_i]
        for key, frame, f, size in (("z_box", t, 2.0, 32), ("box", s, 4.0, 64)):
            w, h = seq.boxes[frame, 2:]
            p = (f - 1) * (w + h) / 2
            side = math.sqrt((w + p) * (h + p))
            bw, bh = w * size / side, h * size / side
            want = np.array([size / 2 - bw / 2, size / 2 - bh / 2, size / 2 + bw / 2, size / 2 + bh / 2]) / size
            np.testing.assert_allclose(it[key].numpy(), want, atol=1e-5)
        # RGB and X crops come from their own files: the X background (or pad) is grey, the RGB one dark
        assert float(it["xx"][:, :4, :4].mean()) > 0.28 and float(it["x"][:, :4, :4].mean()) < 0.2


def _inside_outside(img: torch.Tensor, box: torch.Tensor) -> tuple[float, float]:
    """Mean intensity well inside the box and well outside it."""
    n = img.shape[-1]
    x1, y1, x2, y2 = (box * n).tolist()
    ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    inside = (xs > x1 + 1.5) & (xs < x2 - 1.5) & (ys > y1 + 1.5) & (ys < y2 - 1.5)
    outside = (xs < x1 - 2) | (xs > x2 + 2) | (ys < y1 - 2) | (ys > y2 + 2)
    g = img.mean(0)
    return float(g[inside].mean()), float(g[outside].mean())


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_bright_target_lies_in_box_for_rgb_and_x(seqs, flip_p):
    aug = PairAugment(flip_p=flip_p, brightness=0, contrast=0, saturation=0, grayscale_p=0, x_brightness=0)
    ds = _ds(seqs, augment=aug, seed=11)
    off_centre = 0
    for i in range(25):
        it = ds[i]
        for img_key, box_key in (("z", "z_box"), ("zx", "z_box"), ("x", "box"), ("xx", "box")):
            inside, outside = _inside_outside(it[img_key], it[box_key])
            assert inside > 0.85 and outside < 0.45, (i, img_key, inside, outside)
        centre = (it["box"][:2] + it["box"][2:]) / 2
        off_centre += float((centre - 0.5).abs().max()) > 0.05
    assert off_centre > 10  # the jitter moved the target off the centre (so a wrong flip would show)


def test_flip_mirrors_crops_and_boxes_consistently(seqs):
    ref = PairRef(0, 1, 6)
    plain = _ds(seqs, augment=PairAugment(flip_p=0.0)).load_pair(ref, np.random.default_rng(5))
    flipped = _ds(seqs, augment=PairAugment(flip_p=1.0)).load_pair(ref, np.random.default_rng(5))
    for k in ("z", "zx", "x", "xx"):
        assert torch.equal(flipped[k], torch.flip(plain[k], dims=[2])), k
    for k in ("z_box", "box"):
        p, f = plain[k], flipped[k]
        torch.testing.assert_close(f, torch.stack([1 - p[2], p[1], 1 - p[0], p[3]]))


def test_colour_jitter_touches_rgb_not_x(seqs):
    ref = PairRef(0, 2, 5)
    plain = _ds(seqs, augment=False).load_pair(ref, np.random.default_rng(2))
    gray_x = PairAugment(flip_p=0, grayscale_p=1.0, x_brightness=0.0)
    aug = _ds(seqs, augment=gray_x).load_pair(ref, np.random.default_rng(2))
    assert torch.equal(aug["zx"], plain["zx"]) and torch.equal(aug["xx"], plain["xx"])
    assert torch.equal(aug["x"][0], aug["x"][1]) and torch.equal(aug["x"][1], aug["x"][2])  # grayscale
    assert not torch.equal(aug["x"], plain["x"])
    mild = _ds(seqs, augment=PairAugment(flip_p=0, x_brightness=0.1)).load_pair(ref, np.random.default_rng(2))
    ratio = (mild["xx"] + 1e-3) / (plain["xx"] + 1e-3)
    assert float((ratio - 1).abs().max()) <= 0.1 + 2 / 255 / (X_BG / 255)


def test_jitter_keeps_target_in_crop():
    rng = np.random.default_rng(0)
    out = 64
    for _ in range(3000):
        w, h = rng.uniform(2, 200, 2)
        box = np.array([rng.uniform(-50, 500), rng.uniform(-50, 500), w, h])
        win = jitter_window(box, rng, 4.0, out)
        b = box_to_crop(box, *win, out)
        vis_w = min(b[0] + b[2], out) - max(b[0], 0)
        vis_h = min(b[1] + b[3], out) - max(b[1], 0)
        assert vis_w >= min(10, b[2]) - 1e-6 and vis_h >= min(10, b[3]) - 1e-6
    # an absurd centre jitter is rejected every time: the window falls back onto the box centre
    box = np.array([40.0, 30.0, 20.0, 10.0])
    cx, cy, _ = jitter_window(box, rng, 4.0, out, scale_jitter=0.0, center_jitter=1e4)
    assert (cx, cy) == (50.0, 35.0)


def test_dataset_search_target_at_least_10px(seqs):
    ds = _ds(seqs, search_size=128, augment=True, length=150)
    for i in range(150):
        b = ds[i]["box"] * 128
        assert float(b[2] - b[0]) >= 10 and float(b[3] - b[1]) >= 10, i


def test_replayed_ref_with_invisible_frame_is_rejected(seqs):
    with pytest.raises(ValueError, match="fixds/a"):
        _ds(seqs).load_pair(PairRef(0, 3, 5), np.random.default_rng(0))


def test_color_jitter_factors_match_their_definitions():
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    f = 1.0 + 0.4 * np.random.default_rng(9).uniform(-1, 1)  # the first draw is the brightness factor
    bright = color_jitter(img, np.random.default_rng(9), 0.4, 0.0, 0.0).astype(float)
    np.testing.assert_allclose(bright, np.clip(np.round(img * f), 0, 255), atol=1)
    rng = np.random.default_rng(9)
    rng.uniform(-1, 1)
    f = 1.0 + 0.4 * rng.uniform(-1, 1)  # the second draw is the contrast factor
    low = color_jitter(img, np.random.default_rng(9), 0.0, 0.4, 0.0).astype(float)
    luma = (img.astype(float) @ [0.299, 0.587, 0.114]).mean()
    np.testing.assert_allclose(low, np.clip(np.round((img - luma) * f + luma), 0, 255), atol=1.5)
    mid = np.random.default_rng(1).integers(100, 156, (8, 8, 3), dtype=np.uint8)  # no clipping
    f = 1.0 + 0.4 * rng.uniform(-1, 1)  # the third draw is the saturation factor
    sat = color_jitter(mid, np.random.default_rng(9), 0.0, 0.0, 0.4).astype(float)
    spread = np.ptp(mid.astype(float), axis=2)
    np.testing.assert_allclose(np.ptp(sat, axis=2), spread * f, atol=2)  # chroma scales, luma stays


def _lorat_reference(box, rng, area_factor=4.0, out=224, sj=0.25, tj=3.0, min_px=10.0, retry_count=10):
    """LoRAT's rule as its paper code states it (scale + translation of the box, retry until the clipped
    output box is >= min_px on both axes), written apart from unitrack's: returns the output box xyxy."""
    x1, y1, x2, y2 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    wh = np.array([x2 - x1, y2 - y1])
    area = wh + (area_factor - 1) * wh.sum() * 0.5
    base = np.sqrt(out * out / area.prod())
    count = -1
    while True:
        count += 1
        scale = base / np.exp(rng.standard_normal(2) * sj)
        t = np.array([out / 2, out / 2]) - np.array([(x1 + x2) / 2, (y1 + y2) / 2]) * scale
        t = t + rng.uniform(-1, 1, 2) * (wh * scale).sum() * 0.5 * tj
        ob = np.array([x1 * scale[0] + t[0], y1 * scale[1] + t[1], x2 * scale[0] + t[0], y2 * scale[1] + t[1]])
        clipped = np.clip(ob, 0, out)
        if np.all(clipped[2:] - clipped[:2] >= min_px) or count > retry_count:
            return ob, scale


def _crop_stats(boxes_xyxy, scales_xy, out=224):
    c = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
    off = np.linalg.norm(c - out / 2, axis=1)
    outside = np.any((c < 0) | (c > out), axis=1)
    aspect = scales_xy[:, 0] / scales_xy[:, 1]
    return off.mean(), outside.mean(), np.percentile(aspect, 5), np.percentile(aspect, 95)


def test_lorat_crop_jitter_statistics_match_lorat_rule():
    from unitrack.data.pairs import lorat_window

    box = np.array([300.0, 200.0, 80.0, 80.0])  # 80x80 target, search factor 4, 224 px: the case
    n, out = 10000, 224
    ours, ours_s, ref, ref_s = [], [], [], []
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(1)
    for _ in range(n):
        cx, cy, side = lorat_window(box, rng_a, 4.0, out)
        b = box_to_crop(box, cx, cy, side, out)
        ours.append([b[0], b[1], b[0] + b[2], b[1] + b[3]])
        ours_s.append([out / side[0], out / side[1]])
        ob, s = _lorat_reference(box, rng_b)
        ref.append(ob)
        ref_s.append(s)
    a = _crop_stats(np.array(ours), np.array(ours_s))
    r = _crop_stats(np.array(ref), np.array(ref_s))
    for name, x, y in zip(("centre offset", "share outside", "aspect p5", "aspect p95"), a, r):
        assert abs(x - y) <= 0.1 * abs(y), (name, x, y)
    assert r[1] > 0.1 and a[1] > 0.1  # the target centre leaves the crop in a real share of crops


def test_square_rule_is_kept_as_an_option(seqs):
    from unitrack.errors import ConfigError

    ref = PairRef(0, 1, 6)
    sq = _ds(seqs, augment=False, jitter="square").load_pair(ref, np.random.default_rng(5))
    lo = _ds(seqs, augment=False, jitter="lorat").load_pair(ref, np.random.default_rng(5))
    assert not torch.equal(sq["box"], lo["box"])
    b = sq["box"].numpy() * 64
    assert np.all(b >= 0) and np.all(b <= 64)
    with pytest.raises(ConfigError, match="data.crop.jitter"):
        _ds(seqs, jitter="ostrack")


def test_failed_search_crops_resample_the_pair_as_lorat_or_keep_it_centred(seqs):
    """data.crop.on_fail: when all 12 LoRAT draws leave < min_visible_px of the target in the crop,
    `resample` replaces the pair by another from the same generator (LoRAT); `centre` keeps it centred."""
    kw = dict(min_visible_px=16.0, augment=False)  # ~16 px targets in a 64 px crop: many draws fail
    res, cen = _ds(seqs, on_fail="resample", **kw), _ds(seqs, on_fail="centre", **kw)
    fails, visible = 0, []
    for i in range(60):
        a, b = res[i], cen[i]
        if torch.equal(a["x"], b["x"]):
            continue
        fails += 1  # every draw of this pair failed: centred in one, another pair in the other
        bc = b["box"].numpy()
        assert np.allclose((bc[:2] + bc[2:]) / 2, 0.5, atol=0.02)
        t, s = (int(v) for v in a["ref"][1:])
        seq = res.sequences[int(a["ref"][0])]
        rng = res.rng_for(i)
        res.sampler.sample(rng)  # the same stream: first pair, its failed window, then the replacement
        assert res.search_window(PairRef(*[int(v) for v in b["ref"]]), rng, False) is None
        visible.append(float((a["box"][2:] - a["box"][:2]).min()) * 64)
        assert seq.visible[t] and seq.visible[s]
    assert fails >= 3 and min(visible) >= 16.0 - 1e-3
    never = _ds(seqs, on_fail="resample", min_visible_px=1e9)  # no crop can show that much: a clear error
    with pytest.raises(DatasetError, match="min_visible_px"):
        never[0]
    assert np.allclose(_ds(seqs, on_fail="centre", min_visible_px=1e9, augment=False)[0]["box"].numpy()[[0, 2]].mean(), 0.5,
                       atol=0.02)
    with pytest.raises(ConfigError, match="data.crop.on_fail"):
        _ds(seqs, on_fail="drop")
