"""How many threads a fit or predict may use, set in every library at once.

A job given one core must run on one thread in every library it touches,
not only in OpenMP:
- scikit-learn sizes its own work by OpenMP's thread count. Above one, the
  binning of HistGradientBoosting spreads features over a joblib thread
  pool, whose result loop sleeps 10 ms whenever the first feature is not
  done yet: for a small fit that sleep is most of the fit.
- pyarrow (the Parquet read) has a CPU pool of its own, sized by the
  machine's cores; threadpoolctl does not know it. Handing a small file's
  columns to two threads costs more than reading them on one.

threadpoolctl finds only libraries already loaded, so the controller is
made after scikit-learn is imported (`controller()`); one made earlier
would find no OpenMP and limit nothing, silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def controller():
    """A threadpoolctl controller that knows scikit-learn's OpenMP: scanning
    the loaded libraries is slow, so a long-lived process makes it once."""
    from threadpoolctl import ThreadpoolController

    import ml.model  # noqa: F401 - loads scikit-learn (and its OpenMP) first

    return ThreadpoolController()


@contextlib.contextmanager
def limited(threads: int, pools=None) -> Iterator[None]:
    """Run the block on at most `threads` threads in OpenMP, BLAS and
    pyarrow (`pools`: a `controller()` to reuse; else one is made)."""
    import pyarrow

    pools = pools or controller()
    arrow_before = pyarrow.cpu_count()
    pyarrow.set_cpu_count(threads)
    try:
        with pools.limit(limits=threads):
            yield
    finally:
        pyarrow.set_cpu_count(arrow_before)
