"""The embedded synthetic world: RGBT / RGBD / RGBE tracking data in the native LasHeR, DepthTrack and
VisEvent layouts (and an RGB-only world in the GOT-10k layout), made from real photographs.

Why it exists: the toolkit must train serially, show forgetting and study fusion without a download,
so the world has to behave like real data: RGB carries the target (photo objects on photo
backgrounds, a camera that moves), and X helps where it does in reality (thermal at night, depth
against a look-alike at another depth, events under motion blur) without giving the target away
(warm props and distractors, thermal crossover, a near floor and depth holes, camera motion firing
events everywhere). `unitrack synth` measures that with trivial trackers (unitrack/eval/baselines.py, world.json).

Modules: photos (the images), scene (canvas, layers, camera view), motion (paths, occlusion, camera
motion), rgb / thermal / depth / events (one sensor each), attributes (challenges: plan, measurement,
native files), render (one sequence), writers (native layouts).

Each sequence draws from its own numpy Generator seeded by (seed, task, split, index), so the files are
byte-identical for a seed whatever the order (or the number of worker processes) of generation.
Everything is written into a hidden temporary folder next to `out` and renamed into place at the end,
so a failure never leaves a half dataset.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from unitrack.data.synth.events import EVENT_BG, EVENT_NEG, EVENT_POS
from unitrack.data.synth.photos import library
from unitrack.data.synth.render import SynthSequence, render_sequence
from unitrack.data.synth.writers import RGB_DATASET, TASK_DATASET, WRITERS, lines, write_lists
from unitrack.errors import ConfigError, DatasetError

__all__ = ["generate", "ensure_default", "render_sequence", "sequence_name", "SynthSequence", "MANIFEST",
           "TASK_DATASET", "RGB_DATASET", "EVENT_BG", "EVENT_POS", "EVENT_NEG"]

DEFAULT_SIZE = (320, 240)  # (W, H)
DEFAULT_FRAMES = 100
#: training sequences per task (test: two thirds as many, at least 2; see default_test_sequences). With 8 (5 after the validation hold-out) the
#: demo's multimodal stages over-fitted: the RGB foundation alone tracked the test split better than
#: after them (docs/benchmarks.md, "The demo tracker")
DEFAULT_SEQUENCES = 24
#: RGB-world training sequences per task sequence (default 96): a random-init tracker memorises 16
#: (docs/benchmarks.md, "Why the foundation is weak")
RGB_PER_SEQUENCE = 4
#: what `ensure_default` generated, kept next to the world; an older default world is regenerated
DEFAULT_MARKER = ".unitrack_default.json"
#: the generation parameters `data.synth` may set for the default world (null: the built-in value)
WORLD_KEYS = ("seed", "sequences", "test_sequences", "rgb_sequences", "frames", "size")
MANIFEST = "unibench.txt"
RGB_SPLITS = ("train", "val")
_TASK_ID = {"rgbt": 0, "rgbd": 1, "rgbe": 2, "rgb": 3}
_SPLIT_ID = {"train": 0, "test": 1, "val": 1}


def _kind(task: str, index: int) -> str:
    """About one sequence in three is night (RGBT) or fast (RGBE); fixed by index so splits always have some."""
    special = index % 3 == 1
    if task == "rgbt":
        return "night" if special else "day"
    if task == "rgbe":
        return "fast" if special else "normal"
    return "day" if task == "rgb" else "plain"


def sequence_name(task: str, index: int) -> str:
    """Names are distinct across tasks and splits (t_day_000, t_night_001, d_005, e_fast_004, e_006 ...)."""
    kind = _kind(task, index)
    prefix = task[-1]  # t | d | e
    return f"{prefix}_{index:03d}" if kind in ("plain", "normal") else f"{prefix}_{kind}_{index:03d}"


def _job(args: tuple) -> str:
    """Render and write one sequence (runs in a worker process or inline)."""
    tmp, task, split, k, index, name, seed, frames, size = args
    rng = np.random.default_rng([seed, _TASK_ID[task], _SPLIT_ID[split], k])
    seq = render_sequence(task, rng, frames, size, _kind(task, index))
    folder = Path(tmp) / (TASK_DATASET.get(task, RGB_DATASET)) / split / name
    WRITERS[task](folder, seq)
    return name


def _jobs(tmp: Path, seed: int, counts: dict[str, int], n_rgb: int, frames: int, size: tuple[int, int]):
    """Every sequence to make, and the names per task and split (the split lists and manifest)."""
    jobs, names = [], {}
    for task in TASK_DATASET:
        names[task], start = {}, 0
        for split in ("train", "test"):
            names[task][split] = []
            for k in range(counts[split]):
                name = sequence_name(task, start + k)
                jobs.append((str(tmp), task, split, k, start + k, name, seed, frames, size))
                names[task][split].append(name)
            start += counts[split]
    if n_rgb > 0:
        names["rgb"] = {}
        for split, count in (("train", n_rgb), ("val", max(1, n_rgb // 4))):
            names["rgb"][split] = []
            for k in range(count):
                name = f"GOT-10k_{split.capitalize()}_{k + 1:06d}"
                jobs.append((str(tmp), "rgb", split, k, k, name, seed, frames, size))
                names["rgb"][split].append(name)
    return jobs, names


#: Below this many rendered pixels x frames in all, one process beats paying for a pool's start-up.
PARALLEL_ABOVE = 2e7


def _run(jobs: list[tuple], workers: int) -> None:
    library()  # built once here, inherited by forked workers
    work = sum(j[7] * j[8][0] * j[8][1] for j in jobs)
    if workers <= 1 or len(jobs) < 2 or work < PARALLEL_ABOVE:
        for j in jobs:
            _job(j)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(_job, jobs, chunksize=1):
            pass


def _write_manifest(path: Path, tests: dict[str, list[str]], seed: int) -> None:
    rows = [f"# unified synthetic benchmark (seed {seed}): task,dataset,sequence over the test splits"]
    for task in ("rgbt", "rgbd", "rgbe"):
        rows += [f"{task},{TASK_DATASET[task]},{name}" for name in tests[task]]
    path.write_text(lines(rows))


def default_test_sequences(sequences: int) -> int:
    """Test sequences per task for `sequences` training ones: two thirds (16 for the default 24). Per-sequence
    SR varies far more than a method's effect, so the test split is what resolves a 0.02 pooled-SR
    difference (docs/reproducing-the-paper.md, "Power"); generating it stays well under 90 s."""
    return max(2, 2 * int(sequences) // 3)


def _check_args(seed, sequences, frames, size, test_sequences) -> tuple[tuple[int, int], int]:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", f"expected a non-negative integer, got {seed!r}")
    if int(sequences) < 1:
        raise ConfigError("sequences", f"expected at least 1 training sequence per task, got {sequences!r}")
    if int(frames) < 8:
        raise ConfigError("frames", f"expected at least 8 frames per sequence, got {frames!r}")
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError("size", f"expected [width, height], got {size!r}") from None
    if w < 64 or h < 48:
        raise ConfigError("size", f"expected at least 64x48 pixels, got {w}x{h}")
    n_test = default_test_sequences(int(sequences)) if test_sequences is None else int(test_sequences)
    if n_test < 1:
        raise ConfigError("test_sequences", f"expected at least 1, got {test_sequences!r}")
    return (w, h), n_test


def default_workers() -> int:
    """Processes for generation: one per core, at most 2 (the machines this runs on have 2)."""
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def generate(out: str | Path, seed: int = 0, sequences: int = DEFAULT_SEQUENCES, frames: int = DEFAULT_FRAMES,
             size: tuple[int, int] | list = DEFAULT_SIZE, test_sequences: int | None = None,
             overwrite: bool = False, rgb_sequences: int | None = None, workers: int | None = None) -> Path:
    """Write the three synthetic datasets, the RGB-only world and the unified test manifest under `out`.

    `sequences` is the number of training sequences per task; the RGB world (GOT-10k layout, for the
    RGB foundation stage) gets `rgb_sequences` training sequences (default 4 x sequences, 0 = none) and
    a quarter as many validation ones. `workers` processes render in parallel (default: one per core, at
    most 2); the bytes do not depend on it. An existing complete dataset (one with a manifest) is
    replaced only with overwrite=True; a non-empty folder that is not one is never touched.
    """
    out = Path(out).absolute()
    size, n_test = _check_args(seed, sequences, frames, size, test_sequences)
    if out.exists():
        if not out.is_dir():
            raise DatasetError(out, "exists and is not a folder; choose another output path")
        if (out / MANIFEST).is_file():
            if not overwrite:
                raise DatasetError(out, "already holds a synthetic dataset; pass overwrite=True to regenerate")
        elif any(out.iterdir()):
            raise DatasetError(out, f"folder is not empty and has no {MANIFEST}; refusing to write into it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        n_rgb = RGB_PER_SEQUENCE * int(sequences) if rgb_sequences is None else int(rgb_sequences)
        jobs, names = _jobs(tmp, int(seed), {"train": int(sequences), "test": n_test}, n_rgb, int(frames), size)
        for task, splits in names.items():
            for split in splits:
                (tmp / TASK_DATASET.get(task, RGB_DATASET) / split).mkdir(parents=True, exist_ok=True)
        _run(jobs, default_workers() if workers is None else int(workers))
        for task, splits in names.items():
            write_lists(tmp / TASK_DATASET.get(task, RGB_DATASET), task, splits)
        _write_manifest(tmp / MANIFEST, {t: names[t]["test"] for t in TASK_DATASET}, int(seed))
        if out.exists():
            out.rename(old)  # empty folder or a dataset being overwritten
            try:
                tmp.rename(out)
            except OSError:
                old.rename(out)  # put the previous dataset back
                raise
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def default_parameters(world: Mapping | None = None) -> dict:
    """The default world's generation parameters (what `ensure_default` makes and records), with the
    non-null entries of `world` (`data.synth`: seed, sequences, test_sequences, rgb_sequences, frames,
    size) in place of the built-in ones; a changed `sequences` moves the counts derived from it."""
    given = {k: v for k, v in dict(world or {}).items() if v is not None}
    unknown = sorted(set(given) - set(WORLD_KEYS))
    if unknown:
        raise ConfigError(f"data.synth.{unknown[0]}", f"unknown key; valid: {', '.join(WORLD_KEYS)}")
    n = int(given.get("sequences", DEFAULT_SEQUENCES))
    p = {"seed": 0, "sequences": n, "test_sequences": default_test_sequences(n), "rgb_sequences": RGB_PER_SEQUENCE * n,
         "frames": DEFAULT_FRAMES, "size": list(DEFAULT_SIZE)}
    p.update({k: (list(v) if k == "size" else int(v)) for k, v in given.items()})
    return p


def _count(list_file: Path) -> int:
    return sum(1 for ln in list_file.read_text().splitlines() if ln.strip()) if list_file.is_file() else 0


def _stale_default(root: Path, wanted: dict, configured: bool) -> str | None:
    """Why the world at `root` is not the one wanted (None: it is, or it is a custom world to keep).

    Without `data.synth` settings (`configured` false: every command but a configured `train`) a world that
    a configured run made is kept too, so `unitrack eval` scores the world its checkpoint was trained on."""
    import json

    marker = root / DEFAULT_MARKER
    if marker.is_file():
        try:
            made = json.loads(marker.read_text())
        except (OSError, ValueError):
            made = None
        if isinstance(made, dict) and made.pop("configured", False) and not configured:
            return None
        return None if made == wanted else f"was generated with other defaults or data.synth values ({made})"
    if not (root / RGB_DATASET / "train" / "list.txt").is_file():
        return "predates the RGB-only world"
    if not (root / "lasher" / "Attributes_order.txt").is_file():
        return "predates the photographic world"
    if _count(root / "lasher" / "trainingsetList.txt") == 8:  # the earlier default (8 train / 4 test)
        return "holds the earlier 8-sequence default world"
    return None


def ensure_default(root: Path, world: Mapping | None = None) -> Path:
    """Generate the default synthetic data into `root` unless it is there (an older default world is
    regenerated, a custom `unitrack synth` world kept); returns root. `world` (`data.synth`) overrides the
    default generation parameters; the world made with them is regenerated when they change."""
    import json

    from unitrack.atomic import write_text_atomic

    root = Path(root)
    p = default_parameters(world)
    configured = p != default_parameters()
    regenerate = (root / MANIFEST).is_file()
    if regenerate:
        why = _stale_default(root, p, configured)
        if why is None:
            return root
        print(f"unitrack: {root} {why}; regenerating the default synthetic dataset")
    else:
        print(f"unitrack: no {MANIFEST} in {root}; generating the default synthetic dataset there")
    generate(root, seed=p["seed"], sequences=p["sequences"], test_sequences=p["test_sequences"],
             rgb_sequences=p["rgb_sequences"], frames=p["frames"], size=tuple(p["size"]), overwrite=regenerate)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / DEFAULT_MARKER, json.dumps({**p, "configured": True} if configured else p))
    return root
