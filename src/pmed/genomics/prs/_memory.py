"""Keep the memory of reading and matching near the size of their data.

Two allocator habits, not the data, held much of the peak of reading and matching a
million-variant score (``benchmarks/prs_benchmark.py``'s match-only run; RSS between steps):

- glibc raises its mmap threshold (up to 32 MiB) every time a large block is freed, after which
  arrays of a few MB come from the heap, and freed heap is kept by the process. Inside
  :func:`lean_heap` the threshold is held at its initial 128 KiB, so every array above it is an
  ``mmap`` that goes back to the system when freed. Afterwards it is set to glibc's own upper
  value (32 MiB): scoring allocates and frees the same block-sized arrays thousands of times,
  and fresh mappings would cost it a page fault per 4 KiB each time (a whole 1,000,000-variant
  run took 3.9–5.1 s instead of 3.6–3.8 s with the threshold left at 128 KiB).
- Arrow's default pool keeps freed pages for reuse, but a CSV reader's parse buffers are not
  reused, so Arrow is switched to the system allocator (for the whole process: temporaries made
  inside Arrow's compute functions cannot be routed otherwise). Only the allocator changes;
  every Arrow result is the same.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["use_system_arrow_pool", "lean_heap", "in_lean_heap"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_LEAN, _HEAP = 128 * 1024, 32 * 1024 * 1024
_lock = threading.Lock()
_depth = 0
_pool_set = False


def _mmap_threshold(nbytes: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes))
        # what glibc's own sliding threshold does: keep up to twice that at the top of the heap
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * int(nbytes))
    except (OSError, AttributeError):  # not glibc: its allocator has its own policy
        pass


@contextmanager
def lean_heap() -> Iterator[None]:
    """Inside: every allocation above 128 KiB is its own mapping, returned to the system when freed.

    Re-entrant and shared between threads (the scoring files and the genotype variants are read
    side by side); the last one out sets the threshold to 32 MiB.
    """
    global _depth
    with _lock:
        if _depth == 0:
            _mmap_threshold(_LEAN)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _mmap_threshold(_HEAP)


def in_lean_heap(fn: Callable) -> Callable:
    """Decorator: run ``fn`` inside :func:`lean_heap`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with lean_heap():
            return fn(*args, **kwargs)

    return wrapper


def use_system_arrow_pool():
    """Make the system allocator Arrow's default pool (once per process) and return it."""
    import pyarrow as pa

    global _pool_set
    pool = pa.system_memory_pool()
    if not _pool_set:  # (asking for the default pool first would start its allocator)
        pa.set_memory_pool(pool)
        _pool_set = True
    return pool
