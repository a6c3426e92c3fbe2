"""Gradients of every activation x every loss: the compiled backward pass agrees with
central finite differences of the network's own loss (float64, relative error
< 1e-6), with ``nncore.reference.loss_and_grads`` (< 1e-10), and the float32 network
agrees with the float64 one (< 1e-4)."""
import numpy as np
import pytest

import nncore
from nncore import reference

from _helpers import (
    LOSS_CASES,
    central_differences,
    copy_params,
    loss_name,
    make_data,
    make_sample_weight,
    output_width,
    rel_err,
    seed_of,
)

N_IN, HIDDEN, N_ROWS = 3, (6, 5), 9
K = {"mse": 3, "binary_cross_entropy": 3, "cross_entropy": 4, "cross_entropy_probs": 4,
     "gaussian_nll": 2, "mae": 3, "huber": 3, "poisson": 3, "quantile": 3}


def build(activation, case, dtype, seed, last_activation=None):
    """3 -> 6 -> 5 -> out: ``activation`` in the hidden layers and, unless
    ``last_activation`` is given, in the output layer too (so that the fused loss
    gradient goes through every activation's derivative)."""
    width = output_width(case, K[case])
    sizes = (N_IN,) + HIDDEN + (width,)
    acts = [activation] * len(HIDDEN) + [last_activation or activation]
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    return nncore.Network(layers, loss=loss_name(case), dtype=dtype, seed=seed), acts


def case_data(case, weighted, seed):
    rng = np.random.default_rng(seed)
    X, y = make_data(case, N_ROWS, N_IN, K[case], rng)
    w = make_sample_weight(N_ROWS, rng) if weighted else None
    return X, y, w


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", sorted(nncore.ACTIVATIONS))
def test_gradients(activation, case, weighted):
    seed = seed_of(activation, case, weighted)
    X, y, w = case_data(case, weighted, seed)
    net, acts = build(activation, case, "float64", seed)
    # float32: same seed, so the same initial weights rounded to float32.
    net32, _ = build(activation, case, "float32", seed)
    for p32, p64 in zip(net32.params, net.params):
        np.testing.assert_array_equal(p32, p64.astype(np.float32))
    # Biases start at zero; move them so that every bias path is exercised.
    rng = np.random.default_rng(seed + 1)
    for b64, b32 in zip(net.params[1::2], net32.params[1::2]):
        b64[...] = rng.normal(scale=0.3, size=b64.shape)
        b32[...] = b64

    value, grads = net.loss_and_grads(X, y, sample_weight=w)
    assert [g.shape for g in grads] == [p.shape for p in net.params]
    assert all(g.dtype == np.float64 for g in grads)

    # 1. Central finite differences of the network's own loss.
    numeric = central_differences(lambda: net.loss(X, y, sample_weight=w), net.params)
    assert rel_err(grads, numeric) < 1e-6

    # 2. The reference, on copies of the same weights.
    ref_value, ref_grads = reference.loss_and_grads(copy_params(net), acts,
                                                    loss_name(case), X, y, w)
    assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-14)
    assert rel_err(grads, ref_grads) < 1e-10
    for g, r in zip(grads, ref_grads):   # layer by layer too: no compensating errors
        assert rel_err(g, r) < 1e-9 or np.linalg.norm(g - r) < 1e-13

    # 3. The float32 network (same weights, rounded) against the float64 result.
    value32, grads32 = net32.loss_and_grads(X, y, sample_weight=w)
    assert all(g.dtype == np.float32 for g in grads32)
    assert value32 == pytest.approx(value, rel=1e-4)
    assert rel_err(grads32, grads) < 1e-4


@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_gradients_identity_output(activation, case):
    """The usual shape of a network: a nonlinear hidden stack, a linear output layer
    whose logits the loss takes."""
    seed = seed_of("identity-out", activation, case)
    X, y, w = case_data(case, True, seed)
    net, acts = build(activation, case, "float64", seed, last_activation="identity")
    value, grads = net.loss_and_grads(X, y, sample_weight=w)
    numeric = central_differences(lambda: net.loss(X, y, sample_weight=w), net.params)
    assert rel_err(grads, numeric) < 1e-6
    ref_value, ref_grads = reference.loss_and_grads(copy_params(net), acts,
                                                    loss_name(case), X, y, w)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert rel_err(grads, ref_grads) < 1e-10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_unit_weights_equal_no_weights(case, dtype):
    """sample_weight = c * ones is the unweighted mean, for any c > 0."""
    X, y, _ = case_data(case, False, 7)
    net, _ = build("tanh", case, dtype, 7, last_activation="identity")
    value, grads = net.loss_and_grads(X, y)
    value_w, grads_w = net.loss_and_grads(X, y, sample_weight=np.full(N_ROWS, 2.5))
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert value_w == pytest.approx(value, rel=tol)
    assert rel_err(grads_w, grads) < tol


@pytest.mark.parametrize("case", LOSS_CASES)
def test_integer_weights_equal_repeated_rows(case):
    """Weight 2 on a row is that row twice; weight 0 is the row left out."""
    rng = np.random.default_rng(3)
    X, y = make_data(case, N_ROWS, N_IN, K[case], rng)
    w = rng.integers(0, 3, size=N_ROWS)
    w[0] = 1
    net, _ = build("elu", case, "float64", 3, last_activation="identity")
    value, grads = net.loss_and_grads(X, y, sample_weight=w)
    rows = np.repeat(np.arange(N_ROWS), w)
    value_r, grads_r = net.loss_and_grads(X[rows], y[rows])
    assert value == pytest.approx(value_r, rel=1e-12)
    assert rel_err(grads, grads_r) < 1e-12


@pytest.mark.parametrize("case", ["mse", "cross_entropy", "gaussian_nll"])
def test_gradients_over_many_rows(case):
    """More rows than the network evaluates in one chunk: the per-chunk gradients must
    be normalised by the total weight before they are added up."""
    rng = np.random.default_rng(11)
    n = 2600
    X, y = make_data(case, n, N_IN, K[case], rng)
    w = make_sample_weight(n, rng)
    net, acts = build("softplus", case, "float64", 11, last_activation="identity")
    for weights in (None, w):
        value, grads = net.loss_and_grads(X, y, sample_weight=weights)
        ref_value, ref_grads = reference.loss_and_grads(copy_params(net), acts,
                                                        loss_name(case), X, y, weights)
        assert value == pytest.approx(ref_value, rel=1e-11)
        assert rel_err(grads, ref_grads) < 1e-10
        value = net.loss(X, y, sample_weight=weights)
        assert value == pytest.approx(ref_value, rel=1e-11)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_with_blas_sized_layers(dtype):
    """Layers wider than one register tile in every dimension, so the products run
    full tiles, partial tiles and (in builds whose cut-over is this low) BLAS; every
    path of the matrix multiply is also held to NumPy in tests/test_gemm.py."""
    rng = np.random.default_rng(5)
    n, sizes = 96, (40, 64, 48, 10)
    X = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    acts = ["relu", "tanh", "identity"]
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    net = nncore.Network(layers, loss="cross_entropy", dtype=dtype, seed=5)
    value, grads = net.loss_and_grads(X, y)
    ref_value, ref_grads = reference.loss_and_grads(copy_params(net), acts,
                                                    "cross_entropy", X, y)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert value == pytest.approx(ref_value, rel=tol)
    assert rel_err(grads, ref_grads) < tol


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_rows_that_do_not_sum_to_one(dtype):
    """Probability rows are only checked to be >= 0; for rows that do not sum to 1
    the gradient is ``softmax(z) sum_j t_j - t``, not ``softmax(z) - t``."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(N_ROWS, N_IN))
    T = rng.uniform(0, 1, size=(N_ROWS, 4)) * rng.uniform(0.2, 3.0, size=(N_ROWS, 1))
    net, acts = build("tanh", "cross_entropy", dtype, 12, last_activation="identity")
    value, grads = net.loss_and_grads(X, T)
    ref_value, ref_grads = reference.loss_and_grads(copy_params(net), acts,
                                                    "cross_entropy", X, T)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert value == pytest.approx(ref_value, rel=tol)
    assert rel_err(grads, ref_grads) < tol
    if dtype == "float64":
        numeric = central_differences(lambda: net.loss(X, T), net.params)
        assert rel_err(grads, numeric) < 1e-6
