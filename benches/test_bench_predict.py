"""One ``predict`` call over the whole data set per round (probabilities for softmax CE).

Groups ``predict <config> <dtype> <n>t``: nncore, the NumPy reference's forward pass,
PyTorch eager under ``torch.no_grad()``, JAX jit, scikit-learn ``predict_proba``.
"""

import numpy as np
import pytest

from bench_helpers import (
    CONFIG_NAMES,
    DTYPES,
    ROUNDS,
    THREADS,
    make_trainer_or_skip,
    nb,
    require_peer,
)

PREDICT_PEERS = ["nncore", "numpy", "torch", "jax-step", "sklearn"]


@pytest.mark.parametrize("peer", PREDICT_PEERS)
@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_predict(benchmark, dataset, config, dtype, threads, peer):
    require_peer(peer, threads)
    cfg, X, y, params = dataset(config, dtype)
    if peer == "sklearn":  # it has no weights before a fit: one untimed epoch on a slice
        n = 4 * cfg.batch_size
        trainer = make_trainer_or_skip(peer, cfg, X[:n], y[:n], dtype, params)
        trainer.epoch()
    else:
        trainer = make_trainer_or_skip(peer, cfg, X, y, dtype, params)
    benchmark.group = f"predict {config} {dtype} {threads}t"
    benchmark.extra_info.update(rows=len(X), peer=peer)
    with nb.limit_threads(threads):
        out = benchmark.pedantic(trainer.predict, args=(X,), rounds=max(ROUNDS, 5),
                                 warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        median = benchmark.stats.stats.median
        benchmark.extra_info["samples_per_s"] = round(len(X) / median)
    assert out.shape == (len(X), cfg.sizes[-1])
    if peer != "sklearn":  # same weights: same probabilities, to the dtype's rounding
        expected = nb.numpy_forward([p.astype(np.float64) for p in params], cfg,
                                    X[:256].astype(np.float64))
        tol = 1e-4 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(np.asarray(out[:256], dtype=np.float64), expected,
                                   rtol=tol, atol=tol)
