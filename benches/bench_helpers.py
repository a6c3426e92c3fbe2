"""Helpers shared by the pytest-benchmark suites (see conftest.py for how to run them)."""

import importlib.util
import os
import sys

import pytest

try:
    from nncore import bench as nb
except ImportError:  # nncore does not import (kernels not built): load the harness file
    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "nncore", "bench.py")
    _spec = importlib.util.spec_from_file_location("_nncore_bench", _path)
    nb = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = nb
    _spec.loader.exec_module(nb)

# Rows per configuration in the pytest suites (whole batches; the compare script uses
# the larger sizes documented in nncore.bench).
SUITE_ROWS = {"tiny": 16384, "small": 16384, "medium": 4096, "large": 2048}
SCALE = float(os.environ.get("NNCORE_BENCH_SCALE", "1"))
ROUNDS = int(os.environ.get("NNCORE_BENCH_ROUNDS", "5"))

CONFIG_NAMES = list(nb.CONFIGS)
DTYPES = ["float32", "float64"]
THREADS = [1, 2]
# Which module a peer needs: pytest.importorskip skips the peer where it is missing.
PEER_IMPORTS = {"torch": "torch", "torch-fused": "torch", "jax-step": "jax",
                "jax-scan": "jax", "sklearn": "sklearn"}


def suite_rows(name):
    cfg = nb.CONFIGS[name]
    return cfg.rows(SUITE_ROWS[name] * SCALE / cfg.n_samples)


def require_peer(peer, threads):
    """Skip the test where ``peer`` cannot run: a missing package, or JAX's fixed
    threads."""
    module = PEER_IMPORTS.get(peer)
    if module is not None:
        pytest.importorskip(module,
                            reason=f"{peer} needs {module}: pip install -e .[bench]")
    if peer.startswith("jax"):
        cpus = len(nb._usable_cpus())
        if threads != cpus:
            pytest.skip(f"JAX's thread pool is fixed at process start (it has {cpus} "
                        f"CPUs here, not {threads}); benches/compare.py runs JAX per "
                        "thread count")


def make_trainer_or_skip(peer, cfg, X, y, dtype, params):
    try:
        return nb.make_trainer(peer, cfg, X, y, dtype, [p.copy() for p in params])
    except nb.SkipPeer as exc:
        pytest.skip(str(exc))
