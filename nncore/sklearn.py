"""scikit-learn estimators trained by nncore: :class:`NNClassifier`, :class:`NNRegressor`
and their seed ensembles :class:`NNEnsembleClassifier`, :class:`NNEnsembleRegressor`.

Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``: the same
constructor parameters where scikit-learn has the concept, the same fitted attributes
with the same meanings, and they work in ``Pipeline``, ``GridSearchCV``,
``cross_val_score``, ``clone`` and pickles. Beyond scikit-learn's: every nncore
activation, the ``adamw``, ``rmsprop``, ``rprop`` and ``lbfgs`` solvers, dropout, class
weights, robust regression losses, float32 arithmetic, a validation loss curve, and
``partial_fit`` that keeps the optimizer's state between calls.

This module needs scikit-learn (``pip install "nncore[sklearn]"``); ``import nncore``
does not import it.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from sklearn.model_selection import cross_val_score
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from nncore.sklearn import NNClassifier
>>> X, y = load_iris(return_X_y=True)
>>> model = make_pipeline(StandardScaler(),
...                       NNClassifier(hidden_layer_sizes=(32,), max_iter=300,
...                                    random_state=0))
>>> float(cross_val_score(model, X, y, cv=3).mean()) > 0.9
True
"""
from typing import ClassVar

import numpy as np

try:
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import r2_score
    from sklearn.utils._param_validation import StrOptions
    from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        check_classification_targets,
        type_of_target,
        unique_labels,
    )

    # (imports scikit-learn's validate_data and the tags: 1.6 or later)
    from ._sklearn_base import _NNBase, _one_column_as_1d, _store_parameters
    from ._sklearn_ensemble import ATTRIBUTES as _ENSEMBLE_ATTRIBUTES
    from ._sklearn_ensemble import EnsembleMixin as _EnsembleMixin
    from ._sklearn_ensemble import ensemble_constraints as _ensemble_constraints
except ImportError as exc:
    if not (exc.name or "").startswith("sklearn"):
        raise
    raise ImportError(
        "nncore.sklearn needs scikit-learn >= 1.6; install it with: "
        f'pip install "nncore[sklearn]"  ({exc})') from exc

__all__ = ["NNClassifier", "NNEnsembleClassifier", "NNEnsembleRegressor", "NNRegressor"]

# NNRegressor's loss names and the nncore losses they train.
REGRESSION_LOSSES = {"squared_error": "mse", "absolute_error": "mae", "huber": "huber",
                     "poisson": "poisson"}

# Checks of scikit-learn's suite (sklearn.utils.estimator_checks) that a float32
# estimator cannot pass, with the reason; tests/test_sklearn.py runs the suite with
# these marked as expected failures (see _expected_failed_checks), and runs all of
# them, unmarked, on float64 estimators.
_FLOAT32_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data":
        "compares predictions at rtol=1e-7, below float32's resolution (1.2e-7): "
        "weighted and repeated rows are summed in another order, a 1-ulp difference",
    "check_methods_sample_order_invariance":
        "compares predictions at rtol=1e-7, below float32's resolution: a row's "
        "output may differ by 1 ulp with its position in the batch (vector lanes "
        "against the remainder loop)",
    "check_methods_subset_invariance":
        "compares predictions at rtol=1e-7, below float32's resolution: a row's "
        "output may differ by 1 ulp with its position in the batch",
}
_FLOAT32_REGRESSOR_EXPECTED_FAILURES = {
    "check_regressor_multioutput":
        "requires float64 predictions; with dtype='float32' the network predicts in "
        "float32 by design",
}


def _expected_failed_checks(estimator):
    """{check name: reason} of the checks ``estimator`` is expected to fail: none in
    float64; in float32, those that ask for more than float32 precision."""
    if estimator.dtype != "float32":
        return {}
    failures = dict(_FLOAT32_EXPECTED_FAILURES)
    if isinstance(estimator, NNRegressor):
        failures.update(_FLOAT32_REGRESSOR_EXPECTED_FAILURES)
    return failures


def _log_sigmoid(z):
    """log(sigmoid(z)) without overflow: -log(1 + exp(-z))."""
    return -np.logaddexp(0, -z)


def _log_proba(Z, kind):
    """Log class probabilities of shape (n_samples, n_classes) from a network's
    output ``Z`` (logits) for targets of ``kind`` ("binary", "multiclass" or
    "multilabel")."""
    if kind == "binary":
        return np.hstack([_log_sigmoid(-Z), _log_sigmoid(Z)])
    if kind == "multilabel":
        return _log_sigmoid(Z)
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default (100,)
        Units of each hidden layer; ``()`` for none.
    activation : str, default "relu"
        Activation of the hidden layers: any of ``nncore.ACTIVATIONS`` (``identity``,
        ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu``, ``elu``, ``gelu``,
        ``softplus``), or scikit-learn's ``logistic`` (the sigmoid).
    solver : {"adam", "sgd", "adamw", "rmsprop", "rprop", "lbfgs"}, default "adam"
        The nncore optimizer: :class:`~nncore.Adam`, :class:`~nncore.SGD` (with
        ``momentum`` and ``nesterovs_momentum``), :class:`~nncore.AdamW`,
        :class:`~nncore.RMSprop`, ``nncore.Rprop``, or full-batch ``nncore.LBFGS``
        (for which ``tol`` is the optimizer's tolerance and ``batch_size`` is unused).
    alpha : float, default 1e-4
        L2 penalty in scikit-learn's scaling: ``alpha / (2 s) ||W||^2`` per batch of
        sample-weight sum ``s``, given to the optimizer as ``weight_decay`` (see
        ``nncore/_sklearn_fit.py`` for the exact mapping; unlike scikit-learn's, it
        also applies to the biases).
    batch_size : int or "auto", default "auto"
        Rows per minibatch; "auto" is ``min(200, n_samples)``.
    learning_rate_init : float, default 1e-3
        The optimizer's learning rate (for ``rprop``, its initial step size).
    max_iter : int, default 200
        Maximum number of epochs (iterations for ``lbfgs``).
    shuffle : bool, default True
        Draw each epoch's batches from a permutation of the rows.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the shuffling and the early-stopping split.
    tol : float, default 1e-4
        An epoch improves when the training loss falls by at least ``tol`` below the
        best so far (or, with ``early_stopping``, the validation score rises by at least
        ``tol`` above the best).
    verbose : int, default 0
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default False
        ``fit`` continues from the fitted network and its optimizer state (Adam's
        moments included) instead of starting afresh.
    momentum : float, default 0.9
        SGD's momentum, in [0, 1).
    nesterovs_momentum : bool, default True
        Nesterov momentum for SGD (when ``momentum > 0``).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified for classification)
        and stop when the validation score (accuracy, or R^2 for regression) has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs; the network is
        then put back as it was at the best epoch (weights and optimizer state). Not
        for ``lbfgs``, as in scikit-learn.
    validation_fraction : float, default 0.1
        In (0, 1); used with ``early_stopping``.
    beta_1, beta_2 : float, default 0.9, 0.999
        Adam's and AdamW's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        Adam's, AdamW's and RMSprop's ``eps``.
    n_iter_no_change : int, default 10
        Epochs without improvement (see ``tol``) after which training stops.
    dropout : float, default 0.0
        Inverted dropout rate on the outputs of the hidden layers while training, in
        [0, 1).
    dtype : {"float32", "float64"}, default "float32"
        Type of the weights and the arithmetic. Input of that type is used without a
        copy."""

_CLASS_WEIGHT = """
    class_weight : dict, "balanced" or None, default None
        Weights per class label, multiplied into ``sample_weight``; "balanced" is
        ``n_samples / (n_classes * bincount(y))`` (per label for multi-label
        targets).
"""

_ATTRIBUTES = """
    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Set when X has string column names (a DataFrame).
    n_outputs_ : int
        Width of the network's output.
    n_layers_ : int
        Layers counting the input and the output: ``len(hidden_layer_sizes) + 2``.
    out_activation_ : str
        The output transform: ``softmax``, ``logistic``, ``identity`` or ``exp``.
    coefs_, intercepts_ : list of ndarray
        Weights (fan_in, fan_out) and biases (fan_out,) per layer: views of the
        network's parameters.
    loss_ : float
        Training loss of the last epoch (nncore's loss, plus the L2 penalty).
    loss_curve_ : list of float
        ``loss_`` after each epoch.
    best_loss_ : float or None
        Lowest ``loss_`` (None with ``early_stopping``).
    validation_scores_ : list of float or None
        Validation score after each epoch (with ``early_stopping``).
    best_validation_score_ : float or None
    validation_loss_curve_ : list of float or None
        Loss on the validation rows after each epoch (with ``early_stopping``).
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Training rows seen over all epochs.
    network_ : nncore.Network
        The trained network."""


class NNClassifier(ClassifierMixin, _NNBase):
    __doc__ = """A multi-layer perceptron classifier trained by nncore.

    Binary and multi-class targets (of string, integer or boolean labels) train a
    softmax (multi-class) or a single logistic output (binary) with cross-entropy;
    a multi-label indicator matrix trains one logistic output per label.
""" + _PARAMETERS + _CLASS_WEIGHT + _ATTRIBUTES + """
    classes_ : ndarray of shape (n_classes,)
        The class labels (the label indices for multi-label targets).
"""

    _parameter_constraints: ClassVar[dict] = {**_NNBase._parameter_constraints,
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 dtype="float32", class_weight=None):
        _store_parameters(self, locals())

    def _is_classifier(self):
        return True

    @available_if(_NNBase._check_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing the network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), optional
            Every class label: required on the first call (y need not hold them
            all), optional later.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        if classes is None and not hasattr(self, "classes_"):
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _targets(self, y, first, incremental, classes):
        """Set the label encoding (when ``first``) and return the network's targets:
        float (n, 1) for binary, class indices (n,) for multi-class, float (n, k) for
        multi-label."""
        check_classification_targets(y)
        multilabel = type_of_target(y) == "multilabel-indicator"
        if first:
            self._define_classes(y, multilabel, incremental, classes)
        else:
            self._check_classes(y, multilabel, incremental, classes)
        dtype = np.dtype(self.dtype) if first else self._networks()[0].dtype
        if self._target_kind == "multilabel":
            return np.ascontiguousarray(y, dtype=dtype)
        if self._target_kind == "binary":
            return (y == self.classes_[1]).astype(dtype).reshape(-1, 1)
        return np.searchsorted(self.classes_, y).astype(np.intp)

    def _define_classes(self, y, multilabel, incremental, classes):
        if multilabel:
            self.classes_ = np.arange(y.shape[1])
            kind = "multilabel"
        else:
            labels = unique_labels(classes if incremental else y)
            if labels.shape[0] < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes; got "
                                 f"only one class: {labels[0]!r}")
            self.classes_ = labels
            kind = "binary" if labels.shape[0] == 2 else "multiclass"
        self._target_kind = kind
        if incremental and not multilabel:
            self._check_classes(y, False, incremental, None)
        self._n_net_outputs = 1 if kind == "binary" else self.classes_.shape[0]
        self._net_loss = ("cross_entropy" if kind == "multiclass"
                          else "binary_cross_entropy")
        self.out_activation_ = "softmax" if kind == "multiclass" else "logistic"

    def _check_classes(self, y, multilabel, incremental, classes):
        if (self._target_kind == "multilabel") != multilabel:
            raise ValueError(f"y is {type_of_target(y)!r} but the fitted model was "
                             f"trained on {self._target_kind!r} targets")
        if multilabel:
            if y.shape[1] != self.classes_.shape[0]:
                raise ValueError(f"y has {y.shape[1]} labels but the model was trained "
                                 f"on {self.classes_.shape[0]}")
            return
        if classes is not None and not np.array_equal(self.classes_,
                                                      unique_labels(classes)):
            raise ValueError(f"classes={classes!r} is not the same as on the first "
                             f"call to partial_fit: {self.classes_!r}")
        labels = unique_labels(y)
        if not incremental and set(labels.tolist()) != set(self.classes_.tolist()):
            raise ValueError("warm_start needs y to hold the same classes as the "
                             f"previous fit: {self.classes_!r}; y holds {labels!r}")
        unseen = np.setdiff1d(labels, self.classes_)
        if unseen.shape[0]:
            raise ValueError(f"y holds classes {unseen!r} that are not in classes_ "
                             f"{self.classes_!r}")

    def _weights(self, y, targets, sample_weight, incremental):
        """``sample_weight`` times the class weights (None when both are None)."""
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit "
                             "(each call would weigh its own batch differently); pass "
                             "the weights as a dict")
        if self._target_kind == "multilabel":
            if self.class_weight != "balanced":
                raise ValueError("multi-label targets take class_weight='balanced' or "
                                 f"None; got {self.class_weight!r}")
            weights = compute_sample_weight("balanced", y)
        else:
            per_class = compute_class_weight(self.class_weight, classes=self.classes_,
                                             y=y)
            weights = per_class[np.searchsorted(self.classes_, y)]
        return weights if sample_weight is None else weights * sample_weight

    def _stratify_labels(self, targets):
        if self._target_kind == "multilabel":
            return None
        return targets[:, 0] if self._target_kind == "binary" else targets

    def _labels(self, scores, cut):
        """Labels from per-class ``scores`` of shape (n_samples, n_net_outputs),
        increasing with each class's probability: a label is on where its score
        exceeds ``cut`` (the single output of binary targets: the second class);
        otherwise the class of the highest score."""
        if self._target_kind == "multilabel":
            return (scores > cut).astype(int)
        if self._target_kind == "binary":
            return self.classes_[(scores[:, 0] > cut).astype(np.intp)]
        return self.classes_[scores.argmax(axis=1)]

    def _validation_scorer(self, validation):
        # The training loop's validation accuracy is scikit-learn's score: the
        # (weighted) share of rows whose predicted label (or label set) is right.
        return lambda logs: logs["val_accuracy"]

    def predict(self, X):
        """Class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) of labels from ``classes_``, or (n_samples,
        n_labels) of 0/1 for multi-label targets.
        """
        return self._labels(self._forward(X), cut=0)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in ``classes_`` order (two for binary targets); for multi-label
            targets, each label's probability. The network's dtype.
        """
        P = self._output(X)
        if self._target_kind == "binary":
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed from the network's output
        without rounding probabilities near 0 to 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return _log_proba(self._forward(X), self._target_kind)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NNRegressor(RegressorMixin, _NNBase):
    __doc__ = """A multi-layer perceptron regressor trained by nncore.

    One or many outputs, with a linear output layer (``exp`` for the Poisson loss).
""" + _PARAMETERS + """
    loss : {"squared_error", "absolute_error", "huber", "poisson"}, default \
"squared_error"
        nncore's ``mse`` (the mean of the squared errors: scikit-learn's
        ``squared_error`` halves it), ``mae``, ``huber`` (delta 1) or ``poisson``
        (log-rate outputs, exp-transformed by ``predict``; y >= 0).
""" + _ATTRIBUTES + "\n"

    _parameter_constraints: ClassVar[dict] = {**_NNBase._parameter_constraints,
                              "loss": [StrOptions(set(REGRESSION_LOSSES))]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 dtype="float32", loss="squared_error"):
        _store_parameters(self, locals())

    def _is_classifier(self):
        return False

    @available_if(_NNBase._check_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)

    def _targets(self, y, first, incremental, classes):
        width = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self._n_net_outputs = width
            self._net_loss = REGRESSION_LOSSES[self.loss]
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif width != self.n_outputs_:
            raise ValueError(f"y has {width} outputs but the model was trained on "
                             f"{self.n_outputs_}")
        return y

    def _weights(self, y, targets, sample_weight, incremental):
        return sample_weight

    def _stratify_labels(self, targets):
        return None

    def _validation_scorer(self, validation):
        X_val, y_val = validation[0], validation[1]
        w_val = validation[2] if len(validation) > 2 else None

        def score(logs):
            pred = _one_column_as_1d(self.network_.predict(X_val))
            return r2_score(y_val, pred, sample_weight=w_val)
        return score

    def predict(self, X):
        """Predicted values (Poisson: rates).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for one output, else (n_samples, n_outputs); the
        network's dtype.
        """
        return _one_column_as_1d(self._output(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_ENSEMBLE_INTRO = """
    The ``n_estimators`` members are {member}s with this estimator's parameters,
    each with its own ``random_state`` drawn from ``random_state`` (so its own initial
    weights), trained together by one ``nncore.fit_many`` call per ``fit``: every
    member sees the same batches, in the order drawn from ``random_state``, and each
    ends bit for bit where a lone {member} with its ``random_state`` ends when its
    network's generator is started as ``fit_many``'s (``batch_seed_``; see
    ``nncore.fit_many``). Each member keeps its own stopping rule: with ``tol`` and
    ``n_iter_no_change`` (on its training loss, or with ``early_stopping`` on its
    score on the shared validation rows) it stops alone while the others go on, and
    early stopping puts it back at its own best epoch.

    ``solver="lbfgs"`` is not available: it takes the whole data set per step, while
    the members train on shared minibatches. A member whose training diverges makes
    ``fit`` raise ``nncore.TrainingDiverged`` naming it, after the others finished.
"""

_N_ESTIMATORS = """
    n_estimators : int, default 5
        Number of members, >= 1."""


class NNEnsembleClassifier(_EnsembleMixin, NNClassifier):
    __doc__ = """A seed ensemble of multi-layer perceptron classifiers, trained at once.

    Soft voting: :meth:`predict_proba` is the mean of the members' class
    probabilities, and :meth:`predict` its most probable class (for multi-label
    targets, each label whose mean probability exceeds 0.5).
""" + _ENSEMBLE_INTRO.format(member="NNClassifier") + _PARAMETERS + _N_ESTIMATORS \
        + _CLASS_WEIGHT + _ENSEMBLE_ATTRIBUTES.format(member="NNClassifier") + """
    classes_ : ndarray of shape (n_classes,)
        The class labels (the label indices for multi-label targets).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from nncore.sklearn import NNEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NNEnsembleClassifier(n_estimators=4, hidden_layer_sizes=(32,),
    ...                            max_iter=20, random_state=0).fit(X / 16, y)
    >>> clf.predict_proba(X[:3] / 16).shape, clf.loss_curve_.shape
    ((3, 10), (4, 20))
"""

    _member_class = NNClassifier
    _parameter_constraints: ClassVar[dict] = _ensemble_constraints(
        NNClassifier._parameter_constraints)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 dtype="float32", class_weight=None, n_estimators=5):
        _store_parameters(self, locals())

    def predict(self, X):
        """Class labels by soft voting: the most probable class of the mean of the
        members' probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) of labels from ``classes_``, or (n_samples,
        n_labels) of 0/1 for multi-label targets.
        """
        return self._labels(self._output(X), cut=0.5)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, from the members' log probabilities
        (log-sum-exp over the members, minus log n_estimators): accurate where a mean
        probability is near 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        logits = self._forward(X)
        logs = np.stack([_log_proba(Z.astype(np.float64), self._target_kind)
                         for Z in logits])
        mean = np.logaddexp.reduce(logs, axis=0) - np.log(len(logits))
        return mean.astype(logits[0].dtype, copy=False)


class NNEnsembleRegressor(_EnsembleMixin, NNRegressor):
    __doc__ = """A seed ensemble of multi-layer perceptron regressors, trained at once.

    :meth:`predict` is the mean of the members' predictions.
""" + _ENSEMBLE_INTRO.format(member="NNRegressor") + _PARAMETERS + _N_ESTIMATORS + """
    loss : {"squared_error", "absolute_error", "huber", "poisson"}, default \
"squared_error"
        Each member's loss, as :class:`NNRegressor` takes it.
""" + _ENSEMBLE_ATTRIBUTES.format(member="NNRegressor") + """

    Examples
    --------
    >>> import numpy as np
    >>> from nncore.sklearn import NNEnsembleRegressor
    >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = np.sin(X[:, 0])
    >>> reg = NNEnsembleRegressor(n_estimators=3, hidden_layer_sizes=(16,),
    ...                           max_iter=30, random_state=0).fit(X, y)
    >>> reg.predict(X[:5]).shape, len(reg.estimators_)
    ((5,), 3)
"""

    _member_class = NNRegressor
    _parameter_constraints: ClassVar[dict] = _ensemble_constraints(
        NNRegressor._parameter_constraints)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate_init=1e-3, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=0,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, dropout=0.0,
                 dtype="float32", loss="squared_error", n_estimators=5):
        _store_parameters(self, locals())
