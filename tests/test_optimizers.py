"""Training against the reference: every optimizer configuration, several epochs of
``fit`` (in-order batches with a partial last one, and shuffled ones) agree with
``nncore.reference.fit`` to < 1e-10 in float64; a second ``fit`` continues the
optimizer's state exactly."""
import numpy as np
import pytest

import nncore
from nncore import reference
from nncore._training import epoch_order

from _helpers import (
    copy_params,
    loss_name,
    make_data,
    make_sample_weight,
    output_width,
    rel_err,
    seed_of,
)

OPTIMIZER_CLASSES = {"sgd": nncore.SGD, "adam": nncore.Adam, "adamw": nncore.AdamW,
                     "rmsprop": nncore.RMSprop}

# (reference name, hyperparameters): nncore's constructors take the same keywords.
CONFIGS = {
    "sgd": ("sgd", dict(lr=0.1)),
    "sgd-momentum": ("sgd", dict(lr=0.05, momentum=0.9)),
    "sgd-nesterov": ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd-weight_decay": ("sgd", dict(lr=0.1, weight_decay=0.05)),
    "sgd-momentum-weight_decay": ("sgd", dict(lr=0.05, momentum=0.8, weight_decay=0.05)),
    "sgd-nesterov-weight_decay": ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True,
                                              weight_decay=0.05)),
    "adam": ("adam", dict(lr=0.01)),
    "adam-betas-eps": ("adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    "adam-weight_decay": ("adam", dict(lr=0.01, weight_decay=0.05)),
    "adamw": ("adamw", dict(lr=0.01)),
    "adamw-weight_decay": ("adamw", dict(lr=0.01, weight_decay=0.3)),
    "adamw-no-weight_decay": ("adamw", dict(lr=0.01, weight_decay=0.0)),
    "rmsprop": ("rmsprop", dict(lr=0.005)),
    "rmsprop-alpha": ("rmsprop", dict(lr=0.005, alpha=0.9, eps=1e-6)),
    "rmsprop-momentum": ("rmsprop", dict(lr=0.002, momentum=0.9)),
    "rmsprop-weight_decay": ("rmsprop", dict(lr=0.005, weight_decay=0.05)),
    "rmsprop-momentum-weight_decay": ("rmsprop", dict(lr=0.002, momentum=0.8,
                                                      weight_decay=0.05)),
}

N, BATCH, EPOCHS = 50, 16, 3       # batches of 16, 16, 16 and 2 rows


def make_optimizer(config):
    name, hyper = CONFIGS[config]
    return OPTIMIZER_CLASSES[name](**hyper)


def setup(case="cross_entropy", dtype="float64", seed=0, n=N, weighted=False,
          acts=("tanh", "identity")):
    rng = np.random.default_rng(seed)
    k = 3
    X, y = make_data(case, n, 4, k, rng)
    w = make_sample_weight(n, rng) if weighted else None
    sizes = (4, 8, output_width(case, k))
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    net = nncore.Network(layers, loss=loss_name(case), dtype=dtype, seed=seed)
    return net, list(acts), X, y, w


def check_against_reference(net, acts, X, y, w, optimizer, config, epochs, batch_size,
                            shuffle=False, orders=None, tol=1e-10):
    params = copy_params(net)
    history = net.fit(X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                      shuffle=shuffle, sample_weight=w)
    ref_losses, state = reference.fit(params, acts, net.loss_name, X, y, epochs,
                                      batch_size, optimizer=CONFIGS[config],
                                      orders=orders, sample_weight=w)
    assert history.epochs == epochs and len(history.loss) == epochs
    assert rel_err(net.params, params) < tol
    # Each array on its own, too (a bias error must not hide behind the weights' norm).
    for p, r in zip(net.params, params):
        assert rel_err(p, r) < 10 * tol
    assert rel_err(history.loss, ref_losses) < tol
    assert optimizer.step == state["step"]
    return history, params, state


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fit_matches_reference(config):
    net, acts, X, y, w = setup(seed=seed_of(config) % 1000)
    before = copy_params(net)
    optimizer = make_optimizer(config)
    check_against_reference(net, acts, X, y, w, optimizer, config, EPOCHS, BATCH)
    assert optimizer.step == EPOCHS * 4
    assert rel_err(net.params, before) > 1e-3      # it did train


@pytest.mark.parametrize("config", ["sgd-nesterov-weight_decay", "adam-weight_decay",
                                    "adamw-weight_decay",
                                    "rmsprop-momentum-weight_decay"])
@pytest.mark.parametrize("case", ["mse", "binary_cross_entropy", "cross_entropy_probs",
                                  "gaussian_nll"])
def test_fit_matches_reference_other_losses(case, config):
    net, acts, X, y, w = setup(case, seed=seed_of(case, config) % 1000,
                               acts=("relu", "identity"))
    check_against_reference(net, acts, X, y, w, make_optimizer(config), config, EPOCHS,
                            BATCH)


@pytest.mark.parametrize("config", ["sgd-momentum", "adam", "rmsprop-momentum"])
@pytest.mark.parametrize("case", ["mse", "cross_entropy", "cross_entropy_probs"])
def test_fit_with_sample_weight_matches_reference(case, config):
    """Each batch's loss is its own weighted mean; the epoch loss weighs batches by
    their weight sums."""
    net, acts, X, y, w = setup(case, seed=seed_of("w", case, config) % 1000,
                               weighted=True)
    check_against_reference(net, acts, X, y, w, make_optimizer(config), config, EPOCHS,
                            BATCH)


@pytest.mark.parametrize("batch_size", [1, 7, 25, 50, 64])
def test_batch_sizes(batch_size):
    """One row per batch, uneven batches, exact halves, one full batch, and a batch
    larger than the data (one batch of all rows)."""
    net, acts, X, y, w = setup(seed=batch_size)
    optimizer = make_optimizer("adam")
    check_against_reference(net, acts, X, y, w, optimizer, "adam", 2, batch_size)
    assert optimizer.step == 2 * -(-N // batch_size)


@pytest.mark.parametrize("config", ["sgd", "sgd-nesterov", "adam", "adamw-weight_decay",
                                    "rmsprop-momentum-weight_decay"])
def test_float32_fit_tracks_reference(config):
    """float32 training follows the float64 reference closely over a few steps."""
    net, acts, X, y, w = setup(dtype="float32", seed=1)
    params = copy_params(net)
    history = net.fit(X, y, epochs=2, batch_size=BATCH, optimizer=make_optimizer(config),
                      shuffle=False)
    assert all(p.dtype == np.float32 for p in net.params)
    ref_losses, _ = reference.fit(params, acts, "cross_entropy", X.astype(np.float32)
                                  .astype(np.float64), y, 2, BATCH,
                                  optimizer=CONFIGS[config])
    assert rel_err(net.params, params) < 1e-4
    assert rel_err(history.loss, ref_losses) < 1e-4


# ----------------------------------------------------------------- continuation
@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_second_fit_continues_optimizer_state(config, shuffle):
    """Two fits of 2 epochs == one fit of 4 epochs, bit for bit: moments, momentum
    buffers, the step count (Adam's bias correction) and the shuffling generator all
    carry over."""
    seed = seed_of("continue", config) % 1000
    net_a, _, X, y, _ = setup(seed=seed)
    net_b, _, _, _, _ = setup(seed=seed)
    opt_a, opt_b = make_optimizer(config), make_optimizer(config)
    h1 = net_a.fit(X, y, epochs=2, batch_size=BATCH, optimizer=opt_a, shuffle=shuffle)
    h2 = net_a.fit(X, y, epochs=2, batch_size=BATCH, optimizer=opt_a, shuffle=shuffle)
    h = net_b.fit(X, y, epochs=4, batch_size=BATCH, optimizer=opt_b, shuffle=shuffle)
    for p, q in zip(net_a.params, net_b.params):
        np.testing.assert_array_equal(p, q)
    assert h1.loss + h2.loss == h.loss
    assert opt_a.step == opt_b.step == 16
    for s, t in zip(opt_a.state_arrays(), opt_b.state_arrays()):
        np.testing.assert_array_equal(s, t)


@pytest.mark.parametrize("config", ["sgd-momentum", "adam", "rmsprop-momentum"])
def test_second_fit_matches_reference_with_state(config):
    """The reference continued from its own state agrees with a second nncore fit."""
    net, acts, X, y, _ = setup(seed=9)
    opt = make_optimizer(config)
    params = copy_params(net)
    net.fit(X, y, epochs=2, batch_size=BATCH, optimizer=opt, shuffle=False)
    _, state = reference.fit(params, acts, "cross_entropy", X, y, 2, BATCH,
                             optimizer=CONFIGS[config])
    h = net.fit(X[:30], y[:30], epochs=2, batch_size=BATCH, optimizer=opt, shuffle=False)
    losses, state = reference.fit(params, acts, "cross_entropy", X[:30], y[:30], 2, BATCH,
                                  optimizer=CONFIGS[config], state=state)
    assert rel_err(net.params, params) < 1e-10
    assert rel_err(h.loss, losses) < 1e-10
    assert opt.step == state["step"] == 4 * 2 + 2 * 2


def test_changing_lr_between_fits_takes_effect():
    """Hyperparameters are read at each fit: a changed lr is used by the next call."""
    net, acts, X, y, _ = setup(seed=4)
    params = copy_params(net)
    opt = nncore.SGD(lr=0.1, momentum=0.9)
    net.fit(X, y, epochs=1, batch_size=BATCH, optimizer=opt, shuffle=False)
    _, state = reference.fit(params, acts, "cross_entropy", X, y, 1, BATCH,
                             optimizer=("sgd", dict(lr=0.1, momentum=0.9)))
    opt.lr = 0.01
    net.fit(X, y, epochs=1, batch_size=BATCH, optimizer=opt, shuffle=False)
    reference.fit(params, acts, "cross_entropy", X, y, 1, BATCH,
                  optimizer=("sgd", dict(lr=0.01, momentum=0.9)), state=state)
    assert rel_err(net.params, params) < 1e-10


# ----------------------------------------------------------------------- shuffle
def replay_generator(net):
    """A generator in the state the network's is in right after weight init: seeded
    with ``net.seed``, then one ``uniform(-a, a, (fan_in, fan_out))`` draw per layer.
    Checked against the weights, so a change in how init draws shows up here."""
    rng = np.random.default_rng(net.seed)
    for layer, W in zip(net.layers, net.params[::2]):
        a = layer.init_limit
        np.testing.assert_array_equal(
            W, rng.uniform(-a, a, size=(layer.fan_in, layer.fan_out)).astype(W.dtype))
    return rng


@pytest.mark.parametrize("config", ["sgd-momentum", "adam", "rmsprop"])
@pytest.mark.parametrize("case,weighted", [("cross_entropy", False),
                                           ("cross_entropy", True),
                                           ("cross_entropy_probs", True),
                                           ("gaussian_nll", True)])
def test_shuffled_fit_matches_reference(case, weighted, config):
    """shuffle=True: each epoch (of more than one batch) takes the rows in the order
    of ``nncore._training.epoch_order`` from the network's seeded generator, gathering X,
    targets and sample weights alike."""
    net, acts, X, y, w = setup(case, seed=seed_of("shuffle", case, config) % 1000,
                               weighted=weighted)
    rng = replay_generator(net)
    orders = [epoch_order(rng, N) for _ in range(EPOCHS)]
    check_against_reference(net, acts, X, y, w, make_optimizer(config), config, EPOCHS,
                            BATCH, shuffle=True, orders=orders)
    # A second call draws on from the same generator.
    orders = [epoch_order(rng, N) for _ in range(2)]
    params = copy_params(net)
    net.fit(X, y, epochs=2, batch_size=BATCH, optimizer=make_optimizer(config),
            shuffle=True, sample_weight=w)
    reference.fit(params, acts, net.loss_name, X, y, 2, BATCH, optimizer=CONFIGS[config],
                  orders=orders, sample_weight=w)
    assert rel_err(net.params, params) < 1e-10


def test_shuffled_single_batch_equals_in_order():
    """With one batch per epoch the order of rows does not matter (the batch is the
    whole data): shuffled and in-order training agree to rounding."""
    net_a, acts, X, y, _ = setup(seed=2)
    net_b, _, _, _, _ = setup(seed=2)
    net_a.fit(X, y, epochs=3, batch_size=N, optimizer=nncore.Adam(0.01), shuffle=True)
    net_b.fit(X, y, epochs=3, batch_size=N, optimizer=nncore.Adam(0.01), shuffle=False)
    assert rel_err(net_a.params, net_b.params) < 1e-12


def test_shuffle_changes_the_result():
    """Shuffling does something: in-order and shuffled training of several batches
    end at different weights."""
    net_a, _, X, y, _ = setup(seed=2)
    net_b, _, _, _, _ = setup(seed=2)
    net_a.fit(X, y, epochs=2, batch_size=8, optimizer=nncore.SGD(0.1), shuffle=True)
    net_b.fit(X, y, epochs=2, batch_size=8, optimizer=nncore.SGD(0.1), shuffle=False)
    assert rel_err(net_a.params, net_b.params) > 1e-6


def test_zero_epochs_changes_nothing():
    net, _, X, y, _ = setup(seed=3)
    before = copy_params(net)
    opt = nncore.Adam()
    history = net.fit(X, y, epochs=0, optimizer=opt)
    assert history.loss == [] and opt.step == 0
    for p, q in zip(net.params, before):
        np.testing.assert_array_equal(p, q)


def test_sgd_lr_zero_changes_nothing_but_counts_steps():
    net, _, X, y, _ = setup(seed=3)
    before = copy_params(net)
    opt = nncore.SGD(lr=0.0, momentum=0.9)
    net.fit(X, y, epochs=2, batch_size=BATCH, optimizer=opt, shuffle=False)
    assert opt.step == 8
    for p, q in zip(net.params, before):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("config", ["sgd-momentum", "adam"])
def test_batch_with_all_weights_zero_matches_reference(config):
    """A batch whose sample weights are all zero carries no information: fit and
    reference.fit both skip it, with no optimizer step (the step count stays below
    the batch count) and no weight in the epoch loss."""
    net, acts, X, y, w = setup(seed=21, weighted=True)
    w[16:32] = 0.0                                  # the second batch of 16
    optimizer = make_optimizer(config)
    check_against_reference(net, acts, X, y, w, optimizer, config, 2, BATCH)
    assert optimizer.step == 2 * 3
