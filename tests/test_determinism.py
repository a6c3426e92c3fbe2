"""Determinism: the same seed and data give the same weights, bit for bit; different
seeds give different ones."""
import numpy as np
import pytest

import nncore
from nncore import _dispatch
from nncore.datasets import make_spiral


def train(seed, dtype="float32", optimizer=None, epochs=5, threads=None):
    X, y = make_spiral(n_per_class=40, seed=0)
    net = nncore.Network([nncore.Dense(2, 32, "relu"), nncore.Dense(32, 16, "tanh"),
                          nncore.Dense(16, 3)], loss="cross_entropy", dtype=dtype,
                         seed=seed)
    optimizer = optimizer or nncore.Adam(0.01)
    if threads is None:
        history = net.fit(X, y, epochs=epochs, batch_size=16, optimizer=optimizer,
                          shuffle=True)
    else:
        with nncore.set_num_threads(threads):
            history = net.fit(X, y, epochs=epochs, batch_size=16, optimizer=optimizer,
                              shuffle=True)
    return net, history


def assert_same(net_a, net_b):
    for p, q in zip(net_a.params, net_b.params):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p, q)


def assert_differ(net_a, net_b):
    assert any(not np.array_equal(p, q) for p, q in zip(net_a.params, net_b.params))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", [lambda: nncore.SGD(0.1, momentum=0.9),
                                       lambda: nncore.Adam(0.01),
                                       lambda: nncore.AdamW(0.01),
                                       lambda: nncore.RMSprop(0.005, momentum=0.5)],
                         ids=["sgd", "adam", "adamw", "rmsprop"])
def test_same_seed_same_weights(dtype, optimizer):
    net_a, h_a = train(7, dtype, optimizer())
    net_b, h_b = train(7, dtype, optimizer())
    assert_same(net_a, net_b)
    assert h_a.loss == h_b.loss
    X = np.random.default_rng(0).normal(size=(10, 2))
    np.testing.assert_array_equal(net_a.predict(X), net_b.predict(X))


def test_same_seed_same_weights_on_one_blas_thread():
    """The documented guarantee is for one thread; check it there explicitly, and
    that a single-threaded run reproduces itself."""
    net_a, _ = train(3, threads=1)
    net_b, _ = train(3, threads=1)
    assert_same(net_a, net_b)


def test_same_seed_same_initial_weights():
    layers = [nncore.Dense(5, 7, "relu"), nncore.Dense(7, 2)]
    assert_same(nncore.Network(layers, seed=11), nncore.Network(layers, seed=11))
    assert_differ(nncore.Network(layers, seed=11), nncore.Network(layers, seed=12))


def test_float32_and_float64_start_from_the_same_weights():
    layers = [nncore.Dense(5, 7, "tanh"), nncore.Dense(7, 2)]
    net32 = nncore.Network(layers, dtype="float32", seed=4)
    net64 = nncore.Network(layers, dtype="float64", seed=4)
    for p32, p64 in zip(net32.params, net64.params):
        np.testing.assert_array_equal(p32, p64.astype(np.float32))


def test_different_seeds_differ():
    net_a, _ = train(1)
    net_b, _ = train(2)
    assert_differ(net_a, net_b)


def test_different_seeds_differ_in_shuffling_alone():
    """Same initial weights (copied) but different seeds: the shuffling differs, and
    so do the trained weights."""
    X, y = make_spiral(n_per_class=40, seed=0)
    layers = [nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 3)]
    net_a = nncore.Network(layers, loss="cross_entropy", dtype="float64", seed=1)
    net_b = nncore.Network(layers, loss="cross_entropy", dtype="float64", seed=2)
    for p, q in zip(net_a.params, net_b.params):
        q[...] = p
    net_a.fit(X, y, epochs=2, batch_size=16, optimizer=nncore.SGD(0.1), shuffle=True)
    net_b.fit(X, y, epochs=2, batch_size=16, optimizer=nncore.SGD(0.1), shuffle=True)
    assert_differ(net_a, net_b)


def test_unseeded_networks_differ():
    layers = [nncore.Dense(5, 7, "relu"), nncore.Dense(7, 2)]
    assert_differ(nncore.Network(layers), nncore.Network(layers))


def test_evaluation_does_not_disturb_training():
    """forward / predict / loss / loss_and_grads between fits draw nothing from the
    generator and change nothing: the training sequence is the same with or without
    them."""
    X, y = make_spiral(n_per_class=40, seed=0)
    layers = [nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 3)]
    nets = [nncore.Network(layers, loss="cross_entropy", seed=5) for _ in range(2)]
    opts = [nncore.Adam(0.01), nncore.Adam(0.01)]
    for _ in range(3):
        for net, opt in zip(nets, opts):
            net.fit(X, y, epochs=1, batch_size=16, optimizer=opt, shuffle=True)
        nets[0].forward(X)
        nets[0].predict(X)
        nets[0].loss(X, y)
        nets[0].loss_and_grads(X, y)
        nets[0].evaluate(X, y)
    assert_same(*nets)


def test_history_does_not_depend_on_how_epochs_are_cut_into_kernel_calls(monkeypatch):
    """fit runs an epoch in chunks of batches whose size adapts to timing; the loss
    sums are carried through the calls, so the recorded losses are bit-identical
    however the epoch was cut."""
    from nncore import _training
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4096, 8))
    y = rng.normal(size=(4096, 2))
    results = []
    for per_chunk in (1, 3, 1000):
        monkeypatch.setattr(_training, "FIXED_CHUNK", per_chunk)
        net = nncore.Network([nncore.Dense(8, 16, "tanh"), nncore.Dense(16, 2)],
                             loss="mse", seed=0)
        history = net.fit(X, y, epochs=3, batch_size=32, optimizer=nncore.SGD(0.01))
        results.append((history.loss, [p.copy() for p in net.params]))
    for losses, params in results[1:]:
        assert losses == results[0][0]
        assert all(np.array_equal(a, b) for a, b in zip(params, results[0][1]))


def test_epoch_order_is_a_uniform_permutation():
    """The shuffle of fit(shuffle=True): always a permutation, seeded, and uniform (all
    24 orders of 4 rows come up equally often, by a chi-square test)."""
    from nncore._training import epoch_order
    rng = np.random.default_rng(0)
    big = epoch_order(rng, 100_003)
    assert big.dtype == np.intp and np.array_equal(np.sort(big), np.arange(100_003))
    assert np.array_equal(epoch_order(np.random.default_rng(7), 1000),
                          epoch_order(np.random.default_rng(7), 1000))
    counts = {}
    for _ in range(24_000):
        key = tuple(epoch_order(rng, 4))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 24
    observed = np.array(list(counts.values()), dtype=float)
    chi2 = ((observed - 1000.0) ** 2 / 1000.0).sum()
    assert chi2 < 60     # 23 degrees of freedom: P(chi2 > 60) < 1e-4
    assert len(epoch_order(rng, 1)) == 1 and epoch_order(rng, 1)[0] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("build", _dispatch.available())
def test_width_one_output_trains_to_the_same_bits_at_one_and_two_threads(build, dtype):
    """A width-1 output layer's products are one-column (M x 1): on batches of 3000
    rows they are large enough to thread (M*K above the kernels' threading cut-over),
    and the path that computes them must not change with the thread count, or the
    weights would differ in their last bits between 1 and 2 threads. The kernels' own
    products only: a build that hands products this size to BLAS gets whatever BLAS
    does at each thread count."""
    module = _dispatch.build(build)
    if module.BLAS_ABOVE < 3000 * 200 * 20:
        pytest.skip(f"the {build} build hands these products to BLAS")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = X[:, :1] * 0.5 + rng.normal(scale=0.1, size=(3000, 1))
    weights = []
    with _dispatch.use(build):
        for threads in (1, 2):
            net = nncore.Network([nncore.Dense(20, 200, "relu"), nncore.Dense(200, 1)],
                                 loss="mse", dtype=dtype, seed=0)
            with nncore.set_num_threads(threads):
                net.fit(X, y, epochs=3, batch_size=3000, optimizer=nncore.Adam(1e-2))
            weights.append(net._flat.copy())
    np.testing.assert_array_equal(weights[0], weights[1])
