"""Memory a worker frees goes back to the machine, job after job.

A worker lives for many jobs, so what its allocators keep after a job
counts against the next one. With the defaults, the peak of a large fit
is about twice a fresh process's, and grows from the first job to the
second:
- pyarrow allocates the Parquet read's buffers from its own pool
  (mimalloc), which keeps them once freed: the table read for one job stays
  resident beside the frame, the binned copy and the trees of the next.
  The system allocator hands them back.
- glibc raises its mmap threshold to the size of each large block freed
  (up to 32 MiB): after a first large job, a column of a few MiB is carved
  from the heap instead of mapped, and a fragmented heap is not trimmed.
  A fixed threshold keeps every large block mapped, so freeing it unmaps
  it.

bench/big_fit.py measures the effect (the worker's peak RSS against a bare
fit in a fresh process).
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

# glibc's mallopt parameter number (malloc.h) and the threshold set: blocks
# of at least this size are mapped, and unmapped when freed. Fixed, it no
# longer follows the largest block freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def return_freed_memory() -> None:
    """Configure this process's allocators to return large freed blocks
    (call once, before the first job)."""
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    if platform.libc_ver()[0] != "glibc":
        return  # musl and others keep no such threshold
    libc = ctypes.CDLL(None)
    if not libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        log.warning("could not fix malloc's mmap threshold: freed memory may stay with the worker")
