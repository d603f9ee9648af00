"""Process-level CPU settings applied once at start-up by the CLI.

glibc serves every allocation above 128 KiB with a fresh mmap and hands freed heap tops back to the OS,
so each new activation of a batched forward (a 12x80x512 float MLP buffer is 2 MiB) is paid again in
page faults: in a batch-12 profile of the tiny tracker, filling those fresh buffers (the addmm bias
copy, GELU's output) took a quarter of the forward. Raising glibc's mmap and trim thresholds keeps
such buffers in the heap for reuse, which is what PyTorch's CPU tuning guide gets by preloading
jemalloc or tcmalloc, without a new dependency. Set UNITRACK_MALLOC=default to keep glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt parameters (malloc.h) and the values we set.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's own upper bound for its dynamic threshold
TRIM_THRESHOLD = 256 << 20


def tune_allocator() -> bool:
    """Keep buffers up to 32 MiB in glibc's heap and trim it only above 256 MiB free; True if applied.

    A no-op (False) on other C libraries (macOS, musl) or when UNITRACK_MALLOC=default.
    """
    if os.environ.get("UNITRACK_MALLOC", "") == "default":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
