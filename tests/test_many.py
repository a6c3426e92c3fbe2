"""nncore.fit_many: K networks on the same batches end bit for bit where Network.fit
with the same batch order leaves each; divergence of one stops only that one; bad
input is refused before anything changes."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nncore

from _helpers import assert_same_state, child_env, state_of

ARCHS = {
    # feature-major (narrow) and row-major layouts, every loss kind
    "tiny-mse": ([2, 16, 1], ["tanh", "identity"], "mse"),
    "narrow-ce": ([3, 8, 8, 4], ["relu", "sigmoid", "identity"], "cross_entropy"),
    "wide-ce": ([40, 48, 5], ["relu", "identity"], "cross_entropy"),
    "wide-bce": ([20, 40, 3], ["gelu", "identity"], "binary_cross_entropy"),
    "wide-nll": ([20, 40, 4], ["softplus", "identity"], "gaussian_nll"),
    "wide-mse": ([20, 40, 3], ["relu", "identity"], "mse"),
}
OPTIMIZERS = {
    "sgd": lambda k: nncore.SGD(0.05 / (k + 1), momentum=0.9 if k % 2 else 0.0,
                                nesterov=k % 4 == 1),
    "adam": lambda k: nncore.Adam(1e-2 / (k + 1), weight_decay=1e-3 * k),
    "adamw": lambda k: nncore.AdamW(1e-2 / (k + 1)),
    "rmsprop": lambda k: nncore.RMSprop(1e-3 * (k + 1), momentum=0.5 * (k % 2)),
}


def make(arch, dtype, seed):
    sizes, acts, loss = ARCHS[arch]
    layers = [nncore.Dense(a, b, act) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
    return nncore.Network(layers, loss=loss, dtype=dtype, seed=seed)


def data(arch, n=157, seed=0):
    sizes, _, loss = ARCHS[arch]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    k = sizes[-1]
    if loss == "cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, k)) > 0.5).astype(float)
    elif loss == "gaussian_nll":
        y = rng.normal(size=(n, k // 2))
    else:
        y = np.sin(X[:, :k])
    return X, y, rng.uniform(0.2, 2, size=n)


def fit_alone(net, X, y, seed, **kwargs):
    """Network.fit with its generator started where fit_many's ``seed`` starts."""
    state = net.state(include_optimizer=False)
    state["rng"] = np.random.default_rng(seed).bit_generator.state
    net.restore(state)
    return net.fit(X, y, **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_each_network_ends_bit_for_bit_where_fit_leaves_it(arch, opt, dtype, shuffle):
    X, y, w = data(arch)
    K = 5
    nets = [make(arch, dtype, seed) for seed in range(K)]
    alone = [make(arch, dtype, seed) for seed in range(K)]
    kwargs = dict(epochs=3, batch_size=16, shuffle=shuffle, sample_weight=w)
    opts = [OPTIMIZERS[opt](k) for k in range(K)]
    histories = nncore.fit_many(nets, X, y, optimizers=opts, seed=7, **kwargs)
    for k in range(K):
        ref = fit_alone(alone[k], X, y, 7, optimizer=OPTIMIZERS[opt](k), **kwargs)
        assert np.array_equal(nets[k].state()["params"], alone[k].state()["params"]), k
        mine, theirs = nets[k].optimizer, alone[k].optimizer
        assert mine.step == theirs.step
        for a, b in zip(mine.state_arrays(), theirs.state_arrays()):
            assert np.array_equal(a, b)
        assert histories[k].loss == ref.loss
        assert nets[k].history is histories[k] and histories[k].diverged is None


def test_training_continues_exactly_across_calls():
    X, y, _ = data("wide-ce")
    nets = [make("wide-ce", "float64", s) for s in range(3)]
    alone = [make("wide-ce", "float64", s) for s in range(3)]
    opts = [nncore.Adam(1e-2) for _ in range(3)]
    nncore.fit_many(nets, X, y, epochs=1, optimizers=opts, shuffle=False)
    nncore.fit_many(nets, X, y, epochs=2, shuffle=False)     # keeps the optimizers
    for net, ref in zip(alone, nets):
        net.fit(X, y, epochs=3, optimizer=nncore.Adam(1e-2), shuffle=False)
        assert np.array_equal(net.state()["params"], ref.state()["params"])


def test_one_diverging_network_stops_alone_restored_and_marked():
    X, y, _ = data("wide-mse")
    X = X * 10
    lrs = [1e-4, 0.1, 1e-4]
    nets = [make("wide-mse", "float64", s) for s in range(3)]
    histories = nncore.fit_many(nets, X, y, epochs=3, seed=0,
                                optimizers=[nncore.SGD(lr) for lr in lrs])
    err = histories[1].diverged
    assert isinstance(err, nncore.TrainingDiverged)
    # where Network.fit stops, restored as Network.fit restores
    alone = make("wide-mse", "float64", 1)
    with pytest.raises(nncore.TrainingDiverged) as ref:
        fit_alone(alone, X, y, 0, epochs=3, optimizer=nncore.SGD(0.1))
    assert (err.epoch, err.batch) == (ref.value.epoch, ref.value.batch)
    assert histories[1].loss == alone.history.loss and len(histories[1].loss) == err.epoch
    assert np.array_equal(nets[1].state()["params"], alone.state()["params"])
    assert nets[1].optimizer.step == alone.optimizer.step
    for k in (0, 2):                   # the others trained all three epochs
        assert histories[k].diverged is None and len(histories[k].loss) == 3
        alone = make("wide-mse", "float64", k)
        fit_alone(alone, X, y, 0, epochs=3, optimizer=nncore.SGD(1e-4))
        assert np.array_equal(alone.state()["params"], nets[k].state()["params"])


def _refused(nets, *args, **kwargs):
    before = [state_of(n) for n in nets if isinstance(n, nncore.Network)]
    with pytest.raises((ValueError, TypeError)) as info:
        nncore.fit_many(nets, *args, **kwargs)
    for net, b in zip([n for n in nets if isinstance(n, nncore.Network)], before):
        assert_same_state(b, state_of(net))
    return str(info.value)


def test_different_architectures_or_dtypes_are_refused():
    X, y, _ = data("wide-ce")
    a = make("wide-ce", "float64", 0)
    wider = nncore.Network([nncore.Dense(40, 50, "relu"), nncore.Dense(50, 5)],
                           loss="cross_entropy", dtype="float64")
    assert "layer sizes 40-50-5" in _refused([a, wider], X, y)
    other_act = nncore.Network([nncore.Dense(40, 48, "tanh"), nncore.Dense(48, 5)],
                               loss="cross_entropy", dtype="float64")
    assert "activations ('tanh', 'identity')" in _refused([a, other_act], X, y)
    f32 = make("wide-ce", "float32", 1)
    assert "dtype 'float32'" in _refused([a, f32], X, y)
    other_loss = nncore.Network([nncore.Dense(40, 48, "relu"), nncore.Dense(48, 5)],
                                loss="mse", dtype="float64")
    assert "loss 'mse'" in _refused([a, other_loss], X, y)
    assert "twice" in _refused([a, a], X, y)


def test_optimizers_of_mixed_classes_or_shared_are_refused():
    X, y, _ = data("wide-ce")
    nets = [make("wide-ce", "float64", s) for s in range(2)]
    with pytest.raises(TypeError, match="one class"):
        nncore.fit_many(nets, X, y, optimizers=[nncore.SGD(0.1), nncore.Adam()])
    with pytest.raises(TypeError, match="one class"):
        nncore.fit_many(nets, X, y, optimizers=[nncore.Adam(), nncore.AdamW()])
    with pytest.raises(TypeError, match="LBFGS"):
        nncore.fit_many(nets, X, y, optimizers=[nncore.LBFGS(), nncore.LBFGS()])
    opt = nncore.Adam()
    assert "twice" in _refused(nets, X, y, optimizers=[opt, opt])
    assert "single Adam" in _refused(nets, X, y, optimizers=opt)
    assert "one optimizer per network" in _refused(nets, X, y, optimizers=[opt])
    taken = nncore.Adam()
    other = make("wide-ce", "float64", 5)
    other.fit(X, y, optimizer=taken)
    assert "another network" in _refused(nets, X, y, optimizers=[nncore.Adam(), taken])


def test_bad_arguments_are_refused_before_anything_changes():
    X, y, _ = data("wide-ce")
    nets = [make("wide-ce", "float64", s) for s in range(2)]
    assert "networks" in _refused([], X, y)
    assert "networks[1]" in _refused([nets[0], "net"], X, y)
    assert "X" in _refused(nets, X[:, :3], y)
    assert "epochs" in _refused(nets, X, y, epochs=-1)
    assert "seed" in _refused(nets, X, y, seed=-2)
    assert "validation_data" in _refused(nets, X, y, validation_data=X)
    assert "validation_data" in _refused(nets, X, y, validation_data=(X[:, :3], y))
    assert "one entry per network" in _refused(nets, X, y, callbacks=[None])
    stop = nncore.callbacks.EarlyStopping(monitor="loss")
    assert "each network needs its own" in _refused(nets, X, y, callbacks=[stop, stop])
    assert "val_loss" in _refused(nets, X, y, callbacks=[
        None, nncore.callbacks.EarlyStopping()])        # no validation data



CTRL_C_CHILD = r"""
import json, signal
import numpy as np
import nncore
signal.signal(signal.SIGINT, signal.default_int_handler)
rng = np.random.default_rng(0)
X = rng.normal(size=(20000, 20)); y = np.sin(X[:, :3])
def network(seed):
    return nncore.Network([nncore.Dense(20, 40, "relu"), nncore.Dense(40, 3)], seed=seed)
nets = [network(s) for s in range(3)]
opts = [nncore.Adam(1e-3 * (k + 1)) for k in range(3)]
print(json.dumps({"phase": "ready"}), flush=True)
try:
    nncore.fit_many(nets, X, y, epochs=10**6, optimizers=opts, seed=0)
except KeyboardInterrupt:
    steps = [o.step for o in opts]
    # every network where a lone Network.fit over those same batches leaves it
    same = []
    for k, net in enumerate(nets):
        alone = network(k)
        opt = nncore.Adam(1e-3 * (k + 1))
        order_rng = np.random.default_rng(0)
        from nncore._training import epoch_order
        done = 0
        while done < steps[k]:
            order = epoch_order(order_rng, len(X))
            take = min(steps[k] - done, -(-len(X) // 32))
            rows = order[:take * 32]
            alone.fit(X[rows], y[rows], epochs=1, batch_size=32, optimizer=opt,
                      shuffle=False)
            done += take
        same.append(bool(np.array_equal(alone.state()["params"], net.state()["params"])))
    print(json.dumps({"phase": "done", "steps": steps, "same": same,
                      "interrupted": [n.history.interrupted for n in nets]}), flush=True)
"""


def test_ctrl_c_leaves_every_network_after_the_same_last_batch():
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=child_env())
    try:
        assert child.stdout.readline().strip() == '{"phase": "ready"}'
        time.sleep(1.5)
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["phase"] == "done", err
    assert len(set(report["steps"])) == 1 and report["steps"][0] > 0
    assert all(report["interrupted"]) and all(report["same"]), report


def test_the_kernel_refuses_a_network_whose_arrays_do_not_match():
    from nncore._dispatch import kernels

    X, y, _ = data("wide-mse")
    nets = [make("wide-mse", "float64", s) for s in range(2)]
    opt = nncore.SGD(0.1)
    settings, _, _ = opt._kernel_args()
    net = nets[0]
    Xc, T, labels, w = net._targets(X, y, None)
    work = np.empty(kernels.workspace_size(net._sizes, 16))
    short = np.zeros(net.n_params - 1)
    for params, grads in (([net._flat, short], [net._grads, nets[1]._grads]),
                          ([net._flat, nets[1]._flat], [net._grads, short])):
        with pytest.raises(ValueError, match="kernel"):
            kernels.train_many(params, grads, [None, None], [None, None], net._sizes,
                               net._acts, net._loss_code, None, Xc, T, labels, w, None,
                               work, 16, 0, 1, [settings, settings], np.zeros(2, np.intp),
                               np.ones(2, np.intp), np.zeros(2), np.zeros(2), None,
                               [None, None], np.zeros(2, np.uint64))


def _without_time(history):
    return {k: v for k, v in history.history.items() if k != "time"}


def test_validation_and_callbacks_as_fit_runs_them_for_each_network():
    X, y, _ = data("wide-ce")
    Xv, yv, wv = data("wide-ce", n=40, seed=1)
    K = 4

    def hooks(k):
        # network 1 stops early; every network has its own learning-rate schedule
        stop = nncore.callbacks.EarlyStopping(monitor="val_loss",
                                              patience=1 if k == 1 else 100,
                                              min_delta=0.5 if k == 1 else 0.0)
        decay = nncore.callbacks.LearningRateScheduler(
            nncore.schedules.step_decay(2, 0.5 / (k + 1)))
        return [stop, decay]

    nets = [make("wide-ce", "float64", s) for s in range(K)]
    histories = nncore.fit_many(nets, X, y, epochs=8, seed=3, batch_size=16,
                                optimizers=[nncore.SGD(0.3, momentum=0.9)
                                            for _ in range(K)],
                                validation_data=(Xv, yv, wv),
                                callbacks=[hooks(k) for k in range(K)])
    lengths = set()
    for k in range(K):
        alone = make("wide-ce", "float64", k)
        ref = fit_alone(alone, X, y, 3, epochs=8, batch_size=16,
                        optimizer=nncore.SGD(0.3, momentum=0.9),
                        validation_data=(Xv, yv, wv), callbacks=hooks(k))
        assert _without_time(histories[k]) == _without_time(ref), k
        assert np.array_equal(nets[k].state()["params"], alone.state()["params"]), k
        lengths.add(len(ref.loss))
    assert len(lengths) > 1          # the early stop happened for one network only


@pytest.mark.parametrize("width", [8, 48])          # feature-major and row-major
def test_dropout_networks_draw_the_masks_fit_draws(width):
    X, y, w = data("wide-ce")
    X = X[:, :4] if width == 8 else X

    def make_dropout(seed, rate):
        return nncore.Network([nncore.Dense(X.shape[1], width, "relu", dropout=rate),
                               nncore.Dense(width, 5)], loss="cross_entropy",
                              dtype="float64", seed=seed)

    rates = [0.2, 0.5, 0.0]
    nets = [make_dropout(k, r) for k, r in enumerate(rates)]
    nncore.fit_many(nets, X, y, epochs=2, batch_size=16, seed=1, sample_weight=w,
                    optimizers=[nncore.Adam(1e-2) for _ in rates])
    for k, r in enumerate(rates):
        alone = make_dropout(k, r)
        fit_alone(alone, X, y, 1, epochs=2, batch_size=16, sample_weight=w,
                  optimizer=nncore.Adam(1e-2))
        assert np.array_equal(alone.state()["params"], nets[k].state()["params"]), k


@contextlib.contextmanager
def l2_cache(size):
    """The kernels in use blocked for an L2 cache of ``size`` bytes (the rule that
    groups fit_many's networks reads it), restored afterwards."""
    from nncore._dispatch import kernels

    before = kernels.get_blocking()
    kernels.set_blocking(size, before["l3"])
    try:
        yield kernels
    finally:
        kernels.set_blocking(before["l2"], before["l3"])


def test_networks_group_by_what_half_the_l2_cache_holds():
    from nncore._dispatch import kernels

    l2 = kernels.get_blocking()["l2"]
    per_network = 1000 * 4 * 3                  # 1000 float32 parameters, 3 arrays
    fit = (l2 // 2) // per_network
    assert kernels.many_group_size(1000, 4, 3, 5) == min(5, max(1, fit))
    assert kernels.many_group_size(1000, 4, 3, fit + 7) == max(1, fit)
    assert kernels.many_group_size(l2, 8, 2, 16) == 1            # beyond the cache
    assert kernels.many_group_size(1, 4, 2, 16) == 16
    with l2_cache(2 * 3 * per_network) as k:       # half holds 3 networks
        assert k.many_group_size(1000, 4, 3, 16) == 3
    for bad in ((-1, 4, 2, 3), (10, 0, 2, 3), (10, 4, 0, 3), (10, 4, 2, 0)):
        with pytest.raises(ValueError, match="many_group_size"):
            kernels.many_group_size(*bad)


@pytest.mark.parametrize("per_group", [1, 2])
@pytest.mark.parametrize("arch", ["tiny-mse", "wide-ce"])
def test_networks_trained_in_groups_end_bit_for_bit_where_fit_leaves_them(arch,
                                                                          per_group):
    # Caches too small for all five networks' arrays: fit_many trains them in
    # groups of ``per_group`` (each batch loaded again per group); one of them
    # diverges and stops alone.
    X, y, w = data(arch)
    X = X * 10
    K, lrs = 5, [1e-3, 2e-3, 500.0, 1e-3, 3e-3]
    nets = [make(arch, "float32", s) for s in range(K)]
    per_network = nets[0].n_params * 4 * 3       # SGD with momentum: 3 arrays
    kwargs = dict(epochs=3, batch_size=16, sample_weight=w)
    with l2_cache(2 * per_group * per_network) as k:
        assert k.many_group_size(nets[0].n_params, 4, 3, K) == per_group
        histories = nncore.fit_many(nets, X, y, seed=5, optimizers=[
            nncore.SGD(lr, momentum=0.9) for lr in lrs], **kwargs)
    assert isinstance(histories[2].diverged, nncore.TrainingDiverged)
    for k, lr in enumerate(lrs):
        alone = make(arch, "float32", k)
        if k == 2:
            with pytest.raises(nncore.TrainingDiverged):
                fit_alone(alone, X, y, 5, optimizer=nncore.SGD(lr, momentum=0.9),
                          **kwargs)
        else:
            ref = fit_alone(alone, X, y, 5, optimizer=nncore.SGD(lr, momentum=0.9),
                            **kwargs)
            assert histories[k].loss == ref.loss and histories[k].diverged is None
        assert np.array_equal(nets[k].state()["params"], alone.state()["params"]), k
        assert nets[k].optimizer.step == alone.optimizer.step
