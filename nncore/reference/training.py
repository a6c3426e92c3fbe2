"""Training loops: minibatch :func:`fit` (with dropout, gradient clipping and any
optimizer of :mod:`.optimizers`) and full-batch :func:`lbfgs` through SciPy."""
import numbers

import numpy as np

from .gradients import _check_batch, _loss_and_grads
from .network import _layers, dropout_mask
from .optimizers import (
    _check_state,
    _optimizer_step,
    _resolve_hyper,
    clip_grad_norm,
    init_optimizer_state,
)


def _check_orders(orders, epochs, n):
    if orders is None:
        return None
    if len(orders) != epochs:
        raise ValueError(f"orders must hold one permutation per epoch ({epochs}), got {len(orders)}")
    checked = []
    for e, order in enumerate(orders):
        order = np.asarray(order)
        if order.dtype.kind not in "iu" or order.shape != (n,) or not np.array_equal(
            np.sort(order), np.arange(n)
        ):
            raise ValueError(f"orders[{e}] must be a permutation of range({n})")
        checked.append(order)
    return checked


def fit(params, activations, loss_name, X, y, epochs=1, batch_size=32,
        optimizer=("adam", {"lr": 1e-3}), orders=None, sample_weight=None, state=None,
        dropout=None, seed=0, clip_norm=None):
    """Minibatch training, in place on ``params``.

    Each epoch visits the rows in order (``orders=None``: batches ``[0:B]``,
    ``[B:2B]``, ..., the last partial batch included) or in the order
    ``orders[epoch]``. For each batch ``b``, trained in optimizer step t: ``loss_b,
    grads = loss_and_grads(batch)`` (the batch's own weighted mean; with dropout, on
    the network with layer l's outputs masked by ``dropout_mask(seed, t, l, ...)``),
    the gradients clipped to ``clip_norm`` (:func:`clip_grad_norm`), then one
    :func:`optimizer_step`. The epoch loss is
    ``sum_b loss_b W_b / sum_b W_b``, where ``loss_b`` is taken before that batch's
    update and ``W_b`` is the batch's sum of sample weights (its size without
    weights). A batch whose weights are all zero carries no information: it is
    skipped, with no optimizer step (so the step count can be below the batch count).

    Parameters
    ----------
    params : list of ndarray
        ``[W_1, b_1, W_2, b_2, ...]``, updated in place.
    activations : list of str
        One name from :data:`ACTIVATIONS` per layer.
    loss_name : str or loss object
        As ``name`` in :func:`loss`.
    X : ndarray of shape (n_samples, fan_in_1)
    y : ndarray
        Targets for all rows, as in :func:`loss`.
    epochs : int, default 1
    batch_size : int, default 32
    optimizer : (str, dict), default ("adam", {"lr": 1e-3})
        Name and hyperparameters, as in :func:`optimizer_step`.
    orders : list of ndarray of shape (n_samples,), optional
        One row permutation per epoch.
    sample_weight : ndarray of shape (n_samples,), optional
    state : dict, optional
        Optimizer state to continue from (its step counter and buffers); a fresh
        one from :func:`init_optimizer_state` if None.
    dropout : list of float, optional
        Each layer's dropout rate, in [0, 1).
    seed : int, default 0
        The dropout masks' seed.
    clip_norm : float, optional
        Clip each batch's gradient to this L2 norm.

    Returns
    -------
    epoch_losses : list of float
        One weighted mean loss per epoch.
    state : dict
        The optimizer state after the last step.
    """
    spec, X, y, w = _check_batch(params, activations, loss_name, X, y, sample_weight)
    n = X.shape[0]
    if not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    try:
        opt_name, hyper = optimizer
    except (TypeError, ValueError):
        raise ValueError(f"optimizer must be a (name, hyperparameters) pair, got {optimizer!r}") from None
    h = _resolve_hyper(opt_name, hyper)
    orders = _check_orders(orders, epochs, n)
    if dropout is not None and (len(dropout) != len(activations)
                                or not all(0 <= p < 1 for p in dropout)):
        raise ValueError(f"dropout must hold one rate in [0, 1) per layer, got {dropout!r}")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
    if state is None:
        state = init_optimizer_state(params)
    else:
        _check_state(state, params)

    def step(rows, w_b):
        t = state["step"] + 1
        drops = None if dropout is None else [
            None if p == 0 else (dropout_mask(seed, t, l, len(X[rows]), W.shape[1], p), p)
            for (l, W, _, _), p in zip(_layers(params, activations), dropout)]
        loss_b, grads, _ = _loss_and_grads(params, activations, spec, X[rows], y[rows],
                                           w_b, drops)
        if clip_norm is not None:
            clip_grad_norm(grads, clip_norm)
        _optimizer_step(opt_name, h, params, grads, state)
        return loss_b

    epoch_losses = []
    for epoch in range(epochs):
        weighted_sum, weight_sum = 0.0, 0.0
        for start in range(0, n, batch_size):
            if orders is None:
                rows = slice(start, min(start + batch_size, n))
            else:
                rows = orders[epoch][start:start + batch_size]
            w_b = None if w is None else w[rows]
            weight_b = float(min(start + batch_size, n) - start) if w_b is None else float(w_b.sum())
            if weight_b == 0:
                continue    # no information in this batch: no loss, no step
            weighted_sum += step(rows, w_b) * weight_b
            weight_sum += weight_b
        epoch_losses.append(weighted_sum / weight_sum)
    return epoch_losses, state


def lbfgs(params, activations, loss_name, X, y, max_iter, history_size=10, tol=1e-7,
          sample_weight=None):
    """Full-batch L-BFGS, in place on ``params``: SciPy's
    ``minimize(fun, x0, jac=True, method="L-BFGS-B", tol=tol,
    options={"maxiter": max_iter, "maxcor": history_size})`` on the flat float64
    parameters (layer by layer, ``W_l`` then ``b_l``), ``fun`` = :func:`loss_and_grads`
    over all of X. Returns the loss after each iteration (a list of float).
    """
    from scipy.optimize import minimize

    spec, X, y, w = _check_batch(params, activations, loss_name, X, y, sample_weight)
    shapes = [p.shape for p in params]
    cuts = np.cumsum([p.size for p in params])[:-1]

    def unflatten(x):
        return [part.reshape(shape) for part, shape in zip(np.split(x, cuts), shapes)]

    def fun(x):
        value, grads, _ = _loss_and_grads(unflatten(x), activations, spec, X, y, w)
        return value, np.concatenate([g.ravel() for g in grads]).astype(np.float64)

    losses = []
    x0 = np.concatenate([p.ravel() for p in params]).astype(np.float64)
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", tol=tol,
                      callback=lambda intermediate_result: losses.append(
                          float(intermediate_result.fun)),
                      options={"maxiter": max_iter, "maxcor": history_size})
    for p, part in zip(params, unflatten(result.x)):
        p[...] = part
    return losses
