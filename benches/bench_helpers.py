"""Helpers of the pytest-benchmark suites (``conftest.py`` says how to run them)."""
import os

import pytest

from .configs import CONFIGS
from .harness import usable_cpus
from .peers import SkipPeer, make_trainer, missing

# Rows per configuration in the suites: fewer than `python -m benches train` uses, so
# that the whole suite takes minutes (whole batches, scaled by NNCORE_BENCH_SCALE).
SUITE_ROWS = {"tiny": 16384, "small": 16384, "medium": 4096, "large": 2048}
SCALE = float(os.environ.get("NNCORE_BENCH_SCALE", "1"))
ROUNDS = int(os.environ.get("NNCORE_BENCH_ROUNDS", "5"))

CONFIG_NAMES = list(CONFIGS)
DTYPES = ["float32", "float64"]
THREADS = [1, 2]


def suite_rows(name):
    cfg = CONFIGS[name]
    return cfg.rows(SUITE_ROWS[name] * SCALE / cfg.n_samples)


def require_peer(peer, threads):
    """Skip where ``peer`` cannot run: its framework is missing, or it is JAX at another
    thread count than this process's CPUs (JAX fixes its pool when it starts)."""
    why = missing(peer)
    if why:
        pytest.skip(f"{peer}: {why}")
    if peer.startswith("jax") and threads != len(usable_cpus()):
        pytest.skip(f"JAX's thread pool is fixed at process start ({len(usable_cpus())} "
                    f"CPUs here, not {threads}); `python -m benches train` runs JAX per "
                    "thread count")


def make_trainer_or_skip(peer, cfg, X, y, dtype, params):
    try:
        return make_trainer(peer, cfg, X, y, dtype, [p.copy() for p in params])
    except SkipPeer as exc:
        pytest.skip(str(exc))
