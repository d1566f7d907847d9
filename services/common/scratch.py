"""Housekeeping that keeps a killed process from leaking disk: per-process
scratch directories, and the periodic sweep of scratch and abandoned uploads.

Scratch directories
-------------------
A process that may be killed (the trainer's worker: cancellation, out of
memory) cannot remove its temp files. So it makes them inside *its own*
scratch directory, whose name says which process owns it:

    <root>/pid-<pid>-start-<starttime>-ns-<pid namespace>

- `root` is `$FITYARD_SCRATCH_DIR`, else `<system temp dir>/fityard-scratch-<uid>`
  (per user: a directory with a fixed name in a shared /tmp must belong to
  whoever uses it; the default root is refused if someone else owns it or
  it is a symlink).
- `starttime` is the process's start time (field 22 of /proc/<pid>/stat,
  clock ticks since boot): a pid reused by a later process has another start
  time, so a dead owner is never mistaken for a live one.
- `ns` is the inode of the pid namespace (/proc/self/ns/pid): pids mean
  something only within one namespace (container), so a sweeper leaves the
  directories of other namespaces alone, should a root be shared between
  containers.

`sweep_dead_scratch()` removes the directories whose owner is gone (no such
process, a zombie, or the pid now belongs to a process started later) and
never touches a live owner's. Elsewhere than Linux (no /proc) the start time
and namespace are 0 and liveness is `kill(pid, 0)`: pid reuse is not guarded.

    from services.common.scratch import scratch_dir
    with tempfile.TemporaryDirectory(prefix=f"fityard-{job_id}-", dir=scratch_dir()) as tmp:
        with store.local_copy(key, dir=scratch_dir()) as path:
            ...

Call `scratch_dir()` each time rather than keeping its result: it is cheap
(two mkdirs that usually exist) and re-creates the directory if something
removed it meanwhile (systemd-tmpfiles ages out idle /tmp entries).

Periodic sweep
--------------
`sweep_periodically(store, every=..., older_than=..., stop=...)` runs, at
once and then every `every` seconds until `stop` is set (or the task is
cancelled), `store.sweep_incomplete(older_than)` (abandoned uploads, see
storage/base.py) and `sweep_dead_scratch()`, in a thread, logging what it
removed. A failing sweep is logged and retried next period; it never ends
the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .config import SCHEMA
from .storage import DEFAULT_STALE_UPLOAD_SECONDS, ObjectStore

log = logging.getLogger(__name__)

SCRATCH_DIR_ENV = SCHEMA.env("scratch_dir")
DEFAULT_SWEEP_SECONDS = 3600.0

_NAME = re.compile(r"^pid-(\d+)-start-(\d+)-ns-(\d+)$")
_REMOVING = ".removing-"  # a dead owner's directory while it is being removed


# -- processes -------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; None if there is no such
    process. The command name (field 2) may hold spaces and parentheses, so
    split after its last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data.rpartition(")")[2].split()


def _has_proc() -> bool:
    return os.path.isdir("/proc/self")


def process_start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot; 0 without /proc), None if
    there is no such process."""
    if not _has_proc():
        return 0 if _alive_by_signal(pid) else None
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22


def _pid_namespace() -> int:
    """The inode of this process's pid namespace; 0 without /proc."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _alive_by_signal(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


def owner_alive(pid: int, start: int) -> bool:
    """True if the process `pid` that started at `start` is still running
    (a zombie is not: it has ended, only its exit status is left)."""
    if not _has_proc():
        return _alive_by_signal(pid)
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == start


# -- scratch directories -------------------------------------------------------------------


@dataclass(frozen=True)
class ScratchOwner:
    pid: int
    start: int
    namespace: int

    @property
    def name(self) -> str:
        return f"pid-{self.pid}-start-{self.start}-ns-{self.namespace}"

    @classmethod
    def parse(cls, name: str) -> ScratchOwner | None:
        m = _NAME.match(name)
        return cls(int(m[1]), int(m[2]), int(m[3])) if m else None


def scratch_root(root: str | os.PathLike | None = None) -> Path:
    """`root`, else $FITYARD_SCRATCH_DIR, else `<tempdir>/fityard-scratch-<uid>`."""
    if root:
        return Path(root)
    configured = os.environ.get(SCRATCH_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"fityard-scratch-{os.getuid()}"


def _ensure_root(root: str | os.PathLike | None) -> Path:
    path = scratch_root(root)
    default = not root and not os.environ.get(SCRATCH_DIR_ENV)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if default:
        # A fixed name in a shared temp dir: make sure nobody else planted it.
        info = os.lstat(path)
        if (
            stat.S_ISLNK(info.st_mode)
            or not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.getuid()
        ):
            raise PermissionError(
                f"scratch directory {path} is not a directory of this user's (uid {os.getuid()}); "
                f"remove it or set {SCRATCH_DIR_ENV} to a directory of your own"
            )
    return path


def scratch_dir(pid: int | None = None, root: str | os.PathLike | None = None) -> Path:
    """The scratch directory of process `pid` (default: this process),
    created (mode 0700) if missing, under `root` (see scratch_root).

    Make temp files inside it (`tempfile.TemporaryDirectory(dir=...)`,
    `store.local_copy(key, dir=...)`) and remove them as usual; whatever the
    process leaves when it is killed goes at the next `sweep_dead_scratch`.
    A parent may create its child's directory by passing the child's pid.
    Raises ProcessLookupError if `pid` is not a running process."""
    pid = os.getpid() if pid is None else pid
    start = process_start_time(pid)
    if start is None:
        raise ProcessLookupError(f"no process {pid}: it cannot own a scratch directory")
    path = _ensure_root(root) / ScratchOwner(pid, start, _pid_namespace()).name
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def sweep_dead_scratch(root: str | os.PathLike | None = None) -> int:
    """Remove the scratch directories under `root` whose owner has ended;
    return how many. Live owners' directories, other pid namespaces'
    directories and anything not named like a scratch directory are left
    alone. Safe to run from several processes at once: each directory is
    first renamed (atomically, so only one sweeper gets it) and then removed.
    """
    path = scratch_root(root)
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return 0
    here = _pid_namespace()
    removed = 0
    for entry in entries:
        if entry.name.startswith(_REMOVING):
            # A sweeper died while removing it (or is removing it now): finish.
            shutil.rmtree(entry.path, ignore_errors=True)
            continue
        owner = ScratchOwner.parse(entry.name)
        if owner is None or owner.namespace != here or not entry.is_dir(follow_symlinks=False):
            continue
        if owner_alive(owner.pid, owner.start):
            continue
        doomed = os.path.join(path, f"{_REMOVING}{uuid.uuid4().hex}")
        try:
            os.rename(entry.path, doomed)
        except FileNotFoundError:
            continue  # another sweeper took it
        shutil.rmtree(doomed, ignore_errors=True)
        removed += 1
    return removed


# -- the periodic sweep -------------------------------------------------------------------


@dataclass(frozen=True)
class Swept:
    """What one sweep removed."""

    uploads: int = 0  # abandoned uploads (temp files or S3 multipart uploads)
    scratch_dirs: int = 0  # scratch directories of ended processes


def sweep_once(
    store: ObjectStore | None,
    older_than: float = DEFAULT_STALE_UPLOAD_SECONDS,
    scratch_root: str | os.PathLike | None = None,
    scratch: bool = True,
) -> Swept:
    """One sweep, blocking: the store's abandoned uploads (skipped if `store`
    is None) and, if `scratch`, the dead processes' scratch directories."""
    uploads = store.sweep_incomplete(older_than) if store is not None else 0
    dirs = sweep_dead_scratch(scratch_root) if scratch else 0
    return Swept(uploads, dirs)


async def sweep_periodically(
    store: ObjectStore | None,
    *,
    every: float = DEFAULT_SWEEP_SECONDS,
    older_than: float = DEFAULT_STALE_UPLOAD_SECONDS,
    stop: asyncio.Event | None = None,
    scratch_root: str | os.PathLike | None = None,
    scratch: bool = True,
) -> None:
    """Sweep now, then every `every` seconds, until `stop` is set or the task
    is cancelled (see sweep_once for what is swept; runs in a thread).
    Errors are logged and the next period tries again.

        stop = asyncio.Event()
        sweeper = asyncio.create_task(sweep_periodically(
            store, every=config.sweep_seconds, older_than=config.stale_upload_seconds,
            stop=stop, scratch_root=config.scratch_dir or None))
        ...
        stop.set(); await sweeper
    """
    if not every > 0:
        raise ValueError(f"every must be a number of seconds > 0, not {every!r}")
    if not older_than >= 0:
        raise ValueError(f"older_than must be a number of seconds >= 0, not {older_than!r}")
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            swept = await asyncio.to_thread(sweep_once, store, older_than, scratch_root, scratch)
        except Exception:  # housekeeping must not take the service down
            log.warning("sweep failed; trying again in %g s", every, exc_info=True)
        else:
            if swept.uploads or swept.scratch_dirs:
                log.info(
                    "swept %d abandoned upload(s) (no activity for %g s) and %d scratch dir(s) of ended processes",
                    swept.uploads,
                    older_than,
                    swept.scratch_dirs,
                )
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass
