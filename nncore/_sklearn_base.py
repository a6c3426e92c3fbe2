"""The shared machinery of NNClassifier and NNRegressor (see nncore/sklearn.py).

scikit-learn is imported by nncore/sklearn.py first, which turns its absence into an
ImportError naming the ``sklearn`` extra; this module is not imported on its own.
"""
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import (
    check_random_state,
    column_or_1d,
    validate_data,
)

from . import _sklearn_fit
from .layers import ACTIVATIONS, Dense
from .network import Network

# scikit-learn's name for the sigmoid, accepted so that MLP settings carry over.
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}

class _NNBase(BaseEstimator):
    """What NNClassifier and NNRegressor share: parameters, training, prediction."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS) | set(_ACTIVATION_ALIASES))],
        "solver": [StrOptions(set(_sklearn_fit.SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def __sklearn_is_fitted__(self):
        return hasattr(self, "network_")

    # ----------------------------------------------------------- fitted attributes
    @property
    def coefs_(self):
        """list of ndarray: ``coefs_[i]`` of shape (units in layer i, units in layer
        i + 1), views of the network's live weights."""
        params = self.network_.params
        return params[0::2]

    @property
    def intercepts_(self):
        """list of ndarray: ``intercepts_[i]`` of shape (units in layer i + 1,), views
        of the network's live biases."""
        params = self.network_.params
        return params[1::2]

    # -------------------------------------------------------------------- fitting
    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or, with ``warm_start``, from the current state).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; each batch's loss is their weighted mean.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver in _sklearn_fit.FULL_BATCH_SOLVERS:
            raise AttributeError(f"partial_fit is not available for solver="
                                 f"{self.solver!r}, which needs the whole data set")
        return True

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        first = not self.__sklearn_is_fitted__() or \
            (not self.warm_start and not incremental)
        dtype = np.dtype(self.dtype) if first else self._networks()[0].dtype
        X, y = validate_data(self, X, y, reset=first, dtype=dtype, order="C",
                             multi_output=True, y_numeric=not self._is_classifier())
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        sample_weight = _check_sample_weight(sample_weight, X.shape[0])
        targets = self._targets(y, first, incremental, classes)
        sample_weight = self._weights(y, targets, sample_weight, incremental)
        if first:
            self._build(X.shape[1])
        else:
            self._check_architecture()
        self._reset_tracking(first)

        X_train, T_train, w_train, validation = self._split(X, targets, sample_weight,
                                                            incremental)
        n_train = X_train.shape[0]
        full = self.solver in _sklearn_fit.FULL_BATCH_SOLVERS
        batch = n_train if full else self._batch_rows(n_train)
        converged = self._train(X_train, T_train, w_train, validation, batch,
                                epochs=1 if incremental else self.max_iter)
        if not incremental and not converged:
            warnings.warn(f"{type(self).__name__}: the maximum number of iterations "
                          f"(max_iter={self.max_iter}) was reached before the "
                          "optimization converged.", ConvergenceWarning, stacklevel=3)
        return self

    def _networks(self):
        """The fitted networks (one; an ensemble's members' networks)."""
        return [self.network_]

    def _train(self, X_train, T_train, w_train, validation, batch, epochs):
        """Train ``network_`` for up to ``epochs`` epochs; True unless it ran all
        ``max_iter`` epochs without meeting the stopping rule."""
        optimizer, stopper = self._start_training(X_train.shape[0], batch, w_train,
                                                  validation)
        self.network_.fit(X_train, T_train, epochs=epochs, batch_size=batch,
                          optimizer=optimizer, shuffle=bool(self.shuffle),
                          sample_weight=w_train, validation_data=validation,
                          callbacks=[stopper], verbose=0)
        return self._end_training(validation, stopper)

    def _start_training(self, n_train, batch, w_train, validation):
        """(optimizer, stopping callback) for one training call of ``network_``."""
        net = self.network_
        decay = _sklearn_fit.weight_decay(self.alpha, net.loss_name, net.n_outputs,
                                          batch, _sklearn_fit.mean_weight(w_train))
        optimizer = _sklearn_fit.make_optimizer(self, decay, net.optimizer)
        if optimizer is not net.optimizer:    # new state: old snapshots do not apply
            self._best_state = None
            if self.validation_scores_ is not None:
                self.best_validation_score_ = -np.inf
        score = None if validation is None else self._validation_scorer(validation)
        full = self.solver in _sklearn_fit.FULL_BATCH_SOLVERS
        self.n_iter_ = 0
        return optimizer, _sklearn_fit.SklearnStopping(self, n_train, decay, score,
                                                       stop=not full)

    def _end_training(self, validation, stopper):
        """Put back the best epoch (early stopping); False when all ``max_iter``
        epochs ran without meeting the stopping rule."""
        if validation is not None and self._best_state is not None:
            self.network_.restore(self._best_state)   # weights and optimizer
        return stopper.stopped or self.n_iter_ != self.max_iter

    def _build(self, n_features):
        """A new network for ``n_features`` inputs (the output width and loss are set
        by ``_targets``); records the architecture for warm starts."""
        hidden = self._hidden_sizes()
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        sizes = [n_features, *hidden, self._n_net_outputs]
        extra = {"dropout": float(self.dropout)} if self.dropout else {}
        layers = [Dense(a, b, activation=activation, **extra)
                  for a, b in zip(sizes[:-2], sizes[1:-1])]
        layers.append(Dense(sizes[-2], sizes[-1]))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.network_ = Network(layers, loss=self._net_loss, dtype=self.dtype, seed=seed)
        self.n_layers_ = len(sizes)
        self.n_outputs_ = self._n_net_outputs
        self._architecture = self._architecture_now(n_features)

    def _architecture_now(self, n_features):
        return (n_features, self._hidden_sizes(),
                _ACTIVATION_ALIASES.get(self.activation, self.activation),
                float(self.dropout), self._net_loss)

    def _check_architecture(self):
        now = self._architecture_now(self.n_features_in_)
        if now != self._architecture:
            names = ("n_features", "hidden_layer_sizes", "activation", "dropout", "loss")
            changed = [f"{n} {a!r} -> {b!r}" for n, a, b in
                       zip(names, self._architecture, now) if a != b]
            raise ValueError("warm_start and partial_fit continue the fitted network, "
                             f"whose architecture cannot change ({', '.join(changed)}); "
                             "set warm_start=False to train a new one")

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = (sizes,)
        sizes = tuple(int(s) for s in np.ravel(np.asarray(sizes)))
        if any(s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold sizes >= 1; got "
                             f"{self.hidden_layer_sizes!r}")
        return sizes

    def _reset_tracking(self, first):
        """scikit-learn's per-fit bookkeeping: kept across warm starts and partial_fit
        calls, started afresh otherwise."""
        if first:
            self.loss_curve_ = []
            self.t_ = 0
            self._no_improvement_count = 0
            self._best_state = None
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = None
        if self._early_stopping() and self.validation_scores_ is None:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        elif not self._early_stopping() and self.best_loss_ is None:
            self.best_loss_ = np.inf

    def _batch_rows(self, n_train):
        if self.batch_size == "auto":
            return min(200, n_train)
        if self.batch_size > n_train:
            warnings.warn(f"batch_size={self.batch_size} is larger than the "
                          f"{n_train} training samples: it is clipped to {n_train}",
                          stacklevel=4)
        return min(int(self.batch_size), n_train)

    def _early_stopping(self):
        """early_stopping applies: as in scikit-learn, not to the full-batch solvers."""
        return self.early_stopping and self.solver not in _sklearn_fit.FULL_BATCH_SOLVERS

    def _split(self, X, targets, sample_weight, incremental):
        """(X_train, targets_train, weights_train, validation_data or None)."""
        if not self._early_stopping():
            return X, targets, sample_weight, None
        if incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        stratify = self._stratify_labels(targets)
        train, val = train_test_split(np.arange(X.shape[0]),
                                      test_size=self.validation_fraction,
                                      random_state=check_random_state(self.random_state),
                                      stratify=stratify)
        if val.shape[0] < 2:
            raise ValueError(f"the validation set is too small ({val.shape[0]} "
                             f"samples): increase validation_fraction (now "
                             f"{self.validation_fraction}) or the number of samples")
        w = sample_weight
        if w is None:
            return X[train], targets[train], None, (X[val], targets[val])
        return X[train], targets[train], w[train], (X[val], targets[val], w[val])

    def _forward(self, X):
        """The network's output (last layer, before the loss's output transform)."""
        return self._predict_with(X, "forward")

    def _output(self, X):
        """The network's prediction: probabilities, values, rates."""
        return self._predict_with(X, "predict")

    def _predict_with(self, X, method):
        """``network_.<method>(X)``, X validated once.

        scikit-learn's validation costs some 100 us a call, more than predicting a few
        hundred rows. A plain C-contiguous ndarray of the network's dtype and width (for
        an estimator fitted without feature names) skips it: the network checks the
        same things (shape, dtype, finiteness); when it refuses X, scikit-learn's
        validation runs after all, to raise scikit-learn's own message.
        """
        if not self.__sklearn_is_fitted__():     # (check_is_fitted costs 30 us)
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call "
                                 "fit before using it to predict")
        dtype = self._networks()[0].dtype
        plain = (type(X) is np.ndarray and X.ndim == 2 and X.dtype == dtype
                 and X.flags.c_contiguous and X.shape[1] == self.n_features_in_
                 and not hasattr(self, "feature_names_in_"))
        if not plain:
            X = validate_data(self, X, reset=False, dtype=dtype, order="C")
        try:
            return self._outputs(X, method)
        except ValueError:
            if plain:
                validate_data(self, X, reset=False, dtype=dtype, order="C")
            raise

    def _outputs(self, X, method):
        """``network_.<method>(X)`` for a validated X."""
        return getattr(self.network_, method)(X)


def _store_parameters(est, arguments):
    """Set each constructor argument as the attribute of its name, untouched, as
    scikit-learn's ``get_params``/``set_params``/``clone`` expect."""
    for name, value in arguments.items():
        if name != "self":
            setattr(est, name, value)


def _check_sample_weight(sample_weight, n_samples):
    """None, or a float64 (n_samples,) array; the network checks the values."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        return np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), one weight per "
                         f"sample; got shape {w.shape}")
    return w


def _one_column_as_1d(out):
    return out.ravel() if out.shape[1] == 1 else out
