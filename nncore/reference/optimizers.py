"""Optimizers: PyTorch's documented update rules, one parameter array at a time,
with their state, hyperparameter defaults and checks, and gradient clipping."""
import inspect
import math

import numpy as np

from .. import optimizers as _optimizers
from ._checks import _check_name


def init_optimizer_state(params):
    """Fresh optimizer state for ``params``.

    Parameters
    ----------
    params : list of ndarray

    Returns
    -------
    state : dict
        ``{"step": 0, "m": [...], "v": [...], "buf": [...]}``, each list holding one
        zero array per parameter array (its shape and dtype): ``m`` and ``v`` are
        Adam's first and second moments (``v`` is also RMSprop's square average and
        Rprop's step sizes), ``buf`` the momentum buffer of SGD and RMSprop (and
        Rprop's previous gradient).
    """
    return {
        "step": 0,
        "m": [np.zeros_like(p) for p in params],
        "v": [np.zeros_like(p) for p in params],
        "buf": [np.zeros_like(p) for p in params],
    }


def _resolve_hyper(name, hyper):
    """Fill in PyTorch's defaults, check the values, and return plain Python numbers.

    Keys that no optimizer has (:data:`OPTIMIZER_DEFAULTS`) are an error (a typo);
    known keys that do not apply to ``name`` are ignored.
    """
    _check_name("optimizer name", name, OPTIMIZERS)
    hyper = {} if hyper is None else dict(hyper)
    unknown = sorted(set(hyper) - set(_HYPER_KEYS))
    if unknown:
        raise ValueError(f"unknown optimizer hyperparameters {unknown}; known: {_HYPER_KEYS}")
    h = dict(OPTIMIZER_DEFAULTS[name])
    h.update((key, value) for key, value in hyper.items() if key in h)
    for key in ("lr", "momentum", "weight_decay", "eps", "alpha"):
        if key in h:
            h[key] = float(h[key])  # a NumPy float64 would upcast float32 parameters
            if not (math.isfinite(h[key]) and h[key] >= 0):
                raise ValueError(f"{key} must be finite and >= 0, got {h[key]}")
    if "betas" in h:
        b1, b2 = (float(b) for b in h["betas"])
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {h['betas']}")
        h["betas"] = (b1, b2)
    if "nesterov" in h:
        h["nesterov"] = bool(h["nesterov"])
        if h["nesterov"] and h["momentum"] <= 0:
            raise ValueError("nesterov=True requires momentum > 0")
    if "etas" in h:
        h["etas"] = tuple(float(e) for e in h["etas"])
        if not 0.0 < h["etas"][0] < 1.0 < h["etas"][1]:
            raise ValueError(f"etas must satisfy 0 < etas[0] < 1 < etas[1], got {h['etas']}")
        h["step_sizes"] = tuple(float(v) for v in h["step_sizes"])
        if not 0.0 <= h["step_sizes"][0] <= h["step_sizes"][1]:
            raise ValueError(f"step_sizes must satisfy 0 <= min <= max, got {h['step_sizes']}")
    return h


def _sgd_update(p, grad, buf, t, lr, momentum, nesterov, weight_decay):
    """SGD (dampening 0), in place.

    g = grad + wd p; if momentum != 0: buf = g at t = 1, else buf = momentum buf + g,
    then g = g + momentum buf (Nesterov) or g = buf;  p = p - lr g.
    """
    g = grad + weight_decay * p if weight_decay != 0 else grad
    if momentum != 0:
        if t == 1:
            buf[...] = g
        else:
            buf[...] = momentum * buf + g
        g = g + momentum * buf if nesterov else buf
    p[...] = p - lr * g


def _adam_update(p, grad, m, v, t, lr, betas, eps, weight_decay, decoupled):
    """Adam (``decoupled=False``) or AdamW (``decoupled=True``), in place.

    Adam:  g = grad + wd p.   AdamW: p = p (1 - lr wd), then g = grad.
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),
    evaluated in PyTorch's order: p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """
    b1, b2 = betas
    if decoupled:
        if weight_decay != 0:
            p[...] = p * (1.0 - lr * weight_decay)
        g = grad
    else:
        g = grad + weight_decay * p if weight_decay != 0 else grad
    m[...] = b1 * m + (1.0 - b1) * g
    v[...] = b2 * v + (1.0 - b2) * (g * g)
    bias_correction1 = 1.0 - b1 ** t
    bias_correction2 = 1.0 - b2 ** t
    denom = np.sqrt(v) / math.sqrt(bias_correction2) + eps
    p[...] = p - (lr / bias_correction1) * (m / denom)


def _rmsprop_update(p, grad, v, buf, lr, alpha, eps, momentum, weight_decay):
    """RMSprop (not centered), in place.

    g = grad + wd p;  v = alpha v + (1 - alpha) g^2;  avg = sqrt(v) + eps;
    momentum > 0: buf = momentum buf + g / avg, p = p - lr buf;  else p = p - lr g / avg.
    """
    g = grad + weight_decay * p if weight_decay != 0 else grad
    v[...] = alpha * v + (1.0 - alpha) * (g * g)
    avg = np.sqrt(v) + eps
    if momentum > 0:
        buf[...] = momentum * buf + g / avg
        p[...] = p - lr * buf
    else:
        p[...] = p - lr * (g / avg)


def _rprop_update(p, grad, prev, step_size, t, lr, etas, step_sizes):
    """Rprop (PyTorch's rule; no weight decay), in place.

    At t = 1: prev = 0 and step_size = lr. s = grad prev; step_size *= etas[1]
    where s > 0, etas[0] where s < 0 (1 where s = 0), then clamped to
    [step_sizes[0], step_sizes[1]]; g = 0 where s < 0, else grad;
    p = p - sign(g) step_size; prev = g.
    """
    if t == 1:
        prev[...] = 0
        step_size[...] = lr
    s = grad * prev
    one = p.dtype.type(1)
    factor = np.where(s > 0, p.dtype.type(etas[1]), np.where(s < 0, p.dtype.type(etas[0]), one))
    step_size[...] = np.clip(step_size * factor, step_sizes[0], step_sizes[1])
    g = np.where(s < 0, 0, grad)
    p[...] = p - np.sign(g) * step_size
    prev[...] = g


def clip_grad_norm(grads, max_norm):
    """Scale the gradients in place as ``torch.nn.utils.clip_grad_norm_`` does: by
    ``max_norm / (norm + 1e-6)`` when that is below 1, ``norm`` the L2 norm of all of
    them together (in float64). Returns ``norm``."""
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    factor = max_norm / (norm + 1e-6)
    if factor < 1:
        for g in grads:
            g *= factor
    return norm


# Name -> update of parameter array i at step t, from the state of init_optimizer_state.
_UPDATES = {
    "sgd": lambda p, g, s, i, t, h: _sgd_update(p, g, s["buf"][i], t, **h),
    "adam": lambda p, g, s, i, t, h: _adam_update(p, g, s["m"][i], s["v"][i], t,
                                                  decoupled=False, **h),
    "adamw": lambda p, g, s, i, t, h: _adam_update(p, g, s["m"][i], s["v"][i], t,
                                                   decoupled=True, **h),
    "rmsprop": lambda p, g, s, i, t, h: _rmsprop_update(p, g, s["v"][i], s["buf"][i], **h),
    "rprop": lambda p, g, s, i, t, h: _rprop_update(p, g, s["buf"][i], s["v"][i], t, **h),
}

#: The optimizers' names, as ``nncore.optimizers.OPTIMIZERS`` names them.
OPTIMIZERS = tuple(_UPDATES)

#: The default of every hyperparameter a caller leaves out: those of the nncore
#: optimizer's signature (PyTorch's).
OPTIMIZER_DEFAULTS = {
    name: {key: param.default for key, param in
           inspect.signature(_optimizers.OPTIMIZERS[name]).parameters.items()}
    for name in OPTIMIZERS
}
_HYPER_KEYS = tuple(dict.fromkeys(key for h in OPTIMIZER_DEFAULTS.values() for key in h))


def _optimizer_step(name, h, params, grads, state):
    """One update of every parameter array, for validated inputs and resolved ``h``."""
    state["step"] += 1
    t = state["step"]
    for i, (p, g) in enumerate(zip(params, grads)):
        _UPDATES[name](p, g, state, i, t, h)


def _check_state(state, params):
    if not isinstance(state, dict) or not {"step", "m", "v", "buf"} <= set(state):
        raise ValueError("state must be a dict from init_optimizer_state (keys step, m, v, buf)")
    for key in ("m", "v", "buf"):
        if len(state[key]) != len(params) or any(
            s.shape != p.shape for s, p in zip(state[key], params)
        ):
            raise ValueError(f"state[{key!r}] does not match the shapes of params")


def optimizer_step(name, hyper, params, grads, state):
    """Apply one optimizer step to every parameter array, in place.

    ``state["step"]`` is incremented first, so the first step has ``t = 1``. Weight
    decay ``wd`` applies to every parameter array (weights and biases alike).

    - sgd (dampening 0): ``g = grad + wd p``; if ``momentum != 0``: ``buf = g`` on the
      first step, else ``buf = momentum buf + g``, and then ``g = g + momentum buf``
      (Nesterov) or ``g = buf``; ``p = p - lr g``.
    - adam: ``g = grad + wd p``; ``m = b1 m + (1 - b1) g``;
      ``v = b2 v + (1 - b2) g^2``;
      ``p = p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    - adamw: ``p = p (1 - lr wd)``, then the adam update with ``g = grad``.
    - rmsprop: ``g = grad + wd p``; ``v = alpha v + (1 - alpha) g^2``;
      ``avg = sqrt(v) + eps``; if ``momentum > 0``: ``buf = momentum buf + g / avg``
      and ``p = p - lr buf``; else ``p = p - lr g / avg``.
    - rprop (no weight decay): see :func:`_rprop_update`; ``buf`` holds the previous
      gradient and ``v`` the step sizes.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS`: ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``.
    hyper : dict
        Hyperparameters among ``lr, momentum, nesterov, weight_decay, betas, eps,
        alpha``; missing ones take PyTorch's defaults (:data:`OPTIMIZER_DEFAULTS`),
        ones that do not apply to ``name`` are ignored, unknown keys raise.
    params : list of ndarray
        Parameter arrays, updated in place.
    grads : list of ndarray
        Gradients, one per parameter array, of the same shapes.
    state : dict
        From :func:`init_optimizer_state`; updated in place.

    Returns
    -------
    None
    """
    h = _resolve_hyper(name, hyper)
    if len(grads) != len(params) or any(np.shape(g) != p.shape for g, p in zip(grads, params)):
        raise ValueError("grads must hold one array per parameter array, of the same shape")
    _check_state(state, params)
    _optimizer_step(name, h, params, grads, state)
