"""services/trainer/memory.py: a worker's freed memory goes back to the
machine instead of waiting in its allocators for the next job."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a fresh process: free a 16 MiB block, then ask for 4 MiB. glibc's own
# policy raises its mmap threshold to the block freed, so the 4 MiB come
# from the heap (not unmapped when freed); a worker's fixed threshold maps
# them. mallinfo2().hblks counts the mapped blocks.
PROBE = """
import ctypes, sys
import numpy as np
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "worker":
    from services.trainer.memory import return_freed_memory
    return_freed_memory()
import pyarrow
big = np.ones(16 << 20, dtype=np.uint8); del big
before = libc.mallinfo2().hblks
column = np.ones(4 << 20, dtype=np.uint8)
print(libc.mallinfo2().hblks - before, pyarrow.default_memory_pool().backend_name)
"""


def _probe(kind: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), out[1]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc policy")
def test_a_worker_maps_large_blocks_after_freeing_a_larger_one():
    assert _probe("plain")[0] == 0  # the policy the worker changes
    assert _probe("worker")[0] == 1


def test_a_workers_arrow_buffers_come_from_the_system_allocator():
    """pyarrow's own pool keeps what it frees: a read table's buffers would
    stay resident through the next job."""
    assert _probe("worker")[1] == "system"
