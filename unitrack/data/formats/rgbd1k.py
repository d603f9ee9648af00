"""RGBD1K (RGB+Depth), as released and as its authors' SPT code reads it: class folders.

    <root>/<Class>/<seq>/color/00000001.jpg ...   depth/00000001.png ...   groundtruth_rect.txt

Split lists hold one `Class/seq` a line (e.g. `Adapter/adapter1`); a bare `seq` is accepted too. The
list of a split is the first of `<split>.txt`, `<split>_list.txt`, `<split>list.txt`, `<split>_set.txt`
at the root (and `list.txt`, the name SPT's test loader reads, for the test split); without one, the
sequences under a folder naming the split. Sequences are named by their folder (`adapter1`); the same name
in two classes is an error. Ground truth: `groundtruth_rect.txt` (or `groundtruth.txt`), read as VOT
regions with negative or zero sizes absent, like DepthTrack's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from unitrack.data.formats.common import (
    check_split,
    discover,
    keep_only,
    read_names,
    require_dir,
    require_found,
    select,
    split_by_folder,
)
from unitrack.data.formats.depthtrack import is_sequence, read_sequence
from unitrack.data.sequence import Sequence
from unitrack.data.validation import DEFAULT_TOLERANCE
from unitrack.errors import DatasetError

GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt")
LAYOUT = "<root>/<Class>/<seq>/{color,depth}/ with groundtruth_rect.txt"


def list_candidates(root: Path, split: str) -> list[Path]:
    names = [f"{split}.txt", f"{split}_list.txt", f"{split}list.txt", f"{split}_set.txt"]
    return [root / n for n in names + (["list.txt"] if split == "test" else [])]


def _listed(root: Path, found: dict[str, Path], list_file: Path) -> list[tuple[str, Path]]:
    """A split list of `Class/seq` (or `seq`) lines, in its order."""
    out = []
    for line, entry in read_names(list_file):
        name = entry.replace("\\", "/").rstrip("/").split("/")[-1]
        p = found.get(name)
        if p is None or ("/" in entry and not (root / entry).resolve() == p.resolve()):
            raise DatasetError(list_file, f"sequence {entry!r} not found under {root}", line=line)
        out.append((name, p))
    return out


def load(root, split: str | None = None, sequences: Iterable[str] | None = None,
         outside_tolerance: float | None = DEFAULT_TOLERANCE, **options) -> list[Sequence]:
    check_split(split)
    root = require_dir(Path(root))
    found = require_found(discover(root, is_sequence, max_depth=4), root, "RGBD1K", LAYOUT)
    if split is None:
        items = select(found, None, root)
    else:
        list_file = next((f for f in list_candidates(root, split) if f.is_file()), None)
        items = _listed(root, found, list_file) if list_file else split_by_folder(found, root, split)
        if not items:
            names = ", ".join(f.name for f in list_candidates(root, split))
            raise DatasetError(root, f"no RGBD1K {split} split: expected a split list ({names}) of Class/seq "
                               f"lines, or a folder naming the split above the sequences")
    return [read_sequence(p, "rgbd1k", n, split, outside_tolerance, GT_NAMES) for n, p in keep_only(items, sequences)]
