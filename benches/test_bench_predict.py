"""One ``predict`` call over the whole data set per round (probabilities for softmax CE).

Groups ``predict <config> <dtype> <n>t``: nncore, a NumPy forward pass written by
hand, PyTorch eager under ``torch.no_grad()``, JAX jit, scikit-learn ``predict_proba``.
For one-row latency, see ``python -m benches predict``.
"""
import numpy as np
import pytest

from .bench_helpers import (
    CONFIG_NAMES,
    DTYPES,
    ROUNDS,
    THREADS,
    make_trainer_or_skip,
    require_peer,
)
from .configs import numpy_forward

PREDICT_PEERS = ["nncore", "numpy", "torch", "jax-step", "sklearn"]


@pytest.mark.parametrize("peer", PREDICT_PEERS)
@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_predict(benchmark, dataset, config, dtype, threads, peer):
    require_peer(peer, threads)
    cfg, X, y, params = dataset(config, dtype)
    trainer = make_trainer_or_skip(peer, cfg, X, y, dtype, params)
    benchmark.group = f"predict {config} {dtype} {threads}t"
    benchmark.extra_info.update(rows=len(X), peer=peer)
    with trainer.threads(threads):
        out = benchmark.pedantic(trainer.predict, args=(X,), rounds=max(ROUNDS, 5),
                                 warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        t = benchmark.stats.stats.median
        benchmark.extra_info["samples_per_s"] = round(len(X) / t)
    assert out.shape == (len(X), cfg.sizes[-1])
    # Same weights everywhere: the same outputs, to the dtype's rounding.
    expected = numpy_forward([p.astype(np.float64) for p in params], cfg,
                             X[:256].astype(np.float64))
    tol = 1e-4 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(np.asarray(out[:256], dtype=np.float64), expected,
                               rtol=tol, atol=tol)
