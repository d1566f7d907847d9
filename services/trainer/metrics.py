"""The trainer's metrics: is it busy, and how many cores it holds.

Read at scrape time: busy while its worker runs a job (a job waiting for a
core is not running yet); the cores it leases (services/trainer/cores.py),
which are its job's threads (a small job may run on none of its own). Summed over trainers they give busy/idle trainers and the cores
in use (the Grafana dashboard's "Trainers" panel).
"""

from __future__ import annotations

from prometheus_client import Gauge

TRAINER_BUSY = Gauge(
    "fityard_trainer_busy", "1 while this trainer runs a job, else 0.", ["trainer"]
)
CORES_LEASED = Gauge(
    "fityard_trainer_cores_leased",
    "Cores this trainer holds: its running job's threads (0 when idle).",
    ["trainer"],
)


def watch(trainer, cores) -> None:
    """Report `trainer` (services/trainer/runner.py: Trainer) and `cores`
    (its CoreLeases or AllCores)."""
    TRAINER_BUSY.labels(trainer.trainer_id).set_function(lambda: float(trainer.running))
    CORES_LEASED.labels(trainer.trainer_id).set_function(lambda: float(cores.held))
