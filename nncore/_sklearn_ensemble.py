"""What NNEnsembleClassifier and NNEnsembleRegressor add to NNClassifier and NNRegressor
(see nncore/sklearn.py): K members trained together by one ``nncore.fit_many`` call.

An ensemble is its single-network estimator with more than one network. It validates
the data, encodes the labels, splits off the early-stopping rows and checks its
parameters with the single-network machinery (``_NNBase``), once for all members. Its
members are estimators of that single-network class (``estimators_``): each keeps its
own network, optimizer and scikit-learn bookkeeping (loss curve, stopping rule, best
early-stopping state), so that member i is, bit for bit, what a lone estimator with the
member's ``random_state`` would be after training on the same batch order. What the
ensemble itself changes is only the training call (``fit_many`` over all networks,
one stopping callback per member) and the prediction (the mean of the members').

scikit-learn is imported by nncore/sklearn.py first; this module is not imported on
its own.
"""
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_random_state

from . import _sklearn_fit
from .history import TrainingDiverged
from .many import fit_many

# The solvers fit_many trains: the minibatch ones (it refuses LBFGS, which takes the
# whole data set per step).
SOLVERS = tuple(s for s in _sklearn_fit.SOLVERS if s not in _sklearn_fit.FULL_BATCH_SOLVERS)

# What the ensemble's data checks and label encoding set (validate_data, _targets) that
# every member needs in order to train and predict as a lone estimator would.
_SHARED = ("n_features_in_", "feature_names_in_", "classes_", "_target_kind",
           "_n_net_outputs", "_net_loss", "out_activation_")

_SEED_BOUND = np.iinfo(np.int32).max

ATTRIBUTES = """
    Attributes
    ----------
    estimators_ : list of {member}
        The members, each a fitted {member} (with its own ``network_``, ``coefs_``,
        ``loss_curve_``, ...) whose ``random_state`` seeded its initial weights.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Set when X has string column names (a DataFrame).
    n_outputs_ : int
        Width of each member's network output.
    n_layers_ : int
        Layers counting the input and the output: ``len(hidden_layer_sizes) + 2``.
    out_activation_ : str
        The output transform: ``softmax``, ``logistic``, ``identity`` or ``exp``.
    batch_seed_ : int
        The ``seed`` of the last training call's ``nncore.fit_many``: the batch order
        that every member saw.
    loss_ : ndarray of shape (n_estimators,)
        Each member's training loss of its last epoch (plus the L2 penalty).
    loss_curve_ : ndarray of shape (n_estimators, n_epochs)
        Each member's ``loss_`` after each epoch; NaN after the epoch where a member
        stopped while others went on.
    best_loss_ : ndarray of shape (n_estimators,) or None
        Each member's lowest loss (None with ``early_stopping``).
    validation_scores_ : ndarray of shape (n_estimators, n_epochs) or None
        Each member's validation score after each epoch (with ``early_stopping``),
        padded with NaN like ``loss_curve_``.
    best_validation_score_ : ndarray of shape (n_estimators,) or None
    validation_loss_curve_ : ndarray of shape (n_estimators, n_epochs) or None
        Each member's loss on the validation rows after each epoch (with
        ``early_stopping``).
    n_iter_ : ndarray of shape (n_estimators,)
        Epochs each member ran in the last ``fit`` (1 after ``partial_fit``).
    t_ : ndarray of shape (n_estimators,)
        Training rows each member has seen over all epochs."""


def ensemble_constraints(constraints):
    """The single-network estimator's parameter constraints plus ``n_estimators``."""
    return {**constraints, "n_estimators": [Interval(Integral, 1, None, closed="left")]}


def _per_member(name, curve):
    """A read-only attribute gathering member attribute ``name``: an array of shape
    (n_estimators,), or for ``curve`` (n_estimators, longest curve) padded with NaN;
    None when the members' value is None."""
    def gather(self):
        values = [getattr(m, name) for m in self.estimators_]
        if values[0] is None:
            return None
        if not curve:
            return np.array(values)
        out = np.full((len(values), max(len(v) for v in values)), np.nan)
        for row, v in zip(out, values):
            row[:len(v)] = v
        return out
    return property(gather, doc=f"Each member's ``{name}`` (see Attributes).")


def _no_single_network(name):
    def refuse(self):
        raise AttributeError(f"{type(self).__name__} has no single network, hence no "
                             f"{name}: each member has its own, estimators_[i].{name}")
    return property(refuse, doc=f"Not available: each member's ``{name}`` is "
                                f"``estimators_[i].{name}``.")


class EnsembleMixin:
    """Members, training by ``fit_many`` and averaged prediction; put before the
    single-network estimator class in the bases, and set ``_member_class`` to it."""

    _member_class = None

    loss_ = _per_member("loss_", curve=False)
    loss_curve_ = _per_member("loss_curve_", curve=True)
    best_loss_ = _per_member("best_loss_", curve=False)
    validation_scores_ = _per_member("validation_scores_", curve=True)
    best_validation_score_ = _per_member("best_validation_score_", curve=False)
    validation_loss_curve_ = _per_member("validation_loss_curve_", curve=True)
    n_iter_ = _per_member("n_iter_", curve=False)
    t_ = _per_member("t_", curve=False)
    coefs_ = _no_single_network("coefs_")
    intercepts_ = _no_single_network("intercepts_")
    network_ = _no_single_network("network_")

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimators_")

    def _validate_params(self):
        super()._validate_params()
        if self.solver not in SOLVERS:
            raise InvalidParameterError(
                f"The 'solver' parameter of {type(self).__name__} must be one of "
                f"{', '.join(map(repr, SOLVERS))}: its members train together on the "
                f"same minibatches (nncore.fit_many), and solver={self.solver!r} takes "
                f"the whole data set per step. Got {self.solver!r} instead.")

    def _networks(self):
        return [m.network_ for m in self.estimators_]

    def _member_parameters(self):
        params = self.get_params(deep=False)
        del params["n_estimators"]
        return params

    def _build(self, n_features):
        """n_estimators new members, each a single-network estimator whose
        ``random_state`` is drawn from the ensemble's, with a network built as that
        estimator builds it; and the generator of the batch orders."""
        rs = check_random_state(self.random_state)
        states = rs.randint(_SEED_BOUND, size=self.n_estimators)
        self._batch_rng = np.random.default_rng(rs.randint(_SEED_BOUND))
        params = self._member_parameters()
        members = []
        for state in states:
            member = self._member_class(**{**params, "random_state": int(state)})
            for name in _SHARED:
                if hasattr(self, name):
                    setattr(member, name, getattr(self, name))
            member._build(n_features)
            members.append(member)
        self.estimators_ = members
        self.n_layers_ = members[0].n_layers_
        self.n_outputs_ = members[0].n_outputs_
        self._architecture = self._architecture_now(n_features)

    def _check_architecture(self):
        if self.n_estimators != len(self.estimators_):
            raise ValueError("warm_start and partial_fit continue the fitted members, "
                             f"whose number cannot change (n_estimators "
                             f"{len(self.estimators_)} -> {self.n_estimators}); set "
                             "warm_start=False to train new ones")
        super()._check_architecture()

    def _reset_tracking(self, first):
        # The members train with the ensemble's current settings (set_params may
        # have changed them since the last fit); their seeds stay their own.
        params = self._member_parameters()
        del params["random_state"]
        for member in self.estimators_:
            member.set_params(**params)
            member._reset_tracking(first)

    def _train(self, X_train, T_train, w_train, validation, batch, epochs):
        """One fit_many call for all members, each with its own optimizer and
        stopping callback; True unless a member ran all ``max_iter`` epochs without
        meeting the stopping rule."""
        members = self.estimators_
        plans = [m._start_training(X_train.shape[0], batch, w_train, validation)
                 for m in members]
        for k, (_, stopper) in enumerate(plans):
            stopper.prefix = f"estimators_[{k}]: "
        self.batch_seed_ = int(self._batch_rng.integers(_SEED_BOUND))
        histories = fit_many(
            [m.network_ for m in members], X_train, T_train, epochs=epochs,
            batch_size=batch, optimizers=[optimizer for optimizer, _ in plans],
            shuffle=bool(self.shuffle), sample_weight=w_train,
            validation_data=validation,
            callbacks=[[stopper] for _, stopper in plans], seed=self.batch_seed_)
        converged = [m._end_training(validation, stopper)
                     for m, (_, stopper) in zip(members, plans)]
        for k, history in enumerate(histories):
            error = history.diverged
            if error is not None:
                # Network.fit raises this for a lone estimator; the other members
                # finished their training first.
                raise TrainingDiverged(f"estimators_[{k}]: {error}", error.epoch,
                                       error.batch) from error
        return all(converged)

    def _outputs(self, X, method):
        """Each member network's ``<method>(X)``, in member order."""
        return [getattr(net, method)(X) for net in self._networks()]

    def _output(self, X):
        """The mean of the members' predictions (probabilities, values, rates),
        summed in float64 and returned in the networks' dtype."""
        outputs = self._predict_with(X, "predict")
        total = np.zeros(outputs[0].shape)
        for out in outputs:
            total += out
        total /= len(outputs)
        return total.astype(outputs[0].dtype, copy=False)
