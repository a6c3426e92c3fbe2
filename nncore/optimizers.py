"""Optimizers: hyperparameters and state; the update itself runs in the kernels.

Each follows PyTorch's documented update rule to the letter (``nncore.reference``
writes them out in NumPy). For a parameter ``p`` with gradient ``grad`` at step ``t``
(1 for the first step), with weight decay ``wd`` applied to every parameter array:

SGD
    ``g = grad + wd p``; with momentum ``mu``: ``buf = g`` on the first step, then
    ``buf = mu buf + g``; ``g = g + mu buf`` (Nesterov) or ``g = buf``; ``p -= lr g``.
Adam
    ``g = grad + wd p``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
AdamW
    ``p *= 1 - lr wd``, then Adam's update with ``g = grad``.
RMSprop
    ``g = grad + wd p``; ``v = alpha v + (1 - alpha) g^2``; ``avg = sqrt(v) + eps``;
    with momentum ``mu``: ``buf = mu buf + g / avg``, ``p -= lr buf``; else
    ``p -= lr g / avg``.
Rprop
    ``s = grad prev``; ``step *= eta_plus`` (s > 0), ``eta_minus`` (s < 0) or 1,
    clamped to ``[step_min, step_max]``; ``grad = 0`` where s < 0;
    ``p -= sign(grad) step``; ``prev = grad``. The steps start at lr.
LBFGS
    Not a per-batch rule: full-batch L-BFGS by SciPy on the kernels' loss and
    gradient (see :class:`LBFGS`).

An optimizer keeps its state (moments, step count) between ``fit`` calls, so a second
call continues where the first stopped. Its state belongs to the first network it
trains; use a new optimizer (or :meth:`Optimizer.reset`) for another network.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from . import _validation
from ._codes import Optimizer as _Rule
from ._codes import codes as _codes

# Update rule name -> kernel code (nncore/_codes.pxd).
_RULES = _codes(_Rule)

# Serialises Optimizer._bind: two threads handing one new optimizer to two networks
# at once must not both take it.
_BIND_LOCK = threading.Lock()


class Optimizer:
    """Base class: hyperparameters, state arrays and the step count.

    Attributes
    ----------
    name : str
        The update rule (``"sgd"``, ``"adam"``, ...), as ``optimizer_from_name`` and
        ``OPTIMIZERS`` know it.
    step : int
        Number of updates applied so far.
    """

    name = None           # its update rule in the kernels (nncore/_codes.pxd)
    _n_states = 0         # how many state arrays the same size as the parameters

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self._check()
        self.reset()

    def _check(self):
        """Validate (and normalise) the hyperparameters. Run again by ``fit``, so a
        hyperparameter changed by hand after construction is checked too."""
        self.lr = _validation.check_float(self.lr, "lr", low=0)
        self.weight_decay = _validation.check_float(self.weight_decay, "weight_decay",
                                                    low=0)
        self.step = _validation.check_int(getattr(self, "step", 0), "step", 0)

    _owner = None

    def reset(self) -> None:
        """Forget all state (moments, step count) and the network it belonged to."""
        self.step = 0
        self._state = []
        self._owner = None

    def _needs_state(self):
        return self._n_states

    def _bind(self, network):
        """Allocate state for ``network`` on first use; refuse a different network."""
        with _BIND_LOCK:
            self._bind_locked(network)

    def _bind_locked(self, network):
        if self._owner is not None:
            owner = self._owner()
            if owner is not network:
                raise ValueError(
                    f"this {type(self).__name__} already holds the state of another "
                    "network; create a new optimizer for this network or call "
                    "optimizer.reset()")
            return
        n, dtype = network.n_params, network.dtype
        kept = self._state   # restored into an unbound optimizer: keep it
        if len(kept) == self._needs_state() and all(a.shape == (n,) for a in kept):
            self._state = [np.ascontiguousarray(a, dtype=dtype) for a in kept]
        else:
            self._state = [np.zeros(n, dtype=dtype) for _ in range(self._needs_state())]
        self._owner = weakref.ref(network)

    def _kernel_args(self):
        """``(settings, state1, state2)`` as the kernel ``train_batches`` takes them:
        the rule's code and hyperparameters (the fields of ``OptimizerConfig`` in
        ``_kernels.pyx`` that the rule reads), and its state arrays (None where it
        has fewer than two)."""
        settings = {"kind": _RULES[self.name], "lr": self.lr,
                    "weight_decay": self.weight_decay, **self._rule_settings()}
        states = list(self._state) + [None, None]
        return settings, states[0], states[1]

    def _rule_settings(self):
        """The hyperparameters of the update rule beyond lr and weight_decay."""
        raise NotImplementedError

    def state_arrays(self) -> list[np.ndarray]:
        """The live state arrays (same length as the network's flat parameters)."""
        return list(self._state)

    def state(self, out=None):
        """A copy of the training state: the step count and the state arrays.

        Parameters
        ----------
        out : dict, optional
            A state returned by an earlier call on this optimizer: its arrays are
            overwritten in place and it is returned (no allocation), which is how the
            training loop takes a snapshot every epoch.

        Returns
        -------
        dict
            ``{"step": int, "arrays": [ndarray of shape (n_params,), ...]}``: the
            moments or momentum buffers, in the order the update rule uses them
            (none before the first ``fit``).
        """
        if out is None or len(out["arrays"]) != len(self._state):
            return {"step": int(self.step), "arrays": [a.copy() for a in self._state]}
        for saved, live in zip(out["arrays"], self._state):
            np.copyto(saved, live)
        out["step"] = int(self.step)
        return out

    def restore(self, state):
        """Put back a state from :meth:`state`: the step count and the state arrays.

        The live arrays are overwritten in place when the optimizer already holds
        arrays of the same number and lengths; otherwise (an optimizer that has not
        trained yet) it takes copies, and is bound to the next network it trains.

        Raises
        ------
        ValueError
            The state does not fit this optimizer (another number of arrays than its
            update rule keeps, or arrays of different lengths).
        """
        arrays = state["arrays"]
        step = _validation.check_int(state["step"], "state['step']", 0)
        if arrays and len(arrays) != self._needs_state():
            raise ValueError(f"this {type(self).__name__} keeps {self._needs_state()} "
                             f"state arrays; the state holds {len(arrays)}")
        if len({a.shape for a in arrays}) > 1:
            raise ValueError("the optimizer state's arrays differ in length: "
                             f"{[a.shape for a in arrays]}")
        same = (len(arrays) == len(self._state)
                and all(a.shape == b.shape for a, b in zip(arrays, self._state)))
        if same:
            for live, saved in zip(self._state, arrays):
                np.copyto(live, saved)
        else:
            self._state = [np.array(a, copy=True) for a in arrays]
        self.step = step

    def _hyper(self):
        raise NotImplementedError

    def __reduce__(self):
        # Pickle and copy.deepcopy go through the hyperparameters and state(); the
        # copy is bound to no network until it trains one.
        from . import io

        return io.reduce_optimizer(self)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({args})"


def _check_betas(betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2); got {betas!r}")
    return tuple(_validation.check_float(b, f"betas[{i}]", low=0, high=1, high_open=True)
                 for i, b in enumerate(betas))


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, >= 0.
    momentum : float, default 0
        Momentum factor in [0, 1).
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    """

    name = "sgd"

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.momentum = momentum
        self.nesterov = nesterov
        super().__init__(lr, weight_decay)

    def _check(self):
        super()._check()
        self.momentum = _validation.check_float(self.momentum, "momentum", low=0, high=1,
                                                high_open=True)
        self.nesterov = _validation.check_bool(self.nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0; got momentum=0")
        if self._owner is not None and self._needs_state() > len(self._state):
            raise ValueError("momentum was turned on after this SGD took steps without "
                             "it; create a new optimizer or call optimizer.reset()")

    def _needs_state(self):
        return 1 if self.momentum != 0 else 0

    def _rule_settings(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _hyper(self):
        return dict(lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                    weight_decay=self.weight_decay)


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba), L2 weight decay added to the gradient.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the square root of the second moment, > 0.
    weight_decay : float, default 0
    """

    name = "adam"
    _n_states = 2

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.betas = betas
        self.eps = eps
        super().__init__(lr, weight_decay)

    def _check(self):
        super()._check()
        self.betas = _check_betas(self.betas)
        self.eps = _validation.check_float(self.eps, "eps", low=0, low_open=True)

    def _rule_settings(self):
        return {"beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps}

    def _hyper(self):
        return dict(lr=self.lr, betas=self.betas, eps=self.eps,
                    weight_decay=self.weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr wd``
    before the Adam step. Same parameters as :class:`Adam`; weight_decay defaults
    to 1e-2."""

    name = "adamw"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop (PyTorch's non-centered form).

    Parameters
    ----------
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the square average, in [0, 1).
    eps : float, default 1e-8
        Added to the square root of the square average, > 0.
    momentum : float, default 0
        In [0, 1).
    weight_decay : float, default 0
    """

    name = "rmsprop"
    _n_states = 2

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        super().__init__(lr, weight_decay)

    def _check(self):
        super()._check()
        self.alpha = _validation.check_float(self.alpha, "alpha", low=0, high=1,
                                             high_open=True)
        self.eps = _validation.check_float(self.eps, "eps", low=0, low_open=True)
        self.momentum = _validation.check_float(self.momentum, "momentum", low=0, high=1,
                                                high_open=True)

    def _rule_settings(self):
        return {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum}

    def _hyper(self):
        return dict(lr=self.lr, alpha=self.alpha, eps=self.eps, momentum=self.momentum,
                    weight_decay=self.weight_decay)


def _check_pair(value, name, parts):
    """A pair of finite reals (a tuple or list of two), named ``name[0]``,
    ``name[1]`` in errors; ``parts`` says what the two are."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair {parts}; got {value!r}")
    return tuple(_validation.check_float(v, f"{name}[{i}]") for i, v in enumerate(value))


class Rprop(Optimizer):
    """Resilient backpropagation, PyTorch's rule: every parameter has its own step
    size, which grows by ``etas[1]`` while its gradient keeps its sign and shrinks
    by ``etas[0]`` when the sign flips; the update uses only the gradient's sign.

    The default optimizer of FANN. Meant for full batches (``batch_size`` at least
    the number of samples); works with any batch size. No weight decay, as in
    PyTorch.

    Parameters
    ----------
    lr : float, default 0.01
        The initial step size, >= 0.
    etas : (float, float), default (0.5, 1.2)
        (eta_minus, eta_plus), with 0 < eta_minus < 1 < eta_plus.
    step_sizes : (float, float), default (1e-6, 50)
        (min, max) step size, 0 <= min <= max.

    Examples
    --------
    >>> Rprop()
    Rprop(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-06, 50.0))
    """

    name = "rprop"
    _n_states = 2

    def __init__(self, lr: float = 0.01, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50)) -> None:
        self.etas = etas
        self.step_sizes = step_sizes
        super().__init__(lr, 0.0)

    def _check(self):
        super()._check()
        if self.weight_decay != 0:
            raise ValueError(f"Rprop has no weight decay; got weight_decay="
                             f"{self.weight_decay}")
        self.etas = _check_pair(self.etas, "etas", "(eta_minus, eta_plus)")
        if not 0 < self.etas[0] < 1 < self.etas[1]:
            raise ValueError("etas must satisfy 0 < etas[0] < 1 < etas[1]; got "
                             f"{self.etas}")
        self.step_sizes = _check_pair(self.step_sizes, "step_sizes", "(min, max)")
        if not 0 <= self.step_sizes[0] <= self.step_sizes[1]:
            raise ValueError("step_sizes must satisfy 0 <= step_sizes[0] <= "
                             f"step_sizes[1]; got {self.step_sizes}")

    def _rule_settings(self):
        return {"eta_minus": self.etas[0], "eta_plus": self.etas[1],
                "step_min": self.step_sizes[0], "step_max": self.step_sizes[1]}

    def _hyper(self):
        return {"lr": self.lr, "etas": self.etas, "step_sizes": self.step_sizes}


class LBFGS(Optimizer):
    """Full-batch L-BFGS, scikit-learn's default solver for small data sets.

    ``fit(X, y, epochs=E, optimizer=LBFGS())`` runs at most E iterations of
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on the loss over the whole
    training set and its gradient, both from the kernels (``loss_and_grads``);
    ``batch_size`` and ``shuffle`` do not apply. The history has one entry per
    iteration, the loss after it. Each ``fit`` call starts a new run: the curvature
    pairs are not kept between calls. The network is taken as a deterministic
    function, so its layers may not use dropout.

    Parameters
    ----------
    history_size : int, default 10
        Curvature pairs kept (SciPy's ``maxcor``), >= 1.
    tol : float, default 1e-7
        Stop when the relative decrease of the loss or the largest gradient
        component falls below it (SciPy's ``tol``), > 0.

    Examples
    --------
    >>> LBFGS(history_size=20)
    LBFGS(history_size=20, tol=1e-07)
    """

    name = "lbfgs"

    def __init__(self, history_size: int = 10, tol: float = 1e-7) -> None:
        self.history_size = history_size
        self.tol = tol
        self.lr = None           # no learning rate: a line search chooses each step
        self.weight_decay = 0.0
        self._check()
        self.reset()

    def _check(self):
        self.history_size = _validation.check_int(self.history_size, "history_size", 1)
        self.tol = _validation.check_float(self.tol, "tol", low=0, low_open=True)
        self.step = _validation.check_int(getattr(self, "step", 0), "step", 0)

    def _kernel_args(self):
        raise TypeError("LBFGS has no per-batch update rule in the kernels")

    def _hyper(self):
        return {"history_size": self.history_size, "tol": self.tol}


#: Name -> class of every optimizer; each class's signature holds its defaults.
OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Rprop, LBFGS)}


def optimizer_from_name(name):
    """A new optimizer with its default hyperparameters from its name (``"adam"``)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of "
                         f"{sorted(OPTIMIZERS)} or an optimizer object")
    return OPTIMIZERS[key]()
