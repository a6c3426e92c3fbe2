"""Contracts of the public API: dtypes in and out, fresh output arrays, live parameters,
prediction shapes per loss, reprs, seeded initialisation, the optimizer's life cycle,
and nncore.datasets."""
import sys

import numpy as np
import pytest

import nncore
from nncore import datasets

from _helpers import LOSS_CASES, loss_name, output_width, rel_err

PINNED = ["Network", "Dense", "SGD", "Adam", "AdamW", "RMSprop", "ACTIVATIONS", "LOSSES",
          "Rprop", "LBFGS", "gradcheck"]


def small_net(loss="mse", dtype="float32", width=3, seed=0, act="tanh"):
    return nncore.Network([nncore.Dense(4, 6, act), nncore.Dense(6, width)], loss=loss,
                          dtype=dtype, seed=seed)


def test_public_names():
    for name in PINNED:
        assert hasattr(nncore, name), name
    assert sorted(nncore.ACTIVATIONS) == sorted(
        ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus"])
    assert sorted(nncore.LOSSES) == sorted(
        ["mse", "binary_cross_entropy", "cross_entropy", "gaussian_nll", "mae", "huber",
         "poisson", "quantile"])


def test_names_come_from_one_table():
    """The activations, losses and optimizers are named in one table (the kernels'
    codes, nncore/_codes.pxd): the public tuples of names, the reference's formulas
    and the optimizer classes all name the same ones."""
    from nncore import reference
    from nncore._codes import Activation, Loss, Optimizer, codes

    assert tuple(codes(Activation)) == nncore.ACTIVATIONS
    assert tuple(codes(Loss)) == nncore.LOSSES
    assert set(reference.ACTIVATIONS) == set(nncore.ACTIVATIONS)
    assert set(reference.LOSSES) == set(nncore.LOSSES)
    # every optimizer but LBFGS (full-batch, by SciPy) is an update rule of the kernels
    assert set(reference.OPTIMIZERS) == set(codes(Optimizer)) == \
        set(nncore.optimizers.OPTIMIZERS) - {"lbfgs"}
    for name, cls in nncore.optimizers.OPTIMIZERS.items():
        assert cls.name == name
        assert nncore.optimizers.optimizer_from_name(name).name == name


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.int64])
def test_output_dtype_is_the_network_dtype(dtype, x_dtype):
    net = small_net(dtype=dtype)
    X = np.arange(20).reshape(5, 4).astype(x_dtype)
    y = np.zeros((5, 3), dtype=x_dtype)
    assert net.dtype == np.dtype(dtype)
    assert all(p.dtype == np.dtype(dtype) for p in net.params)
    assert net.forward(X).dtype == np.dtype(dtype)
    assert net.predict(X).dtype == np.dtype(dtype)
    value, grads = net.loss_and_grads(X, y)
    assert isinstance(value, float) and isinstance(net.loss(X, y), float)
    assert all(g.dtype == np.dtype(dtype) for g in grads)
    net.fit(X, y, epochs=1, optimizer=nncore.SGD(0.01))
    assert all(p.dtype == np.dtype(dtype) for p in net.params)


def test_default_dtype_is_float32():
    net = nncore.Network([nncore.Dense(2, 1)])
    assert net.dtype == np.float32
    assert net.predict(np.zeros((3, 2))).dtype == np.float32


def test_float32_in_float32_out():
    net = small_net(dtype="float32")
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert net.predict(X).dtype == np.float32


def test_inputs_need_not_be_contiguous_arrays():
    """Lists, Fortran order and strided views give the same result as a C array."""
    net = small_net(dtype="float64")
    X = np.random.default_rng(1).normal(size=(6, 8))
    view = X[:, ::2]
    expected = net.forward(np.ascontiguousarray(view))
    np.testing.assert_array_equal(net.forward(view), expected)
    np.testing.assert_array_equal(net.forward(np.asfortranarray(view)), expected)
    np.testing.assert_array_equal(net.forward(view.tolist()), expected)


# ----------------------------------------------------------------- fresh outputs
@pytest.mark.parametrize("method", ["forward", "predict"])
@pytest.mark.parametrize("n", [3, 2000])     # one evaluation chunk, and several
def test_outputs_are_new_arrays(method, n):
    net = small_net()
    rng = np.random.default_rng(0)
    X1, X2 = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    out1 = getattr(net, method)(X1)
    kept = out1.copy()
    out2 = getattr(net, method)(X2)
    np.testing.assert_array_equal(out1, kept)    # not overwritten by the next call
    assert not np.shares_memory(out1, out2)
    for p in net.params:
        assert not np.shares_memory(out1, p)
    assert not np.array_equal(out1, out2)
    out2[...] = 123.0                            # the caller may write into it
    np.testing.assert_array_equal(getattr(net, method)(X1), kept)


def test_grads_are_new_arrays():
    net = small_net(dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    _, g1 = net.loss_and_grads(X, y)
    kept = [g.copy() for g in g1]
    _, g2 = net.loss_and_grads(2 * X, y)
    for a, b in zip(g1, kept):
        np.testing.assert_array_equal(a, b)
    for a in g1:
        for b in g2 + net.params:
            assert not np.shares_memory(a, b)
    net.fit(X, y, epochs=1, optimizer=nncore.SGD(0.1), shuffle=False)
    for a, b in zip(g1, kept):                    # nor by training
        np.testing.assert_array_equal(a, b)


def test_loss_and_grads_leaves_weights_unchanged():
    net = small_net(dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    before = [p.copy() for p in net.params]
    net.loss_and_grads(X, y)
    net.loss(X, y)
    net.predict(X)
    for p, q in zip(net.params, before):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------- live params
def test_params_layout():
    net = nncore.Network([nncore.Dense(4, 6, "relu"), nncore.Dense(6, 2)], seed=0)
    assert [p.shape for p in net.params] == [(4, 6), (6,), (6, 2), (2,)]
    assert net.n_params == sum(p.size for p in net.params) == 4 * 6 + 6 + 6 * 2 + 2


def test_params_are_live():
    net = small_net(dtype="float64")
    X = np.random.default_rng(0).normal(size=(5, 4))
    out = net.forward(X)
    W0 = net.params[0]
    W0[...] = 0.0                       # hidden layer outputs tanh(b0) = 0
    np.testing.assert_allclose(net.forward(X), np.tile(net.params[3], (5, 1)))
    net.params[3][...] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(net.forward(X), np.tile([1.0, 2.0, 3.0], (5, 1)))
    assert not np.array_equal(out, net.forward(X))


def test_fit_updates_the_same_arrays():
    """A reference to a parameter array taken before fit sees the trained values."""
    net = small_net(dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    W0 = net.params[0]
    before = W0.copy()
    net.fit(X, y, epochs=2, batch_size=8, optimizer=nncore.SGD(0.1))
    assert not np.array_equal(W0, before)
    np.testing.assert_array_equal(W0, net.params[0])
    assert np.shares_memory(W0, net.params[0])


# ----------------------------------------------------------------- predictions
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_predict_per_loss(case, dtype):
    k = 3
    width = output_width(case, k)
    net = small_net(loss=loss_name(case), dtype=dtype, width=width, seed=1)
    rng = np.random.default_rng(2)
    for b in net.params[1::2]:
        b[...] = rng.normal(size=b.shape)
    X = rng.normal(scale=2.0, size=(7, 4))
    raw = net.forward(X).astype(np.float64)
    pred = net.predict(X)
    assert pred.shape == (7, width) and raw.shape == (7, width)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=0)
    if case in ("mse", "mae", "huber", "quantile"):
        np.testing.assert_array_equal(pred, net.forward(X))
    elif case == "poisson":      # rates from log rates
        np.testing.assert_allclose(pred, np.exp(raw), **tol)
    elif case == "binary_cross_entropy":
        assert ((pred > 0) & (pred < 1)).all()
        np.testing.assert_allclose(pred, 1 / (1 + np.exp(-raw)), **tol)
    elif case.startswith("cross_entropy"):
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, **tol)
        assert (pred > 0).all()
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        np.testing.assert_allclose(pred, e / e.sum(axis=1, keepdims=True), **tol)
        np.testing.assert_array_equal(pred.argmax(axis=1), raw.argmax(axis=1))
    else:  # gaussian_nll: means, then variances exp(log variance)
        np.testing.assert_array_equal(pred[:, :k], net.forward(X)[:, :k])
        assert (pred[:, k:] > 0).all()
        np.testing.assert_allclose(pred[:, k:], np.exp(raw[:, k:]), **tol)


def test_cross_entropy_labels_equal_one_hot_rows():
    net = small_net(loss="cross_entropy", dtype="float64", width=4)
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(9, 4)), rng.integers(0, 4, size=9)
    one_hot = np.eye(4)[labels]
    v1, g1 = net.loss_and_grads(X, labels)
    v2, g2 = net.loss_and_grads(X, one_hot)
    assert v1 == pytest.approx(v2, rel=1e-14)
    assert rel_err(g1, g2) < 1e-14


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "gaussian_nll"])
def test_single_target_column_may_be_1d(loss):
    width = 2 if loss == "gaussian_nll" else 1
    net = small_net(loss=loss, dtype="float64", width=width)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 4)), rng.uniform(size=6)
    assert net.loss(X, y) == net.loss(X, y.reshape(-1, 1))


# ----------------------------------------------------------------------- reprs
def test_dense_repr():
    assert repr(nncore.Dense(64, 128, activation="relu")) == \
        "Dense(64, 128, activation='relu')"
    assert repr(nncore.Dense(3, 1)) == "Dense(3, 1, activation='identity')"


def test_network_repr():
    net = nncore.Network([nncore.Dense(4, 8, "relu"), nncore.Dense(8, 3)],
                         loss="cross_entropy", dtype="float64", seed=5)
    text = repr(net)
    assert text.startswith("Network(")
    for part in ["Dense(4, 8, activation='relu')", "Dense(8, 3, activation='identity')",
                 "cross_entropy", "float64", "5"]:
        assert part in text
    # Readable and complete: evaluating it rebuilds the same network.
    again = eval(text, {"Network": nncore.Network, "Dense": nncore.Dense})
    assert repr(again) == text
    for p, q in zip(net.params, again.params):
        np.testing.assert_array_equal(p, q)


def test_optimizer_reprs():
    assert "lr=0.1" in repr(nncore.SGD(0.1)) and repr(nncore.SGD(0.1)).startswith("SGD(")
    assert repr(nncore.Adam()).startswith("Adam(")
    assert repr(nncore.AdamW()).startswith("AdamW(")
    assert repr(nncore.RMSprop()).startswith("RMSprop(")


# -------------------------------------------------------------------------- init
GLOROT = ["identity", "sigmoid", "tanh", "softplus"]
HE = ["relu", "leaky_relu", "elu", "gelu"]


@pytest.mark.parametrize("activation", GLOROT + HE)
def test_init_bounds(activation):
    """Glorot-uniform a = sqrt(6 / (fan_in + fan_out)) for identity, sigmoid, tanh and
    softplus; He-uniform a = sqrt(6 / fan_in) for the ReLU family; biases zero."""
    fan_in, fan_out = 120, 80
    net = nncore.Network([nncore.Dense(fan_in, fan_out, activation),
                          nncore.Dense(fan_out, 1)], dtype="float64", seed=0)
    W, b = net.params[0], net.params[1]
    if activation in HE:
        a = np.sqrt(6.0 / fan_in)
    else:
        a = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= a
    assert np.abs(W).max() > 0.99 * a        # fills the interval (not a narrower one)
    assert abs(W.mean()) < 0.02 * a           # centred
    assert W.std() == pytest.approx(a / np.sqrt(3), rel=0.03)   # uniform, not normal
    assert not b.any() and not net.params[3].any()
    # The second (identity) layer: Glorot with its own fans.
    a2 = np.sqrt(6.0 / (fan_out + 1))
    assert np.abs(net.params[2]).max() <= a2


def test_init_limit_property():
    assert nncore.Dense(10, 20, "tanh").init_limit == pytest.approx(np.sqrt(6 / 30))
    assert nncore.Dense(10, 20, "relu").init_limit == pytest.approx(np.sqrt(6 / 10))


# ------------------------------------------------------------------- optimizer
def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 3))


def test_optimizer_none_is_adam():
    X, y = data()
    net_a, net_b = small_net(dtype="float64"), small_net(dtype="float64")
    net_a.fit(X, y, epochs=2, batch_size=8, shuffle=False)
    net_b.fit(X, y, epochs=2, batch_size=8, shuffle=False, optimizer=nncore.Adam())
    assert type(net_a.optimizer) is nncore.Adam
    assert net_a.optimizer.lr == 1e-3 and net_a.optimizer.betas == (0.9, 0.999)
    for p, q in zip(net_a.params, net_b.params):
        np.testing.assert_array_equal(p, q)


def test_optimizer_none_continues_the_previous_optimizer():
    X, y = data()
    net = small_net(dtype="float64")
    assert net.optimizer is None
    opt = nncore.RMSprop(0.01, momentum=0.5)
    net.fit(X, y, epochs=1, batch_size=8, optimizer=opt)
    assert net.optimizer is opt and opt.step == 3
    net.fit(X, y, epochs=1, batch_size=8)
    assert net.optimizer is opt and opt.step == 6

    net2 = small_net(dtype="float64")
    net2.fit(X, y, epochs=1, batch_size=8)
    first = net2.optimizer
    net2.fit(X, y, epochs=1, batch_size=8)
    assert net2.optimizer is first and first.step == 6


def test_optimizer_belongs_to_one_network():
    X, y = data()
    opt = nncore.Adam()
    net_a, net_b = small_net(), small_net()
    net_a.fit(X, y, optimizer=opt)
    before = [p.copy() for p in net_b.params]
    with pytest.raises(ValueError, match="another network"):
        net_b.fit(X, y, optimizer=opt)
    for p, q in zip(net_b.params, before):      # the refused call changed nothing
        np.testing.assert_array_equal(p, q)
    opt.reset()
    assert opt.step == 0
    net_b.fit(X, y, optimizer=opt)             # after reset() it may move on
    assert opt.step > 0


def test_optimizer_type_is_checked():
    X, y = data()
    for bad in (0.01, {"lr": 0.01}, nncore.Adam):
        with pytest.raises(TypeError, match="optimizer"):
            small_net().fit(X, y, optimizer=bad)


# ---------------------------------------------------------------------- history
def test_history():
    X, y = data()
    net = small_net()
    history = net.fit(X, y, epochs=3, batch_size=8)
    assert net.history is history
    assert history.epochs == len(history) == len(history.loss) == 3
    assert list(history.history) == ["loss", "lr", "time"]
    assert history.history["loss"] is history.loss and history.epoch == [0, 1, 2]
    assert history.history["lr"] == [net.optimizer.lr] * 3
    assert all(t > 0 for t in history.history["time"]) and history.val_loss == []
    assert all(isinstance(v, float) for v in history.loss)
    assert "3 epochs" in repr(history)


class _Counting:
    """Stands in for the kernels module, counting the calls of each entry point."""

    def __init__(self, real):
        self._real, self.calls = real, {}

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if not callable(attr) or name[0].isupper():
            return attr

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)
        return counted


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_evaluate_runs_one_forward_pass(monkeypatch, loss):
    from nncore import network as network_module
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2100, 4))
    y = {"cross_entropy": rng.integers(0, 3, 2100),
         "binary_cross_entropy": rng.integers(0, 2, (2100, 3)).astype(float),
         "mse": rng.normal(size=(2100, 3))}[loss]
    net = nncore.Network([nncore.Dense(4, 8, "relu"), nncore.Dense(8, 3)], loss=loss,
                         dtype="float64", seed=0)
    expected_loss = net.loss(X, y)
    proxy = _Counting(network_module._kernels)
    monkeypatch.setattr(network_module, "_kernels", proxy)
    result = net.evaluate(X, y)
    assert proxy.calls == {"loss_and_grads": 1}
    monkeypatch.undo()
    assert result["loss"] == expected_loss              # the same bits as loss()
    out = net.forward(X)
    if loss == "cross_entropy":
        assert result["accuracy"] == np.mean(out.argmax(1) == y)
    elif loss == "binary_cross_entropy":
        assert result["accuracy"] == np.mean(((out > 0) == (y > 0.5)).all(1))
    else:
        assert "accuracy" not in result


def test_fit_and_evaluate_in_turn_keep_their_workspaces():
    """Training, evaluation and a loss on a third size each keep their workspace: no
    reallocation when they alternate; and no more than three are kept."""
    X, y = data(n=300)
    net = small_net()

    def round_trip():
        net.fit(X, y, batch_size=32)
        net.evaluate(X, y)
        net.loss(X[:100], y[:100])
        return {rows: id(work) for rows, work in net._workspaces.items()}

    kept = round_trip()
    assert sorted(kept) == [32, 100, 300]
    for _ in range(3):
        assert round_trip() == kept
    for batch_size in (5, 6, 7, 8):
        net.fit(X, y, batch_size=batch_size)
    assert sorted(net._workspaces) == [6, 7, 8]


def test_evaluate():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(30, 4)), rng.integers(0, 3, size=30)
    net = small_net(loss="cross_entropy")
    result = net.evaluate(X, labels)
    assert result["loss"] == pytest.approx(net.loss(X, labels))
    assert result["accuracy"] == pytest.approx(
        np.mean(net.predict(X).argmax(axis=1) == labels))
    assert set(small_net().evaluate(X, rng.normal(size=(30, 3)))) == {"loss"}


# ---------------------------------------------------------------------- datasets
def test_make_spiral():
    X, y = datasets.make_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=3)
    assert X.shape == (200, 2) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.shape == (200,) and y.dtype.kind == "i"
    np.testing.assert_array_equal(np.bincount(y), [50] * 4)
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-12
    X2, y2 = datasets.make_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = datasets.make_spiral(n_per_class=50, n_classes=4, noise=0.1, seed=4)
    assert not np.array_equal(X, X3)


def test_make_spiral_geometry():
    """Without noise every point of class c lies at radius r and angle 4c + 4r."""
    X, y = datasets.make_spiral(n_per_class=30, n_classes=3, noise=0.0)
    r = np.tile(np.linspace(0, 1, 30), 3)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), r, atol=1e-15)
    theta = 4.0 * y + 4.0 * r
    np.testing.assert_allclose(X, np.c_[r * np.sin(theta), r * np.cos(theta)], atol=1e-15)


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(n_per_class=0), ValueError, "n_per_class"),
    (dict(n_per_class=2.5), TypeError, "n_per_class"),
    (dict(n_classes=0), ValueError, "n_classes"),
    (dict(n_classes=True), TypeError, "n_classes"),
    (dict(noise=-0.1), ValueError, "noise"),
    (dict(noise=float("nan")), ValueError, "noise"),
    (dict(noise="a"), TypeError, "noise"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.0), TypeError, "seed"),
])
def test_make_spiral_checks_its_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        datasets.make_spiral(**kwargs)


def test_make_xor():
    X, y = datasets.make_xor()
    assert X.shape == (4, 2) and y.shape == (4, 1)
    assert X.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(y[:, 0], np.logical_xor(X[:, 0], X[:, 1]))


def test_load_digits():
    pytest.importorskip("sklearn")
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.shape == (1797,) and y.dtype.kind == "i"
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        datasets.load_digits()


def test_state_restore_round_trip_continues_exactly():
    """restore(state after epoch k) then the remaining epochs == one uninterrupted fit."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 3))
    y = rng.integers(0, 3, 64)

    def make():
        return nncore.Network([nncore.Dense(3, 8, "tanh"), nncore.Dense(8, 3)],
                              loss="cross_entropy", dtype="float64", seed=3)

    whole = make()
    whole.fit(X, y, epochs=4, batch_size=8, optimizer=nncore.Adam(1e-2))
    part = make()
    opt = nncore.Adam(1e-2)
    part.fit(X, y, epochs=2, batch_size=8, optimizer=opt)
    saved = part.state()
    assert saved["optimizer"]["step"] == 16 and len(saved["optimizer"]["arrays"]) == 2
    part.fit(X, y, epochs=3, batch_size=8)       # wander off, then come back
    part.restore(saved)
    part.fit(X, y, epochs=2, batch_size=8)
    assert np.array_equal(part.state()["params"], whole.state()["params"])
    # the copy is a copy: training did not write into it
    assert not np.array_equal(saved["params"], part.state()["params"])


def test_state_into_a_fresh_optimizer_and_bad_state():
    net = nncore.Network([nncore.Dense(2, 4, "relu"), nncore.Dense(4, 1)], seed=0)
    X = np.random.default_rng(0).normal(size=(16, 2))
    y = X.sum(axis=1)
    net.fit(X, y, epochs=1, batch_size=4, optimizer=nncore.SGD(0.1, momentum=0.9))
    saved = net.state()
    fresh = nncore.SGD(0.1, momentum=0.9)
    fresh.restore(saved["optimizer"])
    twin = nncore.Network([nncore.Dense(2, 4, "relu"), nncore.Dense(4, 1)], seed=1)
    twin.restore({**saved, "optimizer": None})
    net.fit(X, y, epochs=1, batch_size=4)
    twin.fit(X, y, epochs=1, batch_size=4, optimizer=fresh)
    assert np.array_equal(net.state()["params"], twin.state()["params"])
    with pytest.raises(ValueError, match="parameters"):
        twin.restore({**saved, "params": np.zeros(3)})
    with pytest.raises(ValueError, match="state arrays"):
        nncore.Adam().restore(saved["optimizer"])


def test_load_spiral_tests_on_another_spiral():
    X, y, X_test, y_test = datasets.load("spiral", seed=3)
    X0, y0 = datasets.make_spiral(seed=3)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    assert X_test.shape == X.shape and not np.array_equal(X_test, X)
    np.testing.assert_array_equal(y_test, y)      # the same classes, in the same order
    X2, _, X2_test, _ = datasets.load("spiral", seed=4)
    assert not np.array_equal(X2, X) and not np.array_equal(X2_test, X_test)


def test_load_digits_holds_out_a_seeded_fifth():
    pytest.importorskip("sklearn")
    X_all, y_all = datasets.load_digits()
    X, y, X_test, y_test = datasets.load("digits", seed=1)
    assert (len(X), len(X_test)) == (1438, 359)
    # a partition of the images: each row of the data set once, in one of the parts
    both = np.concatenate([X, X_test])
    order = np.lexsort(both.T[::-1])
    np.testing.assert_array_equal(both[order], X_all[np.lexsort(X_all.T[::-1])])
    assert np.bincount(np.concatenate([y, y_test])).tolist() == \
        np.bincount(y_all).tolist()
    again = datasets.load("digits", seed=1)
    other = datasets.load("digits", seed=2)
    np.testing.assert_array_equal(again[2], X_test)
    assert not np.array_equal(other[2], X_test)


def test_load_xor_has_no_test_part():
    X, y, X_test, y_test = datasets.load("xor")
    np.testing.assert_array_equal(X, datasets.make_xor()[0])
    assert y.shape == (4, 1) and X_test is None and y_test is None


@pytest.mark.parametrize("name, seed, error, words", [
    ("mnist", 0, ValueError, ["name", "digits, spiral, xor", "'mnist'"]),
    (None, 0, ValueError, ["name", "None"]),
    ("spiral", -1, ValueError, ["seed", ">= 0", "-1"]),
    ("spiral", 1.5, TypeError, ["seed", "1.5"]),
])
def test_load_rejects(name, seed, error, words):
    with pytest.raises(error) as info:
        datasets.load(name, seed)
    for word in words:
        assert word in str(info.value)
