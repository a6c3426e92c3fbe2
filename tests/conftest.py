"""Shared helpers for nncore's tests, and which nncore they import.

Which nncore: the source tree's, when its extension has been built in place
(``python setup.py build_ext --inplace``); otherwise the installed one (``pip install
".[test]"``), so that a source tree without a built extension does not shadow an
installed package (``python -m pytest`` puts the working directory first on sys.path).

The helpers use NumPy only, so that tests which do not need the kernels (for example
``test_reference.py``) still run while the extension is not built. Test modules import
them with ``from conftest import ...``.
"""
import os
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_EXTENSIONS = sorted((ROOT / "nncore").glob("_kernels*.so")) + \
    sorted((ROOT / "nncore").glob("_kernels*.pyd"))

if _EXTENSIONS:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
else:
    sys.path[:] = [p for p in sys.path
                   if Path(p or os.curdir).resolve() != ROOT]


def pytest_report_header(config):
    lines = []
    try:
        import nncore
        lines.append(f"nncore {nncore.__version__} from {Path(nncore.__file__).parent}")
    except Exception as exc:  # the header must not hide the real error, shown later
        lines.append(f"nncore does not import: {exc!r}")
    sources = [p for pattern in ("*.pyx", "*.pxd", "*.pxi", "*.h", "csrc/*.h")
               for p in (ROOT / "nncore").glob(pattern)]
    if _EXTENSIONS and sources:
        newest = max(sources, key=lambda p: p.stat().st_mtime)
        if min(e.stat().st_mtime for e in _EXTENSIONS) < newest.stat().st_mtime:
            lines.append(f"WARNING: nncore/{newest.name} is newer than the built "
                         "extension; rebuild with: python setup.py build_ext --inplace")
    return lines


# ---------------------------------------------------------------------------- data
#: Every loss, with cross_entropy twice: integer labels and probability rows.
LOSS_CASES = ("mse", "binary_cross_entropy", "cross_entropy", "cross_entropy_probs",
              "gaussian_nll")


def loss_name(case):
    """The nncore loss name of a case of LOSS_CASES."""
    return "cross_entropy" if case.startswith("cross_entropy") else case


def output_width(case, k):
    """Width of the last layer for ``k`` targets (gaussian_nll: k means + k log vars)."""
    return 2 * k if case == "gaussian_nll" else k


def make_targets(case, n, k, rng):
    """Targets for ``n`` rows and ``k`` target columns (classes for cross_entropy).

    mse and gaussian_nll: normal values (n, k); binary_cross_entropy: uniform
    probabilities in [0, 1] (n, k); cross_entropy: integer labels (n,) covering the
    classes; cross_entropy_probs: Dirichlet probability rows (n, k).
    """
    if case in ("mse", "gaussian_nll"):
        return rng.normal(size=(n, k))
    if case == "binary_cross_entropy":
        return rng.uniform(size=(n, k))
    if case == "cross_entropy":
        return rng.permutation(np.arange(n) % k)
    if case == "cross_entropy_probs":
        return rng.dirichlet(np.ones(k), size=n)
    raise ValueError(f"unknown loss case {case!r}")


def make_data(case, n, n_in, k, rng):
    """``(X, y)``: standard normal X (n, n_in) and targets as in :func:`make_targets`."""
    X = rng.normal(size=(n, n_in))
    return X, make_targets(case, n, k, rng)


def seed_of(*parts):
    """A stable seed from test parameters (``hash`` of a str changes per process)."""
    return zlib.crc32(repr(parts).encode())


def make_sample_weight(n, rng):
    """Positive weights, uneven enough that a wrong normalisation shows."""
    return rng.uniform(0.1, 3.0, size=n)


# ---------------------------------------------------------------------- comparisons
def flat(arrays):
    """One float64 vector from a list of arrays."""
    return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays])


def rel_err(a, b):
    """Norm-based relative error ``||a - b|| / ||b||`` over lists of arrays (or arrays
    or scalars); 0 when both are zero."""
    if isinstance(a, (list, tuple)):
        a, b = flat(a), flat(b)
    a = np.ravel(np.asarray(a, dtype=np.float64))
    b = np.ravel(np.asarray(b, dtype=np.float64))
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.linalg.norm(b)
    diff = np.linalg.norm(a - b)
    if scale == 0:
        return 0.0 if diff == 0 else np.inf
    return diff / scale


def copy_params(net):
    """Independent float64 copies of ``net.params`` (for the reference)."""
    return [np.array(p, dtype=np.float64) for p in net.params]


def central_differences(f, arrays, h=1e-6):
    """``d f / d arrays[i]`` entry by entry, ``(f(x + h) - f(x - h)) / 2h``, perturbing
    ``arrays`` in place (and restoring them)."""
    grads = []
    for a in arrays:
        g = np.zeros(a.shape)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            f_plus = f()
            a[idx] = old - h
            f_minus = f()
            a[idx] = old
            g[idx] = (f_plus - f_minus) / (2 * h)
        grads.append(g)
    return grads
