"""Shared fixtures of the pytest-benchmark suites (``pytest benches``).

The suites time one training epoch (``test_bench_training.py``) and one ``predict`` call
(``test_bench_predict.py``) for the four configurations of issue 3 x {float32, float64}
x {1, 2 threads}. In every group the NumPy reference (``nncore.reference``) runs beside
nncore as the in-run baseline; PyTorch, JAX and scikit-learn run where installed
(``pip install -e .[bench]``) and are skipped with a message otherwise.

Rows are kept moderate so that the whole suite takes a few minutes; the environment
variables ``NNCORE_BENCH_SCALE`` (multiplies the rows) and ``NNCORE_BENCH_ROUNDS`` (timed
rounds per benchmark, default 5) change that. For the side-by-side tables with each
measurement in a fresh process, use ``python benches/compare.py`` instead.
"""

import pytest

from bench_helpers import nb, suite_rows


@pytest.fixture(scope="session")
def dataset():
    """``dataset(config_name, dtype) -> (cfg, X, y, params)``, built once per session."""
    cache = {}

    def get(name, dtype):
        key = (name, dtype)
        if key not in cache:
            cfg = nb.CONFIGS[name]
            X, y = nb.make_data(cfg, suite_rows(name), dtype, seed=0)
            cache[key] = (cfg, X, y, nb.init_params(cfg, dtype, seed=0))
        return cache[key]

    return get
