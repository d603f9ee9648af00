"""A manifest (`task,dataset,sequence` per line) assembles a unified benchmark such as UniBench300 from
the native datasets a user already has, so the benchmark itself never needs to be redistributed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack import RGB_TASK, TASKS
from unitrack.data.formats import (
    depthtrack,
    got10k,
    gtot,
    lasher,
    lasot,
    rgbd1k,
    rgbt210,
    rgbt234,
    trackingnet,
    visevent,
)
from unitrack.data.formats.common import DATASET_TASK
from unitrack.data.sequence import Sequence
from unitrack.errors import DatasetError

NATIVE = {"lasher": lasher.load, "rgbt234": rgbt234.load, "rgbt210": rgbt210.load, "gtot": gtot.load,
          "depthtrack": depthtrack.load, "rgbd1k": rgbd1k.load, "visevent": visevent.load,
          "got10k": got10k.load, "lasot": lasot.load, "trackingnet": trackingnet.load}
MANIFEST_TASKS = (*TASKS, RGB_TASK)


def read_manifest(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, task, dataset, sequence) entries, validated against the known tasks and datasets."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "manifest file not found")
    entries, seen = [], {}
    for i, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not all(fields):
            raise DatasetError(path, f"expected 'task,dataset,sequence', got {raw.strip()!r}", line=i)
        task, dataset, name = fields[0].lower(), fields[1].lower(), fields[2]
        if task not in MANIFEST_TASKS:
            raise DatasetError(path, f"unknown task {fields[0]!r} (expected one of {', '.join(MANIFEST_TASKS)})",
                               line=i)
        if dataset not in DATASET_TASK:
            raise DatasetError(path, f"unknown dataset {fields[1]!r} (expected one of "
                               f"{', '.join(DATASET_TASK)})", line=i)
        if DATASET_TASK[dataset] != task:
            raise DatasetError(path, f"dataset {dataset!r} belongs to task {DATASET_TASK[dataset]!r}, "
                               f"not {task!r}", line=i)
        if (dataset, name) in seen:
            raise DatasetError(path, f"{dataset}/{name} already listed at line {seen[dataset, name]}", line=i)
        seen[dataset, name] = i
        entries.append((i, task, dataset, name))
    return entries


def load(path, split: str | None = None, roots: dict[str, str] | None = None, **options) -> list[Sequence]:
    """Sequences in manifest order. `split` is ignored: each sequence is searched in all splits.

    A dataset's root is roots[dataset] if given, else <manifest dir>/<dataset>; `options` (e.g.
    absent_polarity) go to every reader, which ignore those they do not use.
    """
    path = Path(path)
    entries = read_manifest(path)
    roots = {k.lower(): v for k, v in (roots or {}).items()}
    wanted: dict[str, list[tuple[int, str]]] = {}
    for line, _, dataset, name in entries:
        wanted.setdefault(dataset, []).append((line, name))
    loaded: dict[tuple[str, str], Sequence] = {}
    for dataset, items in wanted.items():
        root = Path(roots[dataset]) if dataset in roots else path.parent / dataset
        if not root.is_dir():
            raise DatasetError(path, f"root of dataset {dataset!r} not found: {root} "
                               f"(give roots={{'{dataset}': PATH}})", line=items[0][0])
        for seq in NATIVE[dataset](root, None, sequences=[n for _, n in items], **options):
            loaded[dataset, seq.name] = seq
        for line, name in items:
            if (dataset, name) not in loaded:
                raise DatasetError(path, f"sequence {name!r} not found in dataset {dataset!r} at {root}",
                                   line=line)
    return [loaded[dataset, name] for _, _, dataset, name in entries]


def write_manifest(path, sequences: Iterable[Sequence]) -> Path:
    """Write `task,dataset,sequence` lines so a chosen subset can be rebuilt from native datasets."""
    path = Path(path)
    lines = ["# task,dataset,sequence"]
    for s in sequences:
        if "," in s.name or "#" in s.name:
            raise DatasetError(path, f"sequence name {s.name!r} cannot be written to a manifest (',' or '#')")
        lines.append(f"{s.task},{s.dataset},{s.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
