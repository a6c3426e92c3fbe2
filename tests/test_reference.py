"""Tests of nncore.reference against itself, against hand-computed values and
central finite differences, and (where installed) against PyTorch.

nncore.reference is the specification the compiled kernels are held to, so these
tests check the specification: every gradient agrees with central finite
differences in float64 (relative error < 1e-6), the losses agree with small cases
worked by hand, and the optimizers agree with their update rules written out for
single steps.
"""
import math
import warnings

import numpy as np
import pytest

from nncore import reference as ref

from _helpers import central_differences, make_targets, output_width

ACTIVATIONS = ref.ACTIVATIONS
LOSSES = ref.LOSSES
FD_STEP = 1e-6
FD_RTOL = 1e-6


def rel_error(a, b):
    """||a - b|| / max(||a||, ||b||), over whole arrays."""
    a, b = np.ravel(a), np.ravel(b)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else np.linalg.norm(a - b) / scale


def make_network(rng, sizes, dtype=np.float64):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.normal(size=(fan_in, fan_out)) / math.sqrt(fan_in)).astype(dtype))
        params.append((0.1 * rng.normal(size=fan_out)).astype(dtype))
    return params


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

def _sigmoid_naive(z):
    return 1.0 / (1.0 + np.exp(-z))


NAIVE = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_sigmoid_naive, lambda z: _sigmoid_naive(z) * (1 - _sigmoid_naive(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "elu": (lambda z: np.where(z > 0, z, np.exp(z) - 1), lambda z: np.where(z > 0, 1.0, np.exp(z))),
    "gelu": (
        lambda z: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))),
        None,  # checked by finite differences
    ),
    "softplus": (lambda z: np.log(1 + np.exp(z)), _sigmoid_naive),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_textbook_formula(name):
    z = np.linspace(-5, 5, 101)
    f, fprime = NAIVE[name]
    np.testing.assert_allclose(ref.activation(name, z), f(z), rtol=1e-12, atol=1e-15)
    if fprime is not None:
        np.testing.assert_allclose(ref.activation_derivative(name, z), fprime(z), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_finite_difference(name):
    # Stay away from the kinks of relu, leaky_relu and elu at 0.
    z = np.concatenate([np.linspace(-6, -0.01, 40), np.linspace(0.01, 6, 40)])
    h = FD_STEP
    fd = (ref.activation(name, z + h) - ref.activation(name, z - h)) / (2 * h)
    np.testing.assert_allclose(ref.activation_derivative(name, z), fd, rtol=FD_RTOL, atol=1e-9)


def test_activation_derivatives_at_zero():
    expected = {
        "identity": 1.0, "sigmoid": 0.25, "tanh": 1.0, "relu": 0.0,
        "leaky_relu": 0.01, "elu": 1.0, "gelu": 0.5, "softplus": 0.5,
    }
    assert set(expected) == set(ACTIVATIONS)
    for name, value in expected.items():
        assert ref.activation_derivative(name, np.zeros(3)) == pytest.approx([value] * 3, rel=1e-15)


def test_activation_hand_values():
    assert ref.activation("leaky_relu", np.array([-2.0, 0.0, 3.0])).tolist() == [-0.02, 0.0, 3.0]
    assert ref.activation("relu", np.array([-2.0, 0.0, 3.0])).tolist() == [0.0, 0.0, 3.0]
    assert ref.activation("elu", np.array([-1.0]))[0] == pytest.approx(math.exp(-1) - 1, rel=1e-15)
    assert ref.activation("softplus", np.array([0.0]))[0] == pytest.approx(math.log(2), rel=1e-15)
    u = math.sqrt(2 / math.pi) * (1 + 0.044715)
    assert ref.activation("gelu", np.array([1.0]))[0] == pytest.approx(0.5 * (1 + math.tanh(u)), rel=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_extremes_are_finite_and_warning_free(name):
    z = np.array([-1000.0, -50.0, -1e-300, 0.0, 1e-300, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = ref.activation(name, z)
        d = ref.activation_derivative(name, z)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))


def test_activation_extremes_keep_relative_precision():
    z = np.array([-50.0, 50.0])
    # sigmoid'(+-50) = e^-50 / (1 + e^-50)^2, tanh'(+-50) = sech(50)^2 ~ 4 e^-100
    np.testing.assert_allclose(ref.activation_derivative("sigmoid", z), math.exp(-50), rtol=1e-14)
    np.testing.assert_allclose(ref.activation_derivative("tanh", z), 4 * math.exp(-100), rtol=1e-14)
    np.testing.assert_allclose(ref.activation("sigmoid", np.array([-50.0])), math.exp(-50), rtol=1e-14)
    np.testing.assert_allclose(ref.activation("softplus", np.array([-50.0, 50.0])), [math.exp(-50), 50.0], rtol=1e-14)
    # gelu(-10) = -10 sigmoid(2u): 1 + tanh(u) would have lost most of its digits
    u = math.sqrt(2 / math.pi) * (-10 + 0.044715 * -1000)
    np.testing.assert_allclose(ref.activation("gelu", np.array([-10.0])), -10 / (1 + math.exp(-2 * u)), rtol=1e-14)
    assert ref.activation("softplus", np.array([1000.0]))[0] == 1000.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_keeps_dtype_and_shape(name, dtype):
    z = np.random.default_rng(0).normal(size=(3, 4)).astype(dtype)
    for result in (ref.activation(name, z), ref.activation_derivative(name, z)):
        assert result.dtype == dtype and result.shape == z.shape
    assert ref.activation(name, z) is not z


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="swish"):
        ref.activation("swish", np.zeros(2))


# ---------------------------------------------------------------------------
# Losses: hand-computed cases
# ---------------------------------------------------------------------------

def test_mse_hand_computed():
    out = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [3.0, 3.0]])
    # l = [(1 + 0) / 2, (0 + 4) / 2] = [0.5, 2]
    assert ref.loss("mse", out, t) == pytest.approx(1.25, rel=1e-15)
    assert ref.loss("mse", out, t, sample_weight=np.array([1.0, 3.0])) == pytest.approx(6.5 / 4, rel=1e-15)
    # dL/dout = 2 (out - t) / (k n)
    np.testing.assert_allclose(ref.loss_gradient("mse", out, t), [[0.5, 0.0], [0.0, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(
        ref.loss_gradient("mse", out, t, sample_weight=np.array([1.0, 3.0])),
        [[0.25, 0.0], [0.0, 1.5]], rtol=1e-15,
    )


def test_binary_cross_entropy_hand_computed():
    z = np.array([[0.0, 2.0]])
    t = np.array([[1.0, 0.0]])
    # z = 0: log 2 whatever t; z = 2, t = 0: -log(1 - sigmoid(2)) = log(1 + e^2)
    expected = 0.5 * (math.log(2) + math.log(1 + math.exp(2)))
    assert ref.loss("binary_cross_entropy", z, t) == pytest.approx(expected, rel=1e-15)
    s2 = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(
        ref.loss_gradient("binary_cross_entropy", z, t), [[(0.5 - 1) / 2, s2 / 2]], rtol=1e-15
    )
    # soft targets: -t log s - (1 - t) log(1 - s)
    z, t = np.array([[0.7]]), np.array([[0.3]])
    s = 1 / (1 + math.exp(-0.7))
    assert ref.loss("binary_cross_entropy", z, t) == pytest.approx(
        -0.3 * math.log(s) - 0.7 * math.log(1 - s), rel=1e-14
    )
    # extreme logits stay finite and exact
    z, t = np.array([[1000.0, -1000.0, 1000.0]]), np.array([[1.0, 0.0, 0.0]])
    assert ref.loss("binary_cross_entropy", z, t) == pytest.approx(1000 / 3, rel=1e-15)


def test_cross_entropy_hand_computed():
    assert ref.loss("cross_entropy", np.zeros((1, 3)), np.array([1])) == pytest.approx(math.log(3), rel=1e-15)
    z = np.array([[1.0, 2.0, 3.0]])
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert ref.loss("cross_entropy", z, np.array([2])) == pytest.approx(lse - 3, rel=1e-14)
    assert ref.loss("cross_entropy", z, np.array([[0.5, 0.5, 0.0]])) == pytest.approx(lse - 1.5, rel=1e-14)
    softmax = np.exp(z[0] - lse)
    np.testing.assert_allclose(ref.loss_gradient("cross_entropy", z, np.array([0])), [softmax - [1, 0, 0]], rtol=1e-14)
    # rows that do not sum to one: dl/dz = softmax * sum(t) - t
    t = np.array([[0.5, 0.25, 0.0]])
    np.testing.assert_allclose(ref.loss_gradient("cross_entropy", z, t), [softmax * 0.75 - t[0]], rtol=1e-14)
    # huge logits: log-sum-exp stable
    big = np.array([[1000.0, 0.0], [-1000.0, 0.0]])
    np.testing.assert_allclose(
        [ref.loss("cross_entropy", big[i:i + 1], np.array([1])) for i in range(2)], [1000.0, 0.0], atol=1e-300
    )


def test_cross_entropy_labels_equal_one_hot_rows():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4))
    labels = rng.integers(0, 4, size=6)
    one_hot = np.eye(4)[labels]
    w = rng.uniform(0.5, 2, size=6)
    assert ref.loss("cross_entropy", z, labels, w) == pytest.approx(ref.loss("cross_entropy", z, one_hot, w), rel=1e-14)
    np.testing.assert_allclose(
        ref.loss_gradient("cross_entropy", z, labels, w),
        ref.loss_gradient("cross_entropy", z, one_hot, w), rtol=1e-13, atol=1e-16,
    )


def test_gaussian_nll_hand_computed():
    # mu = 1, s = 0, t = 3: 0.5 (0 + 4) = 2;   mu = 0, s = log 4, t = 2: 0.5 (log 4 + 1)
    out = np.array([[1.0, 0.0, 0.0, math.log(4)]])
    t = np.array([[3.0, 2.0]])
    expected = 0.5 * (2 + 0.5 * (math.log(4) + 1))
    assert ref.loss("gaussian_nll", out, t) == pytest.approx(expected, rel=1e-15)
    # dmu = -(t - mu) e^-s / k, ds = 0.5 (1 - (t - mu)^2 e^-s) / k, k = 2
    np.testing.assert_allclose(
        ref.loss_gradient("gaussian_nll", out, t), [[-1.0, -0.25, -0.75, 0.0]], rtol=1e-15, atol=1e-16
    )


@pytest.mark.parametrize("name", LOSSES)
def test_integer_sample_weights_equal_repeated_rows(name):
    rng = np.random.default_rng(2)
    out = rng.normal(size=(4, output_width(name, 3)))
    y = make_targets(name, 4, 3, rng)
    w = np.array([2, 0, 1, 3])
    rows = np.repeat(np.arange(4), w)
    assert ref.loss(name, out, y, w) == pytest.approx(ref.loss(name, out[rows], y[rows]), rel=1e-13)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", LOSSES + ("cross_entropy_rows",))
def test_loss_gradient_matches_finite_difference(name, weighted):
    rng = np.random.default_rng(3)
    n, k = 5, 3
    if name == "cross_entropy_rows":
        name, y = "cross_entropy", rng.uniform(0, 1, size=(n, k))  # rows need not sum to 1
    else:
        y = make_targets(name, n, k, rng)
    out = rng.normal(size=(n, output_width(name, k)))
    w = rng.uniform(0.2, 3, size=n) if weighted else None
    (fd,) = central_differences(lambda: ref.loss(name, out, y, w), [out])
    assert rel_error(ref.loss_gradient(name, out, y, w), fd) < FD_RTOL


@pytest.mark.parametrize("name", LOSSES)
def test_loss_float32_in_float32_out(name):
    rng = np.random.default_rng(4)
    out = rng.normal(size=(5, output_width(name, 2))).astype(np.float32)
    y = make_targets(name, 5, 2, rng, dtype=np.float32)
    assert ref.loss_gradient(name, out, y).dtype == np.float32
    assert isinstance(ref.loss(name, out, y), float)


def test_loss_rejects_bad_inputs():
    out = np.zeros((3, 2))
    with pytest.raises(ValueError, match="shape"):
        ref.loss("mse", out, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="labels"):
        ref.loss("cross_entropy", out, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        ref.loss("cross_entropy", out, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="even"):
        ref.loss("gaussian_nll", np.zeros((3, 3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="sample_weight"):
        ref.loss("mse", out, out, sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="hinge"):
        ref.loss("hinge", out, out)


def test_predict_transform():
    rng = np.random.default_rng(5)
    out = rng.normal(size=(4, 6))
    probs = ref.predict_transform("cross_entropy", out)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(probs, np.exp(out) / np.exp(out).sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(ref.predict_transform("binary_cross_entropy", out), 1 / (1 + np.exp(-out)), rtol=1e-15)
    np.testing.assert_allclose(
        ref.predict_transform("gaussian_nll", out), np.hstack([out[:, :3], np.exp(out[:, 3:])]), rtol=1e-15
    )
    same = ref.predict_transform("mse", out)
    assert np.array_equal(same, out) and same is not out
    big = ref.predict_transform("cross_entropy", np.array([[1000.0, 0.0]]))
    np.testing.assert_array_equal(big, [[1.0, 0.0]])


# ---------------------------------------------------------------------------
# Forward and backward through a network
# ---------------------------------------------------------------------------

def test_forward_return_all():
    rng = np.random.default_rng(6)
    params = make_network(rng, [3, 5, 4, 2])
    acts = ["tanh", "relu", "identity"]
    X = rng.normal(size=(7, 3))
    Zs, As = ref.forward(params, acts, X, return_all=True)
    assert len(Zs) == 4 and len(As) == 4 and As[0] is X and Zs[0] is None
    for l, name in enumerate(acts, start=1):      # layer l maps A_{l-1} to A_l
        np.testing.assert_array_equal(Zs[l], As[l - 1] @ params[2 * l - 2] + params[2 * l - 1])
        np.testing.assert_array_equal(As[l], ref.activation(name, Zs[l]))
    np.testing.assert_array_equal(ref.forward(params, acts, X), As[-1])
    assert As[-1].shape == (7, 2)


def test_forward_rejects_bad_network():
    rng = np.random.default_rng(7)
    params = make_network(rng, [3, 4, 2])
    with pytest.raises(ValueError, match="fan_in"):
        ref.forward([params[0], params[1], params[0], params[1]], ["relu", "relu"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X"):
        ref.forward(params, ["relu", "identity"], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2 arrays"):
        ref.forward(params, ["relu"], np.zeros((2, 3)))


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_loss_and_grads_matches_finite_difference(act, loss_name):
    rng = np.random.default_rng(8)
    n, k = 6, 3
    X = rng.normal(size=(n, 3))
    y = make_targets(loss_name, n, k, rng)
    w = rng.uniform(0.2, 3, size=n)
    # The activation under test in the hidden layers, then on the output layer too.
    for acts in ([act, act, "identity"], [act, act, act]):
        for sample_weight in (None, w):
            params = make_network(rng, [3, 4, 4, output_width(loss_name, k)])
            value, grads = ref.loss_and_grads(params, acts, loss_name, X, y, sample_weight)
            assert value == pytest.approx(ref.loss(loss_name, ref.forward(params, acts, X), y, sample_weight), rel=1e-15)
            fd = central_differences(
                lambda: ref.loss(loss_name, ref.forward(params, acts, X), y, sample_weight), params
            )
            for g, g_fd, p in zip(grads, fd, params):
                assert g.shape == p.shape
                assert rel_error(g, g_fd) < FD_RTOL, (acts, sample_weight is not None)


def test_loss_and_grads_cross_entropy_probability_rows():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(5, 3))
    y = rng.uniform(0, 1, size=(5, 4))
    params = make_network(rng, [3, 6, 4])
    acts = ["gelu", "identity"]
    _, grads = ref.loss_and_grads(params, acts, "cross_entropy", X, y)
    fd = central_differences(lambda: ref.loss("cross_entropy", ref.forward(params, acts, X), y), params)
    for g, g_fd in zip(grads, fd):
        assert rel_error(g, g_fd) < FD_RTOL


@pytest.mark.parametrize("loss_name", LOSSES)
def test_loss_and_grads_float32(loss_name):
    rng = np.random.default_rng(10)
    params = make_network(rng, [3, 4, output_width(loss_name, 2)], dtype=np.float32)
    X = rng.normal(size=(5, 3)).astype(np.float32)
    y = make_targets(loss_name, 5, 2, rng, dtype=np.float32)
    _, grads = ref.loss_and_grads(params, ["elu", "identity"], loss_name, X, y)
    assert all(g.dtype == np.float32 for g in grads)
    assert ref.forward(params, ["elu", "identity"], X).dtype == np.float32


# ---------------------------------------------------------------------------
# Optimizers: single steps written out by hand
# ---------------------------------------------------------------------------

def run_steps(name, hyper, p0, grads_seq):
    """Run optimizer_step on a one-element parameter array; return its values after each step."""
    p = np.array([p0])
    state = ref.init_optimizer_state([p])
    values = []
    for g in grads_seq:
        ref.optimizer_step(name, hyper, [p], [np.array([g])], state)
        values.append(p[0])
    assert state["step"] == len(grads_seq)
    return values


def test_sgd_steps():
    lr, mu, wd = 0.1, 0.9, 0.01
    assert run_steps("sgd", {"lr": lr}, 1.0, [0.5]) == pytest.approx([1 - 0.05], rel=1e-15)
    # weight decay: g = grad + wd p
    assert run_steps("sgd", {"lr": lr, "weight_decay": wd}, 1.0, [0.5]) == pytest.approx([1 - lr * 0.51], rel=1e-15)
    # momentum: buf = g1; then buf = mu buf + g2
    p1 = 1.0 - lr * 0.5
    buf = mu * 0.5 + (-0.2)
    p2 = p1 - lr * buf
    assert run_steps("sgd", {"lr": lr, "momentum": mu}, 1.0, [0.5, -0.2]) == pytest.approx([p1, p2], rel=1e-15)
    # Nesterov with weight decay: g = grad + wd p; buf as above; step with g + mu buf
    g1 = 0.5 + wd * 1.0
    p1 = 1.0 - lr * (g1 + mu * g1)
    g2 = -0.2 + wd * p1
    buf = mu * g1 + g2
    p2 = p1 - lr * (g2 + mu * buf)
    hyper = {"lr": lr, "momentum": mu, "nesterov": True, "weight_decay": wd}
    assert run_steps("sgd", hyper, 1.0, [0.5, -0.2]) == pytest.approx([p1, p2], rel=1e-15)


def _adam_by_hand(p, grads, lr, b1, b2, eps, wd, decoupled):
    m = v = 0.0
    values = []
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
            g = grad
        else:
            g = grad + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        values.append(p)
    return values


def test_adam_steps():
    # first step: m/(1 - b1) = g and v/(1 - b2) = g^2, so p moves by lr g / (|g| + eps)
    assert run_steps("adam", {"lr": 0.1}, 1.0, [0.5]) == pytest.approx([1 - 0.1 * 0.5 / (0.5 + 1e-8)], rel=1e-15)
    grads = [0.5, -0.2, 0.3]
    hyper = {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}
    expected = _adam_by_hand(1.0, grads, 0.01, 0.8, 0.99, 1e-6, 0.1, decoupled=False)
    assert run_steps("adam", hyper, 1.0, grads) == pytest.approx(expected, rel=1e-14)


def test_adamw_steps():
    # first step: p (1 - lr wd), then the Adam move
    assert run_steps("adamw", {"lr": 0.1, "weight_decay": 0.5}, 1.0, [0.5]) == pytest.approx(
        [0.95 - 0.1 * 0.5 / (0.5 + 1e-8)], rel=1e-15
    )
    grads = [0.5, -0.2, 0.3]
    hyper = {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}
    expected = _adam_by_hand(1.0, grads, 0.01, 0.8, 0.99, 1e-6, 0.1, decoupled=True)
    assert run_steps("adamw", hyper, 1.0, grads) == pytest.approx(expected, rel=1e-14)
    # PyTorch's default weight decay for AdamW is 1e-2
    assert run_steps("adamw", {"lr": 0.1}, 1.0, [0.0]) == pytest.approx([1 - 0.1 * 0.01], rel=1e-15)


def test_rmsprop_steps():
    lr, alpha, eps = 0.01, 0.9, 1e-8
    # without momentum: v = (1 - alpha) g^2, p -= lr g / (sqrt(v) + eps)
    v = 0.1 * 0.25
    assert run_steps("rmsprop", {"lr": lr, "alpha": alpha}, 1.0, [0.5]) == pytest.approx(
        [1 - lr * 0.5 / (math.sqrt(v) + eps)], rel=1e-15
    )
    # with momentum and weight decay
    mu, wd = 0.5, 0.1
    p, v, buf, values = 1.0, 0.0, 0.0, []
    for grad in [0.5, -0.2]:
        g = grad + wd * p
        v = alpha * v + (1 - alpha) * g * g
        buf = mu * buf + g / (math.sqrt(v) + eps)
        p = p - lr * buf
        values.append(p)
    hyper = {"lr": lr, "alpha": alpha, "momentum": mu, "weight_decay": wd}
    assert run_steps("rmsprop", hyper, 1.0, [0.5, -0.2]) == pytest.approx(values, rel=1e-15)


@pytest.mark.parametrize("name", ref.OPTIMIZERS)
def test_optimizer_updates_in_place_and_keeps_float32(name):
    rng = np.random.default_rng(11)
    params = make_network(rng, [3, 2], dtype=np.float32)
    grads = [np.ones_like(p) for p in params]
    state = ref.init_optimizer_state(params)
    before = [p.copy() for p in params]
    ids = [id(p) for p in params]
    # a NumPy float64 hyperparameter must not turn float32 updates into float64 ones
    ref.optimizer_step(name, {"lr": np.float64(0.1), "momentum": 0.9}, params, grads, state)
    assert [id(p) for p in params] == ids
    assert all(p.dtype == np.float32 for p in params)
    assert all(not np.array_equal(p, b) for p, b in zip(params, before))
    assert state["step"] == 1


def test_optimizer_rejects_bad_hyper():
    p = [np.zeros(2)]
    state = ref.init_optimizer_state(p)
    with pytest.raises(ValueError, match="learning_rate"):
        ref.optimizer_step("adam", {"learning_rate": 0.1}, p, [np.zeros(2)], state)
    with pytest.raises(ValueError, match="nesterov"):
        ref.optimizer_step("sgd", {"lr": 0.1, "nesterov": True}, p, [np.zeros(2)], state)
    with pytest.raises(ValueError, match="betas"):
        ref.optimizer_step("adam", {"betas": (0.9, 1.0)}, p, [np.zeros(2)], state)
    with pytest.raises(ValueError, match="lbfgs"):
        ref.optimizer_step("lbfgs", {}, p, [np.zeros(2)], state)
    assert state["step"] == 0


OPTIMIZER_CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.3}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "momentum": 0.7, "weight_decay": 0.05}),
    ("rprop", {"lr": 0.01}),
    ("rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
]


@pytest.mark.parametrize("name, hyper", OPTIMIZER_CASES)
def test_optimizer_matches_torch(name, hyper):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    params = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    grads_seq = [[rng.normal(size=p.shape) for p in params] for _ in range(6)]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    th = dict(hyper)
    if "betas" in th:
        th["betas"] = tuple(th["betas"])
    torch_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                 "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
                 "rprop": torch.optim.Rprop}[name]
    topt = torch_cls(tparams, foreach=False, **th)
    state = ref.init_optimizer_state(params)
    for grads in grads_seq:
        ref.optimizer_step(name, hyper, params, grads, state)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g)
        topt.step()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


TORCH_LOSS_K = 3


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_loss_and_grads_matches_torch(act, loss_name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    torch_act = {
        "identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01), "elu": F.elu,
        "gelu": lambda z: F.gelu(z, approximate="tanh"), "softplus": F.softplus,
    }[act]
    rng = np.random.default_rng(13)
    n, k = 7, TORCH_LOSS_K
    X = rng.normal(size=(n, 3))
    y = make_targets(loss_name, n, k, rng)
    w = rng.uniform(0.2, 3, size=n)
    params = make_network(rng, [3, 5, output_width(loss_name, k)])
    acts = [act, act]
    value, grads = ref.loss_and_grads(params, acts, loss_name, X, y, w)

    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    out = torch.tensor(X)
    for l in range(2):
        out = torch_act(out @ tparams[2 * l] + tparams[2 * l + 1])
    ty = torch.tensor(y)
    if loss_name == "mse":
        per_sample = ((out - ty) ** 2).mean(dim=1)
    elif loss_name == "binary_cross_entropy":
        per_sample = F.binary_cross_entropy_with_logits(out, ty, reduction="none").mean(dim=1)
    elif loss_name == "cross_entropy":
        per_sample = F.cross_entropy(out, ty, reduction="none")
    elif loss_name == "mae":
        per_sample = F.l1_loss(out, ty, reduction="none").mean(dim=1)
    elif loss_name == "huber":
        per_sample = F.huber_loss(out, ty, reduction="none", delta=1.0).mean(dim=1)
    elif loss_name == "poisson":
        per_sample = F.poisson_nll_loss(out, ty, log_input=True, full=False,
                                        reduction="none").mean(dim=1)
    elif loss_name == "quantile":      # no such loss in PyTorch: its formula, q = 0.5
        d = ty - out
        per_sample = torch.maximum(0.5 * d, -0.5 * d).mean(dim=1)
    else:
        mu, s = out[:, :k], out[:, k:]
        per_sample = (0.5 * (s + (ty - mu) ** 2 * torch.exp(-s))).mean(dim=1)
    tw = torch.tensor(w)
    tloss = (tw * per_sample).sum() / tw.sum()
    tloss.backward()
    assert value == pytest.approx(tloss.item(), rel=1e-12)
    for g, tp in zip(grads, tparams):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

def _fit_by_hand(params, acts, loss_name, X, y, epochs, batch_size, optimizer, orders=None, w=None):
    name, hyper = optimizer
    state = ref.init_optimizer_state(params)
    losses = []
    n = X.shape[0]
    for e in range(epochs):
        order = np.arange(n) if orders is None else orders[e]
        total, weight = 0.0, 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            wb = None if w is None else w[rows]
            value, grads = ref.loss_and_grads(params, acts, loss_name, X[rows], y[rows], wb)
            ref.optimizer_step(name, hyper, params, grads, state)
            bw = len(rows) if w is None else wb.sum()
            total += value * bw
            weight += bw
        losses.append(total / weight)
    return losses, state


@pytest.mark.parametrize("use_orders", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_matches_manual_loop(weighted, use_orders):
    rng = np.random.default_rng(14)
    n = 10  # batch_size 4: batches of 4, 4 and a partial 2
    X = rng.normal(size=(n, 3))
    y = rng.integers(0, 3, size=n)
    w = rng.uniform(0.1, 2, size=n) if weighted else None
    orders = [rng.permutation(n) for _ in range(3)] if use_orders else None
    params = make_network(rng, [3, 4, 3])
    params_by_hand = [p.copy() for p in params]
    acts = ["relu", "identity"]
    opt = ("sgd", {"lr": 0.1, "momentum": 0.9})
    losses, state = ref.fit(params, acts, "cross_entropy", X, y, epochs=3, batch_size=4,
                            optimizer=opt, orders=orders, sample_weight=w)
    expected, _ = _fit_by_hand(params_by_hand, acts, "cross_entropy", X, y, 3, 4, opt, orders, w)
    assert state["step"] == 9
    assert losses == pytest.approx(expected, rel=1e-14)
    for p, q in zip(params, params_by_hand):
        np.testing.assert_allclose(p, q, rtol=1e-14)


def test_fit_epoch_loss_is_weighted_by_batch_weight():
    # lr = 0: parameters never move, so the epoch loss is the full-data weighted loss
    rng = np.random.default_rng(15)
    X = rng.normal(size=(9, 2))
    y = rng.normal(size=(9, 1))
    w = rng.uniform(0.1, 2, size=9)
    params = make_network(rng, [2, 3, 1])
    acts = ["tanh", "identity"]
    full = ref.loss("mse", ref.forward(params, acts, X), y, w)
    losses, _ = ref.fit(params, acts, "mse", X, y, epochs=2, batch_size=4,
                        optimizer=("sgd", {"lr": 0.0}), sample_weight=w)
    assert losses == pytest.approx([full, full], rel=1e-14)


def test_fit_continues_from_state():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(12, 3))
    y = rng.normal(size=(12, 2))
    orders = [rng.permutation(12) for _ in range(2)]
    params = make_network(rng, [3, 4, 2])
    split = [p.copy() for p in params]
    acts = ["softplus", "identity"]
    opt = ("adam", {"lr": 0.01})
    losses, state = ref.fit(params, acts, "mse", X, y, epochs=2, batch_size=5, optimizer=opt, orders=orders)
    first, s = ref.fit(split, acts, "mse", X, y, epochs=1, batch_size=5, optimizer=opt, orders=orders[:1])
    second, s = ref.fit(split, acts, "mse", X, y, epochs=1, batch_size=5, optimizer=opt, orders=orders[1:], state=s)
    assert s["step"] == state["step"] == 6
    assert first + second == pytest.approx(losses, rel=1e-15)
    for p, q in zip(params, split):
        np.testing.assert_array_equal(p, q)


def test_fit_skips_zero_weight_batch():
    X = np.arange(8.0).reshape(4, 2)
    y = np.ones((4, 1))
    w = np.array([0.0, 0.0, 1.0, 1.0])
    params = [np.zeros((2, 1)), np.zeros(1)]
    losses, state = ref.fit(params, ["identity"], "mse", X, y, batch_size=2,
                            optimizer=("sgd", {"lr": 0.0}), sample_weight=w)
    assert state["step"] == 1     # the all-zero first batch takes no step
    assert losses == [pytest.approx(1.0)]


def test_fit_reduces_loss():
    rng = np.random.default_rng(17)
    X = rng.normal(size=(64, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    params = make_network(rng, [2, 16, 2])
    losses, _ = ref.fit(params, ["tanh", "identity"], "cross_entropy", X, y, epochs=30,
                        batch_size=16, optimizer=("adam", {"lr": 0.03}))
    assert losses[-1] < 0.5 * losses[0]


def test_fit_rejects_bad_orders():
    rng = np.random.default_rng(18)
    params = make_network(rng, [2, 1])
    X, y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="permutation"):
        ref.fit(params, ["identity"], "mse", X, y, epochs=1, orders=[np.array([0, 1, 1, 2])])
    with pytest.raises(ValueError, match="one permutation per epoch"):
        ref.fit(params, ["identity"], "mse", X, y, epochs=2, orders=[np.arange(4)])


def test_no_runtime_warnings_on_large_logits():
    z = np.array([[800.0, -800.0], [-800.0, 800.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref.loss_gradient("cross_entropy", z, np.array([0, 0]))
        ref.loss_gradient("binary_cross_entropy", z, np.ones((2, 2)))
        ref.predict_transform("cross_entropy", z)
        ref.predict_transform("binary_cross_entropy", z)
