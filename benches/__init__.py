"""nncore's benchmarks, run from a clone: ``python -m benches --help``.

Not part of the installed package. Layout:

- ``__main__``: the command line; ``SUBCOMMANDS`` maps each subcommand to its module.
- one module per subcommand (``train``, ``predict``, ``busy``, ``threads``,
  ``epoch_overhead``, ``fit_loop``, ``ceiling``, ``tune_gemm``, ``sklearn_compare``),
  each with ``HELP``, ``add_arguments(parser)``, ``run(args) -> dict`` and
  ``markdown(results) -> str``.
- ``peers/``: one module per framework that trains or predicts (nncore, the NumPy
  reference, PyTorch, JAX, scikit-learn); each imports its framework lazily.
- ``harness``: worker processes (pinned, thread-limited), timing, the load meter.
- ``configs``: the four benchmark networks, their data and initial weights.
- ``machine``: the CPU, its caches and the library versions every report records.
- ``report``: Markdown helpers, the targets of ``targets.toml``, the results files.
- ``test_bench_*.py``: pytest-benchmark suites over the same peers (``pytest benches``).

Which nncore: the clone's own, when its extension is built in place (``python setup.py
build_ext --inplace``); otherwise the installed one (``pip install .``), so that an
unbuilt ``nncore/`` next to this directory does not shadow it. Importing this package
sets that up, in the command, in every worker process and under pytest alike.
"""
import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _InstalledNncore(importlib.abc.MetaPathFinder):
    """Finds ``nncore`` on sys.path without the clone's top directory.

    A finder rather than a change to sys.path, because ``python -m`` and pytest put
    that directory back at the front of sys.path whenever they import from it.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "nncore":
            return None
        others = [p for p in sys.path if Path(p or os.curdir).resolve() != ROOT]
        return importlib.machinery.PathFinder.find_spec(name, others)


def _built_in_place():
    source = ROOT / "nncore"
    return any(source.glob("_kernels*.so")) or any(source.glob("_kernels*.pyd"))


if (ROOT / "nncore").is_dir() and not _built_in_place():
    sys.meta_path.insert(0, _InstalledNncore())
