"""Rprop and L-BFGS: Rprop against the reference (bit for bit) and PyTorch's steps;
L-BFGS against the reference run of SciPy, its history, its reach against Adam, its
Ctrl-C, and bad arguments."""
import os
import signal

import numpy as np
import pytest

import nncore
from nncore import _dispatch, reference

from _helpers import copy_params, rel_err


def problem(n=64, n_in=5, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = np.tanh(X[:, :k] * 1.5) + 0.1 * rng.normal(size=(n, k))
    return X, y


def small_net(dtype="float64", seed=1, hidden=7, dropout=0.0):
    return nncore.Network([nncore.Dense(5, hidden, "tanh", dropout=dropout),
                           nncore.Dense(hidden, 2)], dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [7, 40])          # feature-major and row-major
@pytest.mark.parametrize("batch_size", [64, 10])
def test_rprop_matches_reference(dtype, hidden, batch_size):
    X, y = problem()
    net = small_net(dtype, hidden=hidden)
    params = [p.copy() for p in net.params]
    opt = nncore.Rprop(lr=0.02, etas=(0.4, 1.3), step_sizes=(1e-4, 0.5))
    history = net.fit(X, y, epochs=6, batch_size=batch_size, shuffle=False,
                      optimizer=opt)
    losses, _ = reference.fit(params, ["tanh", "identity"], "mse", X.astype(dtype),
                              y.astype(dtype), 6, batch_size,
                              optimizer=("rprop", {"lr": 0.02, "etas": (0.4, 1.3),
                                                   "step_sizes": (1e-4, 0.5)}))
    # the same operations in the same precision: equal, not just close
    for a, b in zip(net.params, params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-10 if dtype == "float64"
                               else 1e-5)


def test_rprop_reproduces_pytorch_steps():
    torch = pytest.importorskip("torch")
    X, y = problem()
    net = small_net()
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(),
                                torch.nn.Linear(7, 2)).double()
    with torch.no_grad():
        for layer, W, b in ((model[0], *net.params[:2]), (model[2], *net.params[2:])):
            layer.weight.copy_(torch.tensor(W.T))
            layer.bias.copy_(torch.tensor(b))
    topt = torch.optim.Rprop(model.parameters(), lr=0.01, foreach=False)
    net.fit(X, y, epochs=10, batch_size=len(X), optimizer=nncore.Rprop(lr=0.01))
    tX, ty = torch.tensor(X), torch.tensor(y)
    for _ in range(10):
        topt.zero_grad()
        torch.nn.functional.mse_loss(model(tX), ty).backward()
        topt.step()
    np.testing.assert_allclose(net.params[0], model[0].weight.detach().numpy().T,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.params[3], model[2].bias.detach().numpy(),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"etas": (1.2, 0.5)}, "etas"), ({"etas": (0.0, 1.2)}, "etas"),
    ({"etas": (0.5, 1.0)}, "etas"), ({"etas": 0.5}, "etas"),
    ({"step_sizes": (1.0, 0.1)}, "step_sizes"), ({"step_sizes": (-1, 1)}, "step_sizes"),
    ({"lr": -0.1}, "lr"),
])
def test_bad_rprop_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nncore.Rprop(**kwargs)


def test_lbfgs_matches_reference():
    X, y = problem()
    net = small_net()
    params = copy_params(net)
    history = net.fit(X, y, epochs=25, optimizer=nncore.LBFGS())
    losses = reference.lbfgs(params, ["tanh", "identity"], "mse", X, y, 25)
    assert len(history.loss) == len(losses) == 25 == net.optimizer.step
    np.testing.assert_allclose(history.loss, losses, rtol=1e-8)
    assert rel_err(net.params, params) < 1e-8
    assert history.loss[-1] == pytest.approx(net.loss(X, y), rel=1e-12)


def test_lbfgs_beats_adam_on_a_small_full_batch_problem():
    X, y = problem()
    lbfgs, adam = small_net(), small_net()
    h_lbfgs = lbfgs.fit(X, y, epochs=40, optimizer=nncore.LBFGS())
    h_adam = adam.fit(X, y, epochs=200, batch_size=len(X), optimizer=nncore.Adam(0.01))
    assert len(h_lbfgs.loss) <= 40 < len(h_adam.loss)
    assert h_lbfgs.loss[-1] < h_adam.loss[-1]


def test_lbfgs_in_float32_learns():
    X, y = problem()
    net = small_net("float32")
    start = net.loss(X, y)
    history = net.fit(X, y, epochs=30, optimizer=nncore.LBFGS(history_size=5))
    assert history.loss[-1] < 0.2 * start and net.params[0].dtype == np.float32


def test_lbfgs_stops_on_ctrl_c_after_a_completed_iteration(monkeypatch):
    X, y = problem()
    net = small_net()
    real = _dispatch.kernels

    class SignalAt:
        calls = 0

        def __getattr__(self, name):
            return getattr(real, name)

        def loss_and_grads(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 6:
                os.kill(os.getpid(), signal.SIGINT)
            return real.loss_and_grads(*args, **kwargs)

    monkeypatch.setattr(_dispatch, "kernels", SignalAt())
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=50, optimizer=nncore.LBFGS())
    monkeypatch.setattr(_dispatch, "kernels", real)
    history = net.history
    assert history.interrupted and 0 < len(history.loss) < 50
    # the network holds the last completed iteration
    assert net.loss(X, y) == pytest.approx(history.loss[-1], rel=1e-12)


def test_lbfgs_refuses_what_it_cannot_do():
    X, y = problem()
    net = small_net()
    before = net._flat.copy()
    with pytest.raises(ValueError, match="clip_norm"):
        net.fit(X, y, optimizer=nncore.LBFGS(), clip_norm=1.0)
    with pytest.raises(ValueError, match="dropout"):
        small_net(dropout=0.2).fit(X, y, optimizer=nncore.LBFGS())
    net._flat[-1] = 1e300                      # an output bias whose square overflows
    start = net._flat.copy()
    with pytest.raises(ValueError, match="finite loss at the start"):
        net.fit(X, y, optimizer=nncore.LBFGS())
    np.testing.assert_array_equal(net._flat, start)
    net._flat[...] = before
    for kwargs, match in (({"history_size": 0}, "history_size"), ({"tol": 0}, "tol"),
                          ({"tol": float("nan")}, "tol")):
        with pytest.raises(ValueError, match=match):
            nncore.LBFGS(**kwargs)
    assert nncore.optimizers.optimizer_from_name("lbfgs").history_size == 10
