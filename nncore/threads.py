"""Thread control for nncore's matrix products and optimizer passes.

Two kinds of thread pool can run nncore's arithmetic. The kernels' own OpenMP pool
runs large matrix products and optimizer passes, in a build with OpenMP. The BLAS
libraries that NumPy's and SciPy's wheels each carry (OpenBLAS) have their own
pthread pools; the kernels call SciPy's for the products a build hands to BLAS.
threadpoolctl sets both. The kernels never run an OpenMP region and a BLAS call at
the same time, so with a limit of n each part of a training step uses at most n
threads and the cores are never oversubscribed.

By default every pool uses all cores. Two networks trained at the same time in two
Python threads each use that many: limit them (``set_num_threads(1)``) to avoid
oversubscription.
"""
from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from . import _validation

_APIS = ("blas", "openmp")


def set_num_threads(n: int) -> threadpool_limits:
    """Use at most ``n`` threads (>= 1) in nncore's kernels and every BLAS library
    loaded in this process.

    Returns a threadpoolctl limiter; used as a context manager it restores the
    previous limits on exit::

        with nncore.set_num_threads(1):
            net.fit(X, y)
    """
    n = _validation.check_int(n, "n", 1)
    return threadpool_limits(limits=n)


def get_num_threads() -> int:
    """The largest thread count among the loaded BLAS and OpenMP thread pools."""
    counts = [info["num_threads"] for info in threadpool_info()
              if info.get("user_api") in _APIS]
    return max(counts) if counts else 1
