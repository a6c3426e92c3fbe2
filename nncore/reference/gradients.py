"""The backward pass: the gradients of a batch's loss with respect to the parameters
(:func:`loss_and_grads`) and to the inputs (:func:`input_gradient`), and the map
from network output to prediction space (:func:`predict_transform`)."""
import numpy as np

from ._checks import _as_float_array
from .activations import _ACTIVATION_FUNCS, _sigmoid
from .losses import (
    _check_sample_weight,
    _check_targets,
    _loss_and_gradient,
    _resolve_loss,
    _softmax_and_logsumexp,
)
from .network import _check_network, _dropout, _forward


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
