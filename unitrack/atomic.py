"""Files written whole or not at all: a temporary file in the target's folder, then `os.replace`.

A run killed mid-write (a preempted SLURM job, Ctrl-C) leaves the previous file or none, never half of one,
and readers on other nodes never see a partial result, matrix or config."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter before Python 3.13)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def replacing_file(path: Path | str, mode: str = "w", fsync: bool = False) -> Iterator[IO]:
    """An open temporary file beside `path` (text mode "w" writes "\n" line ends, or "wb"); it is renamed
    over `path` when the block ends without an error (synced to disk first with `fsync`), removed
    otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"newline": "\n"} if "b" not in mode else {})) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would give 0666 - umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    with replacing_file(path) as fh:
        fh.write(text)
    return Path(path)


@contextmanager
def replacing_dir(path: Path | str) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; it takes `path`'s place when the block ends without an
    error, removed otherwise. An older `path` is moved aside first and deleted after, so a reader finds the
    old folder, the new one, or none -- never old and new files mixed. The caller decides whether an
    existing `path` may be replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a plain mkdir would give 0777 - umask
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
