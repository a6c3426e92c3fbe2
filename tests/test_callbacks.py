"""The stock callbacks: EarlyStopping (the stopping epoch and the exact restore),
ReduceLROnPlateau, LearningRateScheduler, CSVLogger, LambdaCallback; argument checks."""
import csv
import math

import numpy as np
import pytest

import nncore
from nncore.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
)
from nncore.datasets import make_spiral


def spiral_net(seed=0):
    return nncore.Network([nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 3)],
                          loss="cross_entropy", dtype="float64", seed=seed)


def data():
    return make_spiral(n_per_class=30, seed=0)


def planted(curve, key="planted"):
    """A callback that puts curve[epoch] into the logs under ``key`` (a validation
    curve whose every value the test knows)."""
    def plant(epoch, logs):
        logs[key] = curve[epoch]
    return LambdaCallback(on_epoch_end=plant)


def assert_same_training_state(a, b):
    np.testing.assert_array_equal(a._flat, b._flat)
    assert a.optimizer.step == b.optimizer.step
    for s, t in zip(a.optimizer.state_arrays(), b.optimizer.state_arrays()):
        np.testing.assert_array_equal(s, t)
    assert a._rng.bit_generator.state == b._rng.bit_generator.state


def expected_stop(curve, patience, min_delta=0.0, mode="min"):
    """(best epoch, epochs run) by the rule, from the curve alone."""
    sign = 1 if mode == "min" else -1
    best, best_epoch, wait = math.inf, None, 0
    for epoch, value in enumerate(curve):
        if sign * value < best - min_delta:
            best, best_epoch, wait = sign * value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return best_epoch, epoch + 1
    return best_epoch, len(curve)


# --------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize("curve, patience, min_delta", [
    ([5, 4, 3, 3.5, 3.4, 3.3, 3.2, 1, 1, 1], 4, 0.0),      # best 2, stops after 6
    ([5, 4, 3, 3.5, 2.99, 2.98, 2.5, 3, 3, 3], 2, 0.05),    # 2.99, 2.98 are too small
    ([3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 0, 0.0),               # stops after epoch 1
    ([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], 3, 0.0),               # never stops: best is last
])
def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best(curve, patience,
                                                                       min_delta):
    X, y = data()
    best_epoch, n_run = expected_stop(curve, patience, min_delta)
    stopper = EarlyStopping(monitor="planted", patience=patience, min_delta=min_delta)
    net = spiral_net()
    history = net.fit(X, y, epochs=len(curve), batch_size=16,
                      optimizer=nncore.Adam(1e-2), callbacks=[planted(curve), stopper])
    assert len(history) == n_run and history.history["planted"] == curve[:n_run]
    assert stopper.best_epoch == best_epoch and stopper.best == curve[best_epoch]
    assert stopper.stopped_epoch == (n_run - 1 if n_run < len(curve) else None)
    # exactly as at the end of the best epoch: parameters, optimizer, generator
    ref = spiral_net()
    ref.fit(X, y, epochs=best_epoch + 1, batch_size=16, optimizer=nncore.Adam(1e-2))
    assert_same_training_state(net, ref)
    # so training on continues as it would have from there
    net.fit(X, y, epochs=2, batch_size=16)
    ref.fit(X, y, epochs=2, batch_size=16)
    assert_same_training_state(net, ref)


def test_early_stopping_on_a_real_validation_loss():
    """Overfitting a few noisy rows: val_loss turns up; the stop follows the rule on
    the recorded val_loss, and the network is the best epoch's."""
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(40, 2)), rng.normal(size=(200, 2))
    y, yv = rng.integers(0, 3, 40), rng.integers(0, 3, 200)
    net = nncore.Network([nncore.Dense(2, 64, "relu"), nncore.Dense(64, 3)],
                         loss="cross_entropy", dtype="float64", seed=1)
    stopper = EarlyStopping(patience=5)
    history = net.fit(X, y, epochs=300, batch_size=8, optimizer=nncore.Adam(1e-2),
                      validation_data=(Xv, yv), callbacks=[stopper])
    best_epoch, n_run = expected_stop(history.val_loss, 5)
    assert n_run == len(history) < 300 and stopper.best_epoch == best_epoch
    assert net.evaluate(Xv, yv)["loss"] == min(history.val_loss)


def test_early_stopping_on_accuracy_is_max_mode_and_can_keep_the_last_weights():
    X, y = data()
    curve = [0.5, 0.7, 0.6, 0.65, 0.6, 0.6]
    stopper = EarlyStopping(monitor="val_accuracy", patience=2,
                            restore_best_weights=False)
    net = spiral_net()
    history = net.fit(X, y, epochs=6, validation_split=0.2,
                      callbacks=[planted(curve, "val_accuracy"), stopper])
    assert stopper.mode == "max" and stopper.best_epoch == 1 and len(history) == 4
    ref = spiral_net()
    ref.fit(X, y, epochs=4, validation_split=0.2)
    assert_same_training_state(net, ref)


def test_early_stopping_ignores_nan_and_starts_afresh_each_call():
    X, y = data()
    stopper = EarlyStopping(monitor="planted", patience=2)
    net = spiral_net()
    h = net.fit(X, y, epochs=5, callbacks=[planted([1, math.nan, math.nan, 0, 0]),
                                           stopper])
    assert len(h) == 3 and stopper.best_epoch == 0
    h = net.fit(X, y, epochs=5, callbacks=[planted([9, 8, 7, 6, 5]), stopper])
    assert len(h) == 5 and stopper.best_epoch == 4 and stopper.stopped_epoch is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"patience": -1}, ValueError, "patience must be >= 0; got -1"),
    ({"patience": 2.5}, TypeError, "patience"),
    ({"min_delta": -0.1}, ValueError, "min_delta"),
    ({"mode": "up"}, ValueError, "mode"),
    ({"monitor": 3}, TypeError, "monitor"),
    ({"restore_best_weights": "yes"}, TypeError, "restore_best_weights"),
])
def test_early_stopping_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


# ------------------------------------------------------------ ReduceLROnPlateau
def test_reduce_lr_on_plateau_gives_its_documented_sequence():
    X, y = data()
    curve = [3, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    reducer = ReduceLROnPlateau(monitor="planted", factor=0.5, patience=2)
    history = spiral_net().fit(X, y, epochs=10, optimizer=nncore.SGD(0.1),
                               callbacks=[planted(curve), reducer])
    # bad epochs 2, 3 -> halved from epoch 4; 4, 5 -> from 6; 7, 8 -> from 9
    assert history.history["lr"] == [0.1] * 4 + [0.05] * 2 + [0.025] * 3 + [0.0125]


def test_reduce_lr_on_plateau_stops_at_min_lr():
    X, y = data()
    reducer = ReduceLROnPlateau(monitor="planted", factor=0.1, patience=0, min_lr=0.002)
    history = spiral_net().fit(X, y, epochs=5, optimizer=nncore.SGD(1.0),
                               callbacks=[planted([1] * 5), reducer])
    assert history.history["lr"] == pytest.approx([1.0, 1.0, 0.1, 0.01, 0.002], rel=1e-15)


def test_reduce_lr_on_plateau_on_val_loss():
    """The rate sequence follows the rule applied to the recorded val_loss."""
    X, y = data()
    reducer = ReduceLROnPlateau(factor=0.5, patience=2)
    history = spiral_net().fit(X, y, epochs=40, optimizer=nncore.SGD(3.0),
                               validation_split=0.3, callbacks=[reducer])
    best, wait, lr, expected = math.inf, 0, 3.0, []
    for value in history.val_loss:
        expected.append(lr)
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= 2:
                lr, wait = lr * 0.5, 0
    assert history.history["lr"] == expected and expected[-1] < 3.0


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 1.0}, "factor"), ({"factor": 0}, "factor"),
    ({"patience": -2}, "patience"), ({"min_lr": -1}, "min_lr")])
def test_reduce_lr_on_plateau_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReduceLROnPlateau(**kwargs)


# --------------------------------------------------------- LearningRateScheduler
def test_learning_rate_scheduler_sets_the_rate_of_each_epoch():
    X, y = data()
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return 0.1 / (epoch + 1)

    history = spiral_net().fit(X, y, epochs=4, optimizer=nncore.SGD(0.5),
                               callbacks=[LearningRateScheduler(schedule)])
    assert seen == [(0, 0.5), (1, 0.1), (2, 0.05), (3, 0.1 / 3)]
    assert history.history["lr"] == [0.1, 0.05, 0.1 / 3, 0.025]


@pytest.mark.parametrize("value, error", [(-0.1, ValueError), (math.nan, ValueError),
                                          ("0.1", TypeError)])
def test_learning_rate_scheduler_checks_what_the_schedule_gives(value, error):
    X, y = data()
    net = spiral_net()
    with pytest.raises(error, match="schedule"):
        net.fit(X, y, epochs=3, callbacks=[LearningRateScheduler(lambda e, lr: value)])
    assert len(net.history) == 0
    with pytest.raises(TypeError, match="schedule"):
        LearningRateScheduler(0.1)


# ---------------------------------------------------------- CSVLogger, Lambda
def test_csv_logger_writes_every_epoch(tmp_path):
    X, y = data()
    path = tmp_path / "log.csv"
    net = spiral_net()
    history = net.fit(X, y, epochs=3, validation_split=0.2, callbacks=[CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                       "time"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    assert [float(r[3]) for r in rows[1:]] == history.val_loss      # repr: exact
    net.fit(X, y, epochs=2, callbacks=[CSVLogger(path, append=True)])
    rows = list(csv.reader(path.open()))
    assert len(rows) == 6 and rows[4][0] == "0"                        # no 2nd header
    net.fit(X, y, epochs=1, callbacks=[CSVLogger(path, separator=";")])
    assert path.read_text().splitlines()[0] == "epoch;loss;accuracy;lr;time"


def test_csv_logger_keeps_the_epochs_before_an_error(tmp_path):
    X, y = data()
    path = tmp_path / "log.csv"

    def boom(epoch, logs):
        if epoch == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        spiral_net().fit(X, y, epochs=5, callbacks=[CSVLogger(path),
                                                    LambdaCallback(on_epoch_end=boom)])
    assert len(path.read_text().splitlines()) == 4          # header + epochs 0, 1, 2


def test_lambda_callback_checks_its_functions():
    with pytest.raises(TypeError, match="on_epoch_end"):
        LambdaCallback(on_epoch_end=3)
    calls = []
    cb = LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                        on_train_end=lambda logs: calls.append("end"))
    X, y = data()
    spiral_net().fit(X, y, epochs=2, callbacks=[cb])
    assert calls == ["begin", "end"]
