"""Allocation with a clear MemoryError, refused before it is made when too large.

With memory overcommit, NumPy can get a block larger than the machine's physical
memory, and the process is killed later, when the pages are touched. So a request is
checked against the physical memory first, and a failure says what was asked for and
how large it was.
"""
import math
import os

import numpy as np


def format_bytes(size):
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024


def physical_memory():
    """Bytes of physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_note(size):
    """', more than the N GiB of physical memory' when ``size`` bytes is."""
    total = physical_memory()
    if total is not None and size > total:
        return f", more than the {format_bytes(total)} of physical memory"
    return ""


def check_fits_in_memory(size):
    """MemoryError (message added by the caller) for more bytes than the machine
    has. Asked before allocating or copying."""
    total = physical_memory()
    if total is not None and size > total:
        raise MemoryError


def allocate(shape, dtype, what):
    """``np.zeros(shape, dtype)``, or a MemoryError that says what and how large.

    Parameters
    ----------
    shape : tuple of int
    dtype : NumPy dtype or scalar type
    what : str
        What the block is for, as the message names it ("the gradients").
    """
    size = math.prod(shape) * np.dtype(dtype).itemsize
    try:
        check_fits_in_memory(size)
        return np.zeros(shape, dtype=dtype)
    except (MemoryError, ValueError):   # ValueError: NumPy's "array is too big"
        raise MemoryError(f"cannot allocate {format_bytes(size)} for "
                          f"{what} (shape {shape}, {np.dtype(dtype).name})"
                          f"{memory_note(size)}") from None
