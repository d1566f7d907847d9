"""Child processes that do not outlive their parent.

Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, sig)``) asks the kernel
to send ``sig`` to a process when its parent goes away, even when the parent
was SIGKILLed and had no chance to clean up. `fityard up` sets it on every
child it starts (nats-server, scheduler, gateway, trainers), so a killed
`fityard up` leaves nothing behind holding ports or the data directory; the
trainer sets it in its worker process.

Two ways to use it:

- In the child itself, first thing: ``die_with_parent(sig, parent_pid=...)``
  (e.g. a ``multiprocessing`` worker, given its parent's pid as an argument).
- For a program that is not ours (nats-server), start it through this
  module: ``python -m services.common.lifecycle SIG PARENT_PID -- PROGRAM
  ARGS...`` sets the signal and then execs the program (the setting
  survives ``exec``, except for set-user-ID programs); see `exec_argv`.

Not as a ``preexec_fn`` of ``subprocess.Popen``: it makes Python run its
at-fork hooks, and grpcio's abort the child ("epoll_wait error: Bad file
descriptor") when another thread is in a gRPC call, so the program never
starts. `fityard up`, which serves the span receiver over gRPC while it
(re)starts nats-server, lost its nats-server that way now and then.

Caveats:

- "Parent" means the *thread* that forked the child: the signal fires when
  that thread exits, not only when the whole process does. Start such
  children from the main thread or from one thread that lives as long as they
  should (`EmbeddedStack` forks every child from its own supervising thread,
  which ends only after the children are stopped).
- The parent can die before the child calls prctl; both ways then compare
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

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_prctl = None
if sys.platform.startswith("linux"):
    try:
        # Resolved once, at import.
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
    """prctl, then the race check; 0 or an errno."""
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
    """
    if _prctl is None:
        _warn_unsupported()
        return False
    error = _set(sig, parent_pid)
    if error:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(error))
        return False
    return True


def exec_argv(argv: list[str], sig: int, parent_pid: int) -> list[str]:
    """The command that runs `argv` with the parent-death signal `sig` set,
    `parent_pid` being the process that starts it (see `main`)."""
    return [
        sys.executable,
        "-m",
        "services.common.lifecycle",
        signal.Signals(sig).name,
        str(parent_pid),
        "--",
        *argv,
    ]


def main(args: list[str]) -> None:
    """``SIG PARENT_PID -- PROGRAM ARGS...``: die with the parent, then
    become PROGRAM (same pid, so the parent's Popen sees it as its child)."""
    name, parent, separator, *argv = args
    if separator != "--" or not argv:
        raise SystemExit("usage: python -m services.common.lifecycle SIG PARENT_PID -- PROGRAM ...")
    die_with_parent(signal.Signals[name], parent_pid=int(parent))
    os.execv(argv[0], argv)  # noqa: S606 - the program our caller named, as a list


if __name__ == "__main__":
    main(sys.argv[1:])
