"""Dropout and gradient clipping: the kernels against ``nncore.reference`` (the same
counter-based masks, 1e-10 in float64), reproducibility across thread counts and
chunkings, the keep fraction, that inference is untouched, that clipping bounds the
update, PyTorch's definitions, and bad arguments."""
import numpy as np
import pytest

import nncore
from nncore import _training, reference

from _helpers import copy_params, rel_err

# (sizes, dropout per layer): feature-major (narrow) and row-major (wide) networks,
# dropout on a hidden layer, on the output layer, on gelu (f' from Z) and tanh (f'
# from A).
DROPOUT_CASES = [
    ((5, 7, 2), ("tanh", "identity"), (0.3, 0.0)),
    ((5, 7, 2), ("gelu", "identity"), (0.5, 0.2)),
    ((5, 40, 2), ("tanh", "identity"), (0.3, 0.0)),
    ((20, 48, 33, 3), ("relu", "gelu", "identity"), (0.25, 0.5, 0.0)),
]


def make_net(sizes, acts, rates, dtype="float64", seed=11):
    layers = [nncore.Dense(a, b, f, dropout=p)
              for a, b, f, p in zip(sizes[:-1], sizes[1:], acts, rates)]
    return nncore.Network(layers, dtype=dtype, seed=seed)


def data(sizes, n=53, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    return X, rng.normal(size=(n, sizes[-1]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes, acts, rates", DROPOUT_CASES)
def test_dropout_training_matches_reference(sizes, acts, rates, dtype):
    X, y = data(sizes)
    net = make_net(sizes, acts, rates, dtype)
    params = copy_params(net)
    history = net.fit(X, y, epochs=3, batch_size=8, shuffle=False,
                      optimizer=nncore.SGD(0.05, momentum=0.9))
    losses, _ = reference.fit(params, list(acts), "mse", X.astype(dtype), y.astype(dtype),
                              3, 8, optimizer=("sgd", {"lr": 0.05, "momentum": 0.9}),
                              dropout=list(rates), seed=11)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(net.params, params) < tol
    np.testing.assert_allclose(history.loss, losses, rtol=tol)


def test_dropout_leaves_inference_alone():
    """forward, predict, loss and loss_and_grads take the network without dropout."""
    sizes, acts, rates = DROPOUT_CASES[3]
    X, y = data(sizes)
    plain = make_net(sizes, acts, (0.0,) * len(rates))
    dropped = make_net(sizes, acts, rates)
    np.testing.assert_array_equal(plain.params[0], dropped.params[0])
    np.testing.assert_array_equal(plain.predict(X), dropped.predict(X))
    assert plain.loss(X, y) == dropped.loss(X, y)
    for a, b in zip(plain.loss_and_grads(X, y)[1], dropped.loss_and_grads(X, y)[1]):
        np.testing.assert_array_equal(a, b)
    # ... but training differs
    plain.fit(X, y, epochs=1, batch_size=8, optimizer=nncore.SGD(0.05))
    dropped.fit(X, y, epochs=1, batch_size=8, optimizer=nncore.SGD(0.05))
    assert not np.array_equal(plain.params[0], dropped.params[0])


@pytest.mark.parametrize("sizes, acts, rates", [DROPOUT_CASES[1], DROPOUT_CASES[3]])
def test_dropout_is_reproducible_across_threads_and_chunkings(sizes, acts, rates,
                                                              monkeypatch):
    X, y = data(sizes, n=300)
    runs = []
    for threads, chunk in ((1, 1), (2, 1), (2, 7), (1, 1 << 20)):
        monkeypatch.setattr(_training, "FIXED_CHUNK", chunk)
        net = make_net(sizes, acts, rates, "float32", seed=5)
        with nncore.set_num_threads(threads):
            net.fit(X, y, epochs=2, batch_size=16, optimizer=nncore.Adam(0.01))
        runs.append(net.params)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_dropout_masks_keep_the_expected_fraction():
    for p in (0.1, 0.5, 0.9):
        keep = reference.dropout_mask(12345, 7, 2, 400, 250, p)
        assert abs(keep.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / keep.size)
        # different steps, layers and seeds give different masks
        assert not np.array_equal(keep, reference.dropout_mask(12345, 8, 2, 400, 250, p))
        assert not np.array_equal(keep, reference.dropout_mask(12345, 7, 1, 400, 250, p))
        assert not np.array_equal(keep, reference.dropout_mask(12346, 7, 2, 400, 250, p))
    assert reference.dropout_mask(1, 1, 1, 10, 10, 0.0).all()


def test_dropout_scales_as_pytorch():
    """Kept values are x / (1 - p), as torch.nn.functional.dropout scales them."""
    torch = pytest.importorskip("torch")
    x = np.linspace(-2, 2, 1000)
    keep = reference.dropout_mask(3, 1, 1, 1, 1000, 0.3)[0]
    ours = reference._dropout(x, keep, 0.3)
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout(torch.tensor(x), p=0.3, training=True).numpy()
    kept = theirs != 0
    np.testing.assert_allclose(theirs[kept], x[kept] / 0.7, rtol=1e-15)
    np.testing.assert_allclose(ours[keep], x[keep] / 0.7, rtol=1e-15)
    assert (ours[~keep] == 0).all()


@pytest.mark.parametrize("rate", [1.0, -0.1, float("nan"), 1.5])
def test_bad_dropout_rate(rate):
    with pytest.raises(ValueError, match="dropout"):
        nncore.Dense(3, 4, dropout=rate)
    with pytest.raises(TypeError, match="dropout"):
        nncore.Dense(3, 4, dropout="0.5")


# ------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [(5, 7, 2), (20, 48, 3)])
@pytest.mark.parametrize("opt, hyper", [("SGD", {"lr": 0.1, "momentum": 0.5}),
                                        ("Adam", {"lr": 0.01})])
def test_clipping_matches_reference(sizes, opt, hyper, dtype):
    X, y = data(sizes)
    y *= 10                                      # large gradients: clipping bites
    net = make_net(sizes, ("tanh", "identity"), (0.0, 0.0), dtype)
    params = copy_params(net)
    history = net.fit(X, y, epochs=2, batch_size=8, shuffle=False,
                      optimizer=getattr(nncore, opt)(**hyper), clip_norm=0.5)
    losses, _ = reference.fit(params, ["tanh", "identity"], "mse", X.astype(dtype),
                              y.astype(dtype), 2, 8, optimizer=(opt.lower(), hyper),
                              clip_norm=0.5)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert rel_err(net.params, params) < tol
    np.testing.assert_allclose(history.loss, losses, rtol=tol)


def test_clipping_bounds_the_update():
    """SGD without momentum moves the parameters by lr * (clipped gradient): at most
    lr * clip_norm in L2 norm, whatever the gradient."""
    sizes = (5, 40, 2)
    X, y = data(sizes)
    net = make_net(sizes, ("tanh", "identity"), (0.0, 0.0))
    before = net._flat.copy()
    net.fit(X, 100 * y, epochs=1, batch_size=len(X), optimizer=nncore.SGD(0.1),
            clip_norm=0.25)
    step = np.linalg.norm(net._flat - before)
    assert 0.1 * 0.25 * (1 - 1e-5) < step <= 0.1 * 0.25 * (1 + 1e-12)


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for max_norm in (0.1, 1.0, 100.0):
        grads = [rng.normal(size=(4, 3)), rng.normal(size=3)]
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
                   for g in grads]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        norm = reference.clip_grad_norm(grads, max_norm)
        assert norm == pytest.approx(float(torch_norm), rel=1e-14)
        for g, t in zip(grads, tensors):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize("clip", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_clip_norm(clip):
    sizes = (5, 7, 2)
    X, y = data(sizes)
    net = make_net(sizes, ("tanh", "identity"), (0.0, 0.0))
    before = net._flat.copy()
    with pytest.raises(ValueError, match="clip_norm"):
        net.fit(X, y, clip_norm=clip)
    np.testing.assert_array_equal(net._flat, before)
    assert net.optimizer is None
