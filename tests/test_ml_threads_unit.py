"""ml/threads.py: one core means one thread in every library a job uses."""

from __future__ import annotations

import pyarrow
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from ml import threads


def test_a_job_on_one_core_runs_every_library_on_one_thread():
    pools = threads.controller()
    before = (pyarrow.cpu_count(), _openmp_effective_n_threads())
    with threads.limited(1, pools):
        # scikit-learn's own thread count (HistGradientBoosting's binning
        # uses a thread pool above 1) and the Parquet reader's pool
        assert _openmp_effective_n_threads() == 1
        assert pyarrow.cpu_count() == 1
        assert all(pool["num_threads"] == 1 for pool in pools.info())
    assert (pyarrow.cpu_count(), _openmp_effective_n_threads()) == before


def test_the_controller_knows_scikit_learns_openmp():
    """Made before scikit-learn is loaded, a controller limits nothing."""
    assert "openmp" in {pool["user_api"] for pool in threads.controller().info()}
