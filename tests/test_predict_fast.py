"""forward and predict on a few rows: the compiled one-call path (``Predictor``).

An X that needs no conversion goes straight to the kernels; it must give the same
bits as the general path (``_check_X``, ``_kernels.forward``, ``output_transform``),
and every other X (another dtype, layout, shape, a NaN) the general path's result
or exception, with the network unchanged, a new array per call and the busy lock
as before, in every build of the kernels."""
import json
import threading
import time

import numpy as np
import pytest

import nncore
from nncore import _dispatch, _validation, reference

from _helpers import (
    LOSS_CASES,
    copy_params,
    loss_name,
    output_width,
    rel_err,
    run_child,
    seed_of,
)

BUILDS = _dispatch.available()
# float32 rounding grows with the terms per sum: looser for the 300-wide input.
TOL = {"float64": 1e-12, "float32": 2e-6}
TOL_SCALE = {"small": 1, "wide": 10}
MAX_ROWS = _dispatch.kernels.PREDICT_MAX_ROWS
# The output transforms (cross_entropy_probs differs from cross_entropy by its targets).
LOSSES = [case for case in LOSS_CASES if case != "cross_entropy_probs"]


def make_net(sizes, activation, case, dtype, seed=0):
    layers = [nncore.Dense(a, b, activation) for a, b in zip(sizes[:-1], sizes[1:])]
    net = nncore.Network(layers, loss=loss_name(case), dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for b in net.params[1::2]:
        b[...] = rng.normal(scale=0.5, size=b.shape)
    return net


def general(net, X, transform):
    """The general path, whatever X is."""
    out = net._forward_checked(net._check_X(X))
    if transform:
        _dispatch.kernels.output_transform(net._loss_code, out)
    return out


def fast(net, X, transform):
    """The one-call path, asserted to have taken X."""
    out = net._fast_output(X, transform)
    assert out is not None, "the one-call path declined a ready X"
    return out


# Small layers; and a 300-wide input whose product has two k-blocks and, at 64 rows,
# goes to BLAS in the builds that use it.
SIZES = {"small": (4, 7, 3), "wide": (300, 40, 3)}


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSSES)
@pytest.mark.parametrize("activation", sorted(nncore.ACTIVATIONS))
def test_same_bits_as_the_general_path_and_the_reference(activation, case, dtype, build):
    with _dispatch.use(build):
        for shape, sizes in SIZES.items():
            sizes = sizes[:-1] + (output_width(case, sizes[-1]),)
            net = make_net(sizes, activation, case, dtype, seed_of(activation, case))
            before = net._flat.copy()
            rng = np.random.default_rng(seed_of(shape, dtype))
            for rows in (1, 3, MAX_ROWS):
                X = rng.normal(scale=2.0, size=(rows, sizes[0])).astype(dtype)
                for transform, method in ((False, net.forward), (True, net.predict)):
                    want = general(net, X, transform)
                    got = fast(net, X, transform)
                    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
                    np.testing.assert_array_equal(got, want)
                    np.testing.assert_array_equal(method(X), want)
                out = reference.forward(copy_params(net), [activation] * 2,
                                        X.astype(np.float64))
                tol = TOL[dtype] * TOL_SCALE[shape]
                assert rel_err(net.forward(X), out) < tol
                pred = reference.predict_transform(loss_name(case), out)
                np.testing.assert_allclose(net.predict(X), pred, rtol=10 * tol,
                                           atol=10 * tol)
            np.testing.assert_array_equal(net._flat, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rows_one_by_one_as_in_the_batch_64_64_10(dtype):
    """The benchmark's network: a loop over rows gives each row's bits of the general
    path, whatever rows the Predictor's workspace was grown for before."""
    net = make_net((64, 64, 10), "relu", "cross_entropy", dtype)
    X = np.random.default_rng(5).normal(size=(40, 64)).astype(dtype)
    net.predict(X[:MAX_ROWS])                 # the workspace grows first
    for i in range(len(X)):
        np.testing.assert_array_equal(net.predict(X[i:i + 1]),
                                      general(net, X[i:i + 1], True))


def _messages(call):
    try:
        call()
    except (ValueError, TypeError) as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 5])
def test_bad_values_raise_as_the_general_path(rows, dtype):
    net = make_net((6, 5, 3), "tanh", "cross_entropy", dtype)
    before = net._flat.copy()
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (rows - 1, 5)):
            X = np.ones((rows, 6), dtype)
            X[where] = bad
            expected = _messages(lambda X=X: _validation.check_X(X, 6, np.dtype(dtype).type))
            assert expected is not None and expected[0] is ValueError
            assert f"index ({where[0]}, {where[1]})" in expected[1]
            for method in (net.forward, net.predict):
                assert _messages(lambda X=X, m=method: m(X)) == expected
            assert net._fast_output(X, True) is None
    np.testing.assert_array_equal(net._flat, before)
    assert not net._lock.locked()


@pytest.mark.parametrize("X", [
    np.ones(6, np.float32),                 # 1-D
    np.ones((0, 6), np.float32),            # no rows
    np.ones((2, 5), np.float32),            # wrong width
    np.ones((2, 7), np.float32),
    np.ones((1, 1, 6), np.float32),         # 3-D
    np.ones((1, 6), np.complex64),
    np.array([["a"] * 6]),
], ids=["1d", "0rows", "narrow", "wide", "3d", "complex", "str"])
def test_bad_shapes_and_kinds_raise_as_the_general_path(X):
    net = make_net((6, 5, 3), "relu", "cross_entropy", "float32")
    expected = _messages(lambda: _validation.check_X(X, 6, np.float32))
    assert expected is not None
    for method in (net.forward, net.predict):
        assert _messages(lambda m=method: m(X)) == expected
    assert not net._lock.locked()


def _unaligned(X):
    """A copy of X whose data starts one byte past an aligned address."""
    raw = np.zeros(X.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, X.dtype, count=X.size, offset=1).reshape(X.shape)
    out[...] = X
    return out


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("rows", [1, 4])
def test_other_inputs_take_the_general_path_and_convert(rows):
    net = make_net((6, 8, 3), "gelu", "mse", "float32")
    X = np.random.default_rng(1).normal(size=(rows, 6)).astype(np.float32)
    want = general(net, X, True)
    wide = np.zeros((rows, 12), np.float32)
    wide[:, ::2] = X
    variants = {
        "float64": X.astype(np.float64),
        "int": np.arange(rows * 6).reshape(rows, 6),
        "list": X.tolist(),
        "strided": wide[:, ::2],
        "fortran": np.asfortranarray(X),
        "swapped": X.astype(X.dtype.newbyteorder()),
        "unaligned": _unaligned(X),
        "subclass": X.view(_Sub),
        "read-only": X.copy(),
    }
    variants["read-only"].flags.writeable = False
    for name, V in variants.items():
        expected = general(net, V, True)
        got = net.predict(V)
        assert type(got) is np.ndarray and got.dtype == np.float32, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
        if name not in ("int",):
            np.testing.assert_array_equal(got, want, err_msg=name)
    # what the one-call path takes and declines
    assert net._fast_output(variants["read-only"], True) is not None
    for name in ("float64", "int", "list", "strided", "swapped", "unaligned", "subclass"):
        assert net._fast_output(variants[name], True) is None, name
    assert net._fast_output(np.zeros((MAX_ROWS + 1, 6), np.float32), True) is None
    assert not net._lock.locked()


def test_a_new_array_every_call_and_the_network_unchanged():
    net = make_net((5, 4, 3), "relu", "cross_entropy", "float32")
    X = np.random.default_rng(2).normal(size=(1, 5)).astype(np.float32)
    before = net._flat.copy()
    a, b = net.predict(X), net.predict(X)
    assert a is not b and not np.shares_memory(a, b) and a.flags.owndata
    assert not np.shares_memory(a, net._flat) and not np.shares_memory(a, X)
    np.testing.assert_array_equal(a, b)
    a[...] = -1
    np.testing.assert_array_equal(net.predict(X), b)
    c = net.forward(X)
    assert c is not net.forward(X)
    np.testing.assert_array_equal(net._flat, before)


def test_parameters_written_in_place_are_used():
    net = make_net((5, 4, 3), "identity", "mse", "float64")
    X = np.ones((2, 5))
    net.predict(X)
    net.params[3][...] = [1.0, 2.0, 3.0]
    net.params[2][...] = 0
    np.testing.assert_array_equal(net.predict(X), [[1.0, 2.0, 3.0]] * 2)


def test_a_busy_network_is_refused_and_the_lock_released():
    net = make_net((5, 4, 3), "relu", "cross_entropy", "float32")
    X = np.ones((1, 5), np.float32)
    net._lock.acquire()
    try:
        for method in (net.forward, net.predict):
            with pytest.raises(RuntimeError, match="in use by another thread"):
                method(X)
            # bad X is still reported first, as by the general path
            with pytest.raises(ValueError, match="features"):
                method(np.ones((1, 4), np.float32))
    finally:
        net._lock.release()
    net.predict(X)
    assert not net._lock.locked()


def test_the_predictor_follows_a_switch_of_build():
    net = make_net((9, 33, 4), "tanh", "binary_cross_entropy", "float32")
    X = np.random.default_rng(3).normal(size=(2, 9)).astype(np.float32)
    net.predict(X)
    default = type(net._predictor)
    assert default is _dispatch.kernels.Predictor
    for name in BUILDS:
        with _dispatch.use(name) as module:
            got = net.predict(X)
            assert type(net._predictor) is module.Predictor
            np.testing.assert_array_equal(got, general(net, X, True))
    net.predict(X)
    assert type(net._predictor) is default


@pytest.mark.slow
def test_threads_on_one_network_get_right_bits_or_refused():
    net = make_net((16, 32, 4), "relu", "cross_entropy", "float32")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(MAX_ROWS, 16)).astype(np.float32)
    want = general(net, X, True)
    outcomes = {"ok": 0, "refused": 0, "wrong": 0}
    count = threading.Lock()
    stop = time.perf_counter() + 1.0

    def hammer(seed):
        r = np.random.default_rng(seed)
        while time.perf_counter() < stop:
            rows = int(r.integers(1, MAX_ROWS + 1))
            try:
                ok = np.array_equal(net.predict(X[:rows]), want[:rows])
                key = "ok" if ok else "wrong"
            except RuntimeError as exc:
                assert "in use by another thread" in str(exc)
                key = "refused"
            with count:
                outcomes[key] += 1

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes["wrong"] == 0 and outcomes["ok"] > 0, outcomes
    assert not net._lock.locked()


@pytest.mark.slow
@pytest.mark.parametrize("build", BUILDS)
def test_first_call_in_a_fresh_process_loads_blas_where_the_general_path_would(build):
    """The Predictor loads BLAS for the products that go to it before its first pass,
    as the general path does: otherwise the kernels' own loop would take them, with
    other bits."""
    code = f"""
import json, numpy as np, nncore
from nncore import _dispatch
net = nncore.Network([nncore.Dense(300, 40, "tanh"), nncore.Dense(40, 3)], seed=0)
X = np.random.default_rng(0).normal(size=({MAX_ROWS}, 300)).astype(np.float32)
fast = net.forward(X)
general = net._forward_checked(net._check_X(X))
print(json.dumps({{"variant": _dispatch.variant, "same": bool(np.array_equal(fast, general))}}))
"""
    result = run_child(code, env={"NNCORE_KERNELS": build})
    assert result == {"variant": build, "same": True}, json.dumps(result)


def test_the_predictor_checks_what_its_pass_trusts():
    net = make_net((5, 4, 2), "relu", "gaussian_nll", "float32")
    P = _dispatch.kernels.Predictor
    args = (net._flat, net._sizes, net._acts, net._loss_code, net._lock)
    P(*args)
    with pytest.raises(ValueError, match="parameter array length"):
        P(net._flat[:-1], *args[1:])
    with pytest.raises(ValueError, match="float32 or float64"):
        P(net._flat.astype(np.int32), *args[1:])
    with pytest.raises(ValueError, match="one entry more"):
        P(net._flat, net._sizes[:-1], *args[2:])
    with pytest.raises(ValueError, match="bad loss code"):
        P(*args[:3], 99, net._lock)
    odd = make_net((5, 3), "relu", "mse", "float32")
    with pytest.raises(ValueError, match="bad loss code"):
        P(odd._flat, odd._sizes, odd._acts, net._loss_code, odd._lock)
