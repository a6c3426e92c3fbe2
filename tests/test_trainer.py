"""The epoch loop of ``fit``: validation data and split, class weights, the history,
evaluation in one forward pass, the workspace cache, callbacks' order and errors."""
import os
import signal
import sys
import time

import numpy as np
import pytest

import nncore
from nncore import _fit_data
from nncore.callbacks import Callback, EarlyStopping, LambdaCallback, ReduceLROnPlateau
from nncore.datasets import make_spiral

from _helpers import assert_same_state, state_of


def spiral_net(seed=0, dtype="float64"):
    return nncore.Network([nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 3)],
                          loss="cross_entropy", dtype=dtype, seed=seed)


def assert_same_training_state(a, b):
    """Parameters, optimizer step and state, generator: bit for bit."""
    np.testing.assert_array_equal(a._flat, b._flat)
    assert a.optimizer.step == b.optimizer.step
    assert len(a.optimizer.state_arrays()) == len(b.optimizer.state_arrays())
    for s, t in zip(a.optimizer.state_arrays(), b.optimizer.state_arrays()):
        np.testing.assert_array_equal(s, t)
    assert a._rng.bit_generator.state == b._rng.bit_generator.state


# ------------------------------------------------------------------ validation
def test_val_loss_is_what_evaluate_reports_after_each_epoch():
    X, y = make_spiral(n_per_class=60, seed=0)
    Xv, yv = make_spiral(n_per_class=30, seed=1)
    seen = []
    net = spiral_net()

    def check(epoch, logs):
        # (a callback may use the network: the fit loop holds it in this thread)
        seen.append((logs["val_loss"], logs["val_accuracy"], net.evaluate(Xv, yv)))

    history = net.fit(X, y, epochs=4, batch_size=16, optimizer=nncore.Adam(1e-2),
                      validation_data=(Xv, yv),
                      callbacks=[LambdaCallback(on_epoch_end=check)])
    assert len(seen) == 4
    for val_loss, val_acc, result in seen:
        assert val_loss == result["loss"] and val_acc == result["accuracy"]
    assert history.val_loss == [s[0] for s in seen]
    assert history.history["val_accuracy"] == [s[1] for s in seen]
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr",
                                     "time"]


def test_validation_weights_are_used():
    X, y = make_spiral(n_per_class=40, seed=0)
    w = np.random.default_rng(0).uniform(0.1, 2, size=len(X))
    net = spiral_net()
    history = net.fit(X, y, epochs=1, validation_data=(X, y, w))
    assert history.val_loss[0] == net.evaluate(X, y, sample_weight=w)["loss"]
    assert history.val_loss[0] != net.evaluate(X, y)["loss"]


def test_regression_validation_has_no_accuracy():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2)), rng.normal(size=(50, 3))
    net = nncore.Network([nncore.Dense(2, 3)], seed=0)
    history = net.fit(X, y, epochs=2, validation_split=0.2)
    assert list(history.history) == ["loss", "val_loss", "lr", "time"]


def test_validation_split_equals_the_explicit_split():
    """fit(validation_split=f) trains on the rows it does not hold out, in their
    order, with the same shuffles: bit for bit the call with those rows given as
    training and validation data. The split does not touch the shuffling generator."""
    X, y = make_spiral(n_per_class=50, seed=3)
    net = spiral_net(seed=7)
    strata = y.astype(np.intp)
    held = _fit_data.holdout(_fit_data.split_generator(net), len(X), 0.3, strata)
    keep = np.setdiff1d(np.arange(len(X)), held)
    a = net.fit(X, y, epochs=3, batch_size=16, optimizer=nncore.Adam(1e-2),
                validation_split=0.3)
    ref = spiral_net(seed=7)
    b = ref.fit(X[keep], y[keep], epochs=3, batch_size=16, optimizer=nncore.Adam(1e-2),
                validation_data=(X[held], y[held]))
    assert a.loss == b.loss and a.val_loss == b.val_loss
    assert_same_training_state(net, ref)


def test_validation_split_is_reproducible_and_not_the_last_rows():
    X, y = make_spiral(n_per_class=50, seed=3)
    order = np.argsort(y, kind="stable")        # the last rows are all class 2
    X, y = X[order], y[order]
    val = {}
    for seed in (1, 1, 2):
        net = spiral_net(seed=seed)
        h = net.fit(X, y, epochs=2, validation_split=0.2)
        val.setdefault(seed, []).append(h.val_loss)
    assert val[1][0] == val[1][1] and val[1][0] != val[2][0]
    held = _fit_data.holdout(_fit_data.split_generator(spiral_net(seed=1)), len(X), 0.2,
                             y.astype(np.intp))
    assert sorted(np.bincount(y[held].astype(int)).tolist()) == [10, 10, 10]
    # and a second fit call on the same network holds out the same rows
    net = spiral_net(seed=1)
    gen = _fit_data.split_generator(net)
    net.fit(X, y, epochs=1)
    assert np.array_equal(_fit_data.holdout(_fit_data.split_generator(net), len(X), 0.2,
                                            y.astype(np.intp)),
                          _fit_data.holdout(gen, len(X), 0.2, y.astype(np.intp)))


@pytest.mark.parametrize("counts, fraction", [([90, 10], 0.2), ([7, 5, 3, 1], 0.25),
                                              ([50, 50, 1], 0.1), ([3], 0.5)])
def test_holdout_is_stratified(counts, fraction):
    strata = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(0).shuffle(strata)
    n = len(strata)
    for seed in range(20):
        held = _fit_data.holdout(np.random.default_rng(seed), n, fraction, strata)
        assert len(held) == int(np.ceil(fraction * n)) == len(np.unique(held))
        assert np.all(np.diff(held) > 0)
        got = np.bincount(strata[held], minlength=len(counts))
        exact = np.array(counts) * len(held) / n
        assert np.all((got == np.floor(exact)) | (got == np.ceil(exact))), (got, exact)


def test_holdout_for_binary_targets_is_stratified():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (np.arange(200) < 20).astype(float)            # 10% positives, all first
    net = nncore.Network([nncore.Dense(2, 1)], loss="binary_cross_entropy", seed=0)
    rows = _fit_data.Rows(*net._targets(X, y, None))
    strata = _fit_data._strata("binary_cross_entropy", rows)
    held = _fit_data.holdout(_fit_data.split_generator(net), 200, 0.25, strata)
    assert y[held].sum() == 5 and len(held) == 50


@pytest.mark.parametrize("kwargs, error, match", [
    ({"validation_split": 0.2, "validation_data": "both"}, ValueError, "not both"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"validation_split": -0.1}, ValueError, "validation_split"),
    ({"validation_split": "0.2"}, TypeError, "validation_split"),
    ({"validation_data": "wrong width"}, ValueError, "validation_data.*features"),
    ({"validation_data": "wrong length"}, ValueError, "validation_data.*shape"),
    ({"validation_data": [1, 2, 3, 4]}, TypeError, "validation_data"),
    ({"validation_data": np.zeros((3, 2))}, TypeError, "validation_data"),
    ({"validation_split": 0.99}, ValueError, "none to train on"),
])
def test_bad_validation_arguments_change_nothing(kwargs, error, match):
    X, y = make_spiral(n_per_class=20, seed=0)
    special = {"both": (X, y), "wrong width": (X[:, :1], y),
               "wrong length": (X, y[:-1])}
    if isinstance(kwargs.get("validation_data"), str):
        kwargs = dict(kwargs, validation_data=special[kwargs["validation_data"]])
    net = spiral_net()
    net.fit(X, y, epochs=1)
    before = state_of(net)
    with pytest.raises(error, match=match):
        net.fit(X, y, epochs=2, **kwargs)
    assert_same_state(before, state_of(net))


# ------------------------------------------------------------- training accuracy
@pytest.mark.parametrize("case", ["labels", "probabilities", "binary"])
@pytest.mark.parametrize("width", [3, 40])
def test_training_accuracy_judges_each_batch_before_its_update(case, width):
    """history["accuracy"]: the weighted share of rows right, each batch by its output
    before its update, in both layouts (a 3-wide network trains feature-major, a
    40-wide one row-major); the reference evaluates and then trains batch by batch."""
    from nncore._dispatch import kernels
    rng = np.random.default_rng(0)
    n, B, k = 100, 16, 3
    X = rng.normal(size=(n, 4))
    y = {"labels": rng.integers(0, k, n),
         "probabilities": rng.dirichlet(np.ones(k), n),
         "binary": rng.integers(0, 2, (n, k)).astype(float)}[case]
    w = rng.uniform(0.5, 2, n)
    loss = "binary_cross_entropy" if case == "binary" else "cross_entropy"

    def make():
        return nncore.Network([nncore.Dense(4, width, "tanh"), nncore.Dense(width, k)],
                              loss=loss, dtype="float64", seed=0)

    net = make()
    assert kernels.feature_major(net._sizes, net.dtype) == (width == 3)
    history = net.fit(X, y, epochs=2, batch_size=B, shuffle=False, sample_weight=w,
                      optimizer=nncore.SGD(0.5))
    ref, opt = make(), nncore.SGD(0.5)
    for epoch in range(2):
        hits = 0.0
        for start in range(0, n, B):
            rows = slice(start, start + B)
            right = ref.evaluate(X[rows], y[rows], sample_weight=w[rows])["accuracy"]
            hits += right * w[rows].sum()
            ref.fit(X[rows], y[rows], batch_size=B, shuffle=False,
                    sample_weight=w[rows], optimizer=opt)
        assert history.history["accuracy"][epoch] == pytest.approx(hits / w.sum(),
                                                                   rel=1e-12)
    np.testing.assert_array_equal(ref._flat, net._flat)
    assert 0 < history.history["accuracy"][0] < 1


# ---------------------------------------------------------------- class weights
def _imbalanced(n_major=450, n_minor=50, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-1, 1, n_major), rng.normal(1, 1, n_minor)])
    y = np.concatenate([np.zeros(n_major), np.ones(n_minor)])
    return x.reshape(-1, 1), y


def _boundary(net):
    W, b = net.params
    return float(-b[0] / W[0, 0])


def test_class_weight_moves_the_decision_boundary():
    """Logistic regression on 90%/10% classes: unweighted, the boundary sits on the
    minority side of the midpoint (0); balanced, it moves back toward it."""
    X, y = _imbalanced()
    boundaries = {}
    for cw in (None, "balanced", {1: 20.0}):
        net = nncore.Network([nncore.Dense(1, 1)], loss="binary_cross_entropy",
                             dtype="float64", seed=0)
        net.fit(X, y, epochs=300, batch_size=500, optimizer=nncore.Adam(0.05),
                class_weight=cw)
        boundaries[str(cw)] = _boundary(net)
    assert boundaries["None"] > 0.8
    assert abs(boundaries["balanced"]) < 0.3
    assert boundaries["{1: 20.0}"] < -0.5


def test_balanced_equals_the_explicit_dict_and_the_product_with_sample_weight():
    X, y = make_spiral(n_per_class=30, seed=0)
    keep = np.concatenate([np.arange(0, 30), np.arange(30, 45), np.arange(60, 65)])
    X, y = X[keep], y[keep].astype(int)                # 30, 15, 5 rows
    counts = np.bincount(y)
    explicit = {c: len(y) / (3 * counts[c]) for c in range(3)}
    sw = np.random.default_rng(1).uniform(0.5, 1.5, size=len(y))
    runs = {}
    for name, kwargs in {
            "balanced": {"class_weight": "balanced"},
            "dict": {"class_weight": explicit},
            "product": {"sample_weight": sw * np.array([explicit[c] for c in y])},
            "both": {"class_weight": explicit, "sample_weight": sw},
            "none": {}}.items():
        net = spiral_net()
        runs[name] = net.fit(X, y, epochs=3, batch_size=8, **kwargs).loss, net
    assert runs["balanced"][0] == runs["dict"][0]
    np.testing.assert_array_equal(runs["balanced"][1]._flat, runs["dict"][1]._flat)
    assert runs["product"][0] == runs["both"][0]
    np.testing.assert_array_equal(runs["product"][1]._flat, runs["both"][1]._flat)
    assert runs["none"][0] != runs["dict"][0]


@pytest.mark.parametrize("loss, y, cw, error, match", [
    ("cross_entropy", "labels", {5: 1.0}, ValueError, "label 5.*not in y"),
    ("cross_entropy", "labels", {0: -1.0}, ValueError, r"class_weight\[0\]"),
    ("cross_entropy", "labels", {"a": 1.0}, TypeError, "integer class labels"),
    ("cross_entropy", "labels", {0.0: 1.0}, TypeError, "integer class labels"),
    ("cross_entropy", "labels", "balancd", ValueError, "balancd"),
    ("cross_entropy", "labels", [1.0, 2.0], TypeError, "class_weight"),
    ("cross_entropy", "labels", {0: 0.0, 1: 0.0, 2: 0.0}, ValueError, "zero on every"),
    ("cross_entropy", "probabilities", "balanced", ValueError, "integer class labels"),
    ("mse", "values", "balanced", ValueError, "classification losses"),
    ("binary_cross_entropy", "soft", {1: 2.0}, ValueError, "targets 0 or 1"),
])
def test_bad_class_weight_changes_nothing(loss, y, cw, error, match):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    targets = {"labels": np.arange(30) % 3, "values": rng.normal(size=(30, 3)),
               "probabilities": np.full((30, 3), 1 / 3),
               "soft": rng.uniform(size=(30, 3))}[y]
    net = nncore.Network([nncore.Dense(2, 3)], loss=loss, seed=0)
    net.fit(X, targets, epochs=1)
    before = state_of(net)
    with pytest.raises(error, match=match):
        net.fit(X, targets, epochs=1, class_weight=cw)
    assert_same_state(before, state_of(net))


# ------------------------------------------------------------ history, evaluate
def test_history_records_every_epoch_and_keys_added_by_callbacks():
    X, y = make_spiral(n_per_class=20, seed=0)

    def add(epoch, logs):
        if epoch >= 1:
            logs["extra"] = 10.0 * epoch

    history = spiral_net().fit(X, y, epochs=3,
                               callbacks=[LambdaCallback(on_epoch_end=add)])
    assert history.epoch == [0, 1, 2] and len(history) == history.epochs == 3
    assert history.history["extra"][0] != history.history["extra"][0]      # NaN
    assert history.history["extra"][1:] == [10.0, 20.0]
    assert all(len(v) == 3 for v in history.history.values())


@pytest.mark.slow          # (importing matplotlib)
def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = make_spiral(n_per_class=20, seed=0)
    history = spiral_net().fit(X, y, epochs=3, validation_split=0.25)
    fig = history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2                               # loss, accuracy
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["loss", "val_loss"]
    val_line = fig.axes[0].get_lines()[1]
    np.testing.assert_array_equal(val_line.get_ydata(), history.val_loss)
    rng = np.random.default_rng(0)
    mse = nncore.Network([nncore.Dense(2, 1)], seed=0).fit(
        rng.normal(size=(9, 2)), rng.normal(size=9), epochs=2)
    assert len(mse.plot().axes) == 1


def test_history_plot_without_matplotlib_names_the_extra(monkeypatch):
    history = nncore.History()
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "nncore\[plot\]"'):
        history.plot()


# ------------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self, name, events, stop_at=None, stop_in="end"):
        self.name, self.events = name, events
        self.stop_at, self.stop_in = stop_at, stop_in

    def on_train_begin(self, logs=None):
        assert self.network is not None and self.params["epochs"] == 5
        self.events.append((self.name, "train_begin", None, dict(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append((self.name, "epoch_begin", epoch, dict(logs)))
        if self.stop_in == "begin" and epoch == self.stop_at:
            self.network.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.events.append((self.name, "epoch_end", epoch, dict(logs)))
        if self.stop_in == "end" and epoch == self.stop_at:
            self.network.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append((self.name, "train_end", None, dict(logs)))


def test_callbacks_see_every_epoch_in_order():
    X, y = make_spiral(n_per_class=20, seed=0)
    events = []
    net = spiral_net()
    history = net.fit(X, y, epochs=5, callbacks=[Recorder("a", events),
                                                 Recorder("b", events)])
    expected = [("a", "train_begin", None), ("b", "train_begin", None)]
    for e in range(5):
        expected += [("a", "epoch_begin", e), ("b", "epoch_begin", e),
                     ("a", "epoch_end", e), ("b", "epoch_end", e)]
    expected += [("a", "train_end", None), ("b", "train_end", None)]
    assert [ev[:3] for ev in events] == expected
    ends = [ev[3] for ev in events if ev[:2] == ("a", "epoch_end")]
    assert [logs["loss"] for logs in ends] == history.loss
    assert all(list(logs) == ["loss", "accuracy", "lr", "time"] for logs in ends)
    assert events[-1][3] == ends[-1]                   # train_end gets the last logs


@pytest.mark.parametrize("stop_in, epochs_run", [("end", 3), ("begin", 3)])
def test_a_callback_can_stop_training(stop_in, epochs_run):
    X, y = make_spiral(n_per_class=20, seed=0)
    events = []
    net = spiral_net()
    history = net.fit(X, y, epochs=5,
                      callbacks=[Recorder("a", events, stop_at=2, stop_in=stop_in)])
    assert len(history) == epochs_run and net.stop_training
    assert events[-1][1] == "train_end"
    net.fit(X, y, epochs=5, callbacks=[Recorder("a", [])])   # reset by the next call
    assert not net.stop_training and len(net.history) == 5


@pytest.mark.parametrize("hook, epochs_done",
                         [("on_epoch_end", 3), ("on_epoch_begin", 2)])
def test_an_exception_in_a_callback_leaves_the_last_completed_epoch(hook, epochs_done):
    X, y = make_spiral(n_per_class=20, seed=0)

    def boom(epoch, logs):
        if epoch == 2:
            raise ZeroDivisionError("from the callback")

    net = spiral_net()
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        net.fit(X, y, epochs=5, optimizer=nncore.Adam(1e-2),
                callbacks=[LambdaCallback(**{hook: boom})])
    ref = spiral_net()
    ref_history = ref.fit(X, y, epochs=epochs_done, optimizer=nncore.Adam(1e-2))
    assert net.history.loss == ref_history.loss and not net.history.interrupted
    assert_same_training_state(net, ref)
    net.fit(X, y, epochs=1)                         # the network is usable


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_inside_a_callback_raises_there_and_keeps_the_completed_epochs():
    """SIGINT is deferred around the kernels but not in the hooks (user code that may
    run long): it raises inside the hook, with the epoch recorded."""
    X, y = make_spiral(n_per_class=20, seed=0)

    def interrupt(epoch, logs):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)               # the handler raises here
            raise AssertionError("SIGINT was deferred inside a callback")

    net = spiral_net()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, optimizer=nncore.Adam(1e-2),
                callbacks=[LambdaCallback(on_epoch_end=interrupt)])
    assert net.history.interrupted and len(net.history) == 2
    ref = spiral_net()
    ref.fit(X, y, epochs=2, optimizer=nncore.Adam(1e-2))
    assert_same_training_state(net, ref)


@pytest.mark.parametrize("callbacks, error, match", [
    (["not a callback"], TypeError, r"callbacks\[0\]"),
    ([EarlyStopping], TypeError, r"callbacks\[0\]"),
    (EarlyStopping, TypeError, "callbacks"),
    ([EarlyStopping(monitor="val_loss")], ValueError, "validation_data"),
    ([ReduceLROnPlateau(monitor="val_accuracy")], ValueError, "'val_accuracy'"),
    ("verbose", ValueError, "verbose"),
])
def test_bad_callbacks_change_nothing(callbacks, error, match):
    X, y = make_spiral(n_per_class=20, seed=0)
    net = spiral_net()
    net.fit(X, y, epochs=1)
    before = state_of(net)
    kwargs = {"verbose": 3} if callbacks == "verbose" else {"callbacks": callbacks}
    with pytest.raises(error, match=match):
        net.fit(X, y, epochs=2, **kwargs)
    assert_same_state(before, state_of(net))


def test_a_monitored_key_that_never_comes_is_an_error_after_the_first_epoch():
    X, y = make_spiral(n_per_class=20, seed=0)
    net = spiral_net()
    with pytest.raises(ValueError, match="'val_los'.*not in the logs"):
        net.fit(X, y, epochs=5, validation_split=0.2,
                callbacks=[EarlyStopping(monitor="val_los")])
    assert len(net.history) == 1


def test_fit_from_a_callback_is_refused():
    X, y = make_spiral(n_per_class=20, seed=0)
    net = spiral_net()
    nested = LambdaCallback(on_epoch_end=lambda epoch, logs: net.fit(X, y))
    with pytest.raises(RuntimeError, match="from a callback"):
        net.fit(X, y, epochs=2, callbacks=[nested])
    assert len(net.history) == 1


def test_a_learning_rate_set_between_epochs_is_the_one_the_kernels_use():
    """Setting optimizer.lr in a hook equals separate fit calls with that lr."""
    X, y = make_spiral(n_per_class=30, seed=0)
    rates = [0.1, 0.03, 0.3, 0.01]

    def set_lr(epoch, logs):
        net.optimizer.lr = rates[epoch]

    net = spiral_net()
    history = net.fit(X, y, epochs=4, optimizer=nncore.SGD(1.0, momentum=0.9),
                      callbacks=[LambdaCallback(on_epoch_begin=set_lr)])
    assert history.history["lr"] == rates
    ref, opt = spiral_net(), nncore.SGD(1.0, momentum=0.9)
    for lr in rates:
        opt.lr = lr
        ref.fit(X, y, epochs=1, optimizer=opt)
    assert_same_training_state(net, ref)


def test_a_bad_learning_rate_from_a_hook_is_refused_before_the_epoch():
    X, y = make_spiral(n_per_class=20, seed=0)

    def bad(epoch, logs):
        if epoch == 1:
            net.optimizer.lr = -1.0

    net = spiral_net()
    with pytest.raises(ValueError, match="lr"):
        net.fit(X, y, epochs=3, callbacks=[LambdaCallback(on_epoch_begin=bad)])
    assert len(net.history) == 1


def test_verbose_true_and_false_still_work(capsys):
    X, y = make_spiral(n_per_class=20, seed=0)
    spiral_net().fit(X, y, epochs=2, verbose=False)
    assert capsys.readouterr().out == ""
    spiral_net().fit(X, y, epochs=2, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
