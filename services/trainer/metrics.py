"""The trainer's metrics: is it busy, and how many cores it holds.

Read from its core leases at scrape time (services/trainer/cores.py): a
trainer holds at least one core exactly while it runs a job (a job waiting
for a core is not running yet), and the cores it holds are the threads its
job uses. Summed over trainers they give busy/idle trainers and the cores
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


def watch(trainer_id: str, cores) -> None:
    """Report `cores` (a CoreLeases or AllCores) of trainer `trainer_id`."""
    TRAINER_BUSY.labels(trainer_id).set_function(lambda: float(cores.held > 0))
    CORES_LEASED.labels(trainer_id).set_function(lambda: float(cores.held))
