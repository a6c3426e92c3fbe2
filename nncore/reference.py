"""The executable specification of nncore's math, in plain NumPy.

Every number nncore's compiled kernels compute is defined here first: the forward
pass, the activations and their derivatives, the losses and their gradients, the
backward pass and the optimizer updates. The tests hold the kernels to these
functions (relative error below 1e-10 in float64), and the benchmarks use them as
the "careful NumPy by hand" baseline, so the code is vectorized over samples but
otherwise written to be read next to the formulas in its docstrings.

Conventions
-----------
- Layers are numbered ``l = 1..L``, as in the kernels: layer ``l`` maps ``A_{l-1}``
  to ``A_l = f_l(Z_l)``, ``Z_l = A_{l-1} @ W_l + b_l``, with ``A_0 = X``; the network
  output ``out`` is ``A_L``. ``W_l`` has shape ``(fan_in, fan_out)`` and ``b_l``
  shape ``(fan_out,)``.
- ``params`` is the list ``[W_1, b_1, W_2, b_2, ...]`` (so ``W_l`` is
  ``params[2l - 2]``) and ``activations`` the list of names of ``f_1, f_2, ...``.
- A loss is a weighted mean of per-sample losses ``l_i``:
  ``L = sum_i w_i l_i / sum_i w_i`` (``w_i = 1`` without sample weights).
- Computations run in the dtype NumPy's type promotion gives the inputs: nothing is
  cast down, and float32 inputs throughout give float32 results.

Public functions validate their arguments once and raise ``ValueError`` or
``TypeError`` naming the argument; the private helpers (one per formula) trust
their inputs, and ``fit`` calls them directly on each batch.
"""
import inspect
import math
import numbers

import numpy as np

from . import optimizers as _optimizers

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "OPTIMIZER_DEFAULTS",
    "activation",
    "activation_derivative",
    "forward",
    "loss",
    "loss_gradient",
    "loss_and_grads",
    "predict_transform",
    "init_optimizer_state",
    "optimizer_step",
    "fit",
    "lbfgs",
    "dropout_mask",
    "clip_grad_norm",
    "input_gradient",
]

LEAKY_RELU_SLOPE = 0.01
# Python floats (not NumPy float64 scalars), so that float32 arrays stay float32.
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


# ---------------------------------------------------------------------------
# Activations: f(z) and f'(z), elementwise.
# ---------------------------------------------------------------------------

def _identity(z):
    """f(z) = z."""
    return z


def _identity_derivative(z):
    """f'(z) = 1."""
    return np.ones_like(z)


def _sigmoid(z):
    """f(z) = 1 / (1 + exp(-z)), as 1/(1+e) for z >= 0 and e/(1+e) for z < 0, e = exp(-|z|)."""
    e = np.exp(-np.abs(z))
    r = 1.0 / (1.0 + e)
    return np.where(z >= 0, r, e * r)


def _sigmoid_derivative(z):
    """f'(z) = sigmoid(z) sigmoid(-z) = e / (1 + e)^2 with e = exp(-|z|).

    This form keeps full relative precision for large |z|, where
    ``s * (1 - s)`` loses it to the cancellation in ``1 - s``.
    """
    e = np.exp(-np.abs(z))
    return e / ((1.0 + e) * (1.0 + e))


def _tanh(z):
    """f(z) = tanh(z)."""
    return np.tanh(z)


def _tanh_derivative(z):
    """f'(z) = 1 - tanh(z)^2 = sech(z)^2 = 4 e / (1 + e)^2 with e = exp(-2|z|).

    Computed in the sech form, which keeps full relative precision for large |z|.
    """
    e = np.exp(-2.0 * np.abs(z))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _relu(z):
    """f(z) = max(z, 0)."""
    return np.maximum(z, 0)


def _relu_derivative(z):
    """f'(z) = 1 if z > 0 else 0 (0 at z = 0)."""
    return (z > 0).astype(z.dtype)


def _leaky_relu(z):
    """f(z) = z if z > 0 else 0.01 z."""
    return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def _leaky_relu_derivative(z):
    """f'(z) = 1 if z > 0 else 0.01 (0.01 at z = 0)."""
    d = np.full_like(z, LEAKY_RELU_SLOPE)
    d[z > 0] = 1
    return d


def _elu(z):
    """f(z) = z if z > 0 else expm1(z) (alpha = 1)."""
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _elu_derivative(z):
    """f'(z) = 1 if z > 0 else exp(z) (1 at z = 0)."""
    d = np.exp(np.minimum(z, 0))
    d[z > 0] = 1
    return d


def _gelu_u(z):
    """u(z) = sqrt(2/pi) (z + 0.044715 z^3), the argument of tanh in GELU."""
    return _GELU_C * (z + _GELU_A * (z * z * z))


def _gelu(z):
    """f(z) = 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3).

    Computed as ``z * sigmoid(2 u)``, which is the same function (1 + tanh(u) =
    2 sigmoid(2u)) without the cancellation in ``1 + tanh(u)`` for z << 0.
    """
    return z * _sigmoid(2.0 * _gelu_u(z))


def _gelu_derivative(z):
    """f'(z) = 0.5 (1 + tanh u) + 0.5 z (1 - tanh(u)^2) u'(z), u' = sqrt(2/pi) (1 + 3 0.044715 z^2).

    Computed as ``sigmoid(2u) + 2 z u' sigmoid'(2u)``, the same function without
    cancellation (0.5 (1 - tanh(u)^2) = 2 sigmoid'(2u)).
    """
    u2 = 2.0 * _gelu_u(z)
    du = _GELU_C * (1.0 + (3.0 * _GELU_A) * (z * z))
    return _sigmoid(u2) + 2.0 * z * du * _sigmoid_derivative(u2)


def _softplus(z):
    """f(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _softplus_derivative(z):
    """f'(z) = sigmoid(z)."""
    return _sigmoid(z)


_ACTIVATION_FUNCS = {
    "identity": (_identity, _identity_derivative),
    "sigmoid": (_sigmoid, _sigmoid_derivative),
    "tanh": (_tanh, _tanh_derivative),
    "relu": (_relu, _relu_derivative),
    "leaky_relu": (_leaky_relu, _leaky_relu_derivative),
    "elu": (_elu, _elu_derivative),
    "gelu": (_gelu, _gelu_derivative),
    "softplus": (_softplus, _softplus_derivative),
}

#: The activations, as ``nncore.ACTIVATIONS`` names them.
ACTIVATIONS = tuple(_ACTIVATION_FUNCS)


def _check_name(kind, name, allowed):
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"{kind} must be one of {allowed}, got {name!r}")


def _as_float_array(name, a):
    """``a`` as an ndarray; integer and boolean input become float64, floats keep their dtype."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return a
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")


def activation(name, z):
    """Apply an activation function elementwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : array_like of any shape
        Pre-activations.

    Returns
    -------
    a : ndarray of the shape of ``z``
        ``f(z)``, a new array in ``z``'s float dtype (integers become float64):

        - identity: ``z``
        - sigmoid: ``1 / (1 + exp(-z))``
        - tanh: ``tanh(z)``
        - relu: ``max(z, 0)``
        - leaky_relu: ``z if z > 0 else 0.01 z``
        - elu: ``z if z > 0 else exp(z) - 1``
        - gelu: ``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``
        - softplus: ``log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))``
    """
    _check_name("name", name, ACTIVATIONS)
    z = _as_float_array("z", z)
    a = _ACTIVATION_FUNCS[name][0](z)
    return a.copy() if a is z else a


def activation_derivative(name, z):
    """Derivative of an activation function, elementwise.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : array_like of any shape
        Pre-activations.

    Returns
    -------
    d : ndarray of the shape of ``z``
        ``f'(z)`` in ``z``'s float dtype:

        - identity: ``1``
        - sigmoid: ``sigmoid(z) (1 - sigmoid(z))``
        - tanh: ``1 - tanh(z)^2``
        - relu: ``1 if z > 0 else 0`` (so 0 at z = 0)
        - leaky_relu: ``1 if z > 0 else 0.01`` (so 0.01 at z = 0)
        - elu: ``1 if z > 0 else exp(z)``
        - gelu: ``0.5 (1 + tanh u) + 0.5 z (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2)``
          with ``u = sqrt(2/pi) (z + 0.044715 z^3)``
        - softplus: ``sigmoid(z)``
    """
    _check_name("name", name, ACTIVATIONS)
    z = _as_float_array("z", z)
    return _ACTIVATION_FUNCS[name][1](z)


# ---------------------------------------------------------------------------
# Forward pass.
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Losses. Each helper returns the per-sample losses l_i, shape (n,), and (if
# asked) their gradients dl_i/dout_i, shape of out; _reduce applies the weights.
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Backward pass.
# ---------------------------------------------------------------------------

def _backprop_activation(name, dA, Z):
    """dL/dZ = dL/dA * f'(Z) (elementwise); identity passes dA through unchanged."""
    if name == "identity":
        return dA
    return dA * _ACTIVATION_FUNCS[name][1](Z)


def _loss_and_grads(params, activations, spec, X, y, sample_weight, drops=None):
    """The chain rule, layer by layer, for validated inputs: (loss, grads, dL/dX).
    ``drops`` as in :func:`_forward`: the same masks apply to the way back."""
    Zs, As = _forward(params, activations, X, drops)
    L = len(activations)
    value, dA = _loss_and_gradient(spec, As[L], y, sample_weight)
    grads = [None] * len(params)
    for l in range(L, 0, -1):
        if drops is not None and drops[l - 1] is not None:
            dA = _dropout(dA, *drops[l - 1])      # dLoss/dA_l from dLoss/d(dropped A_l)
        # delta_l = dLoss/dA_l * f_l'(Z_l)
        delta = _backprop_activation(activations[l - 1], dA, Zs[l])
        grads[2 * l - 2] = As[l - 1].T @ delta    # dW_l = A_{l-1}^T delta_l
        grads[2 * l - 1] = delta.sum(axis=0)      # db_l = sum over samples of delta_l
        dA = delta @ params[2 * l - 2].T          # dLoss/dA_{l-1} = delta_l W_l^T
    return value, grads, dA


def loss_and_grads(params, activations, loss_name, X, y, sample_weight=None):
    """Loss of a batch and its gradient with respect to every parameter array.

    Backpropagation, written out (layers numbered 1..L, ``A_0 = X``)::

        delta_L     = dLoss/dA_L * f_L'(Z_L)
        dW_l        = A_{l-1}^T delta_l
        db_l        = sum_i delta_l[i, :]
        delta_{l-1} = (delta_l @ W_l^T) * f_{l-1}'(Z_{l-1})

    Parameters
    ----------
    params : list of ndarray
        ``[W_1, b_1, W_2, b_2, ...]`` as in :func:`forward`.
    activations : list of str
        One name from :data:`ACTIVATIONS` per layer.
    loss_name : str or loss object
        As ``name`` in :func:`loss`.
    X : ndarray of shape (n_samples, fan_in_1)
    y : ndarray
        Targets, as in :func:`loss`.
    sample_weight : ndarray of shape (n_samples,), optional

    Returns
    -------
    loss : float
        The weighted mean loss, as :func:`loss` computes it.
    grads : list of ndarray
        ``[dW_1, db_1, dW_2, db_2, ...]``, each of its parameter's shape.
    """
    spec, X, y, w = _check_batch(params, activations, loss_name, X, y, sample_weight)
    return _loss_and_grads(params, activations, spec, X, y, w)[:2]


def _check_batch(params, activations, loss_name, X, y, sample_weight):
    """(loss spec, X, y, w) checked and converted, for a network's batch."""
    spec = _resolve_loss(loss_name)
    X = _check_network(params, activations, X)
    if X.shape[0] == 0:
        raise ValueError("X must have at least one row")
    y = _check_targets(spec, (X.shape[0], params[-1].shape[0]), y)
    return spec, X, y, _check_sample_weight(sample_weight, X.shape[0])


def input_gradient(params, activations, loss_name, X, y, sample_weight=None):
    """Gradient of the loss with respect to the inputs: the backward pass of
    :func:`loss_and_grads` one product further, ``dLoss/dX = delta_1 @ W_1^T``.

    Parameters
    ----------
    params, activations, loss_name, X, y, sample_weight
        As in :func:`loss_and_grads`.

    Returns
    -------
    dX : ndarray of shape (n_samples, fan_in_1)
    """
    spec, X, y, w = _check_batch(params, activations, loss_name, X, y, sample_weight)
    return _loss_and_grads(params, activations, spec, X, y, w)[2]


def predict_transform(loss_name, out):
    """Map the network output to prediction space.

    Parameters
    ----------
    loss_name : str or loss object
        As ``name`` in :func:`loss`.
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    pred : ndarray, a new array
        - cross_entropy: class probabilities ``softmax(out_i)`` row by row,
          shape (n_samples, n_outputs)
        - binary_cross_entropy: probabilities ``sigmoid(out)``, shape (n_samples, n_outputs)
        - poisson: rates ``exp(out)``, shape (n_samples, n_outputs)
        - gaussian_nll: means then variances, ``[mu, exp(s)]`` with ``mu = out[:, :k]``,
          ``s = out[:, k:]``, shape (n_samples, 2k)
        - the others: ``out`` unchanged (copied), shape (n_samples, n_outputs)
    """
    loss_name = _resolve_loss(loss_name)[0]
    out = _as_float_array("out", out)
    if out.ndim != 2:
        raise ValueError(f"out must be 2-D (n_samples, n_outputs), got shape {out.shape}")
    if loss_name == "cross_entropy":
        return _softmax_and_logsumexp(out)[0]
    if loss_name == "binary_cross_entropy":
        return _sigmoid(out)
    if loss_name == "poisson":
        return np.exp(out)
    if loss_name == "gaussian_nll":
        if out.shape[1] % 2:
            raise ValueError(f"gaussian_nll needs an even number of outputs, got {out.shape[1]}")
        k = out.shape[1] // 2
        return np.concatenate([out[:, :k], np.exp(out[:, k:])], axis=1)
    return out.copy()


# ---------------------------------------------------------------------------
# Optimizers: PyTorch's documented update rules, one parameter array at a time.
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Training loop.
# ---------------------------------------------------------------------------

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
