# cython: language_level=3
# The kernels of _kernels.pyx compiled for x86-64 CPUs with AVX-512 (x86-64-v4).
# setup.py gives this module its instruction-set flags; nncore/_dispatch.py imports it
# only on a CPU that has them. One source: _kernels.pyx and the parts it includes.
include "_kernels.pyx"
