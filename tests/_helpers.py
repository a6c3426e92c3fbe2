"""Helpers shared by the robustness tests (validation, fuzz, divergence, interrupt,
threads, memory): snapshots of everything a call could change, and data makers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import nncore


def repo_root():
    """The directory holding the imported ``nncore`` package (for subprocesses)."""
    return str(Path(nncore.__file__).resolve().parents[1])


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
    """Epoch losses equal to rounding. (Parameters are bit-for-bit reproducible, but an
    epoch's loss is summed per kernel call, and where the calls split an epoch depends
    on timing.)"""
    a, b = list(a), list(b)
    assert len(a) == len(b), (a, b)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def targets_for(loss, n, k, rng):
    """Valid targets for ``loss`` and an output of width ``k`` (k = 2m for
    gaussian_nll)."""
    if loss == "mse":
        return rng.normal(size=(n, k))
    if loss == "binary_cross_entropy":
        return rng.uniform(size=(n, k))
    if loss == "cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "gaussian_nll":
        return rng.normal(size=(n, k // 2))
    raise ValueError(loss)


def run_child(code, timeout=120, env=None, stdin=None):
    """Run ``code`` in a fresh interpreter that imports this nncore; return the JSON
    object the child printed on its last stdout line."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = repo_root() + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=full_env, input=stdin)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = repo_root() + os.pathsep + env.get("PYTHONPATH", "")
    return env
