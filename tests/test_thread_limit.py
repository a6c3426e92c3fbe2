"""The kernels' thread limit: set once by nncore.set_num_threads, it holds in every
Python thread and in every build of the kernels; OpenMP's own per-thread limit still
caps it in the thread that set it.

The team sizes are observed by opening an empty parallel region the way the kernels
open theirs (``team_size(measure=True)``), and by what it asks for (``team_size()``).
"""
import importlib
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import nncore
from nncore import _dispatch, threads

BUILDS = [importlib.import_module("nncore." + _dispatch._MODULES[name])
          for name in _dispatch.supported()
          if importlib.util.find_spec("nncore." + _dispatch._MODULES[name]) is not None]
KERNELS = _dispatch.kernels


def in_new_thread(fn):
    """fn() run in a new Python thread; its result."""
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("value", fn()))
    worker.start()
    worker.join()
    return out["value"]


def team():
    return KERNELS.team_size(), KERNELS.team_size(measure=True), nncore.get_num_threads()


def test_limit_holds_in_a_new_python_thread():
    default = in_new_thread(team)
    with nncore.set_num_threads(1):
        assert team() == (1, 1, 1)
        assert in_new_thread(team) == (1, 1, 1)
    assert in_new_thread(team) == default
    assert threads.thread_limit() == 0


def test_limit_set_by_a_call_and_restored():
    limiter = nncore.set_num_threads(1)
    try:
        assert in_new_thread(lambda: KERNELS.team_size(measure=True)) == 1
    finally:
        limiter.restore_original_limits()
    assert threads.thread_limit() == 0 and KERNELS.get_thread_limit() == 0


def test_limit_reaches_every_build():
    with nncore.set_num_threads(1):
        for build in BUILDS:
            assert build.get_thread_limit() == 1
            assert in_new_thread(build.team_size) == 1
    for build in BUILDS:
        assert build.get_thread_limit() == 0


def test_openmp_limit_of_this_thread_still_caps():
    """threadpoolctl's limit (OpenMP's, per thread) caps the team in the thread that
    set it, and only there."""
    default = KERNELS.team_size(measure=True)
    with threadpool_limits(limits=1, user_api="openmp"):
        assert KERNELS.team_size() == KERNELS.team_size(measure=True) == 1
        assert in_new_thread(lambda: KERNELS.team_size(measure=True)) == default


def test_set_thread_limit_rejects_negative():
    with pytest.raises(ValueError, match="n must be >= 0"):
        KERNELS.set_thread_limit(-1)
    assert KERNELS.get_thread_limit() == 0


def _train(seed, out):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(512, 96)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    net = nncore.Network([nncore.Dense(96, 256, "relu"), nncore.Dense(256, 10)],
                         loss="cross_entropy", seed=seed)
    net.fit(X, y, epochs=2, batch_size=256)
    out[seed] = np.concatenate([np.ravel(p) for p in net.params])


def test_networks_trained_in_threads_match_one_after_the_other():
    """Two networks trained at once, each in its own Python thread on one kernel
    thread, give the bits they give trained one after the other on all threads."""
    alone, together = {}, {}
    for seed in (0, 1):
        _train(seed, alone)
    with nncore.set_num_threads(1):
        workers = [threading.Thread(target=_train, args=(seed, together)) for seed in (0, 1)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for seed in (0, 1):
        assert np.array_equal(alone[seed], together[seed])
