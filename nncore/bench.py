"""Side-by-side training benchmark: nncore against NumPy, PyTorch, JAX and scikit-learn.

``python -m nncore bench`` (or ``python benches/compare.py``, or
``python -m nncore.bench``) prints markdown tables, one per dtype and thread count, for
the four configurations of issue 3:

========  ==================================  =====  ===============================
config    layers, activation, loss            batch  optimizer
========  ==================================  =====  ===============================
tiny      2-16-1 tanh, MSE                    32     SGD lr 0.01
small     64-64-10 relu, softmax CE           32     SGD lr 0.01, momentum 0.9
medium    784-256-128-10 relu, softmax CE     128    Adam lr 1e-3
large     784-1024-1024-10 relu, softmax CE   256    Adam lr 1e-3
========  ==================================  =====  ===============================

Protocol
--------
- Every (peer, config, dtype, thread count) measurement runs in a fresh Python process
  (so no library's thread pools, caches or allocator state leak into another's), with
  ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and friends set,
  ``threadpoolctl`` limits and ``torch.set_num_threads`` applied, ``XLA_FLAGS`` for JAX,
  and the process pinned to the first ``threads`` CPUs (``--no-pin`` turns pinning off).
  A library that starts more threads than it was told to only competes with itself.
- Data: synthetic, seeded (``standard_normal`` inputs; class labels from a random linear
  teacher, regression targets a smooth function of the inputs), identical for all
  peers. Rows per config: tiny and small 65536, medium 59904 (MNIST's 60000 rounded down
  to whole batches of 128), large 16384: every epoch is a whole number of full batches,
  so the JAX ``lax.scan`` peer runs the same steps as everyone else. ``--scale`` scales
  the rows (rounded to whole batches); ``--quick`` uses a quarter of them.
- All peers start from the same weights (Glorot-uniform for tanh, He-uniform for relu,
  zero biases; scikit-learn draws its own), draw a fresh permutation every epoch and
  gather the minibatch rows from it.
- One warm-up epoch, untimed; JAX's compile time is measured on its own (ahead-of-time
  ``lower().compile()``) and reported apart. Then timed epochs, repeated until at least
  ``--min-time`` seconds and ``--min-repeats`` epochs; the process reports the median
  epoch. ``--rounds`` processes per measurement, interleaved across peers; the tables
  show the median over the processes and their spread ((max - min) / median of the
  per-process medians; with one process, the interquartile range of its epochs).
- Other load: before each measurement the harness waits (``--idle-wait``, within a
  ``--idle-budget`` for the run) while other processes keep more than 10% of the CPUs
  busy, reads from ``/proc/stat`` the share of the CPUs they used meanwhile ("others'
  CPU"), measures again when that exceeds 10% (``--retry-busy``) and marks the row
  ``!`` if it still does. Two-thread results in particular mean little on a busy
  machine: a spinning BLAS or OpenMP pool loses most of its time to a competitor.
- Throughput: samples/s = rows / epoch time; us/step = epoch time / steps;
  GFLOP/s = 6 x (weight-matrix entries) x rows / epoch time (2 for the forward product,
  4 for the two backward products; biases, activations and the optimizer not counted).
- GEMM ceiling: the best rate of a large square matrix product (``--gemm-size``,
  default 2048) in the same run, at the same thread count and dtype, with NumPy
  (``matmul``), SciPy (``sgemm``/``dgemm``: the BLAS nncore's kernels call), PyTorch
  (``torch.mm``) and JAX (jit ``@``), whichever are installed. The ceiling is the highest
  of them (``--ceiling-libs`` chooses which count); every rate is printed. "% ceiling"
  is a peer's GFLOP/s over that ceiling. Note: XLA's GEMM uses AVX-512 where OpenBLAS
  may not (``OPENBLAS_CORETYPE`` in the environment, or a CPU it does not know), so on
  such a machine JAX sets the ceiling, about twice OpenBLAS's rate.
- The peers: ``nncore`` (``Network.fit(epochs=1)`` per timed epoch, input checks
  included), ``numpy`` (``nncore.reference.fit``: the careful NumPy baseline), ``torch``
  (eager, default optimizer), ``torch-fused`` (eager with ``fused=True`` optimizers),
  ``jax-step`` (one jit-compiled train step per minibatch, buffers donated), ``jax-scan``
  (the whole epoch in one jit-compiled ``lax.scan``), ``sklearn`` (``MLPClassifier`` /
  ``MLPRegressor`` ``partial_fit``: one epoch, solver sgd/adam, ``alpha=0``, no early
  stopping). A peer that is not installed is skipped with a one-line message.
- Extras (``--no-extras`` skips them): ``predict`` throughput on medium, the whole data
  set per call (nncore, ``reference.forward``, PyTorch eager under ``torch.no_grad()``,
  JAX jit, scikit-learn ``predict_proba``; those of ``--peers``);
  peak resident memory (``ru_maxrss``) of the processes that trained medium; the
  resident memory and time that ``import nncore`` costs in a fresh interpreter (and the
  peers' imports for comparison); time from the end of ``import nncore`` to the first
  trained batch (building the network included).
- The summary prints the targets of issue 3 as PASS/FAIL lines. FANN's figures (a C
  library trained one sample at a time; numbers from the issue, not measured here) count
  as a peer on tiny: 1.9M samples/s.

Examples
--------
::

    python -m nncore bench                       # everything, float32, 1 and 2 threads
                                                 # (about 30 min on 2 cores)
    python -m nncore bench --quick               # about a quarter of the rows, 1 round
    python -m nncore bench --configs tiny,small --threads 1 --peers nncore,numpy,torch
    python -m nncore bench --dtype float32,float64 --json results.json
    python -m nncore bench --from-json results.json   # re-print saved results
    python -m nncore bench --from-json f32.json,f64.json   # merge two saved runs
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONFIGS",
    "PEERS",
    "Config",
    "make_data",
    "init_params",
    "make_trainer",
    "limit_threads",
    "main",
]


# --------------------------------------------------------------------------------------
# Configurations and peers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: network shape, loss, batch size, optimizer."""

    name: str
    sizes: tuple  # layer widths, input first
    activation: str  # hidden activation; the output layer is linear (loss fuses the rest)
    loss: str  # "mse" or "cross_entropy"
    batch_size: int
    optimizer: str  # "sgd" or "adam"
    hyper: tuple  # ((key, value), ...) in nncore / PyTorch names
    n_samples: int  # default rows of the synthetic data set

    @property
    def hyper_dict(self):
        return dict(self.hyper)

    @property
    def n_weights(self):
        """Entries of the weight matrices (biases not counted)."""
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def n_params(self):
        return self.n_weights + sum(self.sizes[1:])

    @property
    def flops_per_sample(self):
        """6 x weights: forward X@W (2), backward dZ@W.T and X.T@dZ (4)."""
        return 6 * self.n_weights

    def describe(self):
        shape = "-".join(str(s) for s in self.sizes)
        loss = {"mse": "MSE", "cross_entropy": "softmax CE"}[self.loss]
        h = self.hyper_dict
        if self.optimizer == "sgd":
            opt = f"SGD lr {h['lr']:g}"
            if h.get("momentum"):
                opt += f" mom {h['momentum']:g}"
        else:
            opt = f"Adam lr {h['lr']:g}"
        return f"{shape} {self.activation}, {loss}, batch {self.batch_size}, {opt}"

    def rows(self, scale=1.0):
        """Rows for a run: ``n_samples * scale`` rounded down to whole batches."""
        n = int(self.n_samples * scale) // self.batch_size * self.batch_size
        return max(n, self.batch_size)


CONFIGS = {
    "tiny": Config("tiny", (2, 16, 1), "tanh", "mse", 32, "sgd",
                   (("lr", 0.01), ("momentum", 0.0)), 65536),
    "small": Config("small", (64, 64, 10), "relu", "cross_entropy", 32, "sgd",
                    (("lr", 0.01), ("momentum", 0.9)), 65536),
    "medium": Config("medium", (784, 256, 128, 10), "relu", "cross_entropy", 128, "adam",
                     (("lr", 1e-3),), 59904),
    "large": Config("large", (784, 1024, 1024, 10), "relu", "cross_entropy", 256, "adam",
                    (("lr", 1e-3),), 16384),
}

PEERS = ("nncore", "numpy", "torch", "torch-fused", "jax-step", "jax-scan", "sklearn")

PEER_LABELS = {
    "nncore": "nncore",
    "numpy": "NumPy (reference.py)",
    "torch": "PyTorch eager",
    "torch-fused": "PyTorch fused",
    "jax-step": "JAX jit step",
    "jax-scan": "JAX jit+scan",
    "sklearn": "scikit-learn",
    "fann": "FANN (issue 3, external)",
}

# The distribution each peer needs, for a cheap "is it installed" check and the hint.
PEER_MODULES = {
    "torch": ("torch", "pip install torch==2.13.0  (never a bare `pip install torch`)"),
    "torch-fused": ("torch", "pip install torch==2.13.0  (never a bare `pip install torch`)"),
    "jax-step": ("jax", 'pip install "jax[cpu]"'),
    "jax-scan": ("jax", 'pip install "jax[cpu]"'),
    "sklearn": ("sklearn", "pip install scikit-learn"),
}

_PEER_LIBRARY = {"nncore": "nncore", "numpy": "numpy", "torch": "torch",
                 "torch-fused": "torch", "jax-step": "jax", "jax-scan": "jax",
                 "sklearn": "scikit-learn"}

PREDICT_PEERS = ("nncore", "numpy", "torch", "jax-step", "sklearn")
PREDICT_LABELS = {
    "nncore": "nncore",
    "numpy": "NumPy (reference.py)",
    "torch": "PyTorch eager, no_grad",
    "jax-step": "JAX jit",
    "sklearn": "scikit-learn predict_proba",
}

# FANN, measured for issue 3 on this machine (not re-measured here): a peer on tiny.
EXTERNAL = {"tiny": {"fann": 1.9e6}}

_IDENTITY_NAMES = ("identity", "linear", "none")


# --------------------------------------------------------------------------------------
# Data and initial weights
# --------------------------------------------------------------------------------------


def make_data(cfg, n=None, dtype="float32", seed=0):
    """Synthetic data set for ``cfg``.

    Returns
    -------
    X : ndarray of shape (n, sizes[0]), dtype ``dtype``, C-contiguous
    y : ndarray of shape (n,) int64 class labels for cross_entropy, or
        ndarray of shape (n, sizes[-1]) of ``dtype`` for mse
    """
    dtype = np.dtype(dtype)
    n = cfg.n_samples if n is None else int(n)
    rng = np.random.default_rng(seed)
    d, k = cfg.sizes[0], cfg.sizes[-1]
    X = rng.standard_normal((n, d), dtype=dtype)  # no float64 temporary: keeps peak RSS honest
    if cfg.loss == "mse":
        phase = rng.uniform(0, np.pi, size=k).astype(dtype)
        s = np.sin(2 * X[:, :1] + phase) * np.cos(X[:, -1:])
        y = (s + 0.05 * rng.standard_normal((n, k), dtype=dtype)).astype(dtype)
    else:
        teacher = rng.standard_normal((d, k)).astype(dtype)
        y = np.empty(n, dtype=np.int64)
        for i in range(0, n, 8192):
            y[i:i + 8192] = np.argmax(X[i:i + 8192] @ teacher, axis=1)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def init_params(cfg, dtype="float32", seed=0):
    """Initial ``[W0, b0, W1, b1, ...]``, W of shape (fan_in, fan_out).

    Glorot-uniform for tanh, He-uniform for relu, zero biases.
    """
    rng = np.random.default_rng(seed + 1)
    params = []
    for fan_in, fan_out in zip(cfg.sizes[:-1], cfg.sizes[1:]):
        if cfg.activation == "relu":
            bound = math.sqrt(6.0 / fan_in)
        else:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype))
        params.append(np.zeros(fan_out, dtype=dtype))
    return params


def numpy_forward(params, cfg, X):
    """Plain NumPy forward pass; probabilities for cross_entropy, raw outputs for mse."""
    h = X
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < n_layers - 1:
            h = np.tanh(h) if cfg.activation == "tanh" else np.maximum(h, 0)
    if cfg.loss == "cross_entropy":
        h = np.exp(h - h.max(axis=1, keepdims=True))
        h /= h.sum(axis=1, keepdims=True)
    return h


def numpy_loss(params, cfg, X, y):
    """The loss of ``params`` on (X, y) in float64, for a sanity check that peers train."""
    params = [np.asarray(p, dtype=np.float64) for p in params]
    out = numpy_forward(params, cfg, np.asarray(X, dtype=np.float64))
    if cfg.loss == "mse":
        return float(np.mean((out - y) ** 2))
    return float(-np.mean(np.log(np.maximum(out[np.arange(len(y)), y], 1e-300))))


# --------------------------------------------------------------------------------------
# Thread control inside one process
# --------------------------------------------------------------------------------------


class limit_threads:
    """Context manager: BLAS pools (threadpoolctl), PyTorch and nncore use ``threads``.

    Only libraries already imported are touched (import them first). JAX's thread pool
    is fixed when the process starts: see ``worker_env``.
    """

    def __init__(self, threads):
        self.threads = int(threads)
        self._undo = []

    def __enter__(self):
        n = self.threads
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            ctl = threadpool_limits(limits=n)
            self._undo.append(ctl.restore_original_limits)
        torch = sys.modules.get("torch")
        if torch is not None:
            old = torch.get_num_threads()
            torch.set_num_threads(n)
            self._undo.append(lambda: torch.set_num_threads(old))
        nncore = sys.modules.get("nncore")
        setter = getattr(nncore, "set_num_threads", None) if nncore is not None else None
        if setter is not None:
            getter = getattr(nncore, "get_num_threads", None)
            old_nn = getter() if getter is not None else None
            setter(n)
            if old_nn is not None:
                self._undo.append(lambda: setter(old_nn))
        return self

    def __exit__(self, *exc):
        while self._undo:
            self._undo.pop()()
        return False


def worker_env(threads, base=None):
    """Environment for a worker process limited to ``threads`` threads."""
    env = dict(os.environ if base is None else base)
    t = str(int(threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                "NNCORE_NUM_THREADS"):
        env[var] = t
    if int(threads) == 1:
        # XLA sizes its pool from the CPUs the process may use (pinning does the rest);
        # this flag also keeps Eigen's own contractions on the calling thread.
        flags = env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = flags.strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _usable_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


# --------------------------------------------------------------------------------------
# Trainers: one per peer, same interface
# --------------------------------------------------------------------------------------


class SkipPeer(Exception):
    """The peer cannot run here (not installed, or lacks a feature); the message says why."""


class Trainer:
    """One peer training one configuration on one data set.

    ``epoch()`` runs one shuffled epoch and returns when the work is done;
    ``get_params()`` returns ``[W0, b0, ...]`` as NumPy arrays, W (fan_in, fan_out);
    ``predict(X)`` returns probabilities (cross_entropy) or outputs (mse).
    """

    peer = "?"
    version = ""
    compile_s = None  # ahead-of-time compile time, where there is one

    def epoch(self):
        raise NotImplementedError

    def get_params(self):
        raise NotImplementedError

    def predict(self, X):
        raise SkipPeer(f"{self.peer}: predict not implemented")


def _opt_hyper(cfg):
    h = dict(cfg.hyper_dict)
    if cfg.optimizer == "sgd":
        h.setdefault("momentum", 0.0)
    else:
        h.setdefault("betas", (0.9, 0.999))
        h.setdefault("eps", 1e-8)
    return h


class NncoreTrainer(Trainer):
    peer = "nncore"

    def __init__(self, cfg, X, y, dtype, params, seed=0):
        try:
            import nncore
        except ImportError as exc:
            raise SkipPeer(f"nncore does not import: {exc}") from exc
        import inspect

        self.nncore = nncore
        self.version = getattr(nncore, "__version__", "") + _build_stamp(nncore)
        self.cfg, self.X, self.y = cfg, X, y
        n_layers = len(cfg.sizes) - 1
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
            if i < n_layers - 1:
                layers.append(nncore.Dense(fan_in, fan_out, activation=cfg.activation))
            else:
                layers.append(nncore.Dense(fan_in, fan_out))
        self.net = nncore.Network(layers, loss=cfg.loss, dtype=str(np.dtype(dtype)), seed=seed)
        if params is not None:
            live = list(self.net.params)
            if len(live) != len(params):
                raise RuntimeError(f"net.params has {len(live)} arrays, expected {len(params)}")
            for p, v in zip(live, params):
                p[...] = v
        h = _opt_hyper(cfg)
        if cfg.optimizer == "sgd":
            self.opt = nncore.SGD(lr=h["lr"], momentum=h["momentum"])
        else:
            self.opt = nncore.Adam(lr=h["lr"])
        self.fit_kwargs = dict(epochs=1, batch_size=cfg.batch_size, optimizer=self.opt,
                               shuffle=True)
        try:
            names = inspect.signature(self.net.fit).parameters
        except (TypeError, ValueError):
            names = {}
        if "verbose" in names:
            self.fit_kwargs["verbose"] = 0

    def epoch(self):
        self.net.fit(self.X, self.y, **self.fit_kwargs)

    def get_params(self):
        return [np.array(p) for p in self.net.params]

    def predict(self, X):
        return self.net.predict(X)


def _build_stamp(module):
    """' (built HH:MM)': when the newest compiled extension of ``module`` was built."""
    import glob

    folder = os.path.dirname(getattr(module, "__file__", "") or "")
    mtimes = [os.path.getmtime(f) for f in glob.glob(os.path.join(folder, "*.so"))
              + glob.glob(os.path.join(folder, "*.pyd"))]
    if not mtimes:
        return ""
    return time.strftime(" (built %Y-%m-%d %H:%M)", time.localtime(max(mtimes)))


def _import_reference():
    """``nncore.reference``; if the package does not import (kernels not built), the file."""
    try:
        from nncore import reference
        return reference
    except ImportError as first:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.py")
        if not os.path.exists(path):
            raise SkipPeer(f"nncore.reference does not import: {first}") from first
        spec = importlib.util.spec_from_file_location("_nncore_reference", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as exc:  # relative imports inside reference.py, say
            raise SkipPeer(f"nncore.reference does not import: {first}; "
                           f"as a file: {exc}") from exc
        return mod


def _reference_identity_name(ref):
    """The reference's name for the linear output layer."""
    table = getattr(ref, "ACTIVATIONS", None)
    if table is not None:
        for name in _IDENTITY_NAMES:
            if name in table:
                return name
    return "identity"


class ReferenceTrainer(Trainer):
    peer = "numpy"

    def __init__(self, cfg, X, y, dtype, params, seed=0):
        self.ref = _import_reference()
        self.version = np.__version__
        self.cfg, self.X, self.y = cfg, X, y
        if params is None:
            params = init_params(cfg, dtype, seed)
        self.params = [np.array(p, dtype=dtype) for p in params]
        n_layers = len(cfg.sizes) - 1
        self.activations = [cfg.activation] * (n_layers - 1) + [_reference_identity_name(self.ref)]
        h = _opt_hyper(cfg)
        if cfg.optimizer == "sgd":
            self.optimizer = ("sgd", {"lr": h["lr"], "momentum": h["momentum"],
                                      "nesterov": False, "weight_decay": 0.0})
        else:
            self.optimizer = ("adam", {"lr": h["lr"], "betas": h["betas"], "eps": h["eps"],
                                       "weight_decay": 0.0})
        self.rng = np.random.default_rng(seed + 2)
        self.state = None

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        _, self.state = self.ref.fit(self.params, self.activations, self.cfg.loss, self.X,
                                     self.y, epochs=1, batch_size=self.cfg.batch_size,
                                     optimizer=self.optimizer, orders=[order],
                                     state=self.state)

    def get_params(self):
        return [p.copy() for p in self.params]

    def predict(self, X):
        forward = getattr(self.ref, "forward", None)
        transform = getattr(self.ref, "predict_transform", None)
        if forward is None or transform is None:
            return numpy_forward(self.params, self.cfg, X)
        return transform(self.cfg.loss, forward(self.params, self.activations, X))


class TorchTrainer(Trainer):
    peer = "torch"

    def __init__(self, cfg, X, y, dtype, params, seed=0, fused=False):
        try:
            import torch
        except ImportError as exc:
            raise SkipPeer(f"torch not installed ({PEER_MODULES['torch'][1]})") from exc
        self.torch = torch
        self.peer = "torch-fused" if fused else "torch"
        self.version = torch.__version__
        self.cfg = cfg
        torch.manual_seed(seed)
        tdtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
        if params is None:
            params = init_params(cfg, dtype, seed)
        mods = []
        n_layers = len(cfg.sizes) - 1
        for i, (fan_in, fan_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
            lin = torch.nn.Linear(fan_in, fan_out, dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(params[2 * i].T)))
                lin.bias.copy_(torch.from_numpy(params[2 * i + 1]))
            mods.append(lin)
            if i < n_layers - 1:
                mods.append(torch.nn.Tanh() if cfg.activation == "tanh" else torch.nn.ReLU())
        self.model = torch.nn.Sequential(*mods)
        self.loss_fn = torch.nn.MSELoss() if cfg.loss == "mse" else torch.nn.CrossEntropyLoss()
        h = _opt_hyper(cfg)
        extra = {"fused": True} if fused else {}
        try:
            if cfg.optimizer == "sgd":
                self.opt = torch.optim.SGD(self.model.parameters(), lr=h["lr"],
                                           momentum=h["momentum"], **extra)
            else:
                self.opt = torch.optim.Adam(self.model.parameters(), lr=h["lr"],
                                            betas=h["betas"], eps=h["eps"], **extra)
        except (TypeError, RuntimeError, ValueError) as exc:
            raise SkipPeer(f"torch {torch.__version__}: fused {cfg.optimizer} "
                           f"unsupported here ({exc})") from exc
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)
        self.n = len(X)

    def epoch(self):
        torch = self.torch
        bs = self.cfg.batch_size
        perm = torch.randperm(self.n)
        model, loss_fn, opt, X, y = self.model, self.loss_fn, self.opt, self.X, self.y
        for start in range(0, self.n, bs):
            idx = perm[start:start + bs]
            xb, yb = X[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    def get_params(self):
        out = []
        for mod in self.model:
            if isinstance(mod, self.torch.nn.Linear):
                out.append(mod.weight.detach().numpy().T.copy())
                out.append(mod.bias.detach().numpy().copy())
        return out

    def predict(self, X):
        torch = self.torch
        with torch.no_grad():
            out = self.model(torch.from_numpy(X))
            if self.cfg.loss == "cross_entropy":
                out = torch.softmax(out, dim=1)
        return out.numpy()


class JaxTrainer(Trainer):
    peer = "jax-step"

    def __init__(self, cfg, X, y, dtype, params, seed=0, scan=False):
        dtype = np.dtype(dtype)
        try:
            import jax
        except ImportError as exc:
            raise SkipPeer(f"jax not installed ({PEER_MODULES['jax-step'][1]})") from exc
        if dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.peer = "jax-scan" if scan else "jax-step"
        self.version = jax.__version__
        self.cfg, self.scan = cfg, scan
        self.n = len(X)
        self.steps = self.n // cfg.batch_size
        if self.steps * cfg.batch_size != self.n:
            raise SkipPeer("JAX peers need whole batches (rows a multiple of the batch size)")
        if params is None:
            params = init_params(cfg, dtype, seed)
        self.params = [(jnp.asarray(params[i]), jnp.asarray(params[i + 1]))
                       for i in range(0, len(params), 2)]
        self.X = jnp.asarray(X)
        self.y = jnp.asarray(y.astype(np.int32) if cfg.loss == "cross_entropy" else y)
        h = _opt_hyper(cfg)
        act = jnp.tanh if cfg.activation == "tanh" else jax.nn.relu
        n_layers = len(self.params)
        bs = cfg.batch_size

        def forward(params, x):
            for i, (W, b) in enumerate(params):
                x = x @ W + b
                if i < n_layers - 1:
                    x = act(x)
            return x

        def loss_fn(params, xb, yb):
            out = forward(params, xb)
            if cfg.loss == "mse":
                return jnp.mean((out - yb) ** 2)
            logp = jax.nn.log_softmax(out, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        grad_fn = jax.value_and_grad(loss_fn)
        tree_map = jax.tree_util.tree_map

        if cfg.optimizer == "sgd":
            lr, mu = h["lr"], h["momentum"]
            # PyTorch's rule: buf = g on the first step, then mu*buf + g; a zero buffer
            # gives exactly that.
            state = tree_map(jnp.zeros_like, self.params) if mu else ()

            def update(params, state, grads):
                if mu:
                    state = tree_map(lambda b, g: mu * b + g, state, grads)
                    params = tree_map(lambda p, b: p - lr * b, params, state)
                else:
                    params = tree_map(lambda p, g: p - lr * g, params, grads)
                return params, state
        else:
            lr, (b1, b2), eps = h["lr"], h["betas"], h["eps"]
            zeros = tree_map(jnp.zeros_like, self.params)
            state = (jnp.zeros((), dtype=dtype), zeros, tree_map(jnp.zeros_like, self.params))

            def update(params, state, grads):
                t, m, v = state
                t = t + 1
                m = tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
                v = tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
                c1 = 1 - b1 ** t
                c2 = 1 - b2 ** t
                params = tree_map(lambda p, m_, v_: p - lr * (m_ / c1) / (jnp.sqrt(v_ / c2) + eps),
                                  params, m, v)
                return params, (t, m, v)

        self.state = state

        def train_step(params, state, X, y, idx):
            loss, grads = grad_fn(params, X[idx], y[idx])
            params, state = update(params, state, grads)
            return params, state, loss

        def train_epoch(params, state, X, y, idx2d):
            def body(carry, idx):
                p, s, loss = train_step(carry[0], carry[1], X, y, idx)
                return (p, s), loss

            (params, state), losses = jax.lax.scan(body, (params, state), idx2d)
            return params, state, losses

        self.rng = np.random.default_rng(seed + 2)
        t0 = time.perf_counter()
        if scan:
            example = np.zeros((self.steps, bs), dtype=np.int32)
            fn = jax.jit(train_epoch, donate_argnums=(0, 1))
        else:
            example = np.zeros(bs, dtype=np.int32)
            fn = jax.jit(train_step, donate_argnums=(0, 1))
        self.fn = fn.lower(self.params, self.state, self.X, self.y, example).compile()
        self.compile_s = time.perf_counter() - t0
        self._forward = jax.jit(forward)

    def epoch(self):
        perm = self.rng.permutation(self.n).astype(np.int32)
        if self.scan:
            self.params, self.state, _ = self.fn(self.params, self.state, self.X, self.y,
                                                 perm.reshape(self.steps, -1))
        else:
            bs, fn, X, y = self.cfg.batch_size, self.fn, self.X, self.y
            params, state = self.params, self.state
            for start in range(0, self.n, bs):
                params, state, _ = fn(params, state, X, y, perm[start:start + bs])
            self.params, self.state = params, state
        self.jax.block_until_ready(self.params)

    def get_params(self):
        out = []
        for W, b in self.params:
            out += [np.asarray(W), np.asarray(b)]
        return out

    def predict(self, X):
        out = self._forward(self.params, X)
        if self.cfg.loss == "cross_entropy":
            out = self.jax.nn.softmax(out, axis=1)
        return np.asarray(out.block_until_ready())


class SklearnTrainer(Trainer):
    peer = "sklearn"

    def __init__(self, cfg, X, y, dtype, params, seed=0):
        try:
            import sklearn
            from sklearn.neural_network import MLPClassifier, MLPRegressor
        except ImportError as exc:
            raise SkipPeer(f"scikit-learn not installed ({PEER_MODULES['sklearn'][1]})") from exc
        import warnings

        warnings.filterwarnings("ignore")
        self.version = sklearn.__version__
        self.cfg, self.X, self.y = cfg, X, y
        h = _opt_hyper(cfg)
        kw = dict(hidden_layer_sizes=tuple(cfg.sizes[1:-1]), activation=cfg.activation,
                  batch_size=cfg.batch_size, learning_rate_init=h["lr"], alpha=0.0,
                  shuffle=True, random_state=seed, max_iter=1, early_stopping=False,
                  tol=0.0, n_iter_no_change=10**9)
        if cfg.optimizer == "sgd":
            kw.update(solver="sgd", learning_rate="constant", momentum=h["momentum"],
                      nesterovs_momentum=False)
        else:
            kw.update(solver="adam", beta_1=h["betas"][0], beta_2=h["betas"][1],
                      epsilon=h["eps"])
        if cfg.loss == "mse":
            self.est = MLPRegressor(**kw)
            self.fit_kwargs = {}
        else:
            self.est = MLPClassifier(**kw)
            self.fit_kwargs = {"classes": np.arange(cfg.sizes[-1])}
        self._fitted = False

    def epoch(self):
        # scikit-learn draws its own initial weights on the first partial_fit (the
        # warm-up epoch), so the shared initial weights are not loaded here.
        self.est.partial_fit(self.X, self.y, **({} if self._fitted else self.fit_kwargs))
        self._fitted = True

    def get_params(self):
        out = []
        for W, b in zip(self.est.coefs_, self.est.intercepts_):
            out += [np.array(W), np.array(b)]
        return out

    def predict(self, X):
        if not self._fitted:
            self.epoch()
        if self.cfg.loss == "cross_entropy":
            return self.est.predict_proba(X)
        return self.est.predict(X).reshape(len(X), -1)  # one output comes back raveled


def make_trainer(peer, cfg, X, y, dtype="float32", params=None, seed=0):
    """A ``Trainer`` for ``peer`` (one of ``PEERS``); raises ``SkipPeer`` if it cannot run."""
    if isinstance(cfg, str):
        cfg = CONFIGS[cfg]
    if peer == "nncore":
        return NncoreTrainer(cfg, X, y, dtype, params, seed)
    if peer == "numpy":
        return ReferenceTrainer(cfg, X, y, dtype, params, seed)
    if peer in ("torch", "torch-fused"):
        return TorchTrainer(cfg, X, y, dtype, params, seed, fused=peer == "torch-fused")
    if peer in ("jax-step", "jax-scan"):
        return JaxTrainer(cfg, X, y, dtype, params, seed, scan=peer == "jax-scan")
    if peer == "sklearn":
        return SklearnTrainer(cfg, X, y, dtype, params, seed)
    raise ValueError(f"peer must be one of {', '.join(PEERS)}; got {peer!r}")


# --------------------------------------------------------------------------------------
# Worker side: one measurement in this (fresh) process
# --------------------------------------------------------------------------------------

_MARK = "@@NNCORE_BENCH@@"


def _time_repeats(fn, min_time, min_repeats, max_repeats):
    """Call ``fn`` until ``min_time`` seconds and ``min_repeats`` calls; the times."""
    times = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < min_time):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _peak_rss_mib():
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def _work_train(spec):
    cfg = CONFIGS[spec["config"]]
    dtype = np.dtype(spec["dtype"])
    X, y = make_data(cfg, spec["rows"], dtype, seed=spec.get("seed", 0))
    params = init_params(cfg, dtype, seed=spec.get("seed", 0))
    n_eval = min(len(X), 4096)
    loss0 = numpy_loss(params, cfg, X[:n_eval], y[:n_eval])
    trainer = make_trainer(spec["peer"], cfg, X, y, dtype, params, seed=spec.get("seed", 0))
    with limit_threads(spec["threads"]):
        t0 = time.perf_counter()
        trainer.epoch()  # warm-up
        warmup_s = time.perf_counter() - t0
        times = _time_repeats(trainer.epoch, spec["min_time"], spec["min_repeats"],
                              spec["max_repeats"])
    loss1 = numpy_loss(trainer.get_params(), cfg, X[:n_eval], y[:n_eval])
    return {"times": times, "warmup_s": warmup_s, "compile_s": trainer.compile_s,
            "loss0": loss0, "loss1": loss1, "peak_rss_mib": _peak_rss_mib(),
            "data_mib": (X.nbytes + y.nbytes) / 2**20, "version": trainer.version}


def _work_predict(spec):
    cfg = CONFIGS[spec["config"]]
    dtype = np.dtype(spec["dtype"])
    X, y = make_data(cfg, spec["rows"], dtype, seed=spec.get("seed", 0))
    params = init_params(cfg, dtype, seed=spec.get("seed", 0))
    peer = spec["peer"]
    if peer == "sklearn":  # it needs a fit to exist; train it on a slice, untimed
        trainer = make_trainer(peer, cfg, X[:4 * cfg.batch_size], y[:4 * cfg.batch_size],
                               dtype, params)
        trainer.epoch()
    else:
        trainer = make_trainer(peer, cfg, X, y, dtype, params)
    with limit_threads(spec["threads"]):
        out = trainer.predict(X)  # warm-up (and JAX's compile)
        if peer != "sklearn":
            ref = numpy_forward([p.astype(np.float64) for p in params], cfg,
                                X[:256].astype(np.float64))
            err = float(np.max(np.abs(np.asarray(out[:256], dtype=np.float64) - ref)))
        else:
            err = None
        times = _time_repeats(lambda: trainer.predict(X), spec["min_time"],
                              spec["min_repeats"], spec["max_repeats"])
    return {"times": times, "max_abs_err": err, "version": trainer.version,
            "peak_rss_mib": _peak_rss_mib()}


def _work_gemm(spec):
    """Best rate (GFLOP/s) of an N x N x N product, per library, at this thread count."""
    n, dtype = spec["size"], np.dtype(spec["dtype"])
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=dtype)
    B = rng.standard_normal((n, n), dtype=dtype)
    C = np.empty((n, n), dtype=dtype)
    flop = 2.0 * n ** 3
    rates, notes = {}, {}

    def best(fn):
        fn()
        times = _time_repeats(fn, spec["min_time"], 3, 50)
        return flop / min(times) / 1e9

    with limit_threads(spec["threads"]):
        rates["numpy"] = best(lambda: np.matmul(A, B, out=C))
        try:
            from scipy.linalg import blas
        except ImportError:
            notes["scipy"] = "not installed"
        else:
            gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
            # Row-major A @ B is column-major B.T @ A.T: Fortran views, no copies.
            rates["scipy"] = best(lambda: gemm(1.0, B.T, A.T))
        try:
            import torch
        except ImportError:
            notes["torch"] = "not installed"
        else:
            torch.set_num_threads(spec["threads"])
            tA, tB, tC = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(C)
            rates["torch"] = best(lambda: torch.mm(tA, tB, out=tC))
        try:
            import jax
        except ImportError:
            notes["jax"] = "not installed"
        else:
            if dtype == np.float64:
                jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp

            jA, jB = jnp.asarray(A), jnp.asarray(B)
            f = jax.jit(lambda a, b: a @ b)
            rates["jax"] = best(lambda: f(jA, jB).block_until_ready())
    blas_info = []
    try:
        from threadpoolctl import threadpool_info

        for d in threadpool_info():
            blas_info.append({k: d.get(k) for k in ("internal_api", "version", "architecture",
                                                     "num_threads", "filepath")})
    except ImportError:
        pass
    return {"rates": rates, "notes": notes, "blas": blas_info}


def _worker_main(spec_json):
    """Entry point of a worker process: run one measurement, print one JSON line."""
    import traceback

    spec = json.loads(spec_json)
    if spec.get("sys_path"):
        sys.path[:] = spec["sys_path"] + [p for p in sys.path if p not in spec["sys_path"]]
    kind = spec["kind"]
    try:
        result = {"train": _work_train, "predict": _work_predict, "gemm": _work_gemm}[kind](spec)
        result["status"] = "ok"
    except SkipPeer as exc:
        result = {"status": "skip", "reason": str(exc)}
    except Exception as exc:  # reported in the table, traceback on stderr
        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(_MARK + json.dumps(result), flush=True)
    return 0


# Bootstraps run with ``python -c``: pin the CPUs before anything starts threads, then
# load this file as a plain module (not ``nncore.bench``: the package is imported only
# by the peers that need it, so it does not weigh on the others' memory).
_BOOT = """
import os, sys
cpus = sys.argv[3]
if cpus and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, [int(c) for c in cpus.split(",")])
import importlib.util as iu
spec = iu.spec_from_file_location("_nncore_bench_worker", sys.argv[1])
mod = iu.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
sys.exit(mod._worker_main(sys.argv[2]))
"""

# Import cost, in a fresh interpreter that has imported nothing yet.
_IMPORT_PROBE = r"""
import json, sys, time
sys.path[:] = json.loads(sys.argv[1]) + [p for p in sys.path if p not in json.loads(sys.argv[1])]
module, mark = sys.argv[2], sys.argv[3]
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * __import__("os").sysconf("SC_PAGE_SIZE") / 2**20
out = {"status": "ok"}
r0 = rss_mib()
t0 = time.perf_counter()
import numpy
out["numpy_s"] = time.perf_counter() - t0
r1 = rss_mib()
t1 = time.perf_counter()
try:
    mod = __import__(module)
except ImportError as exc:
    print(mark + json.dumps({"status": "skip", "reason": f"{module} does not import: {exc}"}))
    sys.exit(0)
out["import_s"] = time.perf_counter() - t1
r2 = rss_mib()
out.update(bare_mib=r0, numpy_mib=r1 - r0, module_mib=r2 - r1, total_mib=r2 - r0,
           version=getattr(mod, "__version__", ""))
if module == "nncore":
    import numpy as np
    first = {}
    for name, sizes, act, loss, bs in [
            ("tiny", (2, 16, 1), "tanh", "mse", 32),
            ("medium", (784, 256, 128, 10), "relu", "cross_entropy", 128)]:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((bs, sizes[0]), dtype=np.float32)
        y = (rng.standard_normal((bs, sizes[-1]), dtype=np.float32) if loss == "mse"
             else rng.integers(0, sizes[-1], bs))
        try:
            t = time.perf_counter()
            layers = [mod.Dense(a, b, activation=act) for a, b in zip(sizes[:-2], sizes[1:-1])]
            layers.append(mod.Dense(sizes[-2], sizes[-1]))
            net = mod.Network(layers, loss=loss, dtype="float32", seed=0)
            opt = mod.SGD(lr=0.01) if name == "tiny" else mod.Adam(lr=1e-3)
            net.fit(X, y, epochs=1, batch_size=bs, optimizer=opt, shuffle=True)
            t_first = time.perf_counter() - t
            t = time.perf_counter()
            net.fit(X, y, epochs=1, batch_size=bs, optimizer=opt, shuffle=True)
            first[name] = {"first_s": t_first, "second_s": time.perf_counter() - t}
        except Exception as exc:
            first[name] = {"error": f"{type(exc).__name__}: {exc}"}
    out["first_batch"] = first
    out["after_first_mib"] = rss_mib() - r0
print(mark + json.dumps(out))
"""


# --------------------------------------------------------------------------------------
# Parent side: run workers, aggregate, print
# --------------------------------------------------------------------------------------


def _log(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _cpu_busy_seconds():
    """CPU seconds all processes on the machine have spent busy (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _LoadMeter:
    """Share of the machine's CPUs that processes other than ours kept busy."""

    def __init__(self):
        self.busy0 = _cpu_busy_seconds()
        self.own0 = _own_cpu_seconds()
        self.t0 = time.perf_counter()

    def foreign(self):
        busy = _cpu_busy_seconds()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        other = (busy - self.busy0) - (_own_cpu_seconds() - self.own0)
        return max(0.0, other / (wall * (os.cpu_count() or 1)))


def _wait_for_idle(max_wait, quiet, threshold=0.10):
    """Wait up to ``max_wait`` s while other processes keep > ``threshold`` of the CPUs busy."""
    if max_wait <= 0 or _cpu_busy_seconds() is None:
        return 0.0
    t0 = time.perf_counter()
    told = False
    while True:
        meter = _LoadMeter()
        time.sleep(0.25)
        share = meter.foreign()
        waited = time.perf_counter() - t0
        if share is None or share <= threshold or waited >= max_wait:
            return waited
        if not told:
            _log(f"  other processes use {100 * share:.0f}% of the CPUs; waiting up to "
                 f"{max_wait:g} s for quiet", quiet)
            told = True


def _run_worker(spec, threads, args, script=None, argv_extra=None):
    """Run one worker process; its JSON result (``status`` ok / skip / error).

    ``foreign_cpu`` in the result is the share of the machine's CPUs that other
    processes kept busy meanwhile: above a few percent, the timing is suspect.
    """
    best = None
    for attempt in range(1 + max(0, getattr(args, "retry_busy", 0))):
        budget = getattr(args, "idle_budget", 0.0)
        waited = _wait_for_idle(min(getattr(args, "idle_wait", 0.0), budget),
                                getattr(args, "quiet", False))
        args.idle_budget = budget - waited
        meter = _LoadMeter()
        result = _run_worker_process(spec, threads, args, script, argv_extra)
        result["foreign_cpu"] = meter.foreign()
        result["idle_wait_s"] = waited
        result["attempts"] = attempt + 1
        share = result["foreign_cpu"]
        if best is None or (share is not None and share < (best["foreign_cpu"] or 0)):
            best = result
        if result["status"] != "ok" or share is None or share <= 0.10:
            break
        _log(f"  others used {100 * share:.0f}% of the CPUs meanwhile: measuring again",
             getattr(args, "quiet", False))
    return best


def _run_worker_process(spec, threads, args, script=None, argv_extra=None):
    env = worker_env(threads)
    cpus = _usable_cpus()
    pin = "" if args.no_pin or threads > len(cpus) else ",".join(str(c) for c in cpus[:threads])
    if script is None:
        spec = dict(spec, sys_path=[p for p in sys.path if p])
        cmd = [sys.executable, "-c", _BOOT, os.path.abspath(__file__), json.dumps(spec), pin]
    else:
        cmd = [sys.executable, "-c", script] + list(argv_extra)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {args.timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            result = json.loads(line[len(_MARK):])
            if result.get("status") == "error" and args.verbose:
                _log(proc.stderr[-4000:])
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if args.verbose:
        _log(proc.stderr[-4000:])
    return {"status": "error", "reason": f"worker exited {proc.returncode}: {tail}"}


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def _aggregate(runs):
    """Per-process median epoch -> median over processes, spread, and the rest."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return None
    per_proc = [_median(r["times"]) for r in ok]
    t = _median(per_proc)
    if len(per_proc) > 1:
        spread = (max(per_proc) - min(per_proc)) / t
    elif len(ok[0]["times"]) >= 4:
        q1, _, q3 = statistics.quantiles(ok[0]["times"], n=4)
        spread = (q3 - q1) / t
    else:
        spread = float("nan")
    agg = {"time": t, "spread": spread, "processes": len(ok),
           "epochs": sum(len(r["times"]) for r in ok)}
    for key in ("warmup_s", "compile_s", "loss0", "loss1", "peak_rss_mib", "data_mib",
                "max_abs_err", "foreign_cpu"):
        vals = [r[key] for r in ok if r.get(key) is not None]
        agg[key] = _median(vals) if vals else None
    agg["version"] = ok[0].get("version", "")
    return agg


def _fmt_rate(x):
    if x is None or not math.isfinite(x):
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            v = x / div
            return f"{v:.3g}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{x:.3g}"


def _fmt(x, spec, dash="-"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return dash
    return format(x, spec)


def _fmt_busy(share):
    """Other processes' share of the CPUs during a measurement; '!' above 10 %."""
    if share is None:
        return "-"
    return f"{100 * share:.0f}%" + (" !" if share > 0.10 else "")


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _parse_list(text, allowed, what):
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise SystemExit(f"--{what}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return items


def _build_parser():
    p = argparse.ArgumentParser(
        prog="nncore bench",
        description="Train the issue-3 configurations with nncore and its peers, each "
                    "measurement in a fresh process; print markdown tables.")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help="comma list of %(default)s")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (%(default)s)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma list of %(default)s")
    p.add_argument("--dtype", default="float32",
                   help="float32, float64 or both comma-separated (%(default)s)")
    p.add_argument("--rounds", type=int, default=None,
                   help="processes per measurement, median taken (3; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="a quarter of the rows, 1 round, shorter timing: a smoke run")
    p.add_argument("--scale", type=float, default=None,
                   help="multiply every config's rows (rounded to whole batches)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds of timed epochs per process (1.0; 0.3 with --quick)")
    p.add_argument("--min-repeats", type=int, default=None,
                   help="timed epochs per process at least (2; 1 with --quick)")
    p.add_argument("--max-repeats", type=int, default=1000,
                   help="timed epochs per process at most (%(default)s)")
    p.add_argument("--ceiling-libs", default="numpy,scipy,torch,jax",
                   help="GEMMs whose best rate is the ceiling, of those installed (%(default)s)")
    p.add_argument("--gemm-size", type=int, default=None,
                   help="N of the N x N GEMM ceiling (2048; 1024 with --quick)")
    p.add_argument("--no-extras", action="store_true",
                   help="skip predict, memory, import cost and first-batch measurements")
    p.add_argument("--no-pin", action="store_true", help="do not pin workers to CPUs")
    p.add_argument("--idle-wait", type=float, default=15.0,
                   help="before each measurement, wait up to this many seconds while other "
                        "processes keep more than 10%% of the CPUs busy (%(default)s)")
    p.add_argument("--idle-budget", type=float, default=300.0,
                   help="seconds of such waiting in the whole run at most (%(default)s)")
    p.add_argument("--retry-busy", type=int, default=1,
                   help="measure again (up to this many times) when other processes used "
                        "more than 10%% of the CPUs meanwhile; the quietest try is kept "
                        "(%(default)s)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    p.add_argument("--json", metavar="PATH", help="also write the raw results here")
    p.add_argument("--from-json", metavar="PATH[,PATH...]",
                   help="print the tables of saved --json files (merged, later files "
                        "winning); run nothing")
    p.add_argument("--verbose", action="store_true", help="show workers' stderr on errors")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _machine_info():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": len(_usable_cpus()), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
            f.seek(0)
            flags = next((ln for ln in f if ln.startswith("flags")), "")
            info["avx512"] = " avx512f" in flags
    except OSError:
        pass
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "")
    return info


def run(args):
    """Run every measurement ``args`` asks for; the raw results as a dict."""
    configs = _parse_list(args.configs, list(CONFIGS), "configs")
    peers = _parse_list(args.peers, list(PEERS), "peers")
    dtypes = _parse_list(args.dtype, ["float32", "float64"], "dtype")
    try:
        threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"--threads: comma list of integers, got {args.threads!r}") from None
    if not threads_list or min(threads_list) < 1:
        raise SystemExit(f"--threads: positive integers, got {args.threads!r}")
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    scale = args.scale if args.scale is not None else (0.25 if quick else 1.0)
    timing = {
        "min_time": args.min_time if args.min_time is not None else (0.3 if quick else 1.0),
        "min_repeats": (args.min_repeats if args.min_repeats is not None
                        else (1 if quick else 2)),
        "max_repeats": args.max_repeats}
    gemm_size = args.gemm_size or (1024 if quick else 2048)
    quiet = args.quiet
    ceiling_libs = _parse_list(args.ceiling_libs, ["numpy", "scipy", "torch", "jax"],
                               "ceiling-libs")

    import importlib.util

    skipped = {}
    for peer in peers:
        mod = PEER_MODULES.get(peer)
        if mod and importlib.util.find_spec(mod[0]) is None:
            skipped[peer] = f"{mod[0]} not installed ({mod[1]})"
    for peer, why in skipped.items():
        _log(f"skip {peer}: {why}", quiet)

    results = {"machine": _machine_info(), "settings": {
        "configs": configs, "peers": peers, "dtypes": dtypes, "threads": threads_list,
        "rounds": rounds, "scale": scale, "gemm_size": gemm_size, "pinned": not args.no_pin,
        "ceiling_libs": ceiling_libs,
        **timing}, "rows": {c: CONFIGS[c].rows(scale) for c in configs},
        "skipped": skipped, "gemm": {}, "train": {}, "predict": {}, "imports": {}}

    results["train_raw"], results["predict_raw"] = {}, {}

    def checkpoint():
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)

    try:
        _measure(results, args, configs, peers, dtypes, threads_list, rounds, timing,
                 gemm_size, ceiling_libs, scale, skipped, checkpoint)
    except KeyboardInterrupt:
        _log("interrupted: reporting what was measured so far", quiet)
        results["interrupted"] = True
    results["skipped"] = skipped
    _summarize(results)
    checkpoint()
    return results


def _measure(results, args, configs, peers, dtypes, threads_list, rounds, timing, gemm_size,
             ceiling_libs, scale, skipped, checkpoint):
    import importlib.util

    quiet = args.quiet
    for dtype in dtypes:
        for threads in threads_list:
            _log(f"GEMM ceiling {dtype}, {threads} thread(s), N={gemm_size} ...", quiet)
            res = _run_worker({"kind": "gemm", "size": gemm_size, "dtype": dtype,
                               "threads": threads, "min_time": max(timing["min_time"], 0.5)},
                              threads, args)
            if res["status"] != "ok":
                _log(f"  {res['status']}: {res['reason']}", quiet)
            results["gemm"][f"{dtype}/{threads}"] = res
            checkpoint()

    # Rounds outermost, so a slow drift of the machine touches every peer alike.
    raw = results["train_raw"]
    for r in range(rounds):
        for dtype in dtypes:
            for threads in threads_list:
                for cname in configs:
                    for peer in peers:
                        if peer in skipped:
                            continue
                        key = f"{dtype}/{threads}/{cname}/{peer}"
                        _log(f"[round {r + 1}/{rounds}] train {key} ...", quiet)
                        spec = {"kind": "train", "peer": peer, "config": cname,
                                "rows": results["rows"][cname], "dtype": dtype,
                                "threads": threads, **timing}
                        res = _run_worker(spec, threads, args)
                        raw.setdefault(key, []).append(res)
                        if res["status"] == "skip":
                            skipped[peer] = res["reason"]
                            _log(f"skip {peer}: {res['reason']}", quiet)
                        elif res["status"] == "error":
                            _log(f"  error: {res['reason']}", quiet)
                        else:
                            t = _median(res["times"])
                            _log(f"  {results['rows'][cname] / t:,.0f} samples/s"
                                 + (f" (others used {100 * res['foreign_cpu']:.0f}% of the CPUs)"
                                    if (res.get("foreign_cpu") or 0) > 0.10 else ""), quiet)
                        checkpoint()

    if args.no_extras:
        return
    cname = "medium"
    rows = CONFIGS[cname].rows(scale)
    results["predict_rows"] = rows
    dtype = dtypes[0]
    praw = results["predict_raw"]
    for r in range(rounds):
        for threads in threads_list:
            for peer in PREDICT_PEERS:
                if peer not in peers and not (peer == "jax-step" and "jax-scan" in peers):
                    continue
                if peer in skipped and (peer in PEER_MODULES or peer == "nncore"):
                    continue
                key = f"{dtype}/{threads}/{peer}"
                _log(f"[round {r + 1}/{rounds}] predict {key} ...", quiet)
                spec = {"kind": "predict", "peer": peer, "config": cname, "rows": rows,
                        "dtype": dtype, "threads": threads, **timing}
                res = _run_worker(spec, threads, args)
                praw.setdefault(key, []).append(res)
                if res["status"] != "ok":
                    _log(f"  {res['status']}: {res['reason']}", quiet)
                checkpoint()
    for module in ("nncore", "numpy", "scipy", "torch", "jax", "sklearn"):
        if module != "nncore" and importlib.util.find_spec(module) is None:
            continue
        _log(f"import cost {module} ...", quiet)
        res = _run_worker(None, 1, args, script=_IMPORT_PROBE,
                          argv_extra=[json.dumps([p for p in sys.path if p]), module, _MARK])
        results["imports"][module] = res
        checkpoint()


def _merge(saved):
    """One results dict from several saved runs (say a float32 and a float64 run)."""
    if len(saved) == 1:
        return saved[0]
    out = json.loads(json.dumps(saved[0]))
    for res in saved[1:]:
        for key in ("gemm", "train_raw", "predict_raw", "imports", "rows", "skipped"):
            out.setdefault(key, {}).update(res.get(key) or {})
        for key in ("configs", "peers", "dtypes", "threads"):
            merged = list(out["settings"][key])
            merged += [x for x in res["settings"][key] if x not in merged]
            out["settings"][key] = merged
        if res.get("predict_rows"):
            out["predict_rows"] = res["predict_rows"]
        out["interrupted"] = out.get("interrupted") or res.get("interrupted")
    out["command"] = " ; ".join(r["command"] for r in saved if r.get("command"))
    out["wall_s"] = sum(r.get("wall_s") or 0 for r in saved)
    return out


def _summarize(results):
    """Aggregate the raw per-process results (also for a partial, checkpointed run)."""
    raw = results.get("train_raw") or {}
    results["train"] = {k: _aggregate(v) for k, v in raw.items()}
    results["train_errors"] = {k: [x["reason"] for x in v if x["status"] == "error"]
                               for k, v in raw.items()
                               if any(x["status"] == "error" for x in v)}
    praw = results.get("predict_raw") or {}
    results["predict"] = {k: _aggregate(v) for k, v in praw.items()}
    results["predict_notes"] = {k: v[0]["reason"] for k, v in praw.items()
                                if all(x["status"] != "ok" for x in v)}
    return results


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _ceiling(results, dtype, threads):
    """(GFLOP/s, library) of the best GEMM among the ceiling libraries, and all rates."""
    g = results["gemm"].get(f"{dtype}/{threads}") or {}
    rates = g.get("rates") or {}
    libs = results["settings"].get("ceiling_libs") or list(rates)
    counted = {k: v for k, v in rates.items() if k in libs}
    if not counted:
        return None, None, rates
    lib = max(counted, key=counted.get)
    return rates[lib], lib, rates


def _sps(results, dtype, threads, cname, peer):
    agg = results["train"].get(f"{dtype}/{threads}/{cname}/{peer}")
    if not agg:
        return None
    return results["rows"][cname] / agg["time"]


def _best_peer(results, dtype, threads, cname, include_external=True):
    """(samples/s, peer) of the fastest peer other than nncore."""
    best = (None, None)
    for peer in results["settings"]["peers"]:
        if peer == "nncore":
            continue
        s = _sps(results, dtype, threads, cname, peer)
        if s is not None and (best[0] is None or s > best[0]):
            best = (s, peer)
    if include_external and dtype == "float32":
        for peer, s in EXTERNAL.get(cname, {}).items():
            if best[0] is None or s > best[0]:
                best = (s, peer)
    return best


def report(results):
    """The markdown report of a ``run``."""
    st = results["settings"]
    m = results["machine"]
    lines = []
    add = lines.append
    add("## nncore training benchmark")
    add("")
    add(f"Machine: {m.get('cpu', '?')}, {m.get('cpus')} CPUs"
        f"{', AVX-512' if m.get('avx512') else ''}; Python {m.get('python')}, "
        f"NumPy {m.get('numpy')}; {m.get('platform')}.")
    vers = {}
    for key, runs in (list((results.get("train_raw") or {}).items())
                      + list((results.get("predict_raw") or {}).items())):
        lib = _PEER_LIBRARY.get(key.split("/")[-1], key.split("/")[-1])
        for r in runs:
            if r.get("status") == "ok" and r.get("version"):
                vers.setdefault(lib, {})[r["version"]] = None
    if vers:
        def show(v):
            v = sorted(v)
            return v[0] if len(v) == 1 else f"{v[0]} ... {v[-1]} ({len(v)} builds)"

        add("Versions: " + ", ".join(f"{p} {show(v)}" for p, v in sorted(vers.items()))
            + "." + (" (More than one build of a library was seen: it was rebuilt during "
                     "the run.)" if any(len(v) > 1 for v in vers.values()) else ""))
    blas = next((g.get("blas") for g in results["gemm"].values() if g.get("blas")), None)
    if blas:
        parts = []
        for b in blas:
            where = os.path.basename(os.path.dirname(os.path.dirname(b.get("filepath") or "")))
            lib = os.path.basename(os.path.dirname(b.get("filepath") or ""))
            text = " ".join(str(x) for x in (b.get("internal_api"), b.get("version")) if x)
            if b.get("architecture"):
                text += f" ({b['architecture']} kernels)"
            parts.append(f"{text} in {lib if lib.endswith('.libs') else where + '/' + lib}")
        add("Thread pools: " + "; ".join(parts)
            + (f"; OPENBLAS_CORETYPE={m['OPENBLAS_CORETYPE']} in the environment"
               if m.get("OPENBLAS_CORETYPE") else "") + ".")
    pinned = " pinned to its CPUs" if st.get("pinned") else ""
    add(f"Protocol: each measurement in a fresh process{pinned}; "
        f"1 warm-up epoch, then timed epochs (>= {st['min_time']:g} s, >= {st['min_repeats']}); "
        f"median over {st['rounds']} process(es). Rows: "
        + ", ".join(f"{c} {results['rows'][c]}" for c in st["configs"]) + ".")
    if results.get("command"):
        add(f"Command: `{results['command']}`"
            + (f" ({results['wall_s'] / 60:.0f} min)." if results.get("wall_s") else "."))
    if results.get("interrupted"):
        add("**Interrupted**: the tables hold what was measured before the interruption.")
    aggs = list(results["train"].values()) + list((results.get("predict") or {}).values())
    shares = [a["foreign_cpu"] for a in aggs if a and a.get("foreign_cpu") is not None]
    if shares:
        busy = sum(x > 0.10 for x in shares)
        add(f"Other processes kept at most {100 * max(shares):.0f}% of the CPUs busy during a "
            f"measurement (median over its processes)"
            + (f"; {busy} measurement(s) above 10% are marked `!` and are suspect." if busy
               else "."))
    add("")
    if results.get("skipped"):
        for peer, why in results["skipped"].items():
            add(f"- skipped {PEER_LABELS.get(peer, peer)}: {why}")
        add("")

    peers = [p for p in st["peers"] if p not in results.get("skipped", {})]
    for dtype in st["dtypes"]:
        for threads in st["threads"]:
            ceil, ceil_lib, rates = _ceiling(results, dtype, threads)
            tl = f"{threads} thread{'s' if threads > 1 else ''}"
            add(f"### {dtype}, {tl}")
            add("")
            if rates:
                add(f"GEMM ceiling ({st['gemm_size']}^2 {dtype}, {tl}): **{ceil:.0f} GFLOP/s** "
                    f"({ceil_lib}); best rates: "
                    + ", ".join(f"{k} {v:.0f}" + ("" if k in (st.get("ceiling_libs") or rates)
                                                  else " (not counted)")
                                for k, v in rates.items()) + ".")
            else:
                g = results["gemm"].get(f"{dtype}/{threads}") or {}
                add(f"GEMM ceiling: not measured ({g.get('reason', 'no result')}).")
            add("")
            # Wide table, one row per config, samples/s per peer (the issue's layout).
            header = ["config", "shape, batch, optimizer"] + [PEER_LABELS[p] for p in peers]
            header += ["best peer", "nncore / best"]
            rows = []
            for cname in st["configs"]:
                cfg = CONFIGS[cname]
                row = [cname, cfg.describe()]
                for p in peers:
                    row.append(_fmt_rate(_sps(results, dtype, threads, cname, p)))
                best, who = _best_peer(results, dtype, threads, cname)
                nn = _sps(results, dtype, threads, cname, "nncore")
                row.append(f"{_fmt_rate(best)} ({PEER_LABELS.get(who, who)})" if best else "-")
                row.append(f"{nn / best:.2f}x" if nn and best else "-")
                rows.append(row)
            add("Samples per second, one epoch after warm-up:")
            add("")
            add(_table(header, rows))
            add("")
            # Detail table.
            header = ["config", "peer", "samples/s", "us/step", "GFLOP/s", "% ceiling",
                      "nncore / peer", "spread", "others' CPU", "warm-up s", "compile s",
                      "peak RSS MiB", "loss start -> end"]
            rows = []
            for cname in st["configs"]:
                cfg = CONFIGS[cname]
                n = results["rows"][cname]
                steps = math.ceil(n / cfg.batch_size)
                nn = _sps(results, dtype, threads, cname, "nncore")
                for p in peers:
                    key = f"{dtype}/{threads}/{cname}/{p}"
                    agg = results["train"].get(key)
                    if not agg:
                        errs = results.get("train_errors", {}).get(key)
                        if errs:
                            rows.append([cname, PEER_LABELS[p], f"error: {errs[0][:80]}"]
                                        + [""] * 10)
                        continue
                    t = agg["time"]
                    sps = n / t
                    gf = cfg.flops_per_sample * sps / 1e9
                    rows.append([
                        cname, PEER_LABELS[p], _fmt_rate(sps), _fmt(t / steps * 1e6, ".1f"),
                        _fmt(gf, ".1f"), f"{100 * gf / ceil:.0f}%" if ceil else "-",
                        f"{nn / sps:.2f}x" if nn else "-",
                        f"{100 * agg['spread']:.0f}%" if math.isfinite(agg["spread"]) else "-",
                        _fmt_busy(agg.get("foreign_cpu")),
                        _fmt(agg["warmup_s"], ".2f"), _fmt(agg["compile_s"], ".2f"),
                        _fmt(agg["peak_rss_mib"], ".0f"),
                        f"{_fmt(agg['loss0'], '.3f')} -> {_fmt(agg['loss1'], '.3f')}"])
                for p, s in (EXTERNAL.get(cname, {}).items() if dtype == "float32" else ()):
                    gf = cfg.flops_per_sample * s / 1e9
                    rows.append([cname, PEER_LABELS[p], _fmt_rate(s),
                                 _fmt(n / s / steps * 1e6, ".1f"), _fmt(gf, ".2f"),
                                 f"{100 * gf / ceil:.1f}%" if ceil else "-",
                                 f"{nn / s:.2f}x" if nn else "-", "", "", "", "", "",
                                 "issue 3, not measured"])
            add(_table(header, rows))
            if ceil and any(r[5].endswith("%") and float(r[5].rstrip("%")) > 100 for r in rows):
                add("")
                add("A share above 100% means a peer's products beat the best large-square "
                    "GEMM measured here: that GEMM is not this machine's ceiling for this dtype.")
            add("")

    if results.get("predict"):
        dtype = st["dtypes"][0]
        add(f"### predict, medium ({results.get('predict_rows')} rows, {dtype}, "
            "probabilities, whole array per call)")
        add("")
        header = ["threads", "peer", "samples/s", "ms/call", "nncore / peer", "spread",
                  "others' CPU", "max abs err vs float64"]
        rows = []
        for threads in st["threads"]:
            nn_agg = results["predict"].get(f"{dtype}/{threads}/nncore")
            for p in PREDICT_PEERS:
                agg = results["predict"].get(f"{dtype}/{threads}/{p}")
                if not agg:
                    continue
                sps = results["predict_rows"] / agg["time"]
                nn = results["predict_rows"] / nn_agg["time"] if nn_agg else None
                rows.append([threads, PREDICT_LABELS[p], _fmt_rate(sps),
                             _fmt(agg["time"] * 1e3, ".2f"),
                             f"{nn / sps:.2f}x" if nn else "-",
                             f"{100 * agg['spread']:.0f}%" if math.isfinite(agg["spread"]) else "-",
                             _fmt_busy(agg.get("foreign_cpu")),
                             _fmt(agg.get("max_abs_err"), ".1e")])
        add(_table(header, rows))
        for k, why in results.get("predict_notes", {}).items():
            add(f"- {k}: {why}")
        add("")

        add("### peak resident memory while training medium")
        add("")
        header = ["threads", "peer", "peak RSS MiB", "data MiB", "vs NumPy"]
        rows = []
        for threads in st["threads"]:
            base = results["train"].get(f"{dtype}/{threads}/medium/numpy")
            for p in peers:
                agg = results["train"].get(f"{dtype}/{threads}/medium/{p}")
                if not agg or agg.get("peak_rss_mib") is None:
                    continue
                rel = (f"{agg['peak_rss_mib'] / base['peak_rss_mib']:.2f}x"
                       if base and base.get("peak_rss_mib") else "-")
                rows.append([threads, PEER_LABELS[p], f"{agg['peak_rss_mib']:.0f}",
                             _fmt(agg.get("data_mib"), ".0f"), rel])
        if rows:
            add(_table(header, rows))
        else:
            add("(medium was not trained in this run)")
        add("")

    if results.get("imports"):
        add("### import cost (fresh interpreter)")
        add("")
        header = ["module", "version", "RSS MiB, all it pulls in", "RSS MiB over NumPy",
                  "import s (after NumPy)"]
        rows = []
        for module, res in results["imports"].items():
            if res.get("status") != "ok":
                rows.append([module, "-", res.get("reason", "")[:80], "", ""])
                continue
            total = res["numpy_mib"] if module == "numpy" else res["total_mib"]
            over = "" if module == "numpy" else f"{res['module_mib']:.1f}"
            secs = res["numpy_s"] if module == "numpy" else res["import_s"]
            rows.append([module, res.get("version", ""), f"{total:.1f}", over, f"{secs:.3f}"])
        add(_table(header, rows))
        nn = results["imports"].get("nncore") or {}
        first = nn.get("first_batch") or {}
        if first:
            add("")
            add("Time from the end of `import nncore` to the first trained batch "
                "(network built, one `fit` of one batch, float32):")
            add("")
            rows = []
            for name, v in first.items():
                if "error" in v:
                    rows.append([name, v["error"][:80], ""])
                else:
                    rows.append([name, f"{v['first_s'] * 1e3:.2f}", f"{v['second_s'] * 1e3:.2f}"])
            add(_table(["config", "first batch ms", "second batch ms"], rows))
        add("")

    add("### issue 3 targets")
    add("")
    add("```")
    lines.extend(_targets(results))
    add("```")
    return "\n".join(lines)


def _targets(results):
    st = results["settings"]
    out = []

    def line(ok, text):
        out.append(f"{'PASS' if ok else 'FAIL' if ok is not None else 'SKIP'}  {text}")

    goals = {"tiny": (5.0, None), "small": (3.0, None), "medium": (1.3, 0.8),
             "large": (1.2, 0.8)}
    if "float32" in st["dtypes"]:
        for cname, (ratio, share) in goals.items():
            if cname not in st["configs"]:
                line(None, f"{cname}: not run")
                continue
            for threads in st["threads"]:
                nn = _sps(results, "float32", threads, cname, "nncore")
                best, who = _best_peer(results, "float32", threads, cname)
                if nn is None or best is None:
                    line(None, f"{cname} {threads}t: nncore or peers missing")
                    continue
                line(nn >= ratio * best,
                     f"{cname} {threads}t: nncore {_fmt_rate(nn)}/s = {nn / best:.2f}x best peer "
                     f"({PEER_LABELS.get(who, who)} {_fmt_rate(best)}/s); target >= {ratio:g}x")
                if share is not None and threads == 1:
                    ceil, lib, _ = _ceiling(results, "float32", 1)
                    if ceil:
                        gf = CONFIGS[cname].flops_per_sample * nn / 1e9
                        line(gf >= share * ceil,
                             f"{cname} 1t: {gf:.0f} GFLOP/s = {100 * gf / ceil:.0f}% of the GEMM "
                             f"ceiling ({ceil:.0f}, {lib}); target >= {100 * share:.0f}%")
    else:
        line(None, "float32 speed targets: no float32 run")
    if "float64" in st["dtypes"]:
        for cname in st["configs"]:
            for threads in st["threads"]:
                nn = _sps(results, "float64", threads, cname, "nncore")
                sk = _sps(results, "float64", threads, cname, "sklearn")
                if nn is None or sk is None:
                    line(None, f"float64 {cname} {threads}t: nncore or scikit-learn missing")
                    continue
                line(nn >= 1.5 * sk, f"float64 {cname} {threads}t: nncore = {nn / sk:.2f}x "
                                     f"scikit-learn; target >= 1.5x")
    else:
        line(None, "float64 >= 1.5x scikit-learn: no float64 run (--dtype float32,float64)")
    pred = results.get("predict") or {}
    dtype = st["dtypes"][0]
    for threads in st["threads"]:
        a = pred.get(f"{dtype}/{threads}/nncore")
        b = pred.get(f"{dtype}/{threads}/torch")
        if a and b:
            line(b["time"] / a["time"] >= 1.5,
                 f"predict medium {threads}t: nncore = {b['time'] / a['time']:.2f}x PyTorch "
                 f"no_grad; target >= 1.5x")
        else:
            line(None, f"predict medium {threads}t: nncore or PyTorch missing")
    for threads in st["threads"]:
        a = results["train"].get(f"{dtype}/{threads}/medium/nncore")
        b = results["train"].get(f"{dtype}/{threads}/medium/numpy")
        if a and b and a.get("peak_rss_mib") and b.get("peak_rss_mib"):
            r = a["peak_rss_mib"] / b["peak_rss_mib"]
            line(r <= 1.10, f"memory medium {threads}t: nncore peak RSS {a['peak_rss_mib']:.0f} "
                            f"MiB = {r:.2f}x NumPy's {b['peak_rss_mib']:.0f}; target <= 1.10x")
        else:
            line(None, f"memory medium {threads}t: nncore or NumPy missing")
    imp = (results.get("imports") or {}).get("nncore") or {}
    if imp.get("status") == "ok":
        line(imp["total_mib"] < 30,
             f"import nncore: {imp['total_mib']:.1f} MiB in a fresh interpreter "
             f"({imp['module_mib']:.1f} over NumPy); target < 30 MiB")
        for name, v in (imp.get("first_batch") or {}).items():
            if "first_s" in v:
                line(v["first_s"] < 0.010, f"first trained batch ({name}) after import: "
                                           f"{v['first_s'] * 1e3:.2f} ms; target < 10 ms")
            else:
                line(False, f"first trained batch ({name}): {v.get('error')}")
    else:
        line(None, f"import cost / first batch: {imp.get('reason', 'not measured')}")
    return out


def main(argv=None) -> int:
    """Command line entry point (``python -m nncore bench``); returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    args = _build_parser().parse_args(argv)
    if args.from_json:
        saved = []
        for path in args.from_json.split(","):
            with open(path) as f:
                saved.append(json.load(f))
        results = _summarize(_merge(saved))
    else:
        t0 = time.perf_counter()
        results = run(args)
        results["wall_s"] = time.perf_counter() - t0
        results["command"] = " ".join(["python -m nncore bench"] + list(argv))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    print(report(results))
    return 0


if __name__ == "__main__":
    # Run as a file: make the directory above the package importable, not the package
    # itself (its modules would shadow the standard library's).
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
        sys.path[0] = os.path.dirname(_here)
    sys.exit(main())
