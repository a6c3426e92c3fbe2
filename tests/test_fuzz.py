"""Property-based fuzzing: random layer stacks, shapes, dtypes, layouts, batch sizes,
activations, losses and optimizers, valid and invalid. The only allowed outcomes are a
correct result (shapes, dtypes, finite loss, numbers that match the NumPy reference)
or a ValueError/TypeError with the network unchanged. Never a crash, never garbage.

The same suite runs in CI against kernels built with NNCORE_BOUNDSCHECK=1, where an
out-of-range index inside the kernels is an IndexError (and so a failure here)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nncore
from nncore import reference
from nncore._codes import Optimizer, codes
from nncore._dispatch import kernels
from nncore.losses import loss_code

from _helpers import assert_same_state, state_of

ACTIVATIONS = sorted(nncore.ACTIVATIONS)
LOSSES = sorted(nncore.LOSSES)

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Each corruption makes exactly one thing invalid; the call must then raise
# ValueError/TypeError and leave the network as it was.
CORRUPTIONS = [
    "X_nan", "X_inf", "X_1d", "X_features", "X_empty", "X_complex", "X_object",
    "y_rows", "y_nan", "y_range", "y_width", "y_string",
    "sw_negative", "sw_zero", "sw_length", "sw_nan",
    "epochs_negative", "batch_zero", "batch_float", "shuffle_str",
    "lr_negative", "lr_nan",
]


@st.composite
def problems(draw):
    n_layers = draw(st.integers(1, 4))
    loss = draw(st.sampled_from(LOSSES))
    n_in = draw(st.integers(1, 7))
    widths = [draw(st.integers(1, 9)) for _ in range(n_layers)]
    if loss == "gaussian_nll":
        widths[-1] = 2 * draw(st.integers(1, 4))
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(n_layers)]
    n = draw(st.integers(1, 40))
    return dict(
        loss=loss, n_in=n_in, widths=widths, acts=acts, n=n,
        dtype=draw(st.sampled_from(["float32", "float64"])),
        data_dtype=draw(st.sampled_from(["float64", "float32", "int64", "bool", ">f8"])),
        layout=draw(st.sampled_from(["C", "F", "strided", "readonly", "list"])),
        batch_size=draw(st.one_of(st.just(1), st.integers(1, 50), st.just(10**6))),
        epochs=draw(st.integers(0, 3)),
        shuffle=draw(st.booleans()),
        weights=draw(st.sampled_from([None, "positive", "some_zero"])),
        optimizer=draw(st.sampled_from(["sgd", "momentum", "adam", "adamw", "rmsprop"])),
        probs=draw(st.booleans()),       # cross_entropy: probability rows
        seed=draw(st.integers(0, 2**16)),
        corruption=draw(st.one_of(st.none(), st.none(), st.sampled_from(CORRUPTIONS))),
    )


def _layout(a, layout):
    a = np.asarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        wide = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        wide[::2] = a
        return wide[::2]
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "list":
        return a.tolist()
    return a


def _make(p):
    """(network, X, y, sample_weight, fit kwargs) of a valid problem; X, y, w as clean
    float64/intp arrays too, for the reference."""
    rng = np.random.default_rng(p["seed"])
    sizes = [p["n_in"]] + p["widths"]
    layers = [nncore.Dense(sizes[i], sizes[i + 1], p["acts"][i])
              for i in range(len(p["widths"]))]
    net = nncore.Network(layers, loss=p["loss"], dtype=p["dtype"], seed=p["seed"])
    n, k = p["n"], p["widths"][-1]
    if p["data_dtype"] == "bool":
        X = rng.random((n, p["n_in"])) > 0.5
    elif p["data_dtype"] == "int64":
        X = rng.integers(-3, 4, size=(n, p["n_in"]))
    else:
        X = rng.normal(size=(n, p["n_in"])).astype(p["data_dtype"])
    if p["loss"] in ("mse", "mae", "huber", "quantile"):
        y = rng.normal(size=(n, k))
    elif p["loss"] == "poisson":
        y = rng.poisson(1.0, size=(n, k)).astype(float)
    elif p["loss"] == "binary_cross_entropy":
        y = rng.random((n, k))
    elif p["loss"] == "gaussian_nll":
        y = rng.normal(size=(n, k // 2))
    elif p["probs"]:
        y = rng.dirichlet(np.ones(k), size=n)
    else:
        y = rng.integers(0, k, size=n)
    w = None
    if p["weights"] == "positive":
        w = rng.uniform(0.1, 2.0, size=n)
    elif p["weights"] == "some_zero":
        w = rng.uniform(0.1, 2.0, size=n) * (rng.random(n) > 0.5)
        w[rng.integers(n)] = 1.0
    opt = {"sgd": lambda: nncore.SGD(1e-3), "momentum": lambda: nncore.SGD(1e-3, 0.9),
           "adam": lambda: nncore.Adam(1e-4), "adamw": lambda: nncore.AdamW(1e-4),
           "rmsprop": lambda: nncore.RMSprop(1e-4)}[p["optimizer"]]()
    kwargs = dict(epochs=p["epochs"], batch_size=p["batch_size"], shuffle=p["shuffle"],
                  optimizer=opt)
    return net, X, y, w, kwargs


def _corrupt(what, X, y, w, kwargs, loss, n_out):
    X = np.array(X, dtype=float)
    y = np.array(y)
    n = len(X)
    if what == "X_nan":
        X[-1, 0] = np.nan
    elif what == "X_inf":
        X[0, -1] = -np.inf
    elif what == "X_1d":
        X = X[:, 0]
    elif what == "X_features":
        X = np.hstack([X, X[:, :1]])
    elif what == "X_empty":
        X, y = X[:0], y[:0]
        w = None if w is None else w[:0]
    elif what == "X_complex":
        X = X.astype(complex)
    elif what == "X_object":
        X = X.astype(object)
    elif what == "y_rows":
        y = np.concatenate([y, y[:1]])
    elif what == "y_nan":
        y = y.astype(float)
        y.flat[0] = np.nan
    elif what == "y_range":
        y = y.astype(float)
        if loss == "binary_cross_entropy":
            y.flat[0] = 1.5
        elif loss == "cross_entropy" and y.ndim == 1:
            y[0] = n_out                              # one past the last class
        elif loss == "cross_entropy":
            y[0, 0] = -0.5                            # negative probability
        else:
            y = y[..., None]                          # (mse, gaussian_nll: wrong ndim)
    elif what == "y_width":
        # Class labels turned into rows one wider than the output (two copies of
        # the labels would be valid probability rows for a two-class output).
        y = (np.repeat(y[:, None], n_out + 1, axis=1) if y.ndim == 1
             else np.hstack([y, y[:, :1]]))
    elif what == "y_string":
        y = y.astype(str)
    elif what == "sw_negative":
        w = np.ones(n)
        w[-1] = -1.0
    elif what == "sw_zero":
        w = np.zeros(n)
    elif what == "sw_length":
        w = np.ones(n + 1)
    elif what == "sw_nan":
        w = np.ones(n)
        w[0] = np.nan
    elif what == "epochs_negative":
        kwargs["epochs"] = -1
    elif what == "batch_zero":
        kwargs["batch_size"] = 0
    elif what == "batch_float":
        kwargs["batch_size"] = 4.0
    elif what == "shuffle_str":
        kwargs["shuffle"] = "no"
    elif what == "lr_negative":
        kwargs["optimizer"].lr = -1e-3
    elif what == "lr_nan":
        kwargs["optimizer"].lr = float("nan")
    return X, y, w, kwargs


def _reference_check(net, X, y, w, loss, dtype):
    """net.loss and net.loss_and_grads against the NumPy reference, in float64."""
    params = [np.asarray(p, dtype=np.float64) for p in net.params]
    acts = [layer.activation for layer in net.layers]
    Xr = np.asarray(X, dtype=dtype).astype(np.float64)   # what the network sees
    yr = np.asarray(y)
    if loss == "cross_entropy" and yr.ndim == 1:
        yr = yr.astype(np.intp)
    elif loss != "cross_entropy" and yr.ndim == 1:
        yr = yr[:, None]
    if yr.dtype.kind == "f":
        yr = yr.astype(dtype).astype(np.float64)
    wr = None if w is None else np.asarray(w, dtype=dtype).astype(np.float64)
    ref_loss, ref_grads = reference.loss_and_grads(params, acts, loss, Xr, yr, wr)
    value, grads = net.loss_and_grads(X, y, w)
    rtol = 1e-9 if dtype == "float64" else 2e-3
    atol = 1e-12 if dtype == "float64" else 1e-4
    assert abs(value - ref_loss) <= atol + rtol * abs(ref_loss), (value, ref_loss)
    g = np.concatenate([np.ravel(a) for a in grads]).astype(np.float64)
    r = np.concatenate([np.ravel(a) for a in ref_grads])
    assert np.linalg.norm(g - r) <= atol * np.sqrt(g.size) + rtol * np.linalg.norm(r)


@pytest.mark.slow
@FUZZ
@given(p=problems())
def test_fuzz_public_api(p):
    net, X, y, w, kwargs = _make(p)
    n, k = p["n"], p["widths"][-1]
    if p["loss"] == "poisson":
        # Small log rates at the start: exp(log rate) in the gradient can overflow.
        net.params[-2][...] *= 0.01
    if p["corruption"] is not None:
        net.fit(X, y, sample_weight=w, **dict(kwargs, epochs=1))   # optimizer state
        X, y, w, kwargs = _corrupt(p["corruption"], X, y, w, kwargs, p["loss"], k)
        before = state_of(net)
        calls = [lambda: net.fit(X, y, sample_weight=w, **kwargs)]
        if p["corruption"].startswith("X"):
            calls += [lambda: net.predict(X), lambda: net.forward(X)]
        if p["corruption"][:2] in ("X_", "y_", "sw"):
            calls += [lambda: net.loss(X, y, w), lambda: net.loss_and_grads(X, y, w),
                      lambda: net.evaluate(X, y, w)]
        for call in calls:
            with pytest.raises((ValueError, TypeError)):
                call()
            assert_same_state(before, state_of(net))
        return

    Xl, yl = _layout(X, p["layout"]), _layout(y, p["layout"])
    wl = None if w is None else _layout(w, p["layout"])
    try:
        history = net.fit(Xl, yl, sample_weight=wl, **kwargs)
    except nncore.TrainingDiverged:
        # Only poisson: the gradient holds exp(log rate), which a small step can
        # overflow. The epoch is then undone, leaving finite parameters.
        assert p["loss"] == "poisson"
        assert all(np.isfinite(a).all() for a in net.params)
        return
    assert len(history.loss) == p["epochs"] and np.isfinite(history.loss).all()
    assert all(np.isfinite(a).all() for a in net.params)
    B = min(p["batch_size"], n)
    n_batches = -(-n // B)
    if p["weights"] != "some_zero":
        assert net.optimizer.step == p["epochs"] * n_batches
    else:
        assert net.optimizer.step <= p["epochs"] * n_batches
    for method in (net.forward, net.predict):
        out = method(Xl)
        assert out.shape == (n, k) and out.dtype == np.dtype(p["dtype"])
        finite = np.isfinite(out)
        if p["loss"] == "poisson" and method == net.predict:
            # the rates exp(z) overflow where the log rate z is beyond the dtype's range
            finite |= net.forward(Xl) > np.log(np.finfo(p["dtype"]).max)
        assert finite.all()
    probs = net.predict(Xl)
    if p["loss"] == "cross_entropy":
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    if p["loss"] in ("cross_entropy", "binary_cross_entropy"):
        assert ((probs >= 0) & (probs <= 1)).all()
        assert 0 <= net.evaluate(Xl, yl, wl)["accuracy"] <= 1
    if p["loss"] != "poisson" or np.isfinite(net.loss(X, y, w)):
        _reference_check(net, X, y, w, p["loss"], p["dtype"])


# ------------------------------------------------------------------ hyperparameters
finite_or_not = st.one_of(st.floats(-2, 2), st.sampled_from([0.0, 1.0, -0.0, 1e-300,
                                                             float("nan"), float("inf"),
                                                             -float("inf")]))


@st.composite
def optimizer_specs(draw):
    kind = draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop"]))
    spec = {"lr": draw(st.one_of(finite_or_not, st.floats(0, 1e-2)))}
    if kind == "SGD":
        spec["momentum"] = draw(finite_or_not)
        spec["nesterov"] = draw(st.sampled_from([False, True, 1, None]))
    if kind in ("Adam", "AdamW"):
        spec["betas"] = draw(st.one_of(st.tuples(finite_or_not, finite_or_not),
                                       st.sampled_from([(0.9,), 0.9, None])))
        spec["eps"] = draw(finite_or_not)
    if kind == "RMSprop":
        spec["alpha"] = draw(finite_or_not)
        spec["eps"] = draw(finite_or_not)
        spec["momentum"] = draw(finite_or_not)
    spec["weight_decay"] = draw(finite_or_not)
    return kind, spec


def _valid_spec(kind, spec):
    def ok(v, lo, hi=np.inf, lo_open=False, hi_open=False):
        return (isinstance(v, float) and np.isfinite(v)
                and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi))

    valid = ok(spec["lr"], 0) and ok(spec["weight_decay"], 0)
    if kind == "SGD":
        valid &= ok(spec["momentum"], 0, 1, hi_open=True)
        valid &= isinstance(spec["nesterov"], bool)
        valid &= not (spec["nesterov"] is True and spec["momentum"] == 0)
    if kind in ("Adam", "AdamW"):
        b = spec["betas"]
        valid &= isinstance(b, tuple) and len(b) == 2 and \
            all(ok(x, 0, 1, hi_open=True) for x in b)
        valid &= ok(spec["eps"], 0, lo_open=True)
    if kind == "RMSprop":
        valid &= ok(spec["alpha"], 0, 1, hi_open=True)
        valid &= ok(spec["eps"], 0, lo_open=True)
        valid &= ok(spec["momentum"], 0, 1, hi_open=True)
    return valid


@pytest.mark.slow
@FUZZ
@given(spec=optimizer_specs(), seed=st.integers(0, 1000))
def test_fuzz_optimizer_hyperparameters(spec, seed):
    kind, kwargs = spec
    valid = _valid_spec(kind, kwargs)
    cls = getattr(nncore, kind)
    try:
        opt = cls(**kwargs)
    except (ValueError, TypeError):
        assert not valid, f"valid hyperparameters refused: {kind}({kwargs})"
        return
    assert valid, f"invalid hyperparameters accepted: {kind}({kwargs})"
    # a small lr keeps training finite whatever the other (valid) values are
    opt.lr = min(opt.lr, 1e-3)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, 3))
    net = nncore.Network([nncore.Dense(3, 4, "tanh"), nncore.Dense(4, 2)], seed=seed)
    history = net.fit(X, X[:, :2], epochs=2, batch_size=7, optimizer=opt)
    assert np.isfinite(history.loss).all() and opt.step == 6
    assert all(np.isfinite(s).all() for s in opt.state_arrays())


# ---------------------------------------------------------- kernel entry points
# The kernels' def entry points check every length their nogil code trusts (the last
# line of defence behind the Python validation). Fed inconsistent arrays directly,
# they must raise, never read or write out of bounds.

# The kernels' parameters of the losses that have any (huber's delta, the quantiles).
LOSS_PARAMS = {"huber": np.array([1.0]), "quantile": np.array([0.5])}


@st.composite
def kernel_calls(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    L = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(L + 1)]
    loss = draw(st.sampled_from(LOSSES))
    if loss == "gaussian_nll":
        sizes[-1] = 2 * max(1, sizes[-1] // 2)
    n = draw(st.integers(1, 12))
    cap = draw(st.integers(1, 12))
    fault = draw(st.sampled_from([None, "sizes", "acts", "params", "X", "out", "work",
                                  "cap", "labels", "T", "weights", "order", "range",
                                  "state", "kind", "grads", "loss"]))
    return dict(dtype=dtype, sizes=sizes, loss=loss, n=n, cap=cap, fault=fault,
                acts=[draw(st.integers(0, len(ACTIVATIONS) - 1)) for _ in range(L)],
                labels=draw(st.booleans()), weights=draw(st.booleans()),
                gather=draw(st.booleans()), seed=draw(st.integers(0, 1000)),
                first=draw(st.integers(0, 3)), count=draw(st.integers(0, 4)))


def _kernel_args(c):
    rng = np.random.default_rng(c["seed"])
    dt, sizes, n = c["dtype"], np.array(c["sizes"], dtype=np.intp), c["n"]
    acts = np.array(c["acts"], dtype=np.intp)
    n_params = sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(acts)))
    K = int(sizes[-1])
    use_labels = c["loss"] == "cross_entropy" and c["labels"]
    width = K // 2 if c["loss"] == "gaussian_nll" else K
    a = dict(
        params=rng.normal(size=n_params).astype(dt) * 0.3,
        sizes=sizes, acts=acts, X=rng.normal(size=(n, sizes[0])).astype(dt),
        T=None if use_labels else rng.random((n, width)).astype(dt),
        labels=rng.integers(0, K, size=n).astype(np.intp) if use_labels else None,
        w=rng.uniform(0.5, 1.5, size=n).astype(dt) if c["weights"] else None,
        loss=loss_code(c["loss"]), cap=c["cap"],
        loss_params=LOSS_PARAMS.get(c["loss"]))
    a["grads"] = np.zeros_like(a["params"])
    a["out"] = np.zeros((n, K), dt)
    a["work"] = np.zeros(kernels.workspace_size(sizes, c["cap"]), dt)
    f = c["fault"]
    if f == "sizes":
        a["sizes"] = sizes.copy()
        a["sizes"][rng.integers(len(sizes))] += int(rng.choice([-1, 1, 5]))
    elif f == "acts":
        a["acts"] = acts.copy()
        a["acts"][0] = int(rng.choice([-1, len(nncore.ACTIVATIONS), 99]))
    elif f == "params":
        a["params"] = a["params"][:-1]
    elif f == "X":
        a["X"] = rng.normal(size=(n, int(sizes[0]) + 1)).astype(dt)
    elif f == "out":
        a["out"] = np.zeros((n, K + 1), dt)
    elif f == "work":
        a["work"] = a["work"][:-1]
    elif f == "cap":
        # A batch size the workspace is too small for (the next few may fit:
        # feature-major networks pad the batch to whole vectors).
        over = c["cap"] + 1
        while kernels.workspace_size(sizes, over) <= a["work"].shape[0]:
            over += 1
        a["cap"] = int(rng.choice([0, -1, over]))
    elif f == "labels" and use_labels:
        a["labels"] = a["labels"].copy()
        a["labels"][0] = int(rng.choice([-1, K]))
    elif f == "T":
        a["T"] = np.zeros((n + 1, width), dt)
    elif f == "weights":
        a["w"] = np.ones(n + 1, dt)
    elif f == "grads":
        a["grads"] = a["grads"][:-1]
    elif f == "loss":
        a["loss"] = int(rng.choice([-1, len(nncore.LOSSES), 100]))
    return a


@pytest.mark.slow
@FUZZ
@given(c=kernel_calls())
def test_fuzz_kernel_forward_and_loss(c):
    a = _kernel_args(c)
    try:
        kernels.forward(a["params"], a["sizes"], a["acts"], a["X"], a["out"], a["work"],
                        a["cap"])
        kernels.loss_and_grads(a["params"], a["grads"], a["sizes"], a["acts"], a["loss"],
                               a["loss_params"], a["X"], a["T"], a["labels"], a["w"],
                               a["work"], a["cap"])
    except (ValueError, TypeError):
        assert c["fault"] is not None, "consistent arguments refused"
        return
    # faults these two calls do not see
    harmless = (None, "order", "range", "state", "kind")
    assert c["fault"] in harmless or (c["fault"] == "labels" and a["labels"] is None), \
        f"inconsistent arguments ({c['fault']}) accepted"


@pytest.mark.slow
@FUZZ
@given(c=kernel_calls())
def test_fuzz_kernel_train_batches(c):
    a = _kernel_args(c)
    rng = np.random.default_rng(c["seed"] + 1)
    n, dt, f = c["n"], c["dtype"], c["fault"]
    B = a["cap"]                          # the batch size; faulty when f == "cap"
    gather = c["gather"]
    order = rng.permutation(n).astype(np.intp) if gather else None
    bad_pos = int(rng.integers(n))
    if f == "order" and gather:
        order[bad_pos] = n                               # a row past the end
    n_rules = len(codes(Optimizer))          # the kernels' update rules
    kind = int(rng.choice([-1, n_rules]) if f == "kind" else rng.integers(0, n_rules))
    state = [np.zeros(len(a["params"]), dt) for _ in range(2)]
    if f == "state":                      # (SGD with momentum uses only state1)
        state = [state[0][:-1], state[1][:-1]]
    n_batches = -(-n // c["cap"])
    first = min(c["first"], n_batches)
    count = min(c["count"], n_batches - first)
    if f == "range":
        first, count = n_batches + 1, 2
    # A bad row index or label must be refused when this call would read it (the
    # kernel may check only the rows of the batches it runs).
    read = range(first * B, min(n, (first + count) * B)) if B >= 1 else range(0)
    rows_read = {int(order[i]) if gather else i for i in read}
    must_raise = f in ("sizes", "acts", "params", "X", "work", "T", "weights", "grads",
                       "loss", "state", "kind", "range", "cap") or \
        (f == "labels" and a["labels"] is not None and 0 in rows_read) or \
        (f == "order" and gather and bad_pos in read)
    may_raise = must_raise or f in ("labels", "order")
    try:
        settings_ = dict(kind=kind, lr=1e-3, momentum=0.5, beta1=0.9, beta2=0.999,
                         eps=1e-8, alpha=0.99)
        out = kernels.train_batches(
            a["params"], a["grads"], a["sizes"], a["acts"], a["loss"], a["loss_params"],
            a["X"], a["T"], a["labels"], a["w"], order, a["work"], B, first, count,
            settings_, state[0], state[1], 0)
    except (ValueError, TypeError):
        assert may_raise, f"consistent arguments refused (fault {f})"
        return
    assert not must_raise, f"inconsistent arguments accepted (fault {f})"
    loss_sum, weight_sum, done, steps, status = out
    assert 0 <= steps <= done <= count


def test_kernel_refuses_targets_next_to_labels():
    """Integer labels and a non-empty T together are ambiguous (and a short T would be
    read out of range when rows are gathered): the kernel refuses them. (T is one row
    longer than X here, so that a kernel without the check reads nothing out of
    range.)"""
    rng = np.random.default_rng(0)
    n, K = 6, 3
    sizes = np.array([2, K], dtype=np.intp)
    acts = np.zeros(1, dtype=np.intp)
    params = rng.normal(size=2 * K + K).astype(np.float64)
    X = rng.normal(size=(n, 2))
    labels = rng.integers(0, K, size=n).astype(np.intp)
    T = np.zeros((n + 1, K))
    with pytest.raises(ValueError):
        kernels.train_batches(
            params, np.zeros_like(params), sizes, acts, loss_code("cross_entropy"), None,
            X, T, labels, None, rng.permutation(n).astype(np.intp),
            np.zeros(kernels.workspace_size(sizes, 2)), 2, 0, 3,
            dict(kind=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
            np.zeros_like(params), np.zeros_like(params), 0)
