"""Thread control for the BLAS libraries that run nncore's matrix products.

nncore's kernels call BLAS through SciPy (``scipy.linalg.cython_blas``); NumPy's and
SciPy's wheels each carry their own OpenBLAS with its own thread pool. Both are set
through threadpoolctl, so the two pools never exceed the number asked for. The
kernels themselves start no threads.
"""
from threadpoolctl import threadpool_info, threadpool_limits

from . import _validation


def set_num_threads(n):
    """Use at most ``n`` threads (>= 1) in every BLAS library loaded in this process.

    Returns a threadpoolctl limiter; used as a context manager it restores the
    previous limits on exit::

        with nncore.set_num_threads(1):
            net.fit(X, y)
    """
    n = _validation.check_int(n, "n", 1)
    return threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The largest thread count among the loaded BLAS libraries."""
    counts = [info["num_threads"] for info in threadpool_info()
              if info.get("user_api") == "blas"]
    return max(counts) if counts else 1
