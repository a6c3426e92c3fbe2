"""The compiled forward pass, loss and output transform against ``nncore.reference``,
for every activation and loss, in both dtypes, at sizes that take the kernels' own
loops and sizes that go to BLAS, and over more rows than one evaluation chunk."""

import numpy as np
import pytest

import nncore
from nncore import reference

from _helpers import (
    LOSS_CASES,
    copy_params,
    loss_name,
    make_data,
    make_sample_weight,
    output_width,
    rel_err,
    seed_of,
)

TOL = {"float64": 1e-12, "float32": 2e-6}


def make_net(sizes, acts, loss, dtype, seed, bias_scale=0.5):
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    net = nncore.Network(layers, loss=loss, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for b in net.params[1::2]:
        b[...] = rng.normal(scale=bias_scale, size=b.shape)
    return net


# Small: products inside one register tile. Large: many tiles, partial tiles, and
# BLAS in the builds whose cut-over (_kernels.BLAS_ABOVE) is below them.
SHAPES = {"small": (13, (4, 7, 5)), "blas": (300, (50, 80, 60))}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("activation", sorted(nncore.ACTIVATIONS))
def test_forward(activation, shape, dtype):
    n, sizes = SHAPES[shape]
    acts = [activation, activation]
    net = make_net(sizes, acts, "mse", dtype, 1)
    X = np.random.default_rng(2).normal(scale=2.0, size=(n, sizes[0]))
    out = net.forward(X)
    assert out.shape == (n, sizes[-1]) and out.dtype == np.dtype(dtype)
    X64 = X.astype(dtype).astype(np.float64)
    expected = reference.forward(copy_params(net), acts, X64)
    assert rel_err(out, expected) < TOL[dtype]
    # Element by element as well, so that a wrong small entry cannot hide in the norm.
    np.testing.assert_allclose(out, expected, rtol=50 * TOL[dtype],
                               atol=50 * TOL[dtype] * np.abs(expected).max())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_matches_reference_in_float32_arithmetic(dtype):
    """The float32 kernels compute in float32: compare with the reference run on
    float32 arrays (which stays in float32) as well."""
    sizes, acts = (6, 9, 4), ["gelu", "sigmoid"]
    net = make_net(sizes, acts, "mse", dtype, 4)
    X = np.random.default_rng(4).normal(size=(20, 6)).astype(dtype)
    expected = reference.forward([p.copy() for p in net.params], acts, X)
    assert expected.dtype == np.dtype(dtype)
    assert rel_err(net.forward(X), expected) < TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", sorted(nncore.ACTIVATIONS))
def test_loss_and_predict(activation, case, dtype):
    rng = np.random.default_rng(seed_of(activation, case))
    k = 3
    sizes = (4, 6, output_width(case, k))
    acts = [activation, activation]
    loss = loss_name(case)
    net = make_net(sizes, acts, loss, dtype, 3)
    X, y = make_data(case, 17, 4, k, rng)
    w = make_sample_weight(17, rng)
    params = copy_params(net)
    Xd = X.astype(dtype).astype(np.float64)
    yd = y if case == "cross_entropy" else y.astype(dtype).astype(np.float64)
    out = reference.forward(params, acts, Xd)
    for weights in (None, w):
        wd = None if weights is None else weights.astype(dtype).astype(np.float64)
        expected = reference.loss(loss, out, yd, wd)
        got = net.loss(X, y, sample_weight=weights)
        assert isinstance(got, float)
        assert got == pytest.approx(expected, rel=10 * TOL[dtype], abs=1e-300)
        got_lg, _ = net.loss_and_grads(X, y, sample_weight=weights)
        assert got_lg == pytest.approx(expected, rel=10 * TOL[dtype])
    pred = net.predict(X)
    assert pred.dtype == np.dtype(dtype) and pred.shape == (17, sizes[-1])
    expected_pred = reference.predict_transform(loss, out)
    np.testing.assert_allclose(pred, expected_pred, rtol=10 * TOL[dtype],
                               atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_many_rows(case, dtype):
    """More rows than one evaluation chunk (the network evaluates in chunks of rows)."""
    rng = np.random.default_rng(8)
    n, k = 2300, 3
    sizes, acts = (5, 12, output_width(case, k)), ["tanh", "identity"]
    loss = loss_name(case)
    net = make_net(sizes, acts, loss, dtype, 8)
    X, y = make_data(case, n, 5, k, rng)
    Xd = X.astype(dtype).astype(np.float64)
    out = reference.forward(copy_params(net), acts, Xd)
    assert rel_err(net.forward(X), out) < TOL[dtype]
    predicted = reference.predict_transform(loss, out)
    assert rel_err(net.predict(X), predicted) < 10 * TOL[dtype]
    yd = y if case == "cross_entropy" else y.astype(dtype).astype(np.float64)
    assert net.loss(X, y) == pytest.approx(reference.loss(loss, out, yd),
                                           rel=100 * TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_extreme_logits_stay_finite(dtype):
    """Logits of +-200 overflow a naive exp in float32 and float64; the fused,
    log-sum-exp stable losses and the output transforms must not."""
    X = np.array([[1.0], [-1.0], [0.5]])
    for loss, width, y in [("cross_entropy", 3, np.array([0, 1, 2])),
                           ("binary_cross_entropy", 2, np.array([[1.0, 0.0], [0.0, 1.0],
                                                                 [0.5, 0.5]])),
                           ("gaussian_nll", 2, np.array([[1.0], [-1.0], [0.0]]))]:
        net = nncore.Network([nncore.Dense(1, width)], loss=loss, dtype=dtype, seed=0)
        W, b = net.params
        scale = 200.0 if loss != "gaussian_nll" else 60.0
        W[...] = scale * np.linspace(-1, 1, width)
        b[...] = 0
        params = copy_params(net)
        out = reference.forward(params, ["identity"], X)
        expected = reference.loss(loss, out, y)
        got = net.loss(X, y)
        assert np.isfinite(got)
        assert got == pytest.approx(expected, rel=1e-5 if dtype == "float32" else 1e-12)
        value, grads = net.loss_and_grads(X, y)
        assert all(np.isfinite(g).all() for g in grads)
        _, ref_grads = reference.loss_and_grads(params, ["identity"], loss, X, y)
        assert rel_err(grads, ref_grads) < (1e-5 if dtype == "float32" else 1e-12)
        pred = net.predict(X)
        if loss != "gaussian_nll":
            assert np.isfinite(pred).all()
            np.testing.assert_allclose(pred, reference.predict_transform(loss, out),
                                       rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- every build
def _builds():
    """The kernel builds this CPU can run (portable, and on x86-64 AVX2 / AVX-512)."""
    try:
        from nncore import _dispatch
    except ImportError:
        return ["portable"]
    return _dispatch.available()


@pytest.fixture(params=_builds())
def build(request):
    """Run the test on one kernel build, whatever the dispatcher would choose."""
    from nncore import _dispatch
    with _dispatch.use(request.param) as module:
        yield module


GUARD = 4096


def guard_workspaces(net, kernels):
    """Make ``net`` run in workspaces of exactly ``workspace_size`` values followed by
    a NaN-filled guard zone; return the list of (buffer, size) to check afterwards."""
    if not hasattr(net, "_workspace") or not hasattr(kernels, "workspace_size"):
        pytest.skip("the Network's workspace internals changed")
    buffers = []

    def workspace(rows):
        size = kernels.workspace_size(net._sizes, rows)
        buf = np.full(size + GUARD, np.nan, dtype=net.dtype)
        buf[:size] = 0
        buffers.append((buf, size))
        return buf[:size]

    net._workspace = workspace
    return buffers


# (layer sizes, rows): rows above and below fan_in * fan_out, widths under, at and
# over a vector's lanes, and one layer wide enough for the BLAS path.
WORKSPACE_CASES = [((3, 6, 5, 3), 9), ((3, 6, 5, 3), 40), ((1, 1), 50), ((2, 40, 1), 33),
                   ((17, 3, 17), 70), ((5, 16, 32, 2), 13), ((64, 128, 10), 300)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes,n", WORKSPACE_CASES)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_kernels_stay_inside_their_workspace(build, sizes, n, dtype, loss):
    """No kernel writes past the workspace that ``workspace_size`` says it needs (an
    overrun corrupts the heap and crashes much later, somewhere else), the gathered
    targets, weights and labels of shuffled batches included."""
    acts = ["relu"] * (len(sizes) - 2) + ["identity"]
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    net = nncore.Network(layers, loss=loss, dtype=dtype, seed=0)
    buffers = guard_workspaces(net, build)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, sizes[0]))
    y = rng.normal(size=(n, sizes[-1])) if loss == "mse" else \
        rng.integers(0, sizes[-1], size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    net.forward(X)
    net.loss_and_grads(X, y)
    for batch_size in (1, 4, 7, n):
        net.fit(X, y, epochs=1, batch_size=batch_size, optimizer=nncore.SGD(1e-3),
                sample_weight=w)
        net.fit(X, y, epochs=1, batch_size=batch_size, optimizer=nncore.SGD(1e-3),
                shuffle=False)
    assert buffers
    for buf, size in buffers:
        overrun = np.flatnonzero(~np.isnan(buf[size:]))
        assert overrun.size == 0, (
            f"wrote {overrun.size} values past a workspace of {size} (up to "
            f"{overrun.max() + 1} past its end)")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_every_build_matches_reference(build, case, dtype):
    """Each build (portable, AVX2, AVX-512) computes the same numbers, not only the
    one the dispatcher picks on this machine."""
    rng = np.random.default_rng(seed_of("build", case))
    k = 3
    sizes = (5, 19, 7, output_width(case, k))
    acts = ["gelu", "tanh", "identity"]
    net = make_net(sizes, acts, loss_name(case), dtype, 6)
    X, y = make_data(case, 37, 5, k, rng)
    w = make_sample_weight(37, rng)
    params = copy_params(net)
    value, grads = net.loss_and_grads(X, y, sample_weight=w)
    ref_value, ref_grads = reference.loss_and_grads(params, acts, loss_name(case), X, y,
                                                    w)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert value == pytest.approx(ref_value, rel=tol)
    assert rel_err(grads, ref_grads) < tol
    history = net.fit(X, y, epochs=2, batch_size=8, optimizer=nncore.Adam(0.01),
                      shuffle=False, sample_weight=w)
    losses, _ = reference.fit(params, acts, loss_name(case), X, y, 2, 8,
                              optimizer=("adam", {"lr": 0.01}), sample_weight=w)
    assert rel_err(net.params, params) < tol
    assert rel_err(history.loss, losses) < tol


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 2, 7, 33])
def test_bias_gradients_at_vector_edges(build, rows, dtype):
    """The bias gradient (a column sum of the deltas) has a one-column path, a vector
    path and a scalar tail: widths 1, 5, 16, 17 and 33 cross the 2-, 4-, 8- and
    16-lane vectors of the builds, and odd row counts leave an unpaired row. Each
    bias is compared on its own, so one wrong column cannot hide in a global norm."""
    rng = np.random.default_rng(rows)
    sizes = (3, 1, 5, 16, 17, 33, 2)
    acts = ["tanh"] * 5 + ["identity"]
    net = make_net(sizes, acts, "mse", dtype, 9)
    X, y = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 2))
    params = copy_params(net)
    _, grads = net.loss_and_grads(X, y)
    _, ref_grads = reference.loss_and_grads(params, acts, "mse", X, y)
    tol = 1e-10 if dtype == "float64" else 1e-4
    for l, (got, want) in enumerate(zip(grads[1::2], ref_grads[1::2])):
        assert rel_err(got, want) < tol, f"bias of layer {l} (width {sizes[l + 1]})"
    # The training step (colsum without accumulation) agrees with the reference too.
    net.fit(X, y, epochs=1, batch_size=rows, optimizer=nncore.SGD(0.1), shuffle=False)
    reference.fit(params, acts, "mse", X, y, 1, rows, optimizer=("sgd", {"lr": 0.1}))
    for l, (got, want) in enumerate(zip(net.params[1::2], params[1::2])):
        assert rel_err(got, want) < tol, f"bias of layer {l} after a step"


# Networks no wider than FM_MAX_WIDTH (with at most FM_MAX_INPUT inputs) train
# feature-major (one row per unit, the batch along the vector lanes); wider ones
# row-major.
# Every activation and loss through both, on every build: (first, second) hidden
# activations.
ACTIVATION_PAIRS = [("relu", "tanh"), ("sigmoid", "leaky_relu"), ("elu", "gelu"),
                    ("softplus", "identity")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("pair", ACTIVATION_PAIRS, ids="-".join)
@pytest.mark.parametrize("layout", ["feature-major", "row-major", "row-major-input"])
def test_training_in_both_layouts(build, layout, pair, case, dtype):
    rng = np.random.default_rng(seed_of("layouts", layout, *pair, case))
    k = 3
    n_in = build.FM_MAX_INPUT + 1 if layout == "row-major-input" else 4
    hidden = build.FM_MAX_WIDTH + 7 if layout == "row-major" else 9
    sizes = (n_in, hidden, 5, output_width(case, k))
    assert build.feature_major(np.array(sizes, np.intp), dtype) == (
        layout == "feature-major")
    acts = [*pair, "identity"]
    net = make_net(sizes, acts, loss_name(case), dtype, 4)
    X, y = make_data(case, 37, n_in, k, rng)
    w = make_sample_weight(37, rng)
    params = copy_params(net)
    # Batches of 7: five full ones and a last one of 2 (a partial vector).
    history = net.fit(X, y, epochs=2, batch_size=7, optimizer=nncore.Adam(0.01),
                      shuffle=False, sample_weight=w)
    losses, _ = reference.fit(params, acts, loss_name(case), X, y, 2, 7,
                              optimizer=("adam", {"lr": 0.01}), sample_weight=w)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(net.params, params) < tol
    assert rel_err(history.loss, losses) < tol


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["cross_entropy_probs", "gaussian_nll", "mse"])
@pytest.mark.parametrize("batch_size", [1, 16, 17, 33, 70])
def test_feature_major_batches_at_vector_edges(build, batch_size, case, dtype):
    """Feature-major batches pad to whole vectors: sizes at and around the lanes of
    each build, and over the 64 samples in which a several-unit output is turned to
    rows for its loss. The padding must never reach a gradient or the loss."""
    rng = np.random.default_rng(seed_of("edges", batch_size, case))
    k = 4
    sizes = (3, 16, output_width(case, k))
    assert build.feature_major(np.array(sizes, np.intp), dtype)
    acts = ["tanh", "identity"]
    net = make_net(sizes, acts, loss_name(case), dtype, 5)
    n = 2 * batch_size + 3            # two full batches and a short one
    X, y = make_data(case, n, 3, k, rng)
    params = copy_params(net)
    history = net.fit(X, y, epochs=1, batch_size=batch_size, optimizer=nncore.SGD(0.05),
                      shuffle=False)
    losses, _ = reference.fit(params, acts, loss_name(case), X, y, 1, batch_size,
                              optimizer=("sgd", {"lr": 0.05}))
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(net.params, params) < tol
    assert rel_err(history.loss, losses) < tol
