"""How the scikit-learn estimators train an nncore network (used by nncore.sklearn).

scikit-learn's MLP estimators decide three things that nncore's ``Network.fit`` leaves
to its caller: the optimizer from the ``solver`` name and its hyperparameters, the L2
penalty ``alpha`` in scikit-learn's scaling, and when to stop (``tol`` and
``n_iter_no_change``, on the training loss or on a validation score). This module maps
the first two onto nncore's optimizers and implements the third as a callback, so that
all epochs of a ``fit`` run in one call of nncore's compiled epoch loop.

The L2 penalty
--------------
scikit-learn adds ``alpha / (2 s) * sum ||W||^2`` to each minibatch's loss, where ``s``
is the batch's sample-weight sum (its row count without weights) and the sum runs over
the weight matrices, not the biases. Its data term is, per sample, the sum over the
outputs of the per-output loss, with half squared errors for regression. nncore's losses
are means over the outputs, with full squared errors, and its optimizers add
``weight_decay * p`` to the gradient (PyTorch's rule), the gradient of
``weight_decay / 2 * ||p||^2``. Scaling both objectives to nncore's data term gives::

    weight_decay = alpha * c / s,   c = 1 for softmax cross-entropy,
                                    c = 2 / k for squared error on k outputs,
                                    c = 1 / k for the other losses on k outputs,

with ``s`` taken as ``batch_size * mean(sample_weight)``: exactly scikit-learn's
penalty for every full batch. Two differences remain: the last, partial batch of an
epoch gets the full batches' decay (scikit-learn scales it up by the smaller row
count), and nncore's weight decay applies to the biases too. For ``solver="adamw"`` the
same coefficient is applied decoupled from the gradient, as AdamW defines it.
"""
import math

import numpy as np

from . import optimizers as _optimizers
from .callbacks import Callback

# The solver names the estimators take: nncore's optimizer names (nncore.optimizers.
# OPTIMIZERS), each listed here so that one this nncore lacks is a clear error in fit.
SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "rprop", "lbfgs")

# Solvers that take the whole training set as one batch.
FULL_BATCH_SOLVERS = {"lbfgs"}


def weight_decay(alpha, loss, n_outputs, batch_rows, mean_weight):
    """nncore's ``weight_decay`` for scikit-learn's ``alpha`` (see the module notes).

    Parameters
    ----------
    alpha : float
    loss : str
        The network's loss name.
    n_outputs : int
        Width of the network's output.
    batch_rows : int
        Rows per (full) batch.
    mean_weight : float
        Mean sample weight over the training rows (1 without weights).
    """
    if alpha == 0:
        return 0.0
    if loss == "cross_entropy":
        c = 1.0
    elif loss == "mse":
        c = 2.0 / n_outputs
    else:
        c = 1.0 / n_outputs
    return alpha * c / (batch_rows * mean_weight)


def make_optimizer(est, decay, previous):
    """The nncore optimizer for ``est.solver`` with ``est``'s hyperparameters.

    ``previous`` (the network's optimizer from an earlier call, or None) is kept, with
    its state, when it is of the same class and can take the new hyperparameters: so
    ``partial_fit`` and ``warm_start`` continue Adam's moments instead of restarting.
    """
    cls = _optimizers.OPTIMIZERS.get(est.solver)
    if cls is None:
        raise ValueError(f"solver={est.solver!r}: this version of nncore has no such "
                         f"optimizer; it has {sorted(_optimizers.OPTIMIZERS)}")
    hyper = _hyperparameters(est, decay)
    if type(previous) is cls:
        kept = _updated(previous, hyper)
        if kept is not None:
            return kept
    return cls(**hyper)


def _hyperparameters(est, decay):
    lr = float(est.learning_rate_init)
    solver = est.solver
    if solver == "sgd":
        momentum = float(est.momentum)
        return {"lr": lr, "momentum": momentum,
                "nesterov": bool(est.nesterovs_momentum) and momentum > 0,
                "weight_decay": decay}
    if solver in ("adam", "adamw"):
        return {"lr": lr, "betas": (float(est.beta_1), float(est.beta_2)),
                "eps": float(est.epsilon), "weight_decay": decay}
    if solver == "rmsprop":
        return {"lr": lr, "eps": float(est.epsilon), "weight_decay": decay}
    if solver == "rprop":
        return {"lr": lr}
    # lbfgs: a full-batch quasi-Newton method; scikit-learn's tol is its tolerance.
    return {"tol": float(est.tol)}


def _updated(optimizer, hyper):
    """``optimizer`` with ``hyper`` set, or None when its state cannot carry over
    (SGD's momentum turned on or off changes the state it keeps)."""
    saved = {name: getattr(optimizer, name) for name in hyper}
    for name, value in hyper.items():
        setattr(optimizer, name, value)
    if isinstance(optimizer, _optimizers.SGD) and \
            (saved["momentum"] == 0) != (optimizer.momentum == 0):
        for name, value in saved.items():
            setattr(optimizer, name, value)
        return None
    return optimizer


def penalty(params, decay):
    """``decay / 2 * ||p||^2`` over ``params`` (flat views of all the network's
    parameters): the term that ``weight_decay`` adds to the objective."""
    if decay == 0:
        return 0.0
    return 0.5 * decay * sum(float(np.dot(p, p)) for p in params)


class SklearnStopping(Callback):
    """scikit-learn's stopping rule and bookkeeping, run once per epoch.

    After every epoch it appends the training loss (plus the L2 penalty, as
    scikit-learn's ``loss_curve_`` includes it) to ``est.loss_curve_`` and updates
    ``est.n_iter_`` and ``est.t_``. Without a validation set it counts epochs whose
    loss is not below ``best_loss_ - tol``; with one (early stopping), epochs whose
    validation score is not above ``best_validation_score_ + tol``, and keeps a copy of
    the network's state (parameters, optimizer, generator) at the best score. The
    count resets at every improvement; training stops once it exceeds
    ``n_iter_no_change`` (scikit-learn's rule, so after ``n_iter_no_change + 1``
    epochs without improvement).

    Parameters
    ----------
    est : NNClassifier or NNRegressor
    n_train : int
        Training rows per epoch (for ``t_``).
    decay : float
        The optimizer's weight decay (for the penalty in the loss).
    score : callable or None
        ``score(logs) -> float``: the validation score (higher is better) after an
        epoch; None without early stopping.
    stop : bool
        Apply the stopping rule. False for the full-batch solvers, which stop by
        their own tolerance (as scikit-learn's lbfgs); the bookkeeping still runs.

    Attributes
    ----------
    prefix : str
        Starts every line printed with ``verbose`` (an ensemble names its member).
    """

    prefix = ""

    def __init__(self, est, n_train, decay, score, stop=True):
        self.est = est
        self.n_train = n_train
        self.decay = decay
        self.score = score
        self.stop = stop
        self.stopped = False

    def on_train_begin(self, logs=None):
        # Flat views of the live parameters, taken once: the penalty reads them after
        # every epoch.
        self._flat = [p.reshape(-1) for p in self.network.params]

    def on_epoch_end(self, epoch, logs):
        est = self.est
        loss = float(logs["loss"]) + penalty(self._flat, self.decay)
        est.loss_ = loss
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += self.n_train
        if est.verbose:
            print(f"{self.prefix}Iteration {est.n_iter_}, loss = {loss:.8f}", flush=True)
        if self.score is None:
            improved = loss <= est.best_loss_ - est.tol
            est.best_loss_ = min(est.best_loss_, loss)
        else:
            value = float(self.score(logs))
            est.validation_scores_.append(value)
            est.validation_loss_curve_.append(float(logs["val_loss"]))
            if est.verbose:
                print(f"{self.prefix}Validation score: {value:f}", flush=True)
            # (NaN compares false both ways: it counts as no improvement)
            improved = value >= est.best_validation_score_ + est.tol
            if value > est.best_validation_score_:
                est.best_validation_score_ = value
                est._best_state = self.network.state(out=est._best_state)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if self.stop and est._no_improvement_count > est.n_iter_no_change:
            self.stopped = True
            self.network.stop_training = True
            if est.verbose:
                what = ("Validation score" if self.score is not None
                        else "Training loss")
                print(f"{self.prefix}{what} did not improve more than tol={est.tol:f} for "
                      f"{est.n_iter_no_change} consecutive epochs. Stopping.",
                      flush=True)


def mean_weight(sample_weight):
    """Mean of the sample weights (1.0 for None)."""
    if sample_weight is None:
        return 1.0
    value = float(np.mean(sample_weight, dtype=np.float64))
    return value if value > 0 and math.isfinite(value) else 1.0
