"""It learns: XOR, a 3-class spiral and scikit-learn's digits, with hyperparameters
checked to succeed over many seeds (each case here runs in well under a second)."""
import numpy as np
import pytest

import nncore
from nncore.datasets import load_digits, make_spiral, make_xor


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor(loss, seed, dtype):
    """2-8-1 tanh network: loss < 0.01 (over 200 seeds the worst is ~1e-3)."""
    X, y = make_xor()
    net = nncore.Network([nncore.Dense(2, 8, "tanh"), nncore.Dense(8, 1)], loss=loss,
                         dtype=dtype, seed=seed)
    assert net.loss(X, y) > 0.1          # untrained: XOR is not solved by chance
    history = net.fit(X, y, epochs=300, batch_size=4, optimizer=nncore.Adam(0.05))
    assert net.loss(X, y) < 0.01
    assert history.loss[-1] < 0.01
    pred = net.predict(X)
    assert pred.shape == (4, 1)
    np.testing.assert_array_equal(pred > 0.5, y > 0.5)
    if loss == "binary_cross_entropy":
        assert net.evaluate(X, y)["accuracy"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spiral(seed):
    """3-class spiral, one hidden layer of 64 ReLUs: > 95% training accuracy (~99%
    over the seeds and data sets tried)."""
    X, y = make_spiral(n_per_class=100, n_classes=3, noise=0.2, seed=seed)
    net = nncore.Network([nncore.Dense(2, 64, "relu"), nncore.Dense(64, 3)],
                         loss="cross_entropy", seed=seed)
    history = net.fit(X, y, epochs=200, batch_size=32, optimizer=nncore.Adam(0.01))
    accuracy = float(np.mean(net.predict(X).argmax(axis=1) == y))
    assert accuracy > 0.95
    assert net.evaluate(X, y)["accuracy"] == pytest.approx(accuracy)
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_spiral_needs_the_hidden_layer():
    """The control: a linear model cannot separate the spiral, so the accuracy above
    is the hidden layer's doing."""
    X, y = make_spiral(seed=0)
    net = nncore.Network([nncore.Dense(2, 3)], loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=100, batch_size=32, optimizer=nncore.Adam(0.01))
    assert np.mean(net.predict(X).argmax(axis=1) == y) < 0.7


@pytest.mark.parametrize("seed", [0, 1])
def test_digits(seed):
    """scikit-learn's 8x8 digits, 64-64-10 ReLU network: > 95% test accuracy on a
    held-out quarter (~97-99% over the splits and seeds tried)."""
    pytest.importorskip("sklearn")
    X, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:1347], order[1347:]
    net = nncore.Network([nncore.Dense(64, 64, "relu"), nncore.Dense(64, 10)],
                         loss="cross_entropy", seed=seed)
    net.fit(X[train], y[train], epochs=20, batch_size=32, optimizer=nncore.Adam(0.01))
    accuracy = float(np.mean(net.predict(X[test]).argmax(axis=1) == y[test]))
    assert accuracy > 0.95
