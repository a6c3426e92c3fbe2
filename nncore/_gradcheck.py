"""``nncore.gradcheck``: the kernels' gradient against central finite differences.

A derivative is the change in the loss from the smallest nudge of one weight: this
nudges every weight of a float64 copy of the network by +-eps and compares
``(L(w + eps) - L(w - eps)) / (2 eps)`` with the gradient that ``loss_and_grads``
computes, as ``torch.autograd.gradcheck`` does for PyTorch.
"""
from __future__ import annotations

import numpy as np

from . import _validation


class GradcheckReport:
    """What :func:`gradcheck` found.

    Attributes
    ----------
    ok : bool
        Every gradient value within ``atol + rtol |numeric|`` of the finite
        difference.
    names : list of str
        ``"W1"``, ``"b1"``, ``"W2"``, ... in the order of ``Network.params``.
    max_abs_error, max_rel_error : list of float
        Per parameter array, the worst ``|analytic - numeric|`` and the worst
        ``|analytic - numeric| / max(|numeric|, tiny)``.
    loss : float
        The loss at the network's parameters.
    eps, atol, rtol : float
        The settings of the check.
    """

    def __init__(self, names, max_abs_error, max_rel_error, ok_per_array, loss, eps,
                 atol, rtol):
        self.names = names
        self.max_abs_error = max_abs_error
        self.max_rel_error = max_rel_error
        self._ok = ok_per_array
        self.ok = all(ok_per_array)
        self.loss = loss
        self.eps, self.atol, self.rtol = eps, atol, rtol

    def __bool__(self):
        return self.ok

    def __repr__(self):
        lines = [f"GradcheckReport(ok={self.ok}, loss={self.loss:.6g}, "
                 f"eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})",
                 f"  {'array':<6} {'max abs error':>14} {'max rel error':>14}"]
        for name, a, r, ok in zip(self.names, self.max_abs_error, self.max_rel_error,
                                  self._ok):
            flag = "" if ok else "  FAILED"
            lines.append(f"  {name:<6} {a:>14.3e} {r:>14.3e}{flag}")
        return "\n".join(lines)


def gradcheck(net, X, y, eps=1e-6, atol=1e-5, rtol=1e-3, sample_weight=None):
    """Compare ``net.loss_and_grads`` with central finite differences.

    The check runs on a float64 copy of ``net`` (same layers, loss and parameters):
    the network itself is not changed. It costs two loss evaluations per weight, so
    it is meant for small networks and a few rows of data.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n_samples, n_inputs)
    y : array-like
        Targets, as for :meth:`Network.loss`.
    eps : float, default 1e-6
        The nudge, > 0.
    atol, rtol : float, default 1e-5, 1e-3
        A value passes when ``|analytic - numeric| <= atol + rtol |numeric|``.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    GradcheckReport
        Worst absolute and relative error per parameter array, and ``ok``; it
        prints as a table.

    Examples
    --------
    >>> import numpy as np, nncore
    >>> net = nncore.Network([nncore.Dense(3, 4, "tanh"), nncore.Dense(4, 1)], seed=0)
    >>> X = np.random.default_rng(0).normal(size=(8, 3))
    >>> nncore.gradcheck(net, X, X[:, :1]).ok
    True
    """
    from .network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be an nncore Network; got {type(net).__name__}")
    eps = _validation.check_float(eps, "eps", low=0, low_open=True)
    atol = _validation.check_float(atol, "atol", low=0)
    rtol = _validation.check_float(rtol, "rtol", low=0)
    copy = Network(net.layers, loss=net._loss_spec, dtype="float64", seed=net.seed)
    copy._flat[...] = net._flat
    loss, grads = copy.loss_and_grads(X, y, sample_weight)
    X, T, labels, w = copy._targets(X, y, sample_weight)
    names, abs_err, rel_err, ok = [], [], [], []
    for i, (p, g) in enumerate(zip(copy.params, grads)):
        numeric = np.empty(p.size)
        flat = p.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = copy._loss_and_grads_checked(X, T, labels, w, False)
            flat[j] = keep - eps
            down = copy._loss_and_grads_checked(X, T, labels, w, False)
            flat[j] = keep
            numeric[j] = (up - down) / (2 * eps)
        diff = np.abs(g.reshape(-1) - numeric)
        names.append(f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}")
        abs_err.append(float(diff.max()))
        rel_err.append(float((diff / np.maximum(np.abs(numeric), 1e-300)).max()))
        ok.append(bool(np.all(diff <= atol + rtol * np.abs(numeric))))
    return GradcheckReport(names, abs_err, rel_err, ok, float(loss), eps, atol, rtol)
