"""A fit's summary (ml.FitSummary) as the public fityard.v1.FitMetrics: the
one conversion, made in the worker that fitted, carried by the trainer's
SUCCEEDED event into the job's record and shown as it is by the gateway."""

from __future__ import annotations

from fityard.v1 import datasets_pb2, jobs_pb2

from .labels import to_values


def fit_metrics(summary) -> jobs_pb2.FitMetrics:
    """`summary` is an ml.FitSummary (not imported: ml is the worker's heavy import)."""
    metrics = jobs_pb2.FitMetrics(
        classes=to_values(summary.classes),
        features=[
            datasets_pb2.Column(name=str(name), type=kind)
            for name, kind in zip(summary.features, summary.feature_types, strict=True)
        ],
        n_iter=summary.n_iter,
        fit_seconds=summary.fit_seconds,
        model_size_bytes=summary.model_bytes,
        train_rows=summary.rows,
    )
    held_out = summary.validation
    if held_out is not None:
        metrics.validation_rows = held_out.rows
        metrics.validation_fraction = held_out.fraction
        metrics.validation_seed = held_out.seed
        metrics.validation_accuracy = held_out.accuracy
        metrics.validation_log_loss = held_out.log_loss
    return metrics
