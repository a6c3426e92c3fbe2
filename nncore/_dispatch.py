"""Choose the build of the kernels that suits the running CPU.

setup.py compiles ``_kernels.pyx`` up to three times on x86-64: portable
(``_kernels``), AVX2+FMA (``_kernels_avx2``) and AVX-512 (``_kernels_avx512``). This
module imports the best one whose instructions the CPU has, as NumPy's own runtime
CPU detection reports them. ``NNCORE_KERNELS=portable|avx2|avx512`` forces a choice
(for testing each build); a forced build the CPU cannot run is refused.

The package calls the chosen build through ``kernels``, a namespace holding the
build's functions and constants that every module binds once, at import. ``use``
swaps its contents for a block: a private seam through which the tests run each
build through the public API.
"""
import contextlib
import importlib
import importlib.util
import os
import types

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


def available():
    """Names of the builds this CPU can run and this installation holds, best first."""
    return [name for name in supported()
            if importlib.util.find_spec(f"{__package__}.{_MODULES[name]}") is not None]


def build(name):
    """The compiled module of the build ``name`` (``"portable"``, ``"avx2"``,
    ``"avx512"``)."""
    return importlib.import_module("." + _MODULES[name], __package__)


@contextlib.contextmanager
def use(name):
    """Run nncore on the build ``name`` inside the block; yield its module.

    Private, for tests. It switches every thread at once, so it must not wrap code
    that runs while other threads call nncore.
    """
    global variant
    if name not in available():
        raise ValueError(f"build {name!r} is not available here; available: "
                         f"{available()}")
    saved_variant, saved = variant, dict(vars(kernels))
    module = build(name)
    vars(kernels).update(vars(module))
    variant = name
    try:
        yield module
    finally:
        vars(kernels).clear()
        vars(kernels).update(saved)
        variant = saved_variant


_configure_openmp()
variant, _module = _load()
kernels = types.ModuleType(_module.__name__)
vars(kernels).update(vars(_module))
del _module
