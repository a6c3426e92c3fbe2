"""Threads: networks trained at the same time in different threads give exactly the
weights they give one after the other (the kernels hold no global state); the kernels
release the GIL; one network used from two threads at once is refused with a clear
RuntimeError, never a crash; set_num_threads limits every BLAS and OpenMP pool."""
import os
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import nncore

from _helpers import assert_same_history, make_targets, output_width, run_child, state_of


def _problem(i):
    """A different network, data set, dtype, loss and optimizer for each i."""
    loss = ("mse", "cross_entropy", "binary_cross_entropy", "gaussian_nll")[i % 4]
    dtype = ("float32", "float64")[i % 2]
    rng = np.random.default_rng(100 + i)
    k = 2 if loss == "gaussian_nll" else 3
    X = rng.normal(size=(600, 40))
    y = make_targets(loss, 600, k, rng)
    net = nncore.Network([nncore.Dense(40, 96, ("relu", "tanh", "gelu", "elu")[i % 4]),
                          nncore.Dense(96, 64, "sigmoid"),
                          nncore.Dense(64, output_width(loss, k))],
                         loss=loss, dtype=dtype, seed=i)
    opt = [nncore.Adam(1e-3), nncore.SGD(1e-2, momentum=0.9), nncore.RMSprop(1e-3),
           nncore.AdamW(1e-3)][i % 4]
    return net, opt, X, y


def _train(i, epochs=25, times=None, barrier=None):
    net, opt, X, y = _problem(i)
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=16, optimizer=opt)
    if times is not None:
        times[i] = (t0, time.perf_counter())
    return net


def _run_threads(targets):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:     # reported in the main thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("n_threads", [2, 4])
def test_parallel_training_equals_sequential(n_threads):
    with nncore.set_num_threads(1):
        sequential = [_train(i) for i in range(n_threads)]
        parallel, times = [None] * n_threads, [None] * n_threads
        barrier = threading.Barrier(n_threads)

        def job(i):
            def run():
                parallel[i] = _train(i, times=times, barrier=barrier)
            return run

        _run_threads([job(i) for i in range(n_threads)])
    # the runs really overlapped in time (otherwise this test proves nothing)
    for i, (start, end) in enumerate(times):
        assert any(s < end and start < e for j, (s, e) in enumerate(times) if j != i)
    for a, b in zip(sequential, parallel):
        sa, sb = state_of(a), state_of(b)
        for p, q in zip(sa["params"], sb["params"]):
            np.testing.assert_array_equal(p, q)
        for p, q in zip(sa["opt_state"], sb["opt_state"]):
            np.testing.assert_array_equal(p, q)
        assert sa["step"] == sb["step"]
        assert_same_history(a.history.loss, b.history.loss)


def test_parallel_inference_equals_sequential():
    nets = [_problem(i) for i in range(3)]
    with nncore.set_num_threads(1):   # (OpenBLAS's rounding depends on its threads)
        expected = [(net.predict(X), net.loss_and_grads(X, y)) for net, _, X, y in nets]
    results = [None] * 3

    def job(i):
        def run():
            net, _, X, y = nets[i]
            for _ in range(20):
                out = (net.predict(X), net.loss_and_grads(X, y))
            results[i] = out
        return run

    with nncore.set_num_threads(1):
        _run_threads([job(i) for i in range(3)])
    for (p, (l, g)), (p2, (l2, g2)) in zip(expected, results):
        np.testing.assert_array_equal(p, p2)
        assert l == l2
        for a, b in zip(g, g2):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ GIL released
def _counting_rate(call):
    """Increments per second of a pure-Python counting thread while ``call()`` runs
    in this thread. A call that holds the GIL stops the counter (apart from the
    hand-over slices of the switch interval, a few ms per call)."""
    state = {"stop": False, "count": 0}

    def spin():
        c = 0
        while not state["stop"]:
            c += 1
            state["count"] = c

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.02)
    c0, t0 = state["count"], time.perf_counter()
    call()
    c1, t1 = state["count"], time.perf_counter()
    state["stop"] = True
    thread.join()
    return (c1 - c0) / (t1 - t0)


def _big_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 256)).astype(np.float32)
    y = rng.integers(0, 16, size=3000)
    net = nncore.Network([nncore.Dense(256, 512, "relu"), nncore.Dense(512, 512, "relu"),
                          nncore.Dense(512, 16)], loss="cross_entropy", seed=0)
    return net, X, y


@pytest.mark.slow
@pytest.mark.parametrize("what", ["fit", "forward", "loss_and_grads"])
def test_kernels_release_the_gil(what):
    """While one long kernel call runs (a whole batch of 3000 rows in fit: one kernel
    call), a Python counting thread keeps counting at a good share of its free rate.
    Holding the GIL would leave it well under 10%. Measured against a baseline taken
    just before, best of a few attempts, so a busy machine does not make it flaky."""
    net, X, y = _big_problem()
    calls = {
        "fit": lambda: net.fit(X, y, epochs=1, batch_size=len(X),
                               optimizer=nncore.SGD(1e-4)),
        "forward": lambda: net.forward(X),
        "loss_and_grads": lambda: net.loss_and_grads(X, y),
    }
    call = calls[what]
    ratios = []
    with nncore.set_num_threads(1):
        call()                                     # warm up (workspace, BLAS)
        for _ in range(5):
            baseline = _counting_rate(lambda: time.sleep(0.15))
            during = _counting_rate(lambda: [call() for _ in range(2)])
            ratios.append(during / baseline)
            if ratios[-1] > 0.3:
                break
    assert max(ratios) > 0.3, f"counting thread starved during {what}: {ratios}"


@pytest.mark.slow
def test_gil_probe_detects_a_gil_holder():
    """The probe itself: a C call that keeps the GIL (sorting floats) starves the
    counter, so the test above would catch kernels that do not release it."""
    import random
    values = [random.random() for _ in range(1_500_000)]
    baseline = _counting_rate(lambda: time.sleep(0.15))
    during = _counting_rate(lambda: sorted(values))
    assert during / baseline < 0.3


# ----------------------------------------------------------- one network, two threads
def test_busy_network_refuses_a_second_thread():
    net, X, y = _big_problem()
    inside = threading.Event()
    for _ in range(10):
        refused = []

        def long_fit():
            inside.set()
            net.fit(X, y, epochs=3, batch_size=len(X), optimizer=nncore.SGD(1e-4))

        worker = threading.Thread(target=long_fit)
        inside.clear()
        worker.start()
        inside.wait()
        deadline = time.perf_counter() + 5
        while not net._lock.locked() and time.perf_counter() < deadline:
            time.sleep(0.001)
        for method in (lambda: net.predict(X[:5]), lambda: net.loss(X[:5], y[:5]),
                       lambda: net.fit(X[:5], y[:5]), lambda: net.forward(X[:5]),
                       lambda: net.loss_and_grads(X[:5], y[:5]),
                       lambda: net.evaluate(X[:5], y[:5])):
            if not net._lock.locked():
                break
            with pytest.raises(RuntimeError, match="in use by another thread") as info:
                method()
            refused.append(str(info.value))
        worker.join()
        if len(refused) == 6:
            break
    assert len(refused) == 6, "never caught the network busy"
    # refused calls changed nothing, and the network works afterwards
    assert np.isfinite(net.predict(X[:5])).all()


@pytest.mark.slow
def test_hammering_one_network_from_many_threads_is_safe_or_refused():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 8))
    y = rng.integers(0, 3, size=200)
    net = nncore.Network([nncore.Dense(8, 32, "relu"), nncore.Dense(32, 3)],
                         loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=1)
    outcomes = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    stop = time.perf_counter() + 1.5

    def hammer(seed):
        def run():
            r = np.random.default_rng(seed)
            while time.perf_counter() < stop:
                op = r.integers(6)
                try:
                    if op == 0:
                        net.fit(X, y, epochs=1, batch_size=int(r.integers(1, 64)))
                    elif op == 1:
                        out = net.predict(X)
                        assert out.shape == (200, 3) and np.isfinite(out).all()
                    elif op == 2:
                        assert np.isfinite(net.loss(X, y))
                    elif op == 3:
                        net.loss_and_grads(X[:50], y[:50])
                    elif op == 4:
                        net.evaluate(X, y)
                    else:
                        net.fit(X, y, epochs=2, batch_size=7, shuffle=False)
                    key = "ok"
                except RuntimeError as exc:
                    assert "in use by another thread" in str(exc)
                    key = "refused"
                with lock:
                    outcomes[key] += 1
        return run

    _run_threads([hammer(s) for s in range(6)])
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0, outcomes
    # consistent and usable afterwards
    assert all(np.isfinite(p).all() for p in net.params)
    assert not net._lock.locked()
    opt = nncore.SGD(1e-3)
    history = net.fit(X, y, epochs=3, batch_size=50, shuffle=False, optimizer=opt)
    assert opt.step == 12 and np.isfinite(history.loss).all()


def test_one_new_optimizer_given_to_two_networks_at_once():
    """Exactly one of two threads gets the fresh optimizer; the other is refused
    (ValueError), every time."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    for _ in range(30):
        nets = [nncore.Network([nncore.Dense(4, 2)], seed=s) for s in range(2)]
        opt = nncore.Adam(1e-3)
        barrier = threading.Barrier(2)
        results = [None, None]

        def job(i):
            def run():
                barrier.wait()
                try:
                    nets[i].fit(X, y, epochs=1, optimizer=opt)
                    results[i] = "ok"
                except ValueError as exc:
                    assert "another network" in str(exc)
                    results[i] = "refused"
            return run

        _run_threads([job(0), job(1)])
        assert sorted(results) == ["ok", "refused"]
        assert opt.step == 1


# ------------------------------------------------------------------- thread counts
def _pools():
    """{library path: threads} of every BLAS and OpenMP pool threadpoolctl sees."""
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] in ("blas", "openmp")}


def test_set_num_threads_limits_every_pool_and_restores():
    before = _pools()
    assert any("scipy" in path for path in before), \
        "the BLAS that the kernels call (SciPy's) is not seen by threadpoolctl"
    with nncore.set_num_threads(1):
        assert set(_pools().values()) == {1}
        assert nncore.get_num_threads() == 1
        net, X, y = _big_problem()
        net.fit(X[:64], y[:64], epochs=1)
        assert set(_pools().values()) == {1}
    assert _pools() == before
    assert nncore.get_num_threads() == max(before.values())


def test_set_num_threads_as_a_call_and_restore():
    before = _pools()
    limiter = nncore.set_num_threads(1)
    try:
        assert set(_pools().values()) == {1}
    finally:
        limiter.restore_original_limits()
    assert _pools() == before


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                    ("2", TypeError), (None, TypeError)])
def test_set_num_threads_rejects(n, exc):
    before = _pools()
    with pytest.raises(exc, match="n must"):
        nncore.set_num_threads(n)
    assert _pools() == before


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts the process's threads in /proc/self/task")
def test_kernels_start_no_threads_of_their_own():
    """With every pool limited to one thread, training and inference start no thread:
    the process has as many before the first fit as after fits and predicts. Run in
    a fresh interpreter, where no earlier test has started an OpenMP team that a
    kernel ignoring the limit could reuse unseen. A Python thread started at the end
    shows that the count sees a new thread."""
    got = run_child(r"""
import json, os, threading, time
import numpy as np
import nncore

def count():
    return len(os.listdir("/proc/self/task"))

rng = np.random.default_rng(0)
X = rng.normal(size=(512, 256)).astype(np.float32)
y = rng.integers(0, 16, size=512)
net = nncore.Network([nncore.Dense(256, 512, "relu"), nncore.Dense(512, 512, "relu"),
                      nncore.Dense(512, 16)], loss="cross_entropy", seed=0)
with nncore.set_num_threads(1):
    before = count()
    net.fit(X, y, epochs=2, batch_size=256)
    net.fit(X, y, epochs=1, batch_size=32, optimizer="sgd")
    net.predict(X)
    net.loss_and_grads(X, y)
    after = count()
probe = threading.Thread(target=time.sleep, args=(0.5,))
probe.start()
with_probe = count()
probe.join()
print(json.dumps({"before": before, "after": after, "with_probe": with_probe}))
""")
    assert got["after"] == got["before"], got
    assert got["with_probe"] == got["before"] + 1, got
