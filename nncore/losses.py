"""Loss names, their kernel codes, and target checking.

Every loss is a weighted mean over samples, ``L = sum_i w_i l_i / sum_i w_i`` (w_i = 1
without sample weights), of a per-sample loss ``l_i`` computed from the network's
output row ``z_i`` (the last layer's activation):

``mse``
    ``l_i = mean_j (z_ij - t_ij)^2``; targets (n, k) or (n,) when k = 1.
``binary_cross_entropy``
    Sigmoid fused, from logits: ``l_i = mean_j [max(z,0) - z t + log(1 + exp(-|z|))]``
    with ``t`` in [0, 1]; targets (n, k) or (n,) when k = 1.
``cross_entropy``
    Softmax fused, log-sum-exp stable: ``l_i = logsumexp(z_i) - z_{i, y_i}`` for integer
    labels (n,), or ``sum_j t_ij (logsumexp(z_i) - z_ij)`` for probability rows (n, k).
``gaussian_nll``
    The output holds 2k values, means ``mu = z[:, :k]`` then log variances
    ``s = z[:, k:]``: ``l_i = mean_j 0.5 (s_ij + (t_ij - mu_ij)^2 exp(-s_ij))`` (the
    constant ``0.5 log 2 pi`` left out); targets (n, k) or (n,) when k = 1.

``mae``
    ``l_i = mean_j |z_ij - t_ij|`` (``torch.nn.L1Loss``); the gradient is
    ``sign(z - t)``, 0 at 0. Targets (n, k) or (n,) when k = 1.
``huber``, :class:`Huber`
    ``l_i = mean_j h(z_ij - t_ij)``, ``h(d) = d^2 / 2`` for ``|d| <= delta``, else
    ``delta (|d| - delta / 2)`` (``torch.nn.HuberLoss``; ``"huber"`` is
    ``Huber(delta=1.0)``). Targets as for mae.
``poisson``
    The output is a log rate z: ``l_i = mean_j exp(z_ij) - t_ij z_ij``
    (``torch.nn.PoissonNLLLoss(log_input=True, full=False)``); ``predict`` returns
    the rates ``exp(z)``. Targets: counts >= 0, (n, k) or (n,) when k = 1.
``quantile``, :class:`Quantile`
    The pinball loss of quantile q: ``l_i = mean_j rho_q(t_ij - z_ij)``,
    ``rho_q(d) = q d`` for ``d >= 0``, else ``(q - 1) d``; the gradient is 0 at
    ``d = 0``. ``Quantile([q_1, ..., q_m])`` gives m output columns per target
    column (column ``c m + i`` is quantile ``q_i`` of target column c): a network
    whose output has m columns predicts m quantiles of one target, for prediction
    intervals. ``"quantile"`` is ``Quantile(0.5)``, the median.

``nncore.reference`` implements the same formulas in NumPy.
"""
import numpy as np

from . import _validation
from ._codes import Loss as _Loss
from ._codes import codes as _codes

# Loss name -> kernel code, read from the one table (nncore/_codes.pxd).
_CODES = _codes(_Loss)

#: The names of the losses a Network takes.
LOSSES = tuple(_CODES)


def loss_code(name):
    """The kernels' code of a loss name (from :data:`LOSSES`)."""
    return _CODES[name]


class Loss:
    """A loss with parameters, for ``Network(loss=...)``; a plain name stands for a
    loss without any (:data:`LOSSES`)."""

    name = None

    def _kernel_params(self):
        """Its parameters as the kernels take them: a float64 array."""
        raise NotImplementedError

    def _check_outputs(self, n_outputs):
        """Refuse an output width that does not suit the loss."""

    def _params(self):
        """Its parameters by name, as JSON values (what a saved file records)."""
        raise NotImplementedError

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))


class Huber(Loss):
    """Huber loss, ``torch.nn.HuberLoss(delta=delta)``: quadratic for errors up to
    ``delta``, linear beyond.

    Parameters
    ----------
    delta : float, default 1.0
        Where the quadratic part ends, > 0.

    Examples
    --------
    >>> Huber(delta=0.5)
    Huber(delta=0.5)
    """

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = _validation.check_float(delta, "delta", low=0, low_open=True)

    def _kernel_params(self):
        return np.array([self.delta])

    def _params(self):
        return {"delta": self.delta}

    def _key(self):
        return (self.delta,)

    def __repr__(self):
        return f"Huber(delta={self.delta!r})"


class Quantile(Loss):
    """Pinball loss of one quantile or of several (one output column each).

    Parameters
    ----------
    q : float or sequence of float
        Quantile(s), each in (0, 1). With m quantiles, the network's output has m
        columns per target column: column ``c m + i`` predicts quantile ``q[i]`` of
        target column c.

    Examples
    --------
    A 90% prediction interval and the median of one target, from 3 outputs:

    >>> Quantile([0.05, 0.5, 0.95])
    Quantile(q=[0.05, 0.5, 0.95])
    """

    name = "quantile"

    def __init__(self, q):
        values = q if isinstance(q, (list, tuple, np.ndarray)) else [q]
        if len(values) == 0:
            raise ValueError("q must hold at least one quantile; got an empty list")
        self.q = [_validation.check_float(v, "q" if values is not q else f"q[{i}]",
                                          low=0, high=1, low_open=True, high_open=True)
                  for i, v in enumerate(values)]

    def _kernel_params(self):
        return np.array(self.q)

    def _params(self):
        return {"q": list(self.q)}

    def _check_outputs(self, n_outputs):
        if n_outputs % len(self.q):
            raise ValueError(f"loss {self!r} needs an output width that is a multiple "
                             f"of its {len(self.q)} quantiles; the last layer has "
                             f"fan_out={n_outputs}")

    def _key(self):
        return tuple(self.q)

    def __repr__(self):
        q = self.q[0] if len(self.q) == 1 else self.q
        return f"Quantile(q={q!r})"


# The loss a name stands for, where it has parameters.
_BY_NAME = {"huber": Huber(), "quantile": Quantile(0.5)}


def loss_from_params(name, params):
    """The loss a saved file records: its name and parameters (``Loss._params``); a
    bare name when it has none."""
    cls = {"huber": Huber, "quantile": Quantile}.get(name)
    if cls is None:
        if params:
            raise ValueError(f"loss {name!r} takes no parameters; got {params!r:.100}")
        return name
    return cls(**params) if params else name


def check_loss(loss, n_outputs):
    """Validate a loss (a name from :data:`LOSSES` or a :class:`Loss` object) against
    the width of the network's output; return ``(name, loss object or None)``."""
    if isinstance(loss, Loss):
        loss._check_outputs(n_outputs)
        return loss.name, loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name, one of {sorted(LOSSES)}, or a loss object "
                        f"(Huber, Quantile); got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    if loss == "gaussian_nll" and n_outputs % 2:
        raise ValueError("loss 'gaussian_nll' needs an even output width (k means, then "
                         f"k log variances); the last layer has fan_out={n_outputs}")
    obj = _BY_NAME.get(loss)
    if obj is not None:
        obj._check_outputs(n_outputs)
    return loss, obj


def target_width(name, obj, n_outputs):
    """Columns of a target row: n_outputs / 2 for gaussian_nll, n_outputs / m for m
    quantiles, else n_outputs."""
    if name == "gaussian_nll":
        return n_outputs // 2
    if name == "quantile":
        return n_outputs // len(obj.q)
    return n_outputs


def _refuse(T, bad, message):
    """Raise ValueError(message + the first bad value and its index) if any(bad)."""
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{message}; got {T[where]} at index {where}")


def check_targets(loss, y, n_samples, n_outputs, dtype, obj=None):
    """Convert targets for the kernels (``obj``: the loss object, for a loss with
    parameters).

    Returns ``(T, labels)``: ``T`` a C-contiguous float array of ``dtype`` of shape
    (n_samples, target_width), or ``labels`` an ``np.intp`` array (n_samples,) of
    class indices (cross_entropy with 1-D y); the other one None.
    """
    if loss == "cross_entropy":
        arr = _validation.as_array(y, "y")
        if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_outputs != 1):
            labels = _validation.check_labels(arr, n_samples, n_outputs)
            return None, labels
        T = _validation.check_float_targets(arr, n_samples, n_outputs, dtype)
        _refuse(T, T < 0, "y holds probability rows for cross_entropy, which must be "
                ">= 0")
        return T, None
    width = target_width(loss, obj, n_outputs)
    T = _validation.check_float_targets(y, n_samples, width, dtype)
    if loss == "poisson":
        _refuse(T, T < 0, "y must be counts >= 0 for poisson")
    if loss == "binary_cross_entropy":
        _refuse(T, (T < 0) | (T > 1), "y must be in [0, 1] for binary_cross_entropy")
    return T, None


def accuracy(loss, out, T, labels, weights=None):
    """Accuracy of raw outputs for the classification losses, None for the others.

    Parameters
    ----------
    loss : str
    out : ndarray of shape (n, n_outputs)
        The last layer's raw output (``Network.forward``).
    T, labels : ndarray or None
        Targets as :func:`check_targets` returns them (one of them None).
    weights : ndarray of shape (n,), optional
        Sample weights (float64): a weighted mean of the hits.

    Returns
    -------
    float or None
        cross_entropy: argmax of the output against the integer label (or the
        argmax of the probability row); binary_cross_entropy: output > 0 (probability
        > 0.5) against target > 0.5, every output of a row right.
    """
    if loss == "cross_entropy":
        truth = labels if labels is not None else T.argmax(axis=1)
        hit = out.argmax(axis=1) == truth
    elif loss == "binary_cross_entropy":
        hit = ((out > 0) == (T > 0.5)).all(axis=1)
    else:
        return None
    return float(np.average(hit, weights=weights))
