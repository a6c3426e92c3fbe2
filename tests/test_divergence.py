"""A loss (or update) that becomes NaN or inf during fit: TrainingDiverged naming the
epoch and batch and suggesting a lower learning rate or scaled inputs, with the
parameters, optimizer state, step count and shuffling generator exactly as at the end
of the last good epoch (checked against a separate run of just the good epochs)."""
import copy
import signal

import numpy as np
import pytest

import nncore
from nncore._training import epoch_order

from _helpers import assert_same_history, assert_same_state, state_of

OPTIMIZERS = {
    # (a learning rate that makes a small relu network blow up, constructor)
    "sgd": lambda lr: nncore.SGD(lr),
    "momentum": lambda lr: nncore.SGD(lr, momentum=0.9),
    "nesterov": lambda lr: nncore.SGD(lr, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda lr: nncore.Adam(lr),
    "adamw": lambda lr: nncore.AdamW(lr),
    "rmsprop": lambda lr: nncore.RMSprop(lr, momentum=0.5),
}


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2))


def _linear(dtype):
    return nncore.Network([nncore.Dense(4, 2)], dtype=dtype, seed=0)


def _deep(dtype):
    return nncore.Network([nncore.Dense(4, 8, "relu"), nncore.Dense(8, 8),
                           nncore.Dense(8, 2)], dtype=dtype, seed=0)


def _diverge(net, X, y, optimizer, epochs=200, batch_size=8, **kwargs):
    with pytest.raises(nncore.TrainingDiverged) as info:
        net.fit(X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, **kwargs)
    return info.value


def _good_run(make_net, dtype, X, y, optimizer, epochs, **kwargs):
    """The same network trained for just the good epochs."""
    net = make_net(dtype)
    if epochs:
        net.fit(X, y, epochs=epochs, batch_size=8, optimizer=optimizer, **kwargs)
    else:
        optimizer._bind(net)      # allocate the (zero) state, as fit would
        net._optimizer = optimizer
    return net


def _assert_restored(diverged, good):
    """Parameters, optimizer state and step, generator: as after the good epochs."""
    a, b = state_of(diverged), state_of(good)
    for p, q in zip(a["params"], b["params"]):
        np.testing.assert_array_equal(p, q)
        assert np.isfinite(p).all()
    assert a["step"] == b["step"]
    for s, t in zip(a["opt_state"], b["opt_state"]):
        np.testing.assert_array_equal(s, t)
        assert np.isfinite(s).all()
    assert a["rng"] == b["rng"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_huge_lr_restores_end_of_last_good_epoch(dtype, shuffle):
    """SGD with lr=3 on a linear model: the loss grows geometrically for a few epochs,
    then overflows in the middle of an epoch."""
    X, y = _data()
    net = _linear(dtype)
    err = _diverge(net, X, y, nncore.SGD(3.0), shuffle=shuffle)
    assert isinstance(err, FloatingPointError)
    assert err.epoch >= 1, "expected some good epochs first"
    message = str(err)
    for words in (f"epoch {err.epoch}", f"batch {err.batch}", "NaN or infinite",
                  "lower learning rate", "lr=3", "scale the inputs", "restored"):
        assert words in message, (words, message)
    good = _good_run(_linear, dtype, X, y, nncore.SGD(3.0), err.epoch, shuffle=shuffle)
    _assert_restored(net, good)
    # history: exactly the good epochs, all finite
    assert_same_history(net.history.loss, good.history.loss)
    assert len(net.history.loss) == err.epoch and np.isfinite(net.history.loss).all()
    assert not net.history.interrupted


# learning rates that blow the small relu network up, for float32 and float64
HUGE_LR = {"sgd": (10.0, 10.0), "momentum": (1.0, 1.0), "nesterov": (1.0, 1.0),
           "adam": (1e5, 1e40), "adamw": (1e6, 1e3), "rmsprop": (1e6, 1e40)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(HUGE_LR))
def test_every_optimizer_state_is_restored(name, dtype):
    lr = HUGE_LR[name][dtype == "float64"]
    X, y = _data()
    net = _deep(dtype)
    opt = OPTIMIZERS[name](lr)
    err = _diverge(net, X, y, opt, epochs=300)
    assert net.optimizer is opt
    good = _good_run(_deep, dtype, X, y, OPTIMIZERS[name](lr), err.epoch)
    _assert_restored(net, good)


@pytest.mark.parametrize("dtype, big", [("float32", 1e25), ("float64", 1e200)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_flagged_at_the_first_bad_batch_and_nothing_half_updated(dtype, big, shuffle):
    """One finite but huge row makes its batch's loss overflow: the error names that
    exact batch, and the batches of that epoch already applied are undone."""
    rng = np.random.default_rng(3)
    X, y = _data(n=61)
    bad_row = 37
    X[bad_row] = big
    net = _linear(dtype)
    before = state_of(net)
    gen = copy.deepcopy(net._rng)
    order = epoch_order(gen, 61) if shuffle else np.arange(61)
    expected_batch = int(np.flatnonzero(order == bad_row)[0]) // 8
    assert expected_batch > 0
    err = _diverge(net, X, y, nncore.SGD(1e-3, momentum=0.9), epochs=3, shuffle=shuffle)
    assert (err.epoch, err.batch) == (0, expected_batch)
    after = state_of(net)
    for p, q in zip(before["params"], after["params"]):
        np.testing.assert_array_equal(p, q)
    assert after["step"] == 0
    assert all((s == 0).all() for s in after["opt_state"])
    assert after["rng"] == before["rng"]
    assert net.history.loss == []
    del rng


def test_nonfinite_update_with_finite_loss_is_caught():
    """lr so large that one SGD step overflows float32 parameters to inf while the
    loss of that batch (computed before the step) is finite: without the end-of-epoch
    check the 'restored' parameters would be inf."""
    X, y = _data(n=32)
    net = _deep("float32")
    before = state_of(net)
    err = _diverge(net, X, 100 * y, nncore.SGD(1e39), epochs=5, batch_size=32)
    assert (err.epoch, err.batch) == (0, 0)
    assert "parameters or optimizer state became NaN or infinite" in str(err)
    after = state_of(net)
    for p, q in zip(before["params"], after["params"]):
        np.testing.assert_array_equal(p, q)
    assert after["step"] == 0


def test_adam_second_moment_overflow_is_caught():
    """float32 Adam: g^2 overflows v to inf, which freezes the parameters while the
    loss stays finite (silent corruption); fit must call that divergence."""
    X, y = _data()
    net = _deep("float32")
    err = _diverge(net, 3 * X, y, nncore.Adam(1e4), epochs=20)
    good = _good_run(_deep, "float32", 3 * X, y, nncore.Adam(1e4), err.epoch)
    _assert_restored(net, good)


def test_fit_after_divergence_continues_as_if_the_bad_epoch_never_ran():
    X, y = _data()
    net = _linear("float32")
    opt = nncore.SGD(3.0)
    err = _diverge(net, X, y, opt)
    opt.lr = 0.01
    history = net.fit(X, y, epochs=3, batch_size=8)
    assert np.isfinite(history.loss).all() and history.loss[-1] < history.loss[0]
    # the same as the good epochs followed directly by the low-lr epochs
    ref = _good_run(_linear, "float32", X, y, nncore.SGD(3.0), err.epoch)
    ref.optimizer.lr = 0.01
    ref.fit(X, y, epochs=3, batch_size=8)
    _assert_restored(net, ref)


def test_after_divergence_network_is_released_and_sigint_handler_restored():
    X, y = _data()
    net = _linear("float32")
    handler = signal.getsignal(signal.SIGINT)
    _diverge(net, X, y, nncore.SGD(3.0))
    assert signal.getsignal(signal.SIGINT) is handler
    net.predict(X)                      # the lock was released
    assert net.loss(X, y) == net.loss(X, y)


def test_training_diverged_is_exported_and_catchable_as_floating_point_error():
    assert issubclass(nncore.TrainingDiverged, FloatingPointError)
    X, y = _data()
    with pytest.raises(FloatingPointError):
        _linear("float32").fit(X, y, epochs=200, batch_size=8, optimizer=nncore.SGD(3.0))


def test_no_false_alarm_for_large_but_finite_losses():
    """Large (finite) values are not divergence: a float64 loss of ~1e200 trains."""
    X, y = _data()
    net = _linear("float64")
    before = net.loss(X, 1e100 * y)
    history = net.fit(X, 1e100 * y, epochs=2, batch_size=8, optimizer=nncore.SGD(1e-3))
    assert np.isfinite(history.loss).all() and before > 1e199
    unchanged = state_of(net)
    assert_same_state(unchanged, state_of(net))
