"""Settings and checks for breaking a running stack on purpose, shared by
the fault tests (tests/support/faults.py) and the reliability soak
(bench/soak.py); neither imports the other."""

from __future__ import annotations

from pathlib import Path

from fityard import Job
from services.common.config import SCHEMA, StorageConfig
from services.common.keys import output_prefixes
from services.common.storage import open_store
from services.embedded import EmbeddedStack


def fault_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Settings that make faults quick to see: a short ack deadline,
    frequent sweeps, a scratch root of the test's own, and trainers that do
    not share cores (a redelivered job starts at once, beside the first)."""
    env = SCHEMA.to_env(
        {
            "ack_wait_seconds": 2,
            "core_leases_dir": "",
            "scratch_dir": tmp_path / "scratch",
            "sweep_seconds": 1,
            "stale_upload_seconds": 2,
            "reconcile_seconds": 1,
            # Trainer workers use one thread, so two jobs fit on two cores.
            "trainer_threads": 1,
        }
    )
    env.update(overrides)
    return env


def store_of(stack: EmbeddedStack):
    """The local-directory store of a stack started with the default storage."""
    return open_store(StorageConfig(backend="local", root=stack.data_dir / "objects"))


def stored_outputs(stack: EmbeddedStack, job: Job) -> list[str]:
    """Every output object of any attempt of the job."""
    store = store_of(stack)
    return [key for prefix in output_prefixes("default", job.id) for key in store.list(prefix)]
