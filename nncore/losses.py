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

``nncore/reference.py`` implements the same formulas in NumPy.
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


def check_loss(name, n_outputs):
    """Validate a loss name against the width of the network's output."""
    if not isinstance(name, str):
        raise TypeError(f"loss must be a string, one of {sorted(LOSSES)}; got {name!r}")
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    if name == "gaussian_nll" and n_outputs % 2:
        raise ValueError("loss 'gaussian_nll' needs an even output width (k means, then "
                         f"k log variances); the last layer has fan_out={n_outputs}")
    return name


def check_targets(loss, y, n_samples, n_outputs, dtype):
    """Convert targets for the kernels.

    Returns ``(T, labels)``: ``T`` a C-contiguous float array of ``dtype`` of shape
    (n_samples, target width), or ``labels`` an ``np.intp`` array (n_samples,) of class
    indices (cross_entropy with 1-D y); the other one None.
    """
    if loss == "cross_entropy":
        arr = _validation.as_array(y, "y")
        if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_outputs != 1):
            labels = _validation.check_labels(arr, n_samples, n_outputs)
            return None, labels
        T = _validation.check_float_targets(arr, n_samples, n_outputs, dtype)
        if (T < 0).any():
            bad = np.argwhere(T < 0)[0]
            where = tuple(int(i) for i in bad)
            raise ValueError("y holds probability rows for cross_entropy, which must be "
                             f">= 0; got {T[tuple(bad)]} at index {where}")
        return T, None
    width = n_outputs // 2 if loss == "gaussian_nll" else n_outputs
    T = _validation.check_float_targets(y, n_samples, width, dtype)
    if loss == "binary_cross_entropy" and ((T < 0) | (T > 1)).any():
        bad = np.argwhere((T < 0) | (T > 1))[0]
        raise ValueError("y must be in [0, 1] for binary_cross_entropy; got "
                         f"{T[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return T, None
