"""The benchmark networks, their synthetic data and their shared initial weights.

========  ==================================  =====  ===============================
config    layers, activation, loss            batch  optimizer
========  ==================================  =====  ===============================
tiny      2-16-1 tanh, MSE                    32     SGD lr 0.01
small     64-64-10 relu, softmax CE           32     SGD lr 0.01, momentum 0.9
medium    784-256-128-10 relu, softmax CE     128    Adam lr 1e-3
large     784-1024-1024-10 relu, softmax CE   256    Adam lr 1e-3
========  ==================================  =====  ===============================

The output layer is linear; the loss fuses the softmax. Rows per data set are whole
batches (medium: MNIST's 60,000 rounded down to them), so that JAX's ``lax.scan`` runs
the same steps as every other peer.
"""
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Config:
    """One benchmark network: shape, loss, batch size, optimizer, rows of data."""

    name: str
    sizes: tuple          # layer widths, input first
    activation: str       # of the hidden layers
    loss: str             # "mse" or "cross_entropy"
    batch_size: int
    optimizer: str        # "sgd" or "adam"
    hyper: dict = field(hash=False)   # lr, momentum / betas, eps: PyTorch's names
    n_samples: int = 0

    @property
    def n_weights(self):
        """Entries of the weight matrices (biases not counted)."""
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def step_flops(self):
        """Floating-point operations of one training sample's products.

        ``2 x (3 x weights - first-layer weights)``: the forward product, the weight
        gradient, and an input gradient for every layer but the first (no one needs
        the gradient of the data). Biases, activations and the optimizer not counted.
        """
        return 2 * (3 * self.n_weights - self.sizes[0] * self.sizes[1])

    def describe(self):
        shape = "-".join(map(str, self.sizes))
        loss = {"mse": "MSE", "cross_entropy": "softmax CE"}[self.loss]
        h = self.hyper
        opt = f"SGD lr {h['lr']:g}" if self.optimizer == "sgd" else f"Adam lr {h['lr']:g}"
        if h.get("momentum"):
            opt += f" mom {h['momentum']:g}"
        return f"{shape} {self.activation}, {loss}, batch {self.batch_size}, {opt}"

    def rows(self, scale=1.0):
        """``n_samples * scale`` rounded down to whole batches (at least one)."""
        n = int(self.n_samples * scale) // self.batch_size * self.batch_size
        return max(n, self.batch_size)


_ADAM = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}

CONFIGS = {
    "tiny": Config("tiny", (2, 16, 1), "tanh", "mse", 32, "sgd",
                   {"lr": 0.01, "momentum": 0.0}, 65536),
    "small": Config("small", (64, 64, 10), "relu", "cross_entropy", 32, "sgd",
                    {"lr": 0.01, "momentum": 0.9}, 65536),
    "medium": Config("medium", (784, 256, 128, 10), "relu", "cross_entropy", 128, "adam",
                     dict(_ADAM), 59904),
    "large": Config("large", (784, 1024, 1024, 10), "relu", "cross_entropy", 256, "adam",
                    dict(_ADAM), 16384),
}


def make_data(cfg, n=None, dtype="float32", seed=0):
    """Seeded synthetic data for ``cfg``, the same for every peer.

    Returns
    -------
    X : ndarray of shape (n, sizes[0]), C-contiguous, standard normal
    y : ndarray of shape (n,), int64 class labels of a random linear teacher
        (cross_entropy), or of shape (n, sizes[-1]) and ``dtype``: a smooth function
        of the inputs plus noise (mse)
    """
    dtype = np.dtype(dtype)
    n = cfg.n_samples if n is None else int(n)
    rng = np.random.default_rng(seed)
    d, k = cfg.sizes[0], cfg.sizes[-1]
    X = rng.standard_normal((n, d), dtype=dtype)   # no float64 temporary
    if cfg.loss == "mse":
        phase = rng.uniform(0, np.pi, size=k).astype(dtype)
        s = np.sin(2 * X[:, :1] + phase) * np.cos(X[:, -1:])
        y = (s + 0.05 * rng.standard_normal((n, k), dtype=dtype)).astype(dtype)
    else:
        teacher = rng.standard_normal((d, k)).astype(dtype)
        y = np.empty(n, dtype=np.int64)
        for i in range(0, n, 8192):
            y[i:i + 8192] = np.argmax(X[i:i + 8192] @ teacher, axis=1)
    return np.ascontiguousarray(X), y


def init_params(cfg, dtype="float32", seed=0):
    """Initial ``[W0, b0, W1, b1, ...]``, W of shape (fan_in, fan_out), b of (fan_out,).

    Glorot-uniform for tanh networks, He-uniform for relu ones, zero biases.
    """
    rng = np.random.default_rng(seed + 1)
    params = []
    for fan_in, fan_out in zip(cfg.sizes[:-1], cfg.sizes[1:]):
        fan = fan_in if cfg.activation == "relu" else fan_in + fan_out
        bound = math.sqrt(6.0 / fan)
        params.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype))
        params.append(np.zeros(fan_out, dtype=dtype))
    return params


def numpy_forward(params, cfg, X):
    """The network's prediction in plain NumPy, written by hand.

    Parameters
    ----------
    params : list of ndarray, ``[W0, b0, ...]``
    X : ndarray of shape (n, sizes[0])

    Returns
    -------
    ndarray of shape (n, sizes[-1]): class probabilities (cross_entropy) or outputs.
    """
    h = X
    last = len(params) // 2 - 1
    for i in range(last + 1):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < last:
            h = np.tanh(h) if cfg.activation == "tanh" else np.maximum(h, 0)
    if cfg.loss == "cross_entropy":
        h = np.exp(h - h.max(axis=1, keepdims=True))
        h /= h.sum(axis=1, keepdims=True)
    return h


def numpy_loss(params, cfg, X, y):
    """The loss of ``params`` on (X, y), in float64: the check that a peer trained."""
    params = [np.asarray(p, dtype=np.float64) for p in params]
    out = numpy_forward(params, cfg, np.asarray(X, dtype=np.float64))
    if cfg.loss == "mse":
        return float(np.mean((out - y) ** 2))
    return float(-np.mean(np.log(np.maximum(out[np.arange(len(y)), y], 1e-300))))
