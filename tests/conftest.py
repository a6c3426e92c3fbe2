"""Which nncore the tests import, and pytest's hooks and fixtures.

Which nncore: the source tree's, when its extension has been built in place
(``python setup.py build_ext --inplace``); otherwise the installed one (``pip install
".[test]"``), so that a source tree without a built extension does not shadow an
installed package (``python -m pytest`` puts the working directory first on sys.path).

Plain helper functions live in ``_helpers.py``; test modules import them from there.

Tests that take seconds (subprocesses, memory limits, fuzzing, GIL probes) are marked
``slow``. Every run includes them, CI's too; ``python -m pytest -m "not slow"`` leaves
them out for a quick local run.
"""
import os
import sys
from pathlib import Path

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
    sources = [p for pattern in ("*.pyx", "*.pxd", "*.pxi", "*.h", "*.tp")
               for p in (ROOT / "nncore").rglob(pattern)]
    if _EXTENSIONS and sources:
        newest = max(sources, key=lambda p: p.stat().st_mtime)
        if min(e.stat().st_mtime for e in _EXTENSIONS) < newest.stat().st_mtime:
            name = newest.relative_to(ROOT).as_posix()
            lines.append(f"WARNING: {name} is newer than the built "
                         "extension; rebuild with: python setup.py build_ext --inplace")
    return lines
