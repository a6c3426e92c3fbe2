"""``fit`` with :class:`~nncore.LBFGS`: SciPy's L-BFGS-B over the whole training set,
on the loss and gradient of the kernels' ``loss_and_grads``.

SciPy keeps its iterate in float64; each evaluation copies it into the network's
parameters (rounding it for a float32 network) and runs one full pass. One L-BFGS
iteration is one entry of the history, as one epoch is for the other optimizers.
"""
from __future__ import annotations

import math

import numpy as np

from .history import TrainingDiverged


class _Interrupted(Exception):
    """Ctrl-C seen inside an evaluation: leaves SciPy's loop at once."""


def check_start(net, X, T, labels, w):
    """The loss at the starting point, which must be finite (checked before anything
    changes, so that a bad start is a ValueError, not a diverged run)."""
    value = net._loss_and_grads_checked(X, T, labels, w, False)
    if not math.isfinite(value):
        raise ValueError(f"LBFGS needs a finite loss at the start; the network's loss on "
                         f"this data is {value} (scale the inputs, or start from other "
                         "weights)")
    return value


def fit(net, X, T, labels, w, epochs, optimizer, history, sigint, verbose):
    """Run at most ``epochs`` L-BFGS iterations on ``net`` (whose lock the caller
    holds), appending the loss after each to ``history.loss`` and counting them in
    ``optimizer.step``.

    On Ctrl-C the network keeps the last completed iteration's parameters, the history
    is marked interrupted and KeyboardInterrupt is raised. If SciPy ends on a
    non-finite loss, the network is put back to the last good iteration and
    TrainingDiverged is raised.
    """
    from scipy.optimize import minimize

    from ._dispatch import kernels

    flat, grads = net._flat, net._grads
    cap = min(X.shape[0], 1024)
    work = net._workspace(cap)
    last_good = flat.copy()            # the start, then each completed iteration

    def fun(x):
        if sigint.fired:
            raise _Interrupted
        np.copyto(flat, x, casting="same_kind")
        value = kernels.loss_and_grads(flat, grads, net._sizes, net._acts,
                                       net._loss_code, net._loss_params, X, T, labels,
                                       w, work, cap)
        if not math.isfinite(value):
            # Too far: the line search backs off from an infinite loss.
            return math.inf, np.zeros(flat.shape)
        return value, grads.astype(np.float64)

    def callback(intermediate_result):
        np.copyto(last_good, intermediate_result.x, casting="same_kind")
        history.record({"loss": float(intermediate_result.fun), "lr": optimizer.lr})
        optimizer.step += 1
        if verbose:
            print(f"iteration {len(history.loss)}/{epochs}  loss {history.loss[-1]:.6f}",
                  flush=True)
        if sigint.fired:
            raise StopIteration

    try:
        result = minimize(fun, flat.astype(np.float64), jac=True, method="L-BFGS-B",
                          tol=optimizer.tol, callback=callback,
                          options={"maxiter": epochs, "maxcor": optimizer.history_size})
    except _Interrupted:
        result = None
    np.copyto(flat, last_good)
    if sigint.fired:
        history.interrupted = True
        sigint.raise_if_fired()
    if result is not None and not math.isfinite(result.fun):
        raise TrainingDiverged(
            f"the loss became NaN or infinite in L-BFGS iteration {len(history.loss)}: "
            "the parameters are restored to the last good iteration. Scale the inputs.",
            len(history.loss), 0)
    return history
