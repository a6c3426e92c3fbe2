"""Shared fixtures of the pytest-benchmark suites: ``pytest benches`` from the clone.

The suites time one training epoch (``test_bench_training.py``) and one ``predict``
call (``test_bench_predict.py``) for the four benchmark networks x {float32, float64}
x {1, 2 threads}, all peers of one case in one pytest-benchmark group, in this one
process. The NumPy reference runs beside nncore in every group; PyTorch, JAX and
scikit-learn run where installed (``pip install ".[bench]"``) and are skipped with a
message otherwise. ``NNCORE_BENCH_SCALE`` multiplies the rows, ``NNCORE_BENCH_ROUNDS``
sets the timed rounds (5). For the side-by-side tables with every measurement in a
fresh, pinned process, use ``python -m benches train``.
"""
import pytest

from .bench_helpers import suite_rows
from .configs import CONFIGS, init_params, make_data


@pytest.fixture(scope="session")
def dataset():
    """``dataset(config_name, dtype) -> (cfg, X, y, params)``, built once per session."""
    cache = {}

    def get(name, dtype):
        if (name, dtype) not in cache:
            cfg = CONFIGS[name]
            X, y = make_data(cfg, suite_rows(name), dtype, seed=0)
            cache[name, dtype] = (cfg, X, y, init_params(cfg, dtype, seed=0))
        return cache[name, dtype]

    return get
