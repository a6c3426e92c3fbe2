# cython: language_level=3
"""SciPy's BLAS matrix products, handed to the kernels on demand.

The kernels call ``sgemm``/``dgemm`` only for products their own tiled loop does not
take (none, in the AVX-512 build). Importing ``scipy.linalg.cython_blas`` loads all of
``scipy.linalg``, about 29 MiB, so the kernels do not cimport it: they import this
module the first time they may need BLAS and take the two function addresses from
it. The cimport here makes Cython check, at that import, that SciPy's signatures
are the ones declared (including the width of ``blas_int``).
"""
from scipy.linalg.cython_blas cimport sgemm, dgemm

include "_blas_int.pxi"


def gemm_addresses():
    """(address of sgemm, address of dgemm), as integers."""
    return <size_t>sgemm, <size_t>dgemm
