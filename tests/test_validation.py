"""Bad input gives a clear ValueError/TypeError naming the argument, raised before any
kernel runs and with the network unchanged. Inputs that are accepted by converting
them (other dtypes, layouts and containers) give exactly the results of the clean
input."""
import numpy as np
import pytest

import nncore
from nncore import _validation, reference

from _helpers import (
    assert_same_history,
    assert_same_state,
    make_targets,
    output_width,
    state_of,
)

LOSSES = ("mse", "binary_cross_entropy", "cross_entropy", "gaussian_nll")


# --------------------------------------------------------------------------- builders
def _raises(exc, names, fn, *args, **kwargs):
    """Call fn, expect ``exc``; every string of ``names`` must be in the message."""
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for name in ([names] if isinstance(names, str) else names):
        assert name in message, f"{name!r} not in message: {message}"
    return message


@pytest.mark.parametrize("kwargs, exc, names", [
    (dict(fan_in=0, fan_out=3), ValueError, ["fan_in", "0"]),
    (dict(fan_in=-2, fan_out=3), ValueError, ["fan_in", "-2"]),
    (dict(fan_in=3, fan_out=0), ValueError, ["fan_out", "0"]),
    (dict(fan_in=2.0, fan_out=3), TypeError, ["fan_in", "2.0"]),
    (dict(fan_in=True, fan_out=3), TypeError, ["fan_in"]),
    (dict(fan_in="3", fan_out=3), TypeError, ["fan_in", "'3'"]),
    (dict(fan_in=None, fan_out=3), TypeError, ["fan_in", "None"]),
    (dict(fan_in=3, fan_out=3, activation="swish"), ValueError, ["activation", "swish"]),
    (dict(fan_in=3, fan_out=3, activation=None), TypeError, ["activation", "None"]),
])
def test_dense_rejects(kwargs, exc, names):
    _raises(exc, names, nncore.Dense, **kwargs)


def _layers():
    return [nncore.Dense(3, 4, "tanh"), nncore.Dense(4, 2)]


@pytest.mark.parametrize("args, kwargs, exc, names", [
    ([[]], {}, ValueError, ["layers", "empty"]),
    ([nncore.Dense(3, 2)], {}, TypeError, ["layers", "single Dense"]),
    ([None], {}, TypeError, ["layers"]),
    ([[nncore.Dense(3, 4), "Dense(4, 2)"]], {}, TypeError, ["layers[1]", "str"]),
    ([[nncore.Dense(3, 4), nncore.Dense(5, 2)]], {}, ValueError,
     ["layers[0]", "fan_out=4", "layers[1]", "fan_in=5"]),
    ([_layers()], dict(loss="hinge"), ValueError, ["loss", "hinge"]),
    ([_layers()], dict(loss=None), TypeError, ["loss", "None"]),
    ([[nncore.Dense(3, 3)]], dict(loss="gaussian_nll"), ValueError,
     ["gaussian_nll", "even", "fan_out=3"]),
    ([_layers()], dict(dtype="float16"), ValueError, ["dtype", "float16"]),
    ([_layers()], dict(dtype=np.int32), ValueError, ["dtype", "int32"]),
    ([_layers()], dict(dtype=None), TypeError, ["dtype", "None"]),
    ([_layers()], dict(dtype="double precision"), ValueError, ["dtype"]),
    ([_layers()], dict(seed=-1), ValueError, ["seed", "-1"]),
    ([_layers()], dict(seed=1.5), TypeError, ["seed", "1.5"]),
])
def test_network_rejects(args, kwargs, exc, names):
    _raises(exc, names, nncore.Network, *args, **kwargs)


@pytest.mark.parametrize("cls, kwargs, exc, names", [
    (nncore.SGD, dict(lr=-0.1), ValueError, ["lr", "-0.1"]),
    (nncore.SGD, dict(lr=float("nan")), ValueError, ["lr", "nan"]),
    (nncore.SGD, dict(lr=float("inf")), ValueError, ["lr", "inf"]),
    (nncore.SGD, dict(lr="0.1"), TypeError, ["lr", "'0.1'"]),
    (nncore.SGD, dict(lr=None), TypeError, ["lr", "None"]),
    (nncore.SGD, dict(lr=0.1, momentum=1.0), ValueError, ["momentum", "1.0"]),
    (nncore.SGD, dict(lr=0.1, momentum=-0.5), ValueError, ["momentum", "-0.5"]),
    (nncore.SGD, dict(lr=0.1, nesterov=True), ValueError, ["nesterov", "momentum"]),
    (nncore.SGD, dict(lr=0.1, momentum=0.9, nesterov="yes"), TypeError, ["nesterov"]),
    (nncore.SGD, dict(lr=0.1, weight_decay=-1e-4), ValueError, ["weight_decay"]),
    (nncore.Adam, dict(betas=(1.0, 0.999)), ValueError, ["betas[0]", "1.0"]),
    (nncore.Adam, dict(betas=(0.9, -0.1)), ValueError, ["betas[1]", "-0.1"]),
    (nncore.Adam, dict(betas=(0.9,)), TypeError, ["betas"]),
    (nncore.Adam, dict(betas=0.9), TypeError, ["betas"]),
    (nncore.Adam, dict(eps=0.0), ValueError, ["eps", "0.0"]),
    (nncore.Adam, dict(eps=-1e-8), ValueError, ["eps"]),
    (nncore.Adam, dict(lr=-1e-3), ValueError, ["lr"]),
    (nncore.AdamW, dict(weight_decay=float("nan")), ValueError, ["weight_decay", "nan"]),
    (nncore.AdamW, dict(betas=(0.9, 1.5)), ValueError, ["betas[1]", "1.5"]),
    (nncore.RMSprop, dict(alpha=1.0), ValueError, ["alpha", "1.0"]),
    (nncore.RMSprop, dict(alpha=-0.01), ValueError, ["alpha"]),
    (nncore.RMSprop, dict(eps=0), ValueError, ["eps"]),
    (nncore.RMSprop, dict(momentum=2.0), ValueError, ["momentum", "2.0"]),
    (nncore.RMSprop, dict(lr=float("-inf")), ValueError, ["lr"]),
])
def test_optimizer_rejects(cls, kwargs, exc, names):
    _raises(exc, names, cls, **kwargs)


def test_optimizer_accepts_edges():
    # the open/closed ends of each interval, and NumPy scalars
    nncore.SGD(0.0, momentum=0.0)
    nncore.SGD(np.float32(0.1), momentum=np.float64(0.99), nesterov=np.bool_(True))
    nncore.Adam(betas=(0.0, 0.0), eps=1e-300)
    nncore.RMSprop(alpha=0.0, momentum=0.0)
    assert isinstance(nncore.SGD(np.float32(0.5)).lr, float)


# ------------------------------------------------------------- entry points, bad input
def _net_and_data(loss, dtype="float32", n=24, seed=0):
    """A network already trained for one epoch (so its optimizer has state), with
    valid data for it."""
    rng = np.random.default_rng(seed)
    k = 2 if loss == "gaussian_nll" else 3
    layers = [nncore.Dense(5, 6, "relu"), nncore.Dense(6, output_width(loss, k))]
    net = nncore.Network(layers, loss=loss, dtype=dtype, seed=seed)
    X = rng.normal(size=(n, 5))
    y = make_targets(loss, n, k, rng)
    net.fit(X, y, epochs=1, batch_size=8, optimizer=nncore.Adam(1e-3))
    return net, X, y


X_CASES = [
    # (id, transform of a valid X, exception, words the message must hold)
    ("1d", lambda X: X[:, 0], ValueError, ["X", "2-D"]),
    ("3d", lambda X: X[None], ValueError, ["X", "2-D", "3-D"]),
    ("scalar", lambda X: 1.0, ValueError, ["X", "0-D"]),
    ("features", lambda X: X[:, :4], ValueError, ["X", "4 features", "5"]),
    ("features+", lambda X: np.hstack([X, X]), ValueError, ["X", "10 features"]),
    ("empty", lambda X: X[:0], ValueError, ["X", "empty"]),
    ("empty-list", lambda X: [], ValueError, ["X"]),
    ("nan", lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X),
     ValueError, ["X", "finite", "nan", "(1, 2)"]),
    ("inf", lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, -np.inf, X),
     ValueError, ["X", "finite", "inf"]),
    ("object", lambda X: X.astype(object), TypeError, ["X", "object"]),
    ("string", lambda X: X.astype(str), TypeError, ["X", "string"]),
    ("complex", lambda X: X.astype(complex), TypeError, ["X", "complex"]),
    ("none", lambda X: None, TypeError, ["X"]),
    ("ragged", lambda X: [[1.0, 2.0], [3.0]], ValueError, ["X"]),
    ("datetime", lambda X: np.zeros(X.shape, "datetime64[s]"), TypeError, ["X"]),
]


def _call(method, net, X, y, **kwargs):
    if method in ("forward", "predict"):
        return getattr(net, method)(X)
    if method == "fit":
        return net.fit(X, y, epochs=2, batch_size=8, **kwargs)
    return getattr(net, method)(X, y, **kwargs)


METHODS = ("fit", "forward", "predict", "loss", "loss_and_grads", "evaluate")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", X_CASES, ids=[c[0] for c in X_CASES])
def test_bad_X_rejected_and_network_unchanged(method, case):
    _, transform, exc, names = case
    net, X, y = _net_and_data("mse")
    before = state_of(net)
    _raises(exc, names, _call, method, net, transform(X), y)
    assert_same_state(before, state_of(net))


def _bad_y_cases(loss, y):
    n = len(y)
    cases = [
        ("rows", y[:-1], ValueError, ["y", f"({n}"]),
        ("none", None, TypeError, ["y"]),
        ("string", np.asarray(y).astype(str), TypeError, ["y", "string"]),
        ("complex", np.asarray(y).astype(complex), TypeError, ["y", "complex"]),
        ("3d", np.asarray(y)[None], ValueError, ["y", "shape"]),
    ]
    if loss == "cross_entropy":
        cases += [
            ("label-high", np.where(np.arange(n) == 3, 3, y), ValueError,
             ["y", "[0, 2]", "3", "index 3"]),
            ("label-negative", np.where(np.arange(n) == 5, -1, y), ValueError,
             ["y", "-1", "index 5"]),
            ("label-fraction", np.where(np.arange(n) == 2, 0.5, y), ValueError,
             ["y", "whole", "0.5", "index 2"]),
            ("label-nan", np.where(np.arange(n) == 2, np.nan, y), ValueError,
             ["y", "finite", "nan"]),
            ("probs-width", np.full((n, 2), 0.5), ValueError, ["y", "shape"]),
            ("probs-negative", np.eye(3)[y] - 0.1, ValueError, ["y", ">= 0"]),
            ("probs-inf", np.where(np.eye(3)[y] > 0, np.inf, 0.0), ValueError,
             ["y", "finite"]),
        ]
    else:
        bad = np.array(y, dtype=float)
        bad_nan, bad_inf = bad.copy(), bad.copy()
        bad_nan[1, 0], bad_inf[2, -1] = np.nan, np.inf
        cases += [
            ("width", np.hstack([y, y]), ValueError, ["y", "shape"]),
            ("nan", bad_nan, ValueError, ["y", "finite", "nan", "(1, 0)"]),
            ("inf", bad_inf, ValueError, ["y", "finite", "inf"]),
        ]
    if loss == "binary_cross_entropy":
        high, low = np.array(y), np.array(y)
        high[3, 1], low[0, 0] = 1.5, -0.25
        cases += [("above-1", high, ValueError, ["y", "[0, 1]", "1.5"]),
                  ("below-0", low, ValueError, ["y", "[0, 1]", "-0.25"])]
    if loss == "gaussian_nll":
        cases += [("full-width", np.hstack([y, y]), ValueError, ["y", "shape", "2)"])]
    return cases


def _all_bad_y():
    out = []
    for loss in LOSSES:
        _, _, y = _net_and_data(loss)
        for case in _bad_y_cases(loss, y):
            out.append(pytest.param(loss, case, id=f"{loss}-{case[0]}"))
    return out


@pytest.mark.parametrize("method", ("fit", "loss", "loss_and_grads", "evaluate"))
@pytest.mark.parametrize("loss, case", _all_bad_y())
def test_bad_y_rejected_and_network_unchanged(method, loss, case):
    _, bad_y, exc, names = case
    net, X, _ = _net_and_data(loss)
    before = state_of(net)
    _raises(exc, names, _call, method, net, X, bad_y)
    assert_same_state(before, state_of(net))


SW_CASES = [
    ("negative", lambda n: np.where(np.arange(n) == 4, -0.5, 1.0), ValueError,
     ["sample_weight", ">= 0", "-0.5", "index 4"]),
    ("all-zero", lambda n: np.zeros(n), ValueError, ["sample_weight", "all zero"]),
    ("short", lambda n: np.ones(n - 1), ValueError, ["sample_weight", "(24,)"]),
    ("long", lambda n: np.ones(n + 1), ValueError, ["sample_weight"]),
    ("2d", lambda n: np.ones((n, 1)), ValueError, ["sample_weight", "shape"]),
    ("nan", lambda n: np.where(np.arange(n) == 1, np.nan, 1.0), ValueError,
     ["sample_weight", "finite"]),
    ("inf", lambda n: np.where(np.arange(n) == 1, np.inf, 1.0), ValueError,
     ["sample_weight", "finite"]),
    ("string", lambda n: np.array(["1"] * n), TypeError, ["sample_weight", "string"]),
    ("complex", lambda n: np.ones(n, complex), TypeError, ["sample_weight", "complex"]),
    ("scalar", lambda n: 1.0, ValueError, ["sample_weight"]),
]


@pytest.mark.parametrize("method", ("fit", "loss", "loss_and_grads", "evaluate"))
@pytest.mark.parametrize("case", SW_CASES, ids=[c[0] for c in SW_CASES])
def test_bad_sample_weight_rejected_and_network_unchanged(method, case):
    _, make, exc, names = case
    net, X, y = _net_and_data("cross_entropy")
    before = state_of(net)
    _raises(exc, names, _call, method, net, X, y, sample_weight=make(len(X)))
    assert_same_state(before, state_of(net))


FIT_ARG_CASES = [
    (dict(epochs=-1), ValueError, ["epochs", "-1"]),
    (dict(epochs=1.0), TypeError, ["epochs", "1.0"]),
    (dict(epochs="3"), TypeError, ["epochs"]),
    (dict(epochs=None), TypeError, ["epochs"]),
    (dict(batch_size=0), ValueError, ["batch_size", "0"]),
    (dict(batch_size=-4), ValueError, ["batch_size", "-4"]),
    (dict(batch_size=8.0), TypeError, ["batch_size", "8.0"]),
    (dict(batch_size=True), TypeError, ["batch_size"]),
    (dict(shuffle="yes"), TypeError, ["shuffle", "'yes'"]),
    (dict(shuffle=None), TypeError, ["shuffle"]),
    (dict(optimizer="nadam"), ValueError, ["optimizer", "nadam"]),
    (dict(optimizer=0.01), TypeError, ["optimizer", "float"]),
    (dict(optimizer=nncore.Adam), TypeError, ["optimizer"]),
]


@pytest.mark.parametrize("kwargs, exc, names", FIT_ARG_CASES)
def test_bad_fit_arguments_rejected_and_network_unchanged(kwargs, exc, names):
    net, X, y = _net_and_data("mse")
    before = state_of(net)
    args = dict(epochs=2, batch_size=8)
    args.update(kwargs)
    _raises(exc, names, net.fit, X, y, **args)
    assert_same_state(before, state_of(net))


@pytest.mark.parametrize("attr, value, exc, names", [
    ("lr", -1.0, ValueError, ["lr"]),
    ("lr", float("nan"), ValueError, ["lr"]),
    ("betas", (0.9, 1.0), ValueError, ["betas[1]"]),
    ("eps", 0.0, ValueError, ["eps"]),
    ("step", -3, ValueError, ["step", "-3"]),
    ("step", 2.5, TypeError, ["step", "2.5"]),
])
def test_optimizer_changed_by_hand_is_checked_by_fit(attr, value, exc, names):
    net, X, y = _net_and_data("mse")
    opt = net.optimizer
    before = state_of(net)
    setattr(opt, attr, value)
    saved_value = getattr(opt, attr)
    _raises(exc, names, net.fit, X, y, epochs=1)
    setattr(opt, attr, before["step"] if attr == "step" else saved_value)
    assert_same_state(before, state_of(net))


def test_momentum_turned_on_after_steps_is_refused():
    net, X, y = _net_and_data("mse")
    sgd = nncore.SGD(1e-3)
    net.fit(X, y, optimizer=sgd)
    before = state_of(net)
    sgd.momentum = 0.9
    _raises(ValueError, ["momentum"], net.fit, X, y)
    assert_same_state(before, state_of(net))


def test_optimizer_of_another_network_is_refused():
    net, X, y = _net_and_data("mse")
    other, _, _ = _net_and_data("mse", seed=1)
    before, before_other = state_of(net), state_of(other)
    _raises(ValueError, ["optimizer", "another network"], net.fit, X, y,
            optimizer=other.optimizer)
    assert_same_state(before, state_of(net))
    assert_same_state(before_other, state_of(other))


def test_new_optimizer_untouched_when_input_is_bad():
    net, X, y = _net_and_data("mse")
    before = state_of(net)
    fresh = nncore.SGD(0.1, momentum=0.9)
    with pytest.raises(ValueError):
        net.fit(X[:, :2], y, optimizer=fresh)
    assert fresh.step == 0 and fresh.state_arrays() == [] and fresh._owner is None
    assert_same_state(before, state_of(net))
    # and the refused optimizer still works for this network afterwards
    net.fit(X, y, optimizer=fresh)
    assert fresh.step == 1   # 24 rows, batch_size 32: one batch


def test_nonfinite_parameters_refused_by_fit():
    net, X, y = _net_and_data("mse")
    net.params[2][1, 1] = np.nan
    before = state_of(net)
    _raises(ValueError, ["parameters", "NaN"], net.fit, X, y)
    assert_same_state(before, state_of(net))


def test_float64_overflow_into_float32_is_named():
    net, X, y = _net_and_data("mse")
    X = X.copy()
    X[2, 3] = 1e39
    message = _raises(ValueError, ["X", "overflows float32", "(2, 3)"], net.predict, X)
    assert "1e+39" in message


def test_optimizer_by_name():
    net, X, y = _net_and_data("mse")
    for name, cls in [("sgd", nncore.SGD), ("Adam", nncore.Adam),
                      ("adamw", nncore.AdamW), ("rmsprop", nncore.RMSprop)]:
        net.fit(X, y, optimizer=name)
        assert type(net.optimizer) is cls and net.optimizer.step == 1


# ------------------------------------------------------------ accepted and converted
def _results(dtype, X, y, sample_weight=None, loss="cross_entropy", shuffle=True,
             batch_size=8):
    """Everything the public API computes from (X, y): fit (2 epochs), then forward,
    predict, loss, loss_and_grads, evaluate."""
    k = 4 if loss == "gaussian_nll" else 3
    net = nncore.Network([nncore.Dense(5, 7, "tanh"), nncore.Dense(7, k)], loss=loss,
                         dtype=dtype, seed=3)
    history = net.fit(X, y, epochs=2, batch_size=batch_size, optimizer=nncore.Adam(1e-2),
                      shuffle=shuffle, sample_weight=sample_weight)
    value, grads = net.loss_and_grads(X, y, sample_weight)
    out = {"history": history.loss, "forward": net.forward(X), "predict": net.predict(X),
           "loss": net.loss(X, y, sample_weight), "lg": value, "grads": grads,
           "evaluate": net.evaluate(X, y, sample_weight), "params": net.params,
           "state": net.optimizer.state_arrays()}
    for key in ("forward", "predict"):
        assert out[key].dtype == np.dtype(dtype)
        assert out[key].flags.c_contiguous and out[key].flags.writeable
    return out


def _assert_same_results(a, b):
    assert_same_history(a["history"], b["history"])
    for key in ("forward", "predict"):
        assert a[key].dtype == b[key].dtype
        np.testing.assert_array_equal(a[key], b[key])
    assert a["loss"] == b["loss"] and a["lg"] == b["lg"]
    assert a["evaluate"] == b["evaluate"]
    for key in ("grads", "params", "state"):
        for p, q in zip(a[key], b[key]):
            assert p.dtype == q.dtype
            np.testing.assert_array_equal(p, q)


def _clean_data(n=21, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    labels = rng.integers(0, 3, size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    return X, labels, w


def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _noncontiguous(a):
    wide = np.zeros((a.shape[0] * 2,) + a.shape[1:] if a.ndim == 1 else
                    (a.shape[0] * 2, a.shape[1] * 3), dtype=a.dtype)
    view = wide[::2] if a.ndim == 1 else wide[::2, ::3]
    view[...] = a
    assert not view.flags.c_contiguous
    return view


CONVERSIONS = {
    "list": lambda a: a.tolist(),
    "readonly": _readonly,
    "noncontiguous": _noncontiguous,
    "fortran": np.asfortranarray,
    "bigendian": lambda a: a.astype(a.dtype.newbyteorder(">")),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("form", sorted(CONVERSIONS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_converted_inputs_give_identical_results(dtype, form, shuffle):
    """X, y and sample_weight in each accepted form: the same numbers as the clean
    (C-contiguous, native-endian, network-dtype) arrays. shuffle=False makes the
    kernel read X in place, shuffle=True gathers rows."""
    X, labels, w = _clean_data()
    X, w = X.astype(dtype), w.astype(dtype)
    clean = _results(dtype, X, labels.astype(np.intp), w, shuffle=shuffle)
    convert = CONVERSIONS[form]
    got = _results(dtype, convert(X), convert(labels), convert(w), shuffle=shuffle)
    _assert_same_results(clean, got)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_other_float_dtype_data_is_converted(dtype):
    """float64 data for a float32 network and the reverse (big-endian too)."""
    X, labels, w = _clean_data()
    other = np.float32 if dtype == "float64" else np.float64
    Xo, wo = X.astype(other), w.astype(other)
    clean = _results(dtype, Xo.astype(dtype), labels, wo.astype(dtype))
    _assert_same_results(clean, _results(dtype, Xo, labels, wo))
    big = np.dtype(other).newbyteorder(">")
    _assert_same_results(clean, _results(dtype, Xo.astype(big), labels, wo.astype(big)))


def test_integer_and_boolean_arrays_are_converted():
    rng = np.random.default_rng(1)
    Xi = rng.integers(-3, 4, size=(17, 5))
    labels = rng.integers(0, 3, size=17)
    clean = _results("float64", Xi.astype(np.float64), labels)
    for X in (Xi.astype(np.int8), Xi.astype(np.int32), Xi.astype(np.int64)):
        _assert_same_results(clean, _results("float64", X, labels))
    Xu = np.abs(Xi).astype(np.uint8)
    _assert_same_results(_results("float64", Xu.astype(np.float64), labels),
                         _results("float64", Xu, labels))
    # integer labels of any width and byte order
    for lab in (labels.astype(np.uint8), labels.astype(np.int16),
                labels.astype(">i8"), labels.tolist()):
        _assert_same_results(clean, _results("float64", Xi, lab))
    # booleans: as features, as binary targets, as labels and as weights
    Xb = Xi > 0
    yb = rng.integers(0, 2, size=(17, 3)).astype(bool)
    wb = np.arange(17) % 3 != 0
    a = _results("float32", Xb.astype(np.float32), yb.astype(np.float32),
                 wb.astype(np.float32), loss="binary_cross_entropy")
    b = _results("float32", Xb, yb, wb, loss="binary_cross_entropy")
    _assert_same_results(a, b)
    labels_b = labels % 2 == 1
    a = _results("float32", Xb, labels_b.astype(np.intp))
    b = _results("float32", Xb, labels_b)
    _assert_same_results(a, b)
    # integral float labels are labels
    a = _results("float32", Xb, labels)
    b = _results("float32", Xb, labels.astype(np.float64))
    _assert_same_results(a, b)


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "gaussian_nll"])
def test_one_dimensional_targets_for_a_single_output(loss):
    # (for cross_entropy a 1-D y means class labels)
    rng = np.random.default_rng(2)
    width = 2 if loss == "gaussian_nll" else 1
    net = nncore.Network([nncore.Dense(3, width)], loss=loss, seed=0)
    X = rng.normal(size=(9, 3))
    y = rng.uniform(size=9)
    assert net.loss(X, y) == net.loss(X, y.reshape(-1, 1))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("extra", [1, 100, 10**9])
def test_batch_size_larger_than_data_is_one_batch(loss, extra):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(13, 5))
    y = make_targets(loss, 13, 2 if loss == "gaussian_nll" else 3, rng)
    a = _results("float64", X, y, loss=loss, batch_size=13)
    b = _results("float64", X, y, loss=loss, batch_size=13 + extra)
    _assert_same_results(a, b)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-4)])
@pytest.mark.parametrize("loss", LOSSES)
def test_batch_of_one_matches_reference(loss, dtype, tol):
    """batch_size=1 (and a data set of one row): every step as the NumPy spec."""
    rng = np.random.default_rng(5)
    k = 2 if loss == "gaussian_nll" else 3
    acts = ["gelu", "identity"]
    for n in (1, 6):
        X = rng.normal(size=(n, 5))
        y = make_targets(loss, n, k, rng)
        net = nncore.Network([nncore.Dense(5, 4, acts[0]),
                              nncore.Dense(4, output_width(loss, k), acts[1])],
                             loss=loss, dtype=dtype, seed=1)
        params = [np.array(p, dtype=np.float64) for p in net.params]
        history = net.fit(X, y, epochs=3, batch_size=1, shuffle=False,
                          optimizer=nncore.SGD(0.05, momentum=0.5))
        ref_losses, _ = reference.fit(params, acts, loss, X, y, epochs=3, batch_size=1,
                                      optimizer=("sgd", {"lr": 0.05, "momentum": 0.5}))
        np.testing.assert_allclose(history.loss, ref_losses, rtol=tol)
        for p, q in zip(net.params, params):
            np.testing.assert_allclose(p, q, rtol=tol, atol=tol)
        assert net.optimizer.step == 3 * n


def test_predict_returns_new_arrays():
    net, X, _ = _net_and_data("cross_entropy")
    a = net.predict(X)
    b = net.predict(X[:3])
    assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(a[:3], b)
    f = net.forward(X)
    assert not np.shares_memory(f, a)
    Xc = np.ascontiguousarray(X, dtype=np.float32)
    assert not np.shares_memory(net.forward(Xc), Xc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_check_on_the_bits_agrees_with_numpy(dtype):
    # The kernels' bit test against np.isfinite, for every kind of value that could
    # fool it (the largest finite values, subnormals, signed zeros, both infinities,
    # quiet and signalling NaNs with payloads), alone and at block boundaries.
    info = np.finfo(dtype)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    signalling = np.array([0x7f800001 if dtype == np.float32 else 0x7ff0000000000001],
                          bits).view(dtype)[0]
    finite = [info.max, -info.max, info.tiny, info.smallest_subnormal, 0.0, -0.0, 1.0]
    bad = [np.inf, -np.inf, np.nan, -np.nan, signalling]
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 4095, 4096, 4097, 10_000):
        base = rng.choice(np.array(finite, dtype), size=n).astype(dtype)
        assert np.isfinite(base).all() and _validation._all_finite(base)
        for value in bad:
            for where in {0, n // 2, 4095, 4096, n - 1} & set(range(n)):
                X = base.copy()
                X[where] = value
                assert not _validation._all_finite(X), (n, where, value)
                assert not _validation._all_finite(X.reshape(1, -1))
    # Other layouts take NumPy's path, with the same verdicts.
    X = np.ones((50, 40), dtype)
    X[3, 8] = np.nan                                    # in every second column
    assert not _validation._all_finite(X[:, ::2])
    assert not _validation._all_finite(X.astype(X.dtype.newbyteorder(">")))
    assert _validation._all_finite(np.ones((50, 40), dtype)[:, ::3])
