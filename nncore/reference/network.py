"""The layer stack: its checks, the forward pass, and dropout with the kernels'
counter-based masks."""
import math

import numpy as np

from ._checks import _as_float_array, _check_name
from .activations import _ACTIVATION_FUNCS, ACTIVATIONS


def _check_network(params, activations, X=None):
    """Validate the layer stack (and the input ``X``, if given); return ``X`` as an array."""
    if not isinstance(params, (list, tuple)) or not isinstance(activations, (list, tuple)):
        raise TypeError(
            "params and activations must be lists, got "
            f"{type(params).__name__} and {type(activations).__name__}"
        )
    if len(activations) == 0:
        raise ValueError("activations must name at least one layer, got []")
    if len(params) != 2 * len(activations):
        raise ValueError(
            f"params must hold 2 arrays (W, b) per layer: {len(activations)} activations "
            f"need {2 * len(activations)} arrays, got {len(params)}"
        )
    fan_in = None
    for l, W, b, name in _layers(params, activations):
        _check_name(f"activations[{l - 1}]", name, ACTIVATIONS)
        if not isinstance(W, np.ndarray) or W.ndim != 2:
            raise ValueError(f"params[{2 * l - 2}] (W_{l}) must be a 2-D ndarray "
                             "(fan_in, fan_out)")
        if not isinstance(b, np.ndarray) or b.shape != (W.shape[1],):
            raise ValueError(
                f"params[{2 * l - 1}] (b_{l}) must be a 1-D ndarray of shape ({W.shape[1]},), "
                f"got shape {getattr(b, 'shape', None)}"
            )
        if fan_in is not None and W.shape[0] != fan_in:
            raise ValueError(
                f"params[{2 * l - 2}] (W_{l}) has fan_in {W.shape[0]}, but the previous layer "
                f"has fan_out {fan_in}"
            )
        fan_in = W.shape[1]
    if X is None:
        return None
    X = _as_float_array("X", X)
    if X.ndim != 2 or X.shape[1] != params[0].shape[0]:
        raise ValueError(
            f"X must have shape (n_samples, {params[0].shape[0]}), got {X.shape}"
        )
    return X


def _layers(params, activations):
    """``(l, W_l, b_l, name of f_l)`` for the layers l = 1..L."""
    for l in range(1, len(activations) + 1):
        yield l, params[2 * l - 2], params[2 * l - 1], activations[l - 1]


def _forward(params, activations, X, drops=None):
    """A_0 = X; Z_l = A_{l-1} @ W_l + b_l, A_l = f_l(Z_l) for l = 1..L.

    Returns (Zs, As), both indexed by layer: ``Zs[l] = Z_l`` (``Zs[0]`` is None: the
    input has no pre-activation) and ``As[l] = A_l``. ``drops`` (training with
    dropout): per layer None or ``(keep, p)``, and then ``As[l]`` is what the layer
    passes on, ``A_l`` dropped out (:func:`_dropout`).
    """
    Zs, As = [None], [X]
    for l, W, b, f in _layers(params, activations):
        Zs.append(As[l - 1] @ W + b)
        A = _ACTIVATION_FUNCS[f][0](Zs[l])
        if drops is not None and drops[l - 1] is not None:
            A = _dropout(A, *drops[l - 1])
        As.append(A)
    return Zs, As


# ---------------------------------------------------------------------------
# Dropout: the kernels' counter-based masks.
# ---------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _mix64(z):
    """splitmix64's finalizer, mod 2^64, on np.uint64 arrays or Python ints."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, step, layer, n_rows, n_units, rate):
    """Which outputs inverted dropout keeps, as the kernels decide it.

    With ``mix`` splitmix64's finalizer (mod 2^64)::

        key  = mix(mix(mix(seed) + step) + layer)
        keep = (mix(key + r * 2^32 + j) >> 11) >= ceil(rate * 2^53)

    for output j of the batch's row r: a pure function of its inputs, so the same
    whatever the thread count, the layout and the chunking of an epoch.

    Parameters
    ----------
    seed : int
        The network's seed (0 <= seed < 2^64).
    step : int
        The optimizer step the batch is trained in (1 for the first).
    layer : int
        The layer, 1..L.
    n_rows, n_units : int
        The batch's rows and the layer's outputs.
    rate : float
        The dropout rate p, 0 <= p < 1.

    Returns
    -------
    keep : ndarray of bool, shape (n_rows, n_units)
    """
    key = _mix64((_mix64((_mix64(int(seed) & _MASK64) + int(step)) & _MASK64)
                  + int(layer)) & _MASK64)
    r = np.arange(n_rows, dtype=np.uint64)[:, None]
    j = np.arange(n_units, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        h = _mix64(np.uint64(key) + (r << np.uint64(32)) + j)
    return (h >> np.uint64(11)) >= np.uint64(math.ceil(rate * 2.0 ** 53))


def _dropout(A, keep, p):
    """Inverted dropout: A / (1 - p) where kept, else 0."""
    return np.where(keep, A * (1.0 / (1.0 - p)), 0)


def forward(params, activations, X, return_all=False):
    """Forward pass of a dense network.

    Layer ``l = 1..L`` computes ``Z_l = A_{l-1} @ W_l + b_l`` and ``A_l = f_l(Z_l)``,
    with ``A_0 = X``; the output is ``A_L``.

    Parameters
    ----------
    params : list of ndarray
        ``[W_1, b_1, W_2, b_2, ...]``; ``W_l`` of shape (fan_in_l, fan_out_l), ``b_l``
        of shape (fan_out_l,).
    activations : list of str
        The names of ``f_1, f_2, ...``, from :data:`ACTIVATIONS`: one per layer.
    X : ndarray of shape (n_samples, fan_in_1)
        Input rows.
    return_all : bool, default False
        Return every layer's pre-activations and activations instead of the output.

    Returns
    -------
    out : ndarray of shape (n_samples, fan_out_L)
        The network output, if ``return_all`` is False.
    (Zs, As) : tuple of lists of ndarray
        If ``return_all`` is True, both indexed by layer (L + 1 entries):
        ``Zs[l]`` of shape (n_samples, fan_out_l) is ``Z_l`` (``Zs[0]`` is None) and
        ``As[l] = f_l(Zs[l])`` is ``A_l``, with ``As[0]`` = ``X``. For an identity
        layer ``As[l]`` is ``Zs[l]`` itself.
    """
    X = _check_network(params, activations, X)
    Zs, As = _forward(params, activations, X)
    return (Zs, As) if return_all else As[-1]
