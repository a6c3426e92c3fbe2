"""Activations: f(z) and f'(z), elementwise.

One private pair per activation (``_relu``, ``_relu_derivative``, ...), named in the
table ``_ACTIVATION_FUNCS`` that the forward and backward passes read; the public
:func:`activation` and :func:`activation_derivative` check their arguments and apply
a pair.
"""
import math

import numpy as np

from ._checks import _as_float_array, _check_name

LEAKY_RELU_SLOPE = 0.01
# Python floats (not NumPy float64 scalars), so that float32 arrays stay float32.
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


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
