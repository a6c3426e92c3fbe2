"""Argument checking at the Python boundary.

The kernels run without bounds checks and without the GIL, so every shape, dtype and
value they trust is checked here first. Each failure is a ``TypeError`` (wrong kind of
thing) or ``ValueError`` (right kind, wrong value) whose message names the argument,
what was expected and what was given.
"""
import math
import numbers

import numpy as np

from ._memory import check_fits_in_memory, format_bytes, memory_note

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype):
    """Return the NumPy scalar type for ``"float32"`` or ``"float64"``.

    NumPy dtypes and scalar types for those two are accepted too.
    """
    if dtype is None:   # np.dtype(None) would quietly mean float64
        raise TypeError("dtype must be 'float32' or 'float64'; got None")
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(
                f"dtype must be 'float32' or 'float64'; got {dtype!r}")
        return DTYPES[dtype]
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"dtype must be 'float32' or 'float64'; got {dtype!r}") from None
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {resolved}")
    return resolved.type


# The kernels hand layer widths and batch sizes to BLAS as 32-bit integers (SciPy's
# LP64 BLAS; nncore/_blas_int.pxi), so none may exceed this.
BLAS_MAX = 2**31 - 1


def check_int(value, name, minimum, maximum=None):
    """An integer (not a bool, not a float) in [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} "
                        f"of type {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in the interval given by ``low``/``high``.

    ``low_open``/``high_open`` make that end of the interval exclusive.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r} "
                        f"of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + \
                   (")" if high_open or high is None else "]")
        raise ValueError(f"{name} must be in {interval}; got {value}")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def as_array(data, name):
    """``np.asarray(data)`` that refuses object, string, complex and other
    non-numeric data with a ``TypeError`` naming ``name``."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:   # ragged lists and the like
        raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        names = {"c": "complex", "O": "object", "U": "string", "S": "bytes",
                 "M": "datetime", "m": "timedelta", "V": "structured"}
        what = names.get(kind, str(arr.dtype))
        raise TypeError(f"{name} must hold real numbers (bool, int or float); "
                        f"got an array of {what} dtype {arr.dtype}")
    return arr


# The unsigned integer of each float's width: _all_finite tests the floats' bits.
_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _all_finite(arr, chunk=1 << 18):
    """np.isfinite(arr).all(). A C-contiguous, native float32 or float64 array is
    tested by the kernels, on its bits, without a temporary; any other a chunk of rows
    at a time, so that the boolean temporary stays small (about 256 KiB) and checking a
    large X does not raise peak memory."""
    if arr.dtype in _BITS and arr.dtype.isnative and arr.flags.c_contiguous:
        from ._dispatch import kernels
        return kernels.all_finite_bits(arr.reshape(-1).view(_BITS[arr.dtype]))
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    rows = max(1, chunk // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], rows):
        if not np.isfinite(flat[start:start + rows]).all():
            return False
    return True


def _ensure_finite(arr, name, original=None):
    """ValueError naming the first NaN or inf of ``arr``; ``original`` is the array
    before conversion, to tell an overflow in the conversion from a bad value."""
    if arr.dtype.kind == "f" and not _all_finite(arr):
        bad = tuple(np.argwhere(~np.isfinite(arr))[0])
        where = ", ".join(str(int(i)) for i in bad)
        if original is not None and original.shape == arr.shape and \
                original.dtype.kind in "biuf" and np.isfinite(original[bad]):
            raise ValueError(f"{name} holds {original[bad]} at index ({where}), which "
                             f"overflows {arr.dtype.name}: scale {name}, or use a "
                             "float64 network")
        raise ValueError(f"{name} must be finite; it holds {arr[bad]} at "
                         f"index ({where})")


def to_contiguous(arr, dtype, name):
    """C-contiguous, native-endian copy (or the array itself when it already is one)."""
    size = arr.size * np.dtype(dtype).itemsize
    try:
        if arr.dtype != dtype or not arr.flags.c_contiguous:   # a copy is needed
            check_fits_in_memory(size)
        with np.errstate(over="ignore"):   # overflow is reported by _ensure_finite
            return np.ascontiguousarray(arr, dtype=dtype)
    except (MemoryError, ValueError):   # ValueError: NumPy's "array is too big"
        raise MemoryError(
            f"cannot convert {name} of shape {arr.shape} to {np.dtype(dtype).name}: "
            f"that needs {format_bytes(size)}{memory_note(size)}") from None


def check_X(X, n_features, dtype, name="X"):
    """X as a C-contiguous (n_samples, n_features) array of ``dtype``, checked finite."""
    arr = as_array(X, name)
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D of shape (n_samples, {n_features}); "
                         f"got {arr.ndim}-D shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}; need at least one sample")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the first layer "
                         f"expects {n_features}: shape {arr.shape}")
    converted = to_contiguous(arr, dtype, name)
    _ensure_finite(converted, name, arr)
    return converted


def check_sample_weight(sample_weight, n_samples, dtype):
    """None, or a non-negative, finite (n_samples,) array with a positive sum."""
    if sample_weight is None:
        return None
    arr = as_array(sample_weight, "sample_weight")
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), one weight per "
                         f"sample; got shape {arr.shape}")
    converted = to_contiguous(arr, dtype, "sample_weight")
    _ensure_finite(converted, "sample_weight", arr)
    arr = converted
    if (arr < 0).any():
        raise ValueError(f"sample_weight must be >= 0; got {arr.min()} at index "
                         f"{int(np.argmin(arr))}")
    if not arr.sum() > 0:
        raise ValueError("sample_weight must not be all zero: the weighted mean loss "
                         "would be undefined")
    return arr


def check_float_targets(y, n_samples, width, dtype, name="y"):
    """(n_samples, width) float targets; a 1-D y is accepted when width is 1."""
    arr = as_array(y, name)
    if arr.ndim == 1 and width == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n_samples or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape ({n_samples}, {width}) to match X and "
                         f"the network's output; got shape {arr.shape}")
    converted = to_contiguous(arr, dtype, name)
    _ensure_finite(converted, name, arr)
    return converted


def check_labels(y, n_samples, n_classes, name="y"):
    """(n_samples,) integer class labels in [0, n_classes), as ``np.intp``.

    Integral floats (3.0) and booleans are accepted; fractional values are not.
    """
    arr = as_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},) of class labels to "
                         f"match X; got shape {arr.shape}")
    if arr.dtype.kind == "f":
        _ensure_finite(arr, name)
        if (arr != np.round(arr)).any():
            bad = int(np.argmax(arr != np.round(arr)))
            raise ValueError(f"{name} holds class labels, which must be whole numbers; "
                             f"got {arr[bad]} at index {bad}")
    if arr.min() < 0 or arr.max() >= n_classes:
        bad = int(np.argmax((arr < 0) | (arr >= n_classes)))
        raise ValueError(f"{name} holds class labels, which must be in "
                         f"[0, {n_classes - 1}] for an output of width {n_classes}; "
                         f"got {arr[bad]} at index {bad}")
    return np.ascontiguousarray(arr, dtype=np.intp)
