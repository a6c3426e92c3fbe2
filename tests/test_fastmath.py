"""The float32 activations run on vectorized approximations of exp, tanh and sigmoid
(nncore/csrc/math_f32.h); they must stay within a few float32 ulp of the exact values.
The float64 tanh, sigmoid, elu and softplus run on vectorized functions of their own, which
must keep libm's accuracy.

They are reached through the real code path: a 1-1 Dense layer with weight 1 and bias
0 outputs f(x) for each input x, in every compiled build this CPU runs.
"""
import numpy as np
import pytest

import nncore
from nncore import _dispatch

BUILDS = _dispatch.available()

# Inputs: a dense sweep, the region where tanh switches formula, tiny and huge values.
X = np.concatenate([
    np.linspace(-12, 12, 200001),
    np.linspace(-0.45, 0.45, 20001),
    np.geomspace(1e-30, 1e-3, 2000), -np.geomspace(1e-30, 1e-3, 2000),
    np.array([0.0, -0.0, 20.0, -20.0, 50.0, -50.0, 88.0, -88.0, 100.0, -100.0]),
]).astype(np.float32)

EXACT = {
    "tanh": np.tanh,
    "sigmoid": lambda x: np.exp(-np.logaddexp(0.0, -x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
}


def _unit_net(activation, dtype, weight=1.0):
    """A 1-1 Dense layer with this weight and bias 0: f(weight * x) for each input x."""
    net = nncore.Network([nncore.Dense(1, 1, activation)], dtype=dtype)
    net.params[0][...] = weight
    net.params[1][...] = 0
    return net


def _activate(build, activation, x, dtype="float32"):
    with _dispatch.use(build):
        return _unit_net(activation, dtype).forward(x.reshape(-1, 1)).ravel()


def _assert_in_range(build, activation, x, got, dtype):
    """tanh is odd (exactly) and never beyond 1; sigmoid stays in [0, 1], elu above
    -1, softplus at or above 0."""
    if activation == "tanh":
        assert np.array_equal(_activate(build, "tanh", -x, dtype), -got.astype(dtype))
        assert np.all(np.abs(got) <= 1)
    elif activation == "sigmoid":
        assert np.all((got >= 0) & (got <= 1))
    elif activation == "elu":
        assert np.all(got >= -1)
    else:
        assert np.all(got >= 0)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "elu", "softplus"])
def test_fast_activation_within_a_few_ulp(build, activation):
    got = _activate(build, activation, X).astype(np.float64)
    exact = EXACT[activation](X.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    # Sigmoid's smallest outputs (x < -87) fall below float32's normal range, where the
    # approximation clamps: there only the absolute error matters.
    err = np.abs(got - exact)
    tiny = np.abs(exact) < 1e-37
    assert np.all(err[~tiny] <= 4 * ulp[~tiny]), float(np.max(err[~tiny] / ulp[~tiny]))
    assert np.all(err[tiny] < 1e-37)
    assert np.all(np.isfinite(got))
    _assert_in_range(build, activation, X, got, "float32")


@pytest.mark.parametrize("build", BUILDS)
def test_cross_entropy_float32_matches_float64(build):
    """The float32 softmax uses the fast exp; the loss must match float64 closely."""
    rng = np.random.default_rng(3)
    X = rng.normal(scale=3.0, size=(500, 20))
    y = rng.integers(0, 7, 500)
    layers = [nncore.Dense(20, 7)]
    net64 = nncore.Network(layers, loss="cross_entropy", dtype="float64", seed=1)
    net32 = nncore.Network(layers, loss="cross_entropy", dtype="float32", seed=1)
    with _dispatch.use(build):
        l32, g32 = net32.loss_and_grads(X, y)
    l64, g64 = net64.loss_and_grads(X.astype(np.float32).astype(np.float64), y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g32, g64):
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max())


# The float64 tanh and sigmoid: a dense sweep, tanh's switch between its two formulas
# at 0.35 and its clamp at 22, sigmoid's underflow into subnormals (below -708) and
# its clamp at -746, tiny (and subnormal) and huge values.
X64 = np.concatenate([
    np.linspace(-30, 30, 200001), np.linspace(-800, 800, 20001),
    np.linspace(-0.5, 0.5, 20001), np.linspace(0.349, 0.351, 2001),
    np.linspace(-746.5, -700, 2001),
    np.geomspace(1e-320, 1e-3, 4000), -np.geomspace(1e-320, 1e-3, 4000),
    np.array([0.0, -0.0, 21.9, 22.0, 22.1, -22.0, 44.0, 745.1, -745.1, 1e300, -1e300]),
])
EXACT64 = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
}


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63,
                    reason="needs an extended-precision long double for the exact values")
@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("activation, bound", [("tanh", 2.0), ("sigmoid", 2.5),
                                               ("elu", 1.5), ("softplus", 2.5)])
def test_float64_activation_keeps_libm_accuracy(build, activation, bound):
    """Within a couple of float64 ulp of the function in extended precision,
    everywhere: each bound is about the accuracy of libm's own function (or of the
    same formula on libm's exp, expm1 and log1p). tanh is odd and never beyond 1;
    sigmoid stays in [0, 1], elu above -1, softplus at or above 0."""
    with np.errstate(over="ignore"):
        exact = EXACT64[activation](X64.astype(np.longdouble))
    got = _activate(build, activation, X64, "float64")
    ulp = np.spacing(np.abs(exact).astype(np.float64)).astype(np.longdouble)
    err = np.abs(got.astype(np.longdouble) - exact) / ulp
    assert float(err.max()) <= bound, float(err.max())
    _assert_in_range(build, activation, X64, got, "float64")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "elu", "softplus"])
def test_nan_stays_nan(build, dtype, activation):
    """A NaN pre-activation (from weights gone bad) must come out NaN, not as a finite
    value that hides the divergence: tanh's clamp of |x| once turned NaN into 1."""
    with _dispatch.use(build):
        out = _unit_net(activation, dtype, np.nan).forward(
            np.linspace(-3, 3, 37).reshape(-1, 1))   # full and partial vectors
    assert np.isnan(out).all()


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("dtype, activation, regions", [
    ("float32", "tanh", [(-0.45, 0.45), (-12.0, 12.0), (0.39, 0.41), (8.9, 9.1)]),
    ("float64", "tanh", [(-0.5, 0.5), (-30.0, 30.0), (0.345, 0.355), (21.9, 22.1)]),
    ("float64", "sigmoid", [(-1.0, 1.0), (-40.0, 40.0), (-746.5, -700.0)]),
    ("float32", "elu", [(-1.0, 1.0), (-45.0, 5.0), (-0.01, 0.01)]),
    ("float64", "elu", [(-1.0, 1.0), (-45.0, 5.0), (-0.01, 0.01)]),
    ("float32", "softplus", [(-1.0, 1.0), (-50.0, 50.0), (-800.0, -700.0)]),
    ("float64", "softplus", [(-1.0, 1.0), (-50.0, 50.0), (-800.0, -700.0)]),
])
def test_vector_activation_equals_scalar(build, dtype, activation, regions):
    """tanh (and the float64 sigmoid, elu and softplus) run whole vectors at a time
    (nn_tanhf_array, nn_tanh_array, nn_sigmoid_array; elu's and softplus's loops as
    the compiler vectorizes them) and the last few values of an array, fewer than a
    vector, through the scalar function: both must compute the same operations in the
    same order, so that a value gives the same bits in either place. 256 values at
    once (whole vectors on every build), then each alone (the scalar function), over
    the regions of each formula, the switches between them and the clamps, with a -0
    (whose sign both keep)."""
    with _dispatch.use(build):
        net = _unit_net(activation, dtype)
        for lo, hi in regions:
            values = np.linspace(lo, hi, 256).astype(dtype).reshape(-1, 1)
            values[11] = -0.0
            whole = net.forward(values)
            alone = np.concatenate([net.forward(values[i:i + 1]) for i in range(256)])
            bits = np.uint32 if dtype == "float32" else np.uint64
            np.testing.assert_array_equal(whole.view(bits), alone.view(bits))
