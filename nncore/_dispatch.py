"""Choose the build of the kernels that suits the running CPU.

setup.py compiles ``_kernels.pyx`` up to three times on x86-64: portable
(``_kernels``), AVX2+FMA (``_kernels_avx2``) and AVX-512 (``_kernels_avx512``). This
module imports the best one whose instructions the CPU has, as NumPy's own runtime
CPU detection reports them. ``NNCORE_KERNELS=portable|avx2|avx512`` forces a choice
(for testing each build); a forced build the CPU cannot run is refused.
"""
import importlib
import os

from . import _cpu

_REQUIRES = {
    "avx512": ("AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512CD", "AVX2", "FMA3"),
    "avx2": ("AVX2", "FMA3"),
    "portable": (),
}
_MODULES = {"avx512": "_kernels_avx512", "avx2": "_kernels_avx2", "portable": "_kernels"}


def supported():
    """Names of the builds this CPU can run, best first."""
    features = _cpu.features()
    return [name for name, needs in _REQUIRES.items()
            if all(features.get(f, False) for f in needs)]


def _configure_openmp():
    """Keep OpenMP's idle threads awake between the products of a training step.

    GNU OpenMP (libgomp, which the kernels link when built with OpenMP) reads
    GOMP_SPINCOUNT when it is loaded, i.e. when the kernels are imported. Unset, its
    idle threads fall asleep almost at once (libgomp throttles spinning whenever it
    counts more threads than free CPUs), and waking them for each of the products of
    a step costs more than the products save: two threads then train the medium
    benchmark network several times slower than one (benches/). A user's own setting
    wins; a libgomp already loaded by another package keeps its own.
    """
    os.environ.setdefault("GOMP_SPINCOUNT", "1000000")


def _load():
    forced = os.environ.get("NNCORE_KERNELS", "").strip().lower()
    if forced:
        if forced not in _MODULES:
            raise ImportError(f"NNCORE_KERNELS must be one of {sorted(_MODULES)}; "
                              f"got {forced!r}")
        if forced not in supported():
            raise ImportError(f"NNCORE_KERNELS={forced}: this CPU lacks the "
                              "instructions that build needs")
        return forced, importlib.import_module("." + _MODULES[forced], __package__)
    for name in supported():
        try:
            return name, importlib.import_module("." + _MODULES[name], __package__)
        except ImportError:   # not built here (non-x86, NNCORE_NATIVE=1 builds)
            continue
    here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        f"nncore's compiled kernels are missing in {here}. If that is a source tree "
        "(a clone), Python found it before the installed package: run from another "
        "directory, or build in place with `python setup.py build_ext --inplace`. "
        "Otherwise install the package with `pip install .`.")


_configure_openmp()
variant, kernels = _load()
