"""The loss objects (Huber, Quantile), predict_mean_var, input gradients and
gradcheck: against the reference (1e-10 in float64), finite differences and
PyTorch's autograd, and bad arguments."""
import numpy as np
import pytest

import nncore
from nncore import reference
from nncore.losses import Huber, Quantile

from _helpers import central_differences, copy_params, rel_err


def net_for(loss, width, dtype="float64", acts=("tanh", "identity"), seed=3):
    return nncore.Network([nncore.Dense(4, 6, acts[0]), nncore.Dense(6, width, acts[1])],
                          loss=loss, dtype=dtype, seed=seed)


def data(n=23, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, k)), rng.uniform(0.2, 2, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss, width, k", [
    (Huber(0.3), 2, 2), (Huber(2.5), 2, 2), (Quantile(0.9), 2, 2),
    (Quantile([0.1, 0.5, 0.9]), 3, 1), (Quantile([0.2, 0.8]), 4, 2)])
def test_loss_objects_match_reference_and_differences(loss, width, k, dtype):
    X, y, w = data(k=k)
    net = net_for(loss, width, dtype)
    params = copy_params(net)
    value, grads = net.loss_and_grads(X, y, sample_weight=w)
    ref_value, ref_grads = reference.loss_and_grads(params, ["tanh", "identity"], loss,
                                                    X, y, w)
    tol = 1e-10 if dtype == "float64" else 1e-4
    assert value == pytest.approx(ref_value, rel=tol)
    assert rel_err(grads, ref_grads) < tol
    if dtype == "float64":
        def ref_loss():
            out = reference.forward(params, ["tanh", "identity"], X)
            return reference.loss(loss, out, y, w)

        numeric = central_differences(ref_loss, params)
        assert rel_err(ref_grads, numeric) < 1e-6
    history = net.fit(X, y, epochs=2, batch_size=5, shuffle=False, sample_weight=w,
                      optimizer=nncore.Adam(0.01))
    losses, _ = reference.fit(params, ["tanh", "identity"], loss, X.astype(dtype),
                              y.astype(dtype), 2, 5, optimizer=("adam", {"lr": 0.01}),
                              sample_weight=w.astype(dtype))
    np.testing.assert_allclose(history.loss, losses, rtol=tol)


def test_quantile_list_predicts_an_interval():
    """Three quantiles of one target: trained, the outputs come out ordered and cover
    about the nominal share of the data."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(2000, 1))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.3, size=2000)
    net = nncore.Network([nncore.Dense(1, 32, "tanh"), nncore.Dense(32, 3)],
                         loss=Quantile([0.1, 0.5, 0.9]), seed=0)
    net.fit(X, y, epochs=60, batch_size=64, optimizer=nncore.Adam(0.01))
    low, mid, high = net.predict(X).T
    assert np.mean(low <= mid) > 0.95 and np.mean(mid <= high) > 0.95
    assert 0.7 < np.mean((y >= low) & (y <= high)) < 0.9


def test_named_losses_mean_their_defaults():
    X, y, _ = data()
    for name, obj in (("huber", Huber(1.0)), ("quantile", Quantile(0.5))):
        a, b = net_for(name, 2), net_for(obj, 2)
        assert a.loss(X, y) == b.loss(X, y)
        assert a.loss_name == b.loss_name == name
    text = repr(net_for(Huber(0.5), 2))
    assert text.endswith("loss=Huber(delta=0.5), dtype='float64', seed=3)")


def test_predict_mean_var():
    X, y, _ = data(k=2)
    net = net_for("gaussian_nll", 4)
    mean, var = net.predict_mean_var(X)
    out = net.forward(X)
    np.testing.assert_array_equal(mean, out[:, :2])
    np.testing.assert_allclose(var, np.exp(out[:, 2:]), rtol=1e-15)
    with pytest.raises(ValueError, match="gaussian_nll"):
        net_for("mse", 2).predict_mean_var(X)


@pytest.mark.parametrize("make, match", [
    (lambda: Huber(0), "delta"), (lambda: Huber(-1), "delta"),
    (lambda: Huber(float("nan")), "delta"), (lambda: Quantile(0), "q"),
    (lambda: Quantile(1.0), "q"), (lambda: Quantile([0.5, 1.2]), r"q\[1\]"),
    (lambda: Quantile([]), "q"), (lambda: net_for(Quantile([0.1, 0.9]), 3), "multiple"),
    (lambda: net_for(42, 2), "loss"),
])
def test_bad_loss_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_poisson_refuses_negative_targets():
    X, y, _ = data()
    net = net_for("poisson", 2)
    before = net._flat.copy()
    with pytest.raises(ValueError, match="poisson"):
        net.fit(X, y, epochs=1)
    np.testing.assert_array_equal(net._flat, before)
    assert net.optimizer is None


# --------------------------------------------------------------- input gradients
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss, width",
                         [("mse", 2), ("cross_entropy", 3), ("poisson", 2)])
def test_input_gradient(loss, width, dtype):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1500, 4))           # more rows than one evaluation chunk
    y = {"mse": rng.normal(size=(1500, 2)), "cross_entropy": rng.integers(0, 3, 1500),
         "poisson": rng.poisson(1.0, size=(1500, 2)).astype(float)}[loss]
    net = net_for(loss, width, dtype, acts=("gelu", "identity"))
    dX = net.input_gradient(X, y)
    assert dX.shape == X.shape and dX.dtype == np.dtype(dtype)
    ref = reference.input_gradient(copy_params(net), ["gelu", "identity"], loss, X, y)
    assert rel_err(dX, ref) < (1e-10 if dtype == "float64" else 1e-4)
    if dtype == "float64":
        Xs, ys = X[:6].copy(), y[:6]
        numeric = central_differences(lambda: net.loss(Xs, ys), [Xs])[0]
        assert rel_err(net.input_gradient(Xs, ys), numeric) < 1e-6


def test_input_gradient_matches_pytorch_autograd():
    torch = pytest.importorskip("torch")
    X, y, w = data()
    net = net_for("mse", 2, acts=("tanh", "identity"))
    dX = net.input_gradient(X, y, sample_weight=w)
    tX = torch.tensor(X, requires_grad=True)
    W1, b1, W2, b2 = (torch.tensor(p) for p in net.params)
    out = torch.tanh(tX @ W1 + b1) @ W2 + b2
    tw = torch.tensor(w)
    loss = (tw * ((out - torch.tensor(y)) ** 2).mean(dim=1)).sum() / tw.sum()
    loss.backward()
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("loss, width", [("mse", 2), ("binary_cross_entropy", 2),
                                         (Huber(0.5), 2), ("gaussian_nll", 4)])
def test_gradcheck_passes_a_right_gradient(loss, width):
    X, y, _ = data(n=7)
    if loss == "binary_cross_entropy":
        y = (y > 0).astype(float)
    if loss == "gaussian_nll":
        y = y[:, :2]
    net = net_for(loss, width, "float32")
    before = net._flat.copy()
    report = nncore.gradcheck(net, X, y)
    assert report.ok and bool(report)
    assert report.names == ["W1", "b1", "W2", "b2"] and len(report.max_abs_error) == 4
    assert max(report.max_abs_error) < 1e-6
    np.testing.assert_array_equal(net._flat, before)     # the network is untouched
    text = repr(report)
    assert "ok=True" in text and "W2" in text and "FAILED" not in text


def test_gradcheck_flags_a_wrong_gradient(monkeypatch):
    X, y, _ = data(n=7)
    net = net_for("mse", 2)
    right = nncore.Network.loss_and_grads

    def wrong(self, *args, **kwargs):
        value, grads = right(self, *args, **kwargs)
        grads[2][1, 0] *= 1.01                   # one weight's derivative 1% off
        return value, grads

    monkeypatch.setattr(nncore.Network, "loss_and_grads", wrong)
    report = nncore.gradcheck(net, X, y)
    assert not report.ok
    assert "FAILED" in repr(report) and report.max_abs_error[2] > 0
    assert report.max_abs_error[0] < 1e-6           # the others still agree


def test_bad_gradcheck_arguments():
    X, y, _ = data(n=7)
    net = net_for("mse", 2)
    for kwargs, match in (({"eps": 0}, "eps"), ({"atol": -1}, "atol"),
                          ({"rtol": float("nan")}, "rtol")):
        with pytest.raises(ValueError, match=match):
            nncore.gradcheck(net, X, y, **kwargs)
    with pytest.raises(TypeError, match="Network"):
        nncore.gradcheck("net", X, y)


@pytest.mark.parametrize("loss", [Huber(0.3), Quantile([0.1, 0.9]), "huber", "poisson"])
def test_saved_networks_keep_their_loss(loss, tmp_path):
    X, y, _ = data()
    net = net_for(loss, 2)
    net.save(tmp_path / "net.npz")
    loaded = nncore.load(tmp_path / "net.npz")
    y = np.abs(y).round() if loss == "poisson" else y[:, :1] if loss == Quantile(
        [0.1, 0.9]) else y
    assert loaded.loss_name == net.loss_name
    assert loaded.loss(X, y) == net.loss(X, y)
