"""Losses and their gradients with respect to the network output.

Each private helper (``_mse``, ``_cross_entropy``, ...) returns the per-sample losses
l_i, shape (n,), and (if asked) their gradients dl_i/dout_i, shape of out;
``_reduce`` applies the sample weights. The checks of targets and sample weights
live here too, for the backward pass to share.
"""
import numpy as np

from ._checks import _as_float_array, _check_name
from .activations import _sigmoid


def _mse(out, t, need_grad=True):
    """l_i = mean_j (out_ij - t_ij)^2;  dl_i/dout_ij = 2 (out_ij - t_ij) / k."""
    k = out.shape[1]
    diff = out - t
    per_sample = (diff * diff).sum(axis=1) / k
    return per_sample, (diff * (2.0 / k) if need_grad else None)


def _binary_cross_entropy(out, t, need_grad=True):
    """From logits z = out: l_i = mean_j [max(z,0) - z t + log1p(exp(-|z|))].

    dl_i/dz_ij = (sigmoid(z_ij) - t_ij) / k.
    """
    k = out.shape[1]
    z = out
    elementwise = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    per_sample = elementwise.sum(axis=1) / k
    return per_sample, ((_sigmoid(z) - t) / k if need_grad else None)


def _softmax_and_logsumexp(z):
    """softmax(z_i) and lse(z_i) = m_i + log sum_j exp(z_ij - m_i), m_i = max_j z_ij, row by row."""
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    return e / s, (m + np.log(s))[:, 0]


def _cross_entropy(out, t, need_grad=True):
    """Softmax cross-entropy from logits z = out.

    Integer labels y (n,):      l_i = lse(z_i) - z_{i,y_i};
                                dl_i/dz_i = softmax(z_i) - onehot(y_i).
    Probability rows t (n, k):  l_i = sum_j t_ij (lse(z_i) - z_ij);
                                dl_i/dz_i = softmax(z_i) sum_j t_ij - t_i.
    """
    z = out
    p, lse = _softmax_and_logsumexp(z)
    if t.ndim == 1:
        rows = np.arange(z.shape[0])
        per_sample = lse - z[rows, t]
        if not need_grad:
            return per_sample, None
        grad = p
        grad[rows, t] -= 1
        return per_sample, grad
    per_sample = (t * (lse[:, None] - z)).sum(axis=1)
    if not need_grad:
        return per_sample, None
    return per_sample, p * t.sum(axis=1, keepdims=True) - t


def _gaussian_nll(out, t, need_grad=True):
    """mu = out[:, :k], s = out[:, k:] (log variance): l_i = mean_j 0.5 (s_ij + (t_ij - mu_ij)^2 exp(-s_ij)).

    dl_i/dmu_ij = -(t_ij - mu_ij) exp(-s_ij) / k;  dl_i/ds_ij = 0.5 (1 - (t_ij - mu_ij)^2 exp(-s_ij)) / k.
    """
    k = out.shape[1] // 2
    mu, s = out[:, :k], out[:, k:]
    r = t - mu
    inv_var = np.exp(-s)
    q = r * r * inv_var
    per_sample = 0.5 * (s + q).sum(axis=1) / k
    if not need_grad:
        return per_sample, None
    return per_sample, np.concatenate([-r * inv_var / k, 0.5 * (1.0 - q) / k], axis=1)


def _mae(out, t, need_grad=True):
    """l_i = mean_j |out_ij - t_ij|;  dl_i/dout_ij = sign(out_ij - t_ij) / k (0 at 0)."""
    k = out.shape[1]
    diff = out - t
    per_sample = np.abs(diff).sum(axis=1) / k
    return per_sample, (np.sign(diff) / k if need_grad else None)


def _huber(out, t, need_grad=True, delta=1.0):
    """d = out - t: l_i = mean_j h(d_ij), h(d) = d^2 / 2 for |d| <= delta, else
    delta (|d| - delta / 2);  dl_i/dout_ij = clip(d_ij, -delta, delta) / k."""
    k = out.shape[1]
    d = out - t
    ad = np.abs(d)
    small = ad <= delta
    elementwise = np.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta))
    per_sample = elementwise.sum(axis=1) / k
    if not need_grad:
        return per_sample, None
    return per_sample, np.clip(d, -delta, delta) / k


def _poisson(out, t, need_grad=True):
    """Log rate z = out: l_i = mean_j exp(z_ij) - t_ij z_ij;
    dl_i/dz_ij = (exp(z_ij) - t_ij) / k."""
    k = out.shape[1]
    e = np.exp(out)
    per_sample = (e - t * out).sum(axis=1) / k
    return per_sample, ((e - t) / k if need_grad else None)


def _quantile(out, t, need_grad=True, q=(0.5,)):
    """Pinball loss; with m quantiles, output column j is quantile q[j % m] of target
    column j // m. d = t - out: l_i = mean_j rho(d_ij), rho(d) = q d for d >= 0, else
    (q - 1) d;  dl_i/dout_ij = -q (d > 0), 1 - q (d < 0), 0 (d = 0), over k."""
    k, m = out.shape[1], len(q)
    qq = np.tile(np.asarray(q, dtype=out.dtype), k // m)
    d = np.repeat(t, m, axis=1) - out
    per_sample = np.where(d >= 0, qq * d, (qq - 1.0) * d).sum(axis=1) / k
    if not need_grad:
        return per_sample, None
    return per_sample, np.where(d > 0, -qq, np.where(d < 0, 1.0 - qq, 0.0)) / k


_LOSS_FUNCS = {
    "mse": _mse,
    "binary_cross_entropy": _binary_cross_entropy,
    "cross_entropy": _cross_entropy,
    "gaussian_nll": _gaussian_nll,
    "mae": _mae,
    "huber": _huber,
    "poisson": _poisson,
    "quantile": _quantile,
}

#: The losses, as ``nncore.LOSSES`` names them.
LOSSES = tuple(_LOSS_FUNCS)

# The parameters of the losses that have any, and what a bare name means.
_LOSS_DEFAULTS = {"huber": {"delta": 1.0}, "quantile": {"q": (0.5,)}}


def _resolve_loss(loss):
    """``(name, parameters)`` of a loss given by name (from :data:`LOSSES`) or as an
    nncore loss object (``Huber(delta)``, ``Quantile(q)``)."""
    name = getattr(loss, "name", loss)
    _check_name("loss", name, LOSSES)
    params = dict(_LOSS_DEFAULTS.get(name, {}))
    for key in params:
        if not isinstance(loss, str):
            params[key] = getattr(loss, key)
    if "q" in params:
        params["q"] = tuple(float(v) for v in np.atleast_1d(params["q"]))
        if not all(0.0 < v < 1.0 for v in params["q"]):
            raise ValueError(f"quantiles must lie in (0, 1), got {params['q']}")
    if "delta" in params and not params["delta"] > 0:
        raise ValueError(f"huber's delta must be > 0, got {params['delta']}")
    return name, params


def _reduce(per_sample, per_sample_grad, sample_weight):
    """L = sum_i w_i l_i / sum_i w_i;  dL/dout_i = (w_i / sum_i w_i) dl_i/dout_i.

    Without weights, w_i = 1: L = mean_i l_i. If the weights sum to zero (a batch
    of zero-weight rows inside ``fit``), L = 0 and dL/dout = 0.
    """
    if sample_weight is None:
        n = per_sample.shape[0]
        value = per_sample.sum() / n
        grad = None if per_sample_grad is None else per_sample_grad * (1.0 / n)
        return float(value), grad
    total = sample_weight.sum()
    if total == 0:
        grad = None if per_sample_grad is None else np.zeros_like(per_sample_grad)
        return 0.0, grad
    value = (sample_weight * per_sample).sum() / total
    if per_sample_grad is None:
        return float(value), None
    return float(value), per_sample_grad * (sample_weight / total)[:, None]


def _loss_and_gradient(spec, out, y, sample_weight, need_grad=True):
    """(L, dL/dout) for validated inputs; ``spec`` from _resolve_loss."""
    name, params = spec
    per_sample, per_sample_grad = _LOSS_FUNCS[name](out, y, need_grad, **params)
    return _reduce(per_sample, per_sample_grad, sample_weight)


def _check_targets(spec, out_shape, y):
    """Validate the targets of the loss ``spec`` against an output of shape ``out_shape``."""
    loss_name, params = spec
    n, k_out = out_shape
    y = np.asarray(y)
    if loss_name == "cross_entropy" and y.ndim == 1:
        if y.dtype.kind not in "iu":
            raise TypeError(
                "y for cross_entropy must be integer class labels of shape (n_samples,) "
                f"or probability rows of shape (n_samples, {k_out}); got 1-D dtype {y.dtype}"
            )
        if y.shape[0] != n:
            raise ValueError(f"y must have {n} labels, got shape {y.shape}")
        if n and (y.min() < 0 or y.max() >= k_out):
            raise ValueError(
                f"y labels must lie in [0, {k_out - 1}], got min {y.min()} and max {y.max()}"
            )
        return y.astype(np.intp, copy=False)
    if loss_name == "gaussian_nll":
        if k_out % 2:
            raise ValueError(
                f"gaussian_nll needs an even number of outputs (means, then log variances), got {k_out}"
            )
        k = k_out // 2
    elif loss_name == "quantile":
        if k_out % len(params["q"]):
            raise ValueError(f"{len(params['q'])} quantiles need a multiple of as many "
                             f"outputs, got {k_out}")
        k = k_out // len(params["q"])
    else:
        k = k_out
    if y.shape != (n, k):
        raise ValueError(f"y for {loss_name} must have shape ({n}, {k}), got {y.shape}")
    y = _as_float_array("y", y)
    if loss_name == "poisson" and np.any(y < 0):
        raise ValueError("y for poisson must be counts >= 0")
    return y


def _check_sample_weight(sample_weight, n):
    if sample_weight is None:
        return None
    w = _as_float_array("sample_weight", sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if n and w.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum, got all zeros")
    return w


def _check_loss_inputs(name, out, y, sample_weight):
    spec = _resolve_loss(name)
    out = _as_float_array("out", out)
    if out.ndim != 2 or out.shape[0] == 0:
        raise ValueError(f"out must have shape (n_samples, n_outputs) with n_samples > 0, got {out.shape}")
    y = _check_targets(spec, out.shape, y)
    return spec, out, y, _check_sample_weight(sample_weight, out.shape[0])


def loss(name, out, y, sample_weight=None):
    """Weighted mean loss of a batch.

    ``L = sum_i w_i l_i / sum_i w_i`` (``w_i = 1`` without ``sample_weight``), with the
    per-sample loss ``l_i``:

    - mse: ``l_i = mean_j (out_ij - t_ij)^2``
    - binary_cross_entropy (logits ``z = out``):
      ``l_i = mean_j [max(z_ij, 0) - z_ij t_ij + log1p(exp(-|z_ij|))]``
    - cross_entropy (logits ``z = out``, ``lse(z_i) = log sum_j exp(z_ij)``):
      ``l_i = lse(z_i) - z_{i, y_i}`` for integer labels, or
      ``l_i = sum_j t_ij (lse(z_i) - z_ij)`` for probability rows
    - gaussian_nll (``mu = out[:, :k]``, log variance ``s = out[:, k:]``):
      ``l_i = mean_j 0.5 (s_ij + (t_ij - mu_ij)^2 exp(-s_ij))``
    - mae: ``l_i = mean_j |out_ij - t_ij|``
    - huber (``d = out - t``): ``l_i = mean_j h(d_ij)``, ``h(d) = d^2 / 2`` for
      ``|d| <= delta``, else ``delta (|d| - delta / 2)``
    - poisson (log rate ``z = out``): ``l_i = mean_j exp(z_ij) - t_ij z_ij``
    - quantile (m quantiles q; output column j is quantile ``q[j % m]`` of target
      column ``j // m``, ``d = t - out``): ``l_i = mean_j rho(d_ij)``,
      ``rho(d) = q d`` for ``d >= 0``, else ``(q - 1) d``

    Parameters
    ----------
    name : str or loss object
        One of :data:`LOSSES` (huber with delta 1, quantile with q = 0.5), or an
        nncore loss object (``nncore.losses.Huber(delta)``,
        ``nncore.losses.Quantile(q)``).
    out : ndarray of shape (n_samples, n_outputs)
        Network output (logits for the cross-entropies; ``n_outputs = 2k`` for
        gaussian_nll).
    y : ndarray
        Targets: shape (n_samples, n_outputs) for mse, mae, huber, poisson (counts
        >= 0) and binary_cross_entropy (values in [0, 1]); integer labels of shape
        (n_samples,) or probability rows of shape (n_samples, n_outputs) for
        cross_entropy; shape (n_samples, n_outputs // 2) for gaussian_nll and
        (n_samples, n_outputs // m) for m quantiles.
    sample_weight : ndarray of shape (n_samples,), optional
        Non-negative weights ``w_i`` with a positive sum.

    Returns
    -------
    loss : float
    """
    spec, out, y, w = _check_loss_inputs(name, out, y, sample_weight)
    return _loss_and_gradient(spec, out, y, w, need_grad=False)[0]


def loss_gradient(name, out, y, sample_weight=None):
    """Gradient of :func:`loss` with respect to the network output.

    ``dL/dout_i = (w_i / sum_i w_i) dl_i/dout_i``, with (``k`` the number of target
    columns):

    - mse: ``dl_i/dout_ij = 2 (out_ij - t_ij) / k``
    - binary_cross_entropy: ``dl_i/dz_ij = (sigmoid(z_ij) - t_ij) / k``
    - cross_entropy: ``dl_i/dz_i = softmax(z_i) sum_j t_ij - t_i`` (``t_i`` one-hot for
      integer labels, so ``softmax(z_i) - onehot(y_i)``)
    - gaussian_nll: ``dl_i/dmu_ij = -(t_ij - mu_ij) exp(-s_ij) / k`` and
      ``dl_i/ds_ij = 0.5 (1 - (t_ij - mu_ij)^2 exp(-s_ij)) / k``
    - mae: ``sign(out_ij - t_ij) / k`` (0 at 0)
    - huber: ``clip(out_ij - t_ij, -delta, delta) / k``
    - poisson: ``(exp(z_ij) - t_ij) / k``
    - quantile: ``-q / k`` where ``t > out``, ``(1 - q) / k`` where ``t < out``, 0
      where equal (k here the number of output columns)

    Parameters
    ----------
    name, out, y, sample_weight
        As in :func:`loss`.

    Returns
    -------
    dout : ndarray of shape (n_samples, n_outputs)
    """
    spec, out, y, w = _check_loss_inputs(name, out, y, sample_weight)
    return _loss_and_gradient(spec, out, y, w)[1]
