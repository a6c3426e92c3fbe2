"""What the running CPU offers the kernels: its instruction sets and its cache sizes.

``features()`` tells ``_dispatch`` which build of the kernels the CPU can run;
``cache_sizes()`` gives each build the sizes its matrix product blocks for
(``_kernels.set_blocking``, called when the build is imported; the rule is in
``nncore/csrc/blocking.h``).
"""
import importlib
import os
import re

_SYSFS = "/sys/devices/system/cpu/cpu0/cache"
_LEVELS = {"1": "l1d", "2": "l2", "3": "l3"}


def features():
    """The CPU features NumPy's runtime detection reports, as a dict name -> bool."""
    for path in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return importlib.import_module(path).__cpu_features__
        except (ImportError, AttributeError):
            continue
    return {}


def _read(*path):
    with open(os.path.join(*path)) as f:
        return f.read().strip()


def _parse_size(text):
    """Bytes of a sysfs cache size such as ``48K``, ``2048K`` or ``32M``."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", text)
    if not match:
        return 0
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


def cache_sizes(root=_SYSFS):
    """The L1 data, L2 and L3 cache sizes of the first CPU, in bytes.

    Parameters
    ----------
    root : str
        The directory Linux describes the caches in (one ``index*`` entry per cache).

    Returns
    -------
    dict
        ``{"l1d": int, "l2": int, "l3": int}``, 0 for a size the operating system does
        not report (the kernels then assume the fallback sizes of
        ``nncore/csrc/blocking.h``).
    """
    sizes = dict.fromkeys(_LEVELS.values(), 0)
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return sizes
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            level, kind, size = (_read(root, entry, key) for key in ("level", "type", "size"))
        except OSError:
            continue
        size = _parse_size(size)
        key = _LEVELS.get(level)
        if key and kind in ("Data", "Unified") and size > 0 and not sizes[key]:
            sizes[key] = size
    return sizes

