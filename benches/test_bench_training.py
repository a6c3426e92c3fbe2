"""One training epoch per benchmark round: nncore beside the NumPy reference and peers.

Each group (``fit <config> <dtype> <n>t``) holds every peer for one configuration,
dtype and thread count, so pytest-benchmark prints them side by side. Run::

    pytest benches/test_bench_training.py
    pytest benches -k "medium and float32"          # one slice
"""
import pytest

from .bench_helpers import (
    CONFIG_NAMES,
    DTYPES,
    ROUNDS,
    THREADS,
    make_trainer_or_skip,
    require_peer,
)
from .configs import numpy_loss
from .peers import PEERS


@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_fit_epoch(benchmark, dataset, config, dtype, threads, peer):
    require_peer(peer, threads)
    cfg, X, y, params = dataset(config, dtype)
    trainer = make_trainer_or_skip(peer, cfg, X, y, dtype, params)
    benchmark.group = f"fit {config} {dtype} {threads}t"
    benchmark.extra_info.update(rows=len(X), batch_size=cfg.batch_size, peer=peer)
    with trainer.threads(threads):
        benchmark.pedantic(trainer.epoch, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        t = benchmark.stats.stats.median
        benchmark.extra_info["samples_per_s"] = round(len(X) / t)
        benchmark.extra_info["step_gflops"] = round(cfg.step_flops * len(X) / t / 1e9, 2)
    # A sanity check, not a timing assertion: the peer trained.
    n = min(len(X), 2048)
    loss0 = numpy_loss(params, cfg, X[:n], y[:n])
    loss1 = numpy_loss(trainer.weights(), cfg, X[:n], y[:n])
    assert loss1 < loss0, f"{peer} did not train: loss {loss0:.4g} -> {loss1:.4g}"
