"""Ctrl-C during a long fit: KeyboardInterrupt within a fraction of a second, the
network left exactly as after the last completed batch, the History so far kept (with
``interrupted``), and a later fit continuing from there.

The real thing runs in a subprocess (a SIGINT sent to the test runner itself would
stop the test session): the parent waits until the child is training, sends SIGINT,
and checks the JSON the child prints.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nncore
from nncore import _trainer as trainer_module
from nncore import _training

from _helpers import assert_same_history, child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# How long the parent lets the child train before each SIGINT (seconds).
TRAIN_BEFORE_SIGNAL = 0.8
# "Within a fraction of a second": fit checks for Ctrl-C between chunks of batches that
# take ~0.05 s each; the bound leaves room for a loaded machine.
MAX_LATENCY = 1.0

CHILD = r"""
import json, os, signal, sys, threading, time
import numpy as np
import nncore

# Python's own handler, even where this process was started with SIGINT ignored (as
# a job started in the background of a non-interactive shell is).
signal.signal(signal.SIGINT, signal.default_int_handler)

# Record when SIGINT really arrives: the C-level handler writes to the wakeup fd at
# once, even while the main thread is inside a kernel.
arrivals = []
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
def watch():
    while True:
        os.read(r, 64)
        arrivals.append(time.monotonic())
threading.Thread(target=watch, daemon=True).start()

def report(**kw):
    print(json.dumps(kw), flush=True)

def interrupted_fit(net, *args, **kwargs):
    arrivals.clear()
    report(phase="ready")                  # the parent sends SIGINT a bit later
    try:
        net.fit(*args, **kwargs)
    except KeyboardInterrupt:
        caught = time.monotonic()
        # The watcher stamps the arrival once it gets the GIL: at once while a kernel
        # runs (the GIL is released); if the signal came while this thread ran
        # Python, the stamp may come after the catch, and the latency is ~0.
        deadline = caught + 2
        while not arrivals and time.monotonic() < deadline:
            time.sleep(0.001)
        return {"caught": caught, "latency": max(0.0, caught - arrivals[0])}
    return {"caught": None, "latency": None}

def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])

rng = np.random.default_rng(0)
n, B = 32768, 32     # an epoch (~0.1 s) spans several kernel calls
n_batches = n // B
X = rng.normal(size=(n, 32)).astype(np.float32)
y = (np.tanh(X @ rng.normal(size=(32, 4)) / 4)
     + 0.1 * rng.normal(size=(n, 4))).astype(np.float32)
layers = lambda: [nncore.Dense(32, 128, "tanh"), nncore.Dense(128, 128, "relu"),
                  nncore.Dense(128, 4)]
out = {}

with nncore.set_num_threads(1):
    # ---- phase 1: shuffle=False, Adam; replayed exactly afterwards
    net = nncore.Network(layers(), seed=1)
    opt = nncore.Adam(1e-4)           # slow enough to be still learning afterwards
    loss_start = net.loss(X, y)
    got = interrupted_fit(net, X, y, epochs=10**6, batch_size=B, shuffle=False,
                          optimizer=opt)
    h = net.history
    epochs_done, step = len(h.loss), opt.step
    partial = step - epochs_done * n_batches
    out["p1"] = dict(got, interrupted=h.interrupted, epochs_done=epochs_done, step=step,
                     partial=partial, finite=bool(np.isfinite(flat(net.params)).all()),
                     handler_restored=signal.getsignal(signal.SIGINT)
                     is signal.default_int_handler)
    # replay: the completed epochs, then the completed batches of the cut epoch
    ref = nncore.Network(layers(), seed=1)
    ref_opt = nncore.Adam(1e-4)
    ref_hist = ref.fit(X, y, epochs=epochs_done, batch_size=B, shuffle=False,
                       optimizer=ref_opt).loss if epochs_done else []
    if partial:
        ref.fit(X[:partial * B], y[:partial * B], epochs=1, batch_size=B,
                shuffle=False, optimizer=ref_opt)
    out["p1"].update(
        history_equal=list(h.loss) == list(ref_hist),
        params_equal=bool(np.array_equal(flat(net.params), flat(ref.params))),
        state_equal=all(np.array_equal(a, b) for a, b in
                        zip(opt.state_arrays(), ref_opt.state_arrays())),
        step_equal=step == ref_opt.step)
    # a later fit continues: more steps, lower loss
    loss_cut = net.loss(X, y)
    h2 = net.fit(X, y, epochs=2, batch_size=B, shuffle=False)
    out["p1"].update(loss_start=loss_start, loss_cut=loss_cut, loss_after=net.loss(X, y),
                     step_after=opt.step, h2_interrupted=h2.interrupted,
                     h2_epochs=len(h2.loss), h2_is_history=net.history is h2)

    # ---- phase 2: shuffle=True, sample weights, SGD with momentum
    net = nncore.Network(layers(), dtype="float64", seed=2)
    opt = nncore.SGD(1e-3, momentum=0.9)
    w = rng.uniform(0.5, 2.0, size=n)
    got = interrupted_fit(net, X, y, epochs=10**6, batch_size=B, optimizer=opt,
                          sample_weight=w)
    h = net.history
    loss_cut = net.loss(X, y, w)
    net.fit(X, y, epochs=2, batch_size=B, sample_weight=w)
    out["p2"] = dict(got, interrupted=h.interrupted, epochs_done=len(h.loss),
                     step=opt.step - 2 * n_batches,
                     finite=bool(np.isfinite(flat(net.params)).all()
                                 and np.isfinite(flat(opt.state_arrays())).all()),
                     loss_cut=loss_cut, loss_after=net.loss(X, y, w),
                     handler_restored=signal.getsignal(signal.SIGINT)
                     is signal.default_int_handler)
report(phase="done", n_batches=n_batches, **out)
"""


def _run_child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())
    sent = []
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["phase"] == "ready":
                time.sleep(TRAIN_BEFORE_SIGNAL)
                sent.append(time.monotonic())
                proc.send_signal(signal.SIGINT)
            elif msg["phase"] == "done":
                proc.wait(timeout=60)
                return msg, sent, proc.returncode, proc.stderr.read()
        proc.wait(timeout=60)
        pytest.fail(f"child ended early ({proc.returncode}):\n{proc.stderr.read()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def child():
    return _run_child()


@pytest.mark.slow
def test_child_ran(child):
    msg, sent, code, err = child
    assert code == 0, err
    assert len(sent) == 2


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["p1", "p2"])
def test_interrupt_is_prompt(child, phase):
    msg, sent, _, _ = child
    got = msg[phase]
    assert got["caught"] is not None, "fit finished without seeing the SIGINT"
    # measured in the child from the signal's arrival ...
    assert 0 <= got["latency"] < MAX_LATENCY, got["latency"]
    # ... and from the parent's send (CLOCK_MONOTONIC is system-wide)
    assert got["caught"] - sent[int(phase[1]) - 1] < MAX_LATENCY
    assert got["interrupted"] is True
    assert got["handler_restored"]


@pytest.mark.slow
def test_interrupted_network_is_exactly_after_the_last_completed_batch(child):
    msg = child[0]
    got, n_batches = msg["p1"], msg["n_batches"]
    assert got["epochs_done"] >= 1, "interrupted before one epoch finished"
    assert 0 <= got["partial"] < n_batches
    assert got["step"] == got["epochs_done"] * n_batches + got["partial"]
    assert got["finite"]
    assert got["history_equal"], "History of the completed epochs not kept"
    assert got["step_equal"] and got["params_equal"] and got["state_equal"], \
        "the network is not the replay of the completed batches"


@pytest.mark.slow
def test_fit_continues_after_interrupt(child):
    msg = child[0]
    got, n_batches = msg["p1"], msg["n_batches"]
    assert got["step_after"] == got["step"] + 2 * n_batches
    assert got["loss_after"] < got["loss_cut"] < got["loss_start"]
    assert got["h2_epochs"] == 2 and not got["h2_interrupted"] and got["h2_is_history"]
    p2 = msg["p2"]
    assert p2["finite"] and p2["epochs_done"] >= 1
    first_of_cut_epoch = p2["epochs_done"] * n_batches
    assert first_of_cut_epoch <= p2["step"] < first_of_cut_epoch + n_batches
    assert p2["loss_after"] < p2["loss_cut"]


# ------------------------------------------------------------- in-process unit checks
def test_sigint_after_the_last_check_is_not_lost():
    """A Ctrl-C landing after the loop's last look at the flag (while the last epoch
    is recorded) is raised on leaving fit's SIGINT block, not dropped."""
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), trainer_module.SigintDeferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                   # the Python-level handler runs
    assert signal.getsignal(signal.SIGINT) is handler


def test_fit_restores_a_custom_sigint_handler():
    calls = []
    old = signal.signal(signal.SIGINT, lambda s, f: calls.append(s))
    try:
        net = nncore.Network([nncore.Dense(3, 2)], seed=0)
        X = np.ones((10, 3))
        net.fit(X, X[:, :2], epochs=2)
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old)


def test_ignored_sigint_stays_ignored_during_fit():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        net = nncore.Network([nncore.Dense(3, 2)], seed=0)
        seen = []
        real_signal = signal.signal

        def spy(signum, handler):
            seen.append(handler)
            return real_signal(signum, handler)

        signal.signal = spy
        try:
            net.fit(np.ones((10, 3)), np.ones((10, 2)), epochs=2)
        finally:
            signal.signal = real_signal
        assert seen == [] and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


class _SignalAfterCall:
    """Stands in for the kernels module: after the ``fire_at``-th ``train_batches``
    call, SIGINT arrives (fit's own handler is installed then, so it only sets a
    flag)."""

    def __init__(self, real, fire_at):
        self._real = real
        self._fire_at = fire_at
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def train_batches(self, *args, **kwargs):
        result = self._real.train_batches(*args, **kwargs)
        self.calls += 1
        if self.calls == self._fire_at:
            os.kill(os.getpid(), signal.SIGINT)
        return result


def _small_problem():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 6))
    y = rng.normal(size=(100, 2))

    def make():
        return nncore.Network([nncore.Dense(6, 10, "tanh"), nncore.Dense(10, 2)],
                              dtype="float64", seed=5)
    return X, y, make


def test_signal_in_the_last_chunk_of_an_epoch_records_that_epoch(monkeypatch):
    X, y, make = _small_problem()
    net = make()
    # Calls of 1 batch, then the 9 left of epoch 1, then each whole epoch: the
    # signal comes with the third call, the last (and only) chunk of epoch 2.
    monkeypatch.setattr(_training, "FIXED_CHUNK", 1 << 20)
    proxy = _SignalAfterCall(trainer_module._kernels, fire_at=3)
    monkeypatch.setattr(trainer_module, "_kernels", proxy)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=50, batch_size=10, optimizer=nncore.Adam(1e-2),
                shuffle=False)
    assert proxy.calls == 3
    assert len(net.history.loss) == 2 and net.history.interrupted
    assert net.optimizer.step == 20
    monkeypatch.undo()
    ref = make()
    ref_hist = ref.fit(X, y, epochs=2, batch_size=10, optimizer=nncore.Adam(1e-2),
                       shuffle=False)
    assert_same_history(ref_hist.loss, net.history.loss)
    for a, b in zip(ref.params, net.params):
        np.testing.assert_array_equal(a, b)


def test_signal_mid_epoch_leaves_the_state_after_the_last_completed_batch(monkeypatch):
    X, y, make = _small_problem()
    net = make()
    monkeypatch.setattr(_training, "FIXED_CHUNK", 1)       # one batch per call
    opt = nncore.SGD(1e-2, momentum=0.9)
    proxy = _SignalAfterCall(trainer_module._kernels, fire_at=2)
    monkeypatch.setattr(trainer_module, "_kernels", proxy)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=50, batch_size=5, optimizer=opt, shuffle=False)
    monkeypatch.undo()
    done = opt.step
    assert done == 2 and net.history.loss == [] and net.history.interrupted
    ref = make()
    ref_opt = nncore.SGD(1e-2, momentum=0.9)
    ref.fit(X[:5 * done], y[:5 * done], epochs=1, batch_size=5, optimizer=ref_opt,
            shuffle=False)
    for a, b in zip(ref.params, net.params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref_opt.state_arrays()[0], opt.state_arrays()[0])
    # and the network is usable: a later fit continues
    net.fit(X, y, epochs=1, batch_size=5, shuffle=False)
    assert opt.step == done + 20


def test_chunk_size_follows_the_measured_speed():
    """Kernel calls are sized to take ~TRAIN_CHUNK_SECONDS, so that Ctrl-C waits at
    most about that long. The short last chunk of an epoch is timed for what it ran:
    1 batch in 0.1 ms means 500 batches per 50 ms, not 8x the previous chunk."""
    from nncore import _training
    target = _training.TRAIN_CHUNK_SECONDS
    assert target <= 0.1
    next_chunk = _training.next_chunk
    assert next_chunk(1000, 1, 1e-4) == int(target / 1e-4)
    assert next_chunk(100, 100, 100 * 1e-3) == int(target / 1e-3)
    assert next_chunk(10, 10, 1e-6) == 80                 # grows at most 8x a step
    assert next_chunk(50, 50, 10.0) == 1                  # never below one batch
