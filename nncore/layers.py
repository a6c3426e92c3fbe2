"""Dense layers: sizes, activation, and seeded weight initialisation."""
from __future__ import annotations

import math

from . import _validation
from ._codes import Activation as _Activation
from ._codes import codes as _codes

# Activation name -> kernel code, read from the one table (nncore/_codes.pxd).
_CODES = _codes(_Activation)

#: The names of the activations a Dense layer takes.
ACTIVATIONS = tuple(_CODES)

# Values drawn per block in Dense.init_params.
_INIT_BLOCK = 1 << 20

# The ReLU family gets He initialisation; the others Glorot.
_HE_INIT = {"relu", "leaky_relu", "elu", "gelu"}


def activation_code(name):
    """The kernels' code of an activation name (from :data:`ACTIVATIONS`)."""
    return _CODES[name]


def check_activation(name):
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, one of {sorted(ACTIVATIONS)}; "
                        f"got {name!r}")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATIONS)}")
    return name


class Dense:
    """A fully connected layer: ``A = f(X @ W + b)``.

    Parameters
    ----------
    fan_in : int
        Number of inputs (features of X), >= 1 and < 2**31 (BLAS's 32-bit sizes).
    fan_out : int
        Number of outputs (units), >= 1 and < 2**31.
    activation : str, default "identity"
        One of ``identity``, ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu`` (slope
        0.01), ``elu`` (alpha 1), ``gelu`` (tanh approximation), ``softplus``.
    dropout : float, default 0.0
        Inverted dropout on the layer's output while ``fit`` trains, rate p in
        [0, 1): each output is zeroed with probability p, and the kept ones are
        scaled by 1 / (1 - p). ``forward``, ``predict``, ``loss``, ``evaluate`` and
        ``loss_and_grads`` take the network without it. The masks come from a
        counter-based generator keyed by the network's seed, the optimizer step and
        the position (see ``reference.dropout_mask``): a seeded run repeats bit for
        bit whatever the thread count.

    Notes
    -----
    W has shape (fan_in, fan_out) and b shape (fan_out,). Weights are initialised by
    the owning :class:`~nncore.Network` from its seeded generator:

    - Glorot (Xavier) uniform, ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``,
      for identity, sigmoid, tanh and softplus;
    - He (Kaiming) uniform, ``U(-a, a)`` with ``a = sqrt(6 / fan_in)``, for relu,
      leaky_relu, elu and gelu;
    - biases zero.

    Examples
    --------
    >>> Dense(64, 128, activation="relu")
    Dense(64, 128, activation='relu')
    >>> Dense(64, 128, activation="relu", dropout=0.2)
    Dense(64, 128, activation='relu', dropout=0.2)
    """

    __slots__ = ("activation", "dropout", "fan_in", "fan_out")

    def __init__(self, fan_in: int, fan_out: int, activation: str = "identity",
                 dropout: float = 0.0) -> None:
        self.fan_in = _validation.check_int(fan_in, "fan_in", 1, _validation.BLAS_MAX)
        self.fan_out = _validation.check_int(fan_out, "fan_out", 1, _validation.BLAS_MAX)
        self.activation = check_activation(activation)
        self.dropout = _validation.check_float(dropout, "dropout", low=0, high=1,
                                               high_open=True)

    @property
    def init_limit(self) -> float:
        """Half-width ``a`` of the uniform distribution W is drawn from."""
        if self.activation in _HE_INIT:
            return math.sqrt(6.0 / self.fan_in)
        return math.sqrt(6.0 / (self.fan_in + self.fan_out))

    @property
    def n_params(self) -> int:
        """Number of weights and biases: fan_in * fan_out + fan_out."""
        return self.fan_in * self.fan_out + self.fan_out

    def init_params(self, rng, W, b):
        """Fill W (fan_in, fan_out) and b (fan_out,) in place from ``rng``.

        Drawn in float64 and then rounded, so float32 and float64 networks with the
        same seed start from the same weights. Drawn a block of rows at a time (the
        same numbers as one draw), so that a large layer needs no full-size float64
        temporary.
        """
        a = self.init_limit
        rows = max(1, _INIT_BLOCK // self.fan_out)
        for start in range(0, self.fan_in, rows):
            stop = min(start + rows, self.fan_in)
            W[start:stop] = rng.uniform(-a, a, size=(stop - start, self.fan_out))
        b[...] = 0

    def __repr__(self):
        drop = f", dropout={self.dropout!r}" if self.dropout else ""
        return (f"Dense({self.fan_in}, {self.fan_out}, activation={self.activation!r}"
                f"{drop})")

    def _key(self):
        return (self.fan_in, self.fan_out, self.activation, self.dropout)

    def __eq__(self, other):
        return isinstance(other, Dense) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())
