"""Export of a network's inference function, :meth:`nncore.Network.predict`, as an
ONNX model (the ``onnx`` extra: ``pip install "nncore[onnx]"``).

The graph takes ``X`` of shape (batch, n_inputs) and gives ``Y`` of shape (batch,
n_outputs), in the network's dtype (float32 or float64), with a dynamic batch
dimension. Each layer is a ``Gemm`` (``X @ W + b``) followed by its activation; the
output then goes through the transform ``predict`` applies for the loss. Operator set
:data:`OPSET`.

Activations are written with the operators ONNX Runtime's CPU provider runs in both
float32 and float64 (it has no float64 ``Elu`` or ``Softplus``), in the same formulas
as ``nncore.reference``, so that the exported model computes what the kernels
compute to rounding:

- sigmoid (an activation, and binary_cross_entropy's transform) is
  ``1 / (1 + e)`` or ``e / (1 + e)``, e = exp(-|z|), as the kernels compute it: ONNX
  Runtime's ``Sigmoid`` loses the relative precision of small values;
- elu's ``expm1(z)`` and softplus's ``log1p(e)`` have no ONNX operator, and
  ``exp(z) - 1`` or ``log(1 + e)`` would lose every digit for small arguments; they
  are computed as ``(u - 1) z / log(u)`` with ``u = exp(z)`` and ``e log(w) / (w - 1)``
  with ``w = 1 + e`` (Kahan's forms, exact to a few ulps given an accurate log);
- gelu is nncore.reference's ``z sigmoid(2 u)``, u = sqrt(2/pi) (z + 0.044715 z^3),
  from operators of opset 17 (``Gelu(approximate="tanh")`` needs opset 20). The
  kernels compute the equal ``0.5 z (1 + tanh(u))``, which cancels for z << 0: there
  the two agree to eps |z| absolutely, and the export is the more accurate;
- leaky_relu is ``max(z, 0.01 z)`` with 0.01 in the network's dtype (the
  ``LeakyRelu`` operator's ``alpha`` is a float32 attribute, which a float64 network
  would feel).
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

    from .network import Network

# ONNX Runtime 1.13 and later run opset 17; IR version 8 is its IR.
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "X"
OUTPUT_NAME = "Y"
# A serialised ModelProto is a protobuf message, which cannot exceed 2 GiB; leave room
# for everything but the weights.
_MAX_WEIGHT_BYTES = 2**31 - 2**24
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715
# Below this, expm1(z) is -1 in both dtypes; clamping keeps exp(z) away from 0.
_EXPM1_FLOOR = -50.0


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('exporting to ONNX needs the onnx package: pip install '
                          '"nncore[onnx]"') from exc
    return onnx


class _Graph:
    """Nodes and initializers under construction, with fresh names."""

    def __init__(self, onnx, dtype):
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.nodes = []
        self.initializers = []
        self._count = 0

    def _name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type, *inputs, n_outputs=1, **attrs):
        """Add a node; its output's name (a list of n_outputs names if > 1)."""
        outs = [self._name(op_type.lower()) for _ in range(n_outputs)]
        node = self.onnx.helper.make_node(op_type, list(inputs), outs, **attrs)
        self.nodes.append(node)
        return outs[0] if n_outputs == 1 else outs

    def const(self, value, hint="c", dtype=None):
        name = self._name(hint)
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name


# ------------------------------------------------------------------ activations
def _expm1(g, z):
    """expm1(z) for z <= 0: (u - 1) z / log(u), u = exp(z); z itself where u rounds
    to 1 (the division is 0/0 there, and Where discards it)."""
    z = g.op("Max", z, g.const(_EXPM1_FLOOR))
    u = g.op("Exp", z)
    ratio = g.op("Div", g.op("Mul", g.op("Sub", u, g.const(1.0)), z), g.op("Log", u))
    return g.op("Where", g.op("Equal", u, g.const(1.0)), z, ratio)


def _log1p(g, e):
    """log1p(e) for e in [0, 1]: e log(w) / (w - 1), w = 1 + e; e where w rounds to 1."""
    w = g.op("Add", e, g.const(1.0))
    ratio = g.op("Div", g.op("Mul", e, g.op("Log", w)), g.op("Sub", w, g.const(1.0)))
    return g.op("Where", g.op("Equal", w, g.const(1.0)), e, ratio)


def _sigmoid(g, z):
    """1 / (1 + e) for z >= 0, e / (1 + e) below, e = exp(-|z|): relative precision
    for every z. (ONNX Runtime's Sigmoid has absolute precision only: in float32 its
    small values are off by up to 4.5x and it gives 0 below z = -16; in float64, 0
    below z = -36.7.)"""
    e = g.op("Exp", g.op("Neg", g.op("Abs", z)))
    r = g.op("Reciprocal", g.op("Add", e, g.const(1.0)))
    return g.op("Where", g.op("GreaterOrEqual", z, g.const(0.0)), r, g.op("Mul", e, r))


def _elu(g, z):
    negative = _expm1(g, g.op("Min", z, g.const(0.0)))
    return g.op("Where", g.op("Greater", z, g.const(0.0)), z, negative)


def _gelu(g, z):
    cube = g.op("Mul", g.op("Mul", z, z), z)
    u = g.op("Mul", g.const(_GELU_C), g.op("Add", z, g.op("Mul", g.const(_GELU_A), cube)))
    return g.op("Mul", z, _sigmoid(g, g.op("Mul", g.const(2.0), u)))


def _softplus(g, z):
    e = g.op("Exp", g.op("Neg", g.op("Abs", z)))
    return g.op("Add", g.op("Max", z, g.const(0.0)), _log1p(g, e))


# Activation name -> graph builder (g, z) -> output name.
ACTIVATIONS = {
    "identity": lambda g, z: z,
    "sigmoid": _sigmoid,
    "tanh": lambda g, z: g.op("Tanh", z),
    "relu": lambda g, z: g.op("Relu", z),
    "leaky_relu": lambda g, z: g.op("Max", z, g.op("Mul", z, g.const(0.01))),
    "elu": _elu,
    "gelu": _gelu,
    "softplus": _softplus,
}


# ------------------------------------------------------------- output transforms
def _gaussian_head(g, z, width):
    """Means unchanged, log variances s -> exp(s): [mu, exp(s)], as predict gives."""
    k = width // 2
    mu, s = g.op("Split", z, g.const([k, k], "split", np.int64), axis=1, n_outputs=2)
    return g.op("Concat", mu, g.op("Exp", s), axis=1)


# Loss name -> the transform predict applies, (g, z, width) -> output name. A loss
# whose predict is its raw output maps to _identity.
def _identity(g, z, width):
    return z


OUTPUT_TRANSFORMS = {
    "mse": _identity,
    "mae": _identity,
    "huber": _identity,
    "quantile": _identity,
    "binary_cross_entropy": lambda g, z, width: _sigmoid(g, z),
    "cross_entropy": lambda g, z, width: g.op("Softmax", z, axis=1),
    "gaussian_nll": _gaussian_head,
    "poisson": lambda g, z, width: g.op("Exp", z),
}


# ---------------------------------------------------------------------- export
def to_onnx(network: Network, path: str | os.PathLike | None = None) -> onnx.ModelProto:
    """``network.predict`` as an ONNX model.

    Parameters
    ----------
    network : Network
    path : str or os.PathLike, optional
        Where to write the model, atomically (as :meth:`Network.save` writes);
        None: only return it.

    Returns
    -------
    onnx.ModelProto
        Input ``"X"`` of shape (batch, n_inputs), output ``"Y"`` of shape (batch,
        n_outputs), both of the network's dtype; checked by
        ``onnx.checker.check_model``.

    Raises
    ------
    ValueError
        An activation or loss this exporter has no graph for, or weights beyond
        ONNX's 2 GiB limit.
    ImportError
        The onnx package is missing.
    """
    onnx = _import_onnx()
    loss = network.loss_name
    if loss not in OUTPUT_TRANSFORMS:
        raise ValueError(f"cannot export loss {loss!r} to ONNX: no output transform for "
                         f"it (known: {sorted(OUTPUT_TRANSFORMS)})")
    for i, layer in enumerate(network.layers):
        if layer.activation not in ACTIVATIONS:
            raise ValueError(f"cannot export layers[{i}]'s activation "
                             f"{layer.activation!r} to ONNX (known: "
                             f"{sorted(ACTIVATIONS)})")
    if network.n_params * network.dtype.itemsize > _MAX_WEIGHT_BYTES:
        raise ValueError(f"cannot export to ONNX: the weights take "
                         f"{network.n_params * network.dtype.itemsize} bytes, beyond the "
                         "2 GiB that one ONNX model (a protobuf message) can hold")
    g = _Graph(onnx, network.dtype)
    z = INPUT_NAME
    params = network.params
    for i, layer in enumerate(network.layers):
        W = g.const(params[2 * i], f"W{i}")
        b = g.const(params[2 * i + 1], f"b{i}")
        z = ACTIVATIONS[layer.activation](g, g.op("Gemm", z, W, b))
    out = OUTPUT_TRANSFORMS[loss](g, z, network.n_outputs)
    g.nodes.append(onnx.helper.make_node("Identity", [out], [OUTPUT_NAME]))
    model = _model(onnx, g, network)
    if path is not None:
        from .io import atomic_write

        data = model.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return model


def _model(onnx, g, network):
    from . import __version__

    elem = onnx.helper.np_dtype_to_tensor_dtype(network.dtype)
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        g.nodes, "nncore_predict",
        [value(INPUT_NAME, elem, ["batch", network.n_inputs])],
        [value(OUTPUT_NAME, elem, ["batch", network.n_outputs])],
        initializer=g.initializers)
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="nncore", producer_version=__version__,
        doc_string=f"predict of {network!r}")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model
