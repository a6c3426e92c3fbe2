"""Plain helpers shared by the test modules: data makers, comparisons, finite
differences, snapshots of a network's state, child interpreters, and model files.

Only NumPy is imported at module level. Fixtures and the choice of which nncore the
tests import live in ``conftest.py``.
"""
import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------- data
#: Every loss, with cross_entropy twice: integer labels and probability rows.
LOSS_CASES = ("mse", "binary_cross_entropy", "cross_entropy", "cross_entropy_probs",
              "gaussian_nll", "mae", "huber", "poisson", "quantile")


def loss_name(case):
    """The nncore loss name of a case of LOSS_CASES."""
    return "cross_entropy" if case.startswith("cross_entropy") else case


def output_width(case, k):
    """Width of the last layer for ``k`` targets (gaussian_nll: k means + k log vars)."""
    return 2 * k if case == "gaussian_nll" else k


def make_targets(case, n, k, rng, dtype=np.float64):
    """Targets for ``n`` rows and ``k`` target columns (classes for cross_entropy).

    mse, gaussian_nll, mae, huber and quantile: normal values (n, k); poisson: counts
    (n, k); binary_cross_entropy: uniform
    probabilities in [0, 1] (n, k); cross_entropy: integer labels (n,) covering the
    classes; cross_entropy_probs: Dirichlet probability rows (n, k). Float targets
    are of ``dtype``.
    """
    if case in ("mse", "gaussian_nll", "mae", "huber", "quantile"):
        return rng.normal(size=(n, k)).astype(dtype)
    if case == "poisson":
        return rng.poisson(1.5, size=(n, k)).astype(dtype)
    if case == "binary_cross_entropy":
        return rng.uniform(size=(n, k)).astype(dtype)
    if case == "cross_entropy":
        return rng.permutation(np.arange(n) % k)
    if case == "cross_entropy_probs":
        return rng.dirichlet(np.ones(k), size=n).astype(dtype)
    raise ValueError(f"unknown loss case {case!r}")


def make_data(case, n, n_in, k, rng):
    """``(X, y)``: standard normal X (n, n_in) and targets as in :func:`make_targets`."""
    X = rng.normal(size=(n, n_in))
    return X, make_targets(case, n, k, rng)


def seed_of(*parts):
    """A stable seed from test parameters (``hash`` of a str changes per process)."""
    return zlib.crc32(repr(parts).encode())


def make_sample_weight(n, rng):
    """Positive weights, uneven enough that a wrong normalisation shows."""
    return rng.uniform(0.1, 3.0, size=n)


# ---------------------------------------------------------------------- comparisons
def flat(arrays):
    """One float64 vector from a list of arrays."""
    return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays])


def rel_err(a, b):
    """Norm-based relative error ``||a - b|| / ||b||`` over lists of arrays (or arrays
    or scalars); 0 when both are zero."""
    if isinstance(a, (list, tuple)):
        a, b = flat(a), flat(b)
    a = np.ravel(np.asarray(a, dtype=np.float64))
    b = np.ravel(np.asarray(b, dtype=np.float64))
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.linalg.norm(b)
    diff = np.linalg.norm(a - b)
    if scale == 0:
        return 0.0 if diff == 0 else np.inf
    return diff / scale


def copy_params(net):
    """Independent float64 copies of ``net.params`` (for the reference)."""
    return [np.array(p, dtype=np.float64) for p in net.params]


def central_differences(f, arrays, h=1e-6):
    """``d f / d arrays[i]`` entry by entry, ``(f(x + h) - f(x - h)) / 2h``, perturbing
    ``arrays`` in place (and restoring them)."""
    grads = []
    for a in arrays:
        g = np.zeros(a.shape)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            f_plus = f()
            a[idx] = old - h
            f_minus = f()
            a[idx] = old
            g[idx] = (f_plus - f_minus) / (2 * h)
        grads.append(g)
    return grads


# ------------------------------------------------------------------- network state
def state_of(net):
    """Copies of everything about ``net`` that a call could change: parameters,
    optimizer (identity, step, state arrays), shuffling generator, history."""
    opt = net.optimizer
    return {
        "params": [np.array(p) for p in net.params],
        "optimizer": opt,
        "step": None if opt is None else opt.step,
        "opt_state": None if opt is None else [np.array(s) for s in opt.state_arrays()],
        "rng": net._rng.bit_generator.state,
        "history": net.history,
        "history_loss": None if net.history is None else list(net.history.loss),
    }


def assert_same_state(before, after):
    """Bit-for-bit equality of two :func:`state_of` results."""
    assert len(before["params"]) == len(after["params"])
    for i, (a, b) in enumerate(zip(before["params"], after["params"])):
        assert a.dtype == b.dtype and a.shape == b.shape, f"params[{i}]"
        assert np.array_equal(a, b, equal_nan=True), f"params[{i}] changed"
    assert before["optimizer"] is after["optimizer"], "net.optimizer changed"
    assert before["step"] == after["step"], "optimizer.step changed"
    if before["opt_state"] is not None:
        assert len(before["opt_state"]) == len(after["opt_state"])
        for i, (a, b) in enumerate(zip(before["opt_state"], after["opt_state"])):
            assert np.array_equal(a, b, equal_nan=True), f"optimizer state {i} changed"
    assert before["rng"] == after["rng"], "the shuffling generator advanced"
    assert before["history"] is after["history"], "net.history was replaced"
    assert before["history_loss"] == after["history_loss"], "net.history changed"


def assert_same_history(a, b):
    """The same epoch losses, bit for bit: the kernels carry an epoch's loss sums
    from one call to the next, so where the calls cut the epoch does not change
    them."""
    a, b = list(a), list(b)
    assert len(a) == len(b), (a, b)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- child processes
def child_env():
    """The environment for a child interpreter that must import the nncore these
    tests import (the source tree's after an in-place build, or the installed one)."""
    import nncore

    root = str(Path(nncore.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_child(code, timeout=120, env=None, stdin=None):
    """Run ``code`` in a fresh interpreter that imports this nncore; return the JSON
    object the child printed on its last stdout line."""
    full_env = child_env()
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=full_env, input=stdin)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------- model files
def trained_net(loss="cross_entropy", dtype="float32", optimizer=None, epochs=2,
                activations=("tanh", "relu"), seed=0, n=64):
    """``(net, X, y)``: a small network (4 inputs, a hidden layer of 6 per activation,
    3 targets) trained ``epochs`` epochs with shuffling, batches of 8, and its data."""
    import nncore

    k = 3
    sizes = [4] + [6] * len(activations) + [output_width(loss, k)]
    layers = [nncore.Dense(a, b, act)
              for a, b, act in zip(sizes, sizes[1:], [*activations, "identity"])]
    net = nncore.Network(layers, loss=loss, dtype=dtype, seed=seed)
    X, y = make_data(loss, n, 4, k, np.random.default_rng(seed + 1))
    if epochs:
        net.fit(X, y, epochs=epochs, batch_size=8,
                optimizer=optimizer if optimizer is not None else nncore.Adam(0.01))
    return net, X, y


def saved_bytes(net, **kwargs):
    """The bytes of ``net.save`` to a file object."""
    buf = io.BytesIO()
    net.save(buf, **kwargs)
    return buf.getvalue()


def archive_parts(data):
    """(header dict, {name: array}) of a saved file's bytes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def make_archive(header, arrays, compressed=False):
    """An .npz archive (bytes) of ``header`` (a dict, or raw bytes) and ``arrays``,
    written by NumPy itself, so that its CRCs and sizes are right."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, header=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return buf.getvalue()


class PicklePayload:
    """An object whose unpickling runs ``open(marker, "w")``: the marker file is the
    proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def assert_same_network(a, b):
    """Bit-for-bit equality of everything a saved file holds: architecture,
    parameters, shuffling generator, optimizer (class, hyperparameters, step, state)."""
    assert repr(a) == repr(b)
    assert a.dtype == b.dtype
    for p, q in zip(a.params, b.params):
        assert p.dtype == q.dtype and np.array_equal(p, q)
    assert a._rng.bit_generator.state == b._rng.bit_generator.state
    if a.optimizer is None:
        assert b.optimizer is None
        return
    assert repr(a.optimizer) == repr(b.optimizer)
    assert a.optimizer.step == b.optimizer.step
    sa, sb = a.optimizer.state_arrays(), b.optimizer.state_arrays()
    assert len(sa) == len(sb)
    for p, q in zip(sa, sb):
        assert p.dtype == q.dtype and np.array_equal(p, q)
