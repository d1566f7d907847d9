"""Child processes that do not outlive their parent.

Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, sig)``) asks the kernel
to send ``sig`` to a process when its parent goes away, even when the parent
was SIGKILLed and had no chance to clean up. `fityard up` sets it on every
child it starts (nats-server, scheduler, gateway, trainers), so a killed
`fityard up` leaves nothing behind holding ports or the data directory; the
trainer sets it in its worker process.

Two ways to use it:

- In the parent, as ``subprocess.Popen(..., preexec_fn=pdeathsig_preexec(sig))``:
  it runs in the forked child before ``exec``, and the setting survives
  ``exec`` (except for set-user-ID programs).
- In the child itself, first thing: ``die_with_parent(sig, parent_pid=...)``
  (e.g. a ``multiprocessing`` worker, given its parent's pid as an argument).

Caveats:

- "Parent" means the *thread* that forked the child: the signal fires when
  that thread exits, not only when the whole process does. Start such
  children from the main thread or from one thread that lives as long as they
  should (`EmbeddedStack` forks every child from its own supervising thread,
  which ends only after the children are stopped).
- The parent can die before the child calls prctl; both helpers then compare
  ``getppid()`` with the expected parent and deliver the signal at once.
- Elsewhere than Linux there is no such signal: the helpers do nothing and
  say so in the log (once), and children may outlive a killed parent.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_prctl = None
if sys.platform.startswith("linux"):
    try:
        # Resolved once, here, so that the preexec_fn (which runs between
        # fork and exec, where little is safe) only makes the call.
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
        _prctl.argtypes = [
            ctypes.c_int,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_ulong,
        ]
        _prctl.restype = ctypes.c_int
    except (OSError, AttributeError):  # no libc prctl (unusual libc, sandbox)
        _prctl = None


def supported() -> bool:
    """True where the parent-death signal exists (Linux)."""
    return _prctl is not None


@functools.cache  # once per process
def _warn_unsupported() -> None:
    log.info(
        "no parent-death signal on %s: child processes may outlive a killed parent",
        sys.platform,
    )


def _set(sig: int, parent_pid: int | None) -> int:
    """prctl, then the race check; 0 or an errno. Async-signal-safe enough for
    a preexec_fn: no allocation beyond ctypes' argument conversion, no locks."""
    if _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return ctypes.get_errno() or 1
    if parent_pid is not None and os.getppid() != parent_pid:
        # The parent died before prctl took effect: nobody will signal us.
        os.kill(os.getpid(), int(sig))
    return 0


def die_with_parent(sig: int = signal.SIGTERM, *, parent_pid: int | None = None) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread)
    dies. Call it first thing in a child; pass `parent_pid` (the parent's
    ``os.getpid()``, handed down) to also catch a parent that died already.
    Returns False where unsupported (logged once) or if prctl failed.

    It also works as a ``preexec_fn`` as is (SIGTERM) or through
    ``functools.partial``, but `pdeathsig_preexec` is the better one there:
    it checks for a parent that died meanwhile and never logs after fork."""
    if _prctl is None:
        _warn_unsupported()
        return False
    error = _set(sig, parent_pid)
    if error:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(error))
        return False
    return True


def pdeathsig_preexec(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that makes the child receive
    `sig` when the calling thread (its parent) dies; None where unsupported
    (logged once, here in the parent: logging after fork could deadlock).

    Fork from the main thread or from a thread that outlives the child (see
    the module docstring)."""
    if _prctl is None:
        _warn_unsupported()
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        if _set(sig, parent_pid):
            raise OSError("prctl(PR_SET_PDEATHSIG) failed")

    return preexec
