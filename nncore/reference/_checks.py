"""The argument checks every module of the reference shares: a name from a table, and
an array of real numbers in its float dtype."""
import numpy as np


def _check_name(kind, name, allowed):
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"{kind} must be one of {allowed}, got {name!r}")


def _as_float_array(name, a):
    """``a`` as an ndarray; integer and boolean input become float64, floats keep their dtype."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return a
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
