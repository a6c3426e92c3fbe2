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

Modules
-------
- ``activations``: the activations and their derivatives.
- ``network``: the checks of a layer stack, the forward pass and dropout's masks.
- ``losses``: the losses and their gradients with respect to the output.
- ``gradients``: the backward pass, the input gradient and the prediction transforms.
- ``optimizers``: the optimizer state, update rules and gradient clipping.
- ``training``: the minibatch training loop and full-batch L-BFGS.
"""
from .activations import ACTIVATIONS, activation, activation_derivative
from .gradients import input_gradient, loss_and_grads, predict_transform
from .losses import LOSSES, loss, loss_gradient

# Not public, but re-exported: the tests apply it to check dropout's scaling.
from .network import _dropout as _dropout
from .network import dropout_mask, forward
from .optimizers import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    clip_grad_norm,
    init_optimizer_state,
    optimizer_step,
)
from .training import fit, lbfgs

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
