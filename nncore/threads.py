"""Thread control for nncore's matrix products and optimizer passes.

Two kinds of thread pool can run nncore's arithmetic: the OpenMP threads of the
kernels themselves (large matrix products, optimizer passes and batch gathers, when
the package was built with OpenMP), and the BLAS libraries that NumPy's and SciPy's
wheels each carry (OpenBLAS, with its own pthread pool; the kernels call SciPy's for
products that a build hands to BLAS). The kernels never run an OpenMP region and a
BLAS call at the same time, so with a limit of n each part of a training step uses at
most n threads.

``set_num_threads(n)`` limits both, for the whole process. The kernels keep their own
limit and pass it to every parallel region they start, whichever Python thread starts
it: OpenMP's own limit (what threadpoolctl and ``omp_set_num_threads`` set) holds only
in the thread that set it, and a new Python thread would start with all cores. A
limit set that way, or by ``OMP_NUM_THREADS``, still caps the kernels in the threads it
applies to. The BLAS libraries' limits are process-wide already.

By default every pool uses all cores. Networks trained at the same time in several
Python threads (a thread-based grid search) each use that many: give each one core
with ``set_num_threads(1)``.
"""
from __future__ import annotations

import sys

from threadpoolctl import threadpool_info, threadpool_limits

from . import _validation

# The kernels' process-wide thread limit (0: none set), kept here so that a build of
# the kernels imported later starts with it (_kernels.pyx reads it at import).
_limit = 0


def thread_limit() -> int:
    """The kernels' process-wide thread limit set by ``set_num_threads`` (0: none)."""
    return _limit


def _set_kernel_limit(n: int) -> None:
    global _limit
    _limit = n
    for name, module in list(sys.modules.items()):
        if name.startswith("nncore._kernels") and hasattr(module, "set_thread_limit"):
            module.set_thread_limit(n)


class _Limits(threadpool_limits):
    """The limiter ``set_num_threads`` returns: threadpoolctl's, which also sets the
    kernels' own limit and puts it back with the others."""

    def __init__(self, n: int) -> None:
        self._kernel_limit = _limit
        super().__init__(limits=n)
        _set_kernel_limit(n)

    def restore_original_limits(self) -> None:
        super().restore_original_limits()
        _set_kernel_limit(self._kernel_limit)

    unregister = restore_original_limits


def set_num_threads(n: int) -> threadpool_limits:
    """Use at most ``n`` threads (>= 1) in nncore's kernels, from every Python thread,
    and in every BLAS library loaded in this process.

    Returns a threadpoolctl limiter; used as a context manager it restores the
    previous limits on exit::

        with nncore.set_num_threads(1):
            net.fit(X, y)

    The limit is process-wide: a call from another thread meanwhile replaces it.
    """
    n = _validation.check_int(n, "n", 1)
    return _Limits(n)


def get_num_threads() -> int:
    """The most threads nncore's arithmetic uses when called from this thread: the
    kernels' team size or a BLAS pool's thread count, whichever is larger."""
    from ._dispatch import kernels
    counts = [info["num_threads"] for info in threadpool_info()
              if info.get("user_api") == "blas"]
    return max([kernels.team_size()] + counts)
