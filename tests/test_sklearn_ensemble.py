"""nncore.sklearn's ensembles: scikit-learn's estimator checks; each member equal, bit
for bit, to a lone NNClassifier / NNRegressor with the member's seed and batch order
(what nncore.fit_many guarantees); soft voting that learns; bad settings refused before
training; meta-estimators, clone and pickles.

Networks are small and epochs few. scikit-learn is part of the ``test`` extra.
"""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nncore
from nncore import _sklearn_ensemble
from nncore.sklearn import (
    NNClassifier,
    NNEnsembleClassifier,
    NNEnsembleRegressor,
    NNRegressor,
    _expected_failed_checks,
)

# Most fits here stop at max_iter on purpose (few epochs keep the tests fast).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

QUICK = {"hidden_layer_sizes": (16,), "max_iter": 30, "learning_rate_init": 1e-2,
         "batch_size": 32, "random_state": 0, "n_estimators": 3}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


# ------------------------------------------------------- scikit-learn's checks
CHECKED = {**QUICK, "batch_size": "auto"}


@parametrize_with_checks(
    [NNEnsembleClassifier(**CHECKED), NNEnsembleRegressor(**CHECKED),
     NNEnsembleClassifier(**CHECKED, dtype="float64"),
     NNEnsembleRegressor(**CHECKED, dtype="float64")],
    expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_ensembles_are_public_and_extend_the_single_network_estimators():
    import nncore.sklearn as module
    assert {"NNEnsembleClassifier", "NNEnsembleRegressor"} <= set(module.__all__)
    params = set(NNEnsembleClassifier().get_params())
    assert params == set(NNClassifier().get_params()) | {"n_estimators"}
    assert set(NNEnsembleRegressor().get_params()) == \
        set(NNRegressor().get_params()) | {"n_estimators"}
    assert NNEnsembleClassifier().n_estimators == 5


# -------------------------------------------- members equal lone estimators
def lone_like(ensemble, k):
    """A new estimator with member k's parameters (its random_state included) whose
    network's generator starts where fit_many's ``batch_seed_`` starts, as
    nncore.fit_many's docstring says, so that its fit takes the member's batches; and
    whose early-stopping rows are the ensemble's (drawn from the ensemble's
    random_state, shared by all members)."""
    lone = clone(ensemble.estimators_[k])
    build = lone._build

    def build_started(n_features):
        build(n_features)
        state = lone.network_.state(include_optimizer=False)
        state["rng"] = np.random.default_rng(ensemble.batch_seed_).bit_generator.state
        lone.network_.restore(state)

    lone._build = build_started
    lone._split = ensemble._split
    return lone


def assert_member_is_lone(member, lone):
    for i, (p, q) in enumerate(zip(member.network_.params, lone.network_.params)):
        np.testing.assert_array_equal(p, q, err_msg=f"params[{i}]")
    assert member.n_iter_ == lone.n_iter_ and member.t_ == lone.t_
    assert member.loss_curve_ == lone.loss_curve_
    assert member.validation_scores_ == lone.validation_scores_
    assert member.network_.optimizer.step == lone.network_.optimizer.step


@pytest.mark.parametrize("solver, dtype, early", [
    ("adam", "float32", False), ("sgd", "float64", False), ("rmsprop", "float32", True),
    ("adamw", "float64", True)])
def test_each_member_is_a_lone_classifier_with_its_seed_and_batch_order(
        iris, solver, dtype, early):
    X, y = iris
    # tol and n_iter_no_change small enough that members stop on their own epochs
    ens = NNEnsembleClassifier(**{**QUICK, "max_iter": 40}, solver=solver, dtype=dtype,
                               early_stopping=early, tol=1e-3, n_iter_no_change=3,
                               alpha=1e-3, validation_fraction=0.2).fit(X, y)
    seeds = [m.random_state for m in ens.estimators_]
    assert len(set(seeds)) == 3
    for k, member in enumerate(ens.estimators_):
        assert type(member) is NNClassifier
        lone = lone_like(ens, k).fit(X, y)
        assert_member_is_lone(member, lone)
        np.testing.assert_array_equal(member.predict_proba(X), lone.predict_proba(X))
    if early:
        assert ens.validation_scores_.shape[0] == 3 and ens.best_loss_ is None
    np.testing.assert_array_equal(ens.n_iter_, [m.n_iter_ for m in ens.estimators_])


def test_members_stop_alone_and_their_curves_are_padded(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**{**QUICK, "n_estimators": 6, "max_iter": 60},
                               tol=1e-2, n_iter_no_change=2).fit(X, y)
    n_iter = ens.n_iter_
    assert n_iter.shape == (6,) and len(set(n_iter.tolist())) > 1   # stopped apart
    curves = ens.loss_curve_
    assert curves.shape == (6, n_iter.max())
    for k, member in enumerate(ens.estimators_):
        np.testing.assert_array_equal(curves[k, :n_iter[k]], member.loss_curve_)
        assert np.isnan(curves[k, n_iter[k]:]).all()
    np.testing.assert_array_equal(ens.loss_, [m.loss_ for m in ens.estimators_])
    np.testing.assert_array_equal(ens.t_, n_iter * 150)


def test_each_member_is_a_lone_regressor_with_early_stopping(diabetes):
    X, y = diabetes
    ens = NNEnsembleRegressor(**QUICK, early_stopping=True, n_iter_no_change=4,
                              dropout=0.1).fit(X, y)
    for k, member in enumerate(ens.estimators_):
        assert type(member) is NNRegressor
        assert_member_is_lone(member, lone_like(ens, k).fit(X, y))


def test_initial_weights_come_from_each_members_random_state(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**{**QUICK, "max_iter": 1, "learning_rate_init": 1e-9},
                               solver="sgd", momentum=0.0, alpha=0.0).fit(X, y)
    again = NNEnsembleClassifier(**{**QUICK, "max_iter": 1}).fit(X, y)
    assert [m.random_state for m in ens.estimators_] == \
        [m.random_state for m in again.estimators_]
    assert ens.batch_seed_ == again.batch_seed_
    first = [np.array(m.coefs_[0]) for m in ens.estimators_]
    for a, b in zip(first, first[1:]):
        assert not np.allclose(a, b)
    other = NNEnsembleClassifier(**{**QUICK, "random_state": 1}).fit(X, y)
    assert [m.random_state for m in other.estimators_] != \
        [m.random_state for m in ens.estimators_]


# -------------------------------------------------------- soft voting learns
def test_classifier_learns_digits_and_beats_its_average_member():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16, y, test_size=0.3, random_state=0)
    ens = NNEnsembleClassifier(hidden_layer_sizes=(32,), max_iter=25, batch_size=64,
                               learning_rate_init=3e-3, random_state=0, n_estimators=5)
    ens.fit(X_tr, y_tr)
    assert ens.score(X_te, y_te) > 0.95
    P = ens.predict_proba(X_te)
    members = [m.predict_proba(X_te) for m in ens.estimators_]
    np.testing.assert_allclose(P, np.mean(members, axis=0), rtol=1e-6)
    np.testing.assert_array_equal(ens.predict(X_te), ens.classes_[P.argmax(axis=1)])
    np.testing.assert_allclose(ens.predict_log_proba(X_te), np.log(P), rtol=1e-5,
                               atol=1e-6)
    ours = log_loss(y_te, P)
    average = np.mean([log_loss(y_te, p) for p in members])
    assert ours <= average


def test_binary_classifier_votes_on_probabilities():
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(StandardScaler().fit_transform(X), y,
                                              test_size=0.3, random_state=0)
    labels = np.array(["benign", "malignant"])[1 - y_tr]
    ens = NNEnsembleClassifier(**{**QUICK, "max_iter": 20}).fit(X_tr, labels)
    P = ens.predict_proba(X_te)
    assert P.shape == (len(y_te), 2) and P.dtype == np.float32
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)
    pred = ens.predict(X_te)
    np.testing.assert_array_equal(pred, ens.classes_[(P[:, 1] > 0.5).astype(int)])
    assert np.mean(pred == np.array(["benign", "malignant"])[1 - y_te]) > 0.95
    # log probabilities from the logits: finite where a probability rounds to 0 or 1
    assert np.isfinite(ens.predict_log_proba(X_te)).all()
    np.testing.assert_allclose(np.exp(ens.predict_log_proba(X_te)), P, atol=1e-6)


def test_multilabel_votes_per_label(iris):
    X, y = iris
    Y = np.stack([y == 0, y == 2, X[:, 0] > 0], axis=1).astype(int)
    ens = NNEnsembleClassifier(**QUICK).fit(X, Y)
    P = ens.predict_proba(X)
    assert P.shape == (150, 3)
    np.testing.assert_array_equal(ens.predict(X), (P > 0.5).astype(int))
    assert ens.score(X, Y) > 0.8


def test_regressor_averages_its_members_and_beats_their_mean_error(diabetes):
    X, y = diabetes
    Y = np.stack([y, -y / 2], axis=1)
    ens = NNEnsembleRegressor(**QUICK, dtype="float64").fit(X, Y)
    pred = ens.predict(X)
    members = [m.predict(X) for m in ens.estimators_]
    np.testing.assert_allclose(pred, np.mean(members, axis=0), rtol=1e-12)
    assert pred.shape == (442, 2) and pred.dtype == np.float64
    assert ens.score(X, Y) > 0.4
    assert mean_squared_error(Y, pred) <= \
        np.mean([mean_squared_error(Y, p) for p in members])


# ------------------------------------------------------------- bad settings
@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if the ensemble reaches fit_many."""
    def refuse(*args, **kwargs):
        raise AssertionError("fit_many was called")
    monkeypatch.setattr(_sklearn_ensemble, "fit_many", refuse)


@pytest.mark.parametrize("value", [0, -2, 2.5, "3"])
def test_bad_n_estimators_is_named_before_training(iris, no_training, value):
    X, y = iris
    ens = NNEnsembleClassifier(n_estimators=value)
    with pytest.raises(ValueError, match="'n_estimators' parameter of "
                                         "NNEnsembleClassifier"):
        ens.fit(X, y)
    assert not hasattr(ens, "estimators_")


def test_lbfgs_is_refused_before_training(iris, no_training):
    X, y = iris
    for est in (NNEnsembleClassifier(solver="lbfgs"), NNEnsembleRegressor(solver="lbfgs")):
        with pytest.raises(ValueError, match=r"'solver' parameter .*'sgd'.*'lbfgs'"):
            est.fit(X, y if est._is_classifier() else X[:, 0])
        assert not hasattr(est, "estimators_")
    with pytest.raises(ValueError, match="'solver'"):
        NNEnsembleRegressor(solver="newton").fit(X, X[:, 0])


def test_warm_start_continues_the_members_and_keeps_their_number(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**{**QUICK, "max_iter": 3, "n_iter_no_change": 100},
                               warm_start=True).fit(X, y)
    members = ens.estimators_
    steps = [m.network_.optimizer.step for m in members]
    ens.set_params(learning_rate_init=5e-3).fit(X, y)
    assert ens.estimators_ is members
    for member, before in zip(members, steps):
        assert member.network_.optimizer.step == 2 * before
        assert member.network_.optimizer.lr == 5e-3 and len(member.loss_curve_) == 6
    assert ens.loss_curve_.shape == (3, 6)
    ens.set_params(n_estimators=4)
    with pytest.raises(ValueError, match="n_estimators 3 -> 4"):
        ens.fit(X, y)


def test_partial_fit_trains_every_member_one_epoch(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**QUICK)
    for _ in range(3):
        ens.partial_fit(X, y, classes=[0, 1, 2])
    steps_per_epoch = -(-150 // 32)
    for member in ens.estimators_:
        assert member.network_.optimizer.step == 3 * steps_per_epoch
        assert len(member.loss_curve_) == 3
    np.testing.assert_array_equal(ens.n_iter_, 1)


def test_a_diverging_member_is_named():
    X, y = load_diabetes(return_X_y=True)
    ens = NNEnsembleRegressor(**{**QUICK, "learning_rate_init": 1e6}, solver="sgd")
    with pytest.raises(nncore.TrainingDiverged, match=r"estimators_\[\d\]"):
        ens.fit(X, y * 1e3)


def test_verbose_lines_name_their_member(iris, capsys):
    X, y = iris
    NNEnsembleClassifier(**{**QUICK, "max_iter": 2, "n_estimators": 2},
                         verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(", loss")[0] for line in lines] == [
        "estimators_[0]: Iteration 1", "estimators_[1]: Iteration 1",
        "estimators_[0]: Iteration 2", "estimators_[1]: Iteration 2"]


def test_no_single_network_attributes(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**{**QUICK, "max_iter": 1}).fit(X, y)
    for name in ("coefs_", "intercepts_", "network_"):
        with pytest.raises(AttributeError, match=rf"estimators_\[i\]\.{name}"):
            getattr(ens, name)
    assert ens.estimators_[0].coefs_[0].shape == (4, 16)


# ------------------------------------------------------------ meta-estimators
def test_pipeline_grid_search_and_clone(iris):
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), NNEnsembleClassifier(**QUICK))
    assert cross_val_score(model, X, y, cv=3).mean() > 0.85
    grid = GridSearchCV(NNEnsembleClassifier(**QUICK),
                        {"n_estimators": [1, 2], "alpha": [1e-4, 1e-2]}, cv=3)
    grid.fit(StandardScaler().fit_transform(X), y)
    assert grid.best_score_ > 0.85
    assert len(grid.best_estimator_.estimators_) == grid.best_params_["n_estimators"]
    copy = clone(grid.best_estimator_)
    assert copy.get_params() == grid.best_estimator_.get_params()
    assert not hasattr(copy, "estimators_")


def test_pickle_round_trip_predicts_and_resumes_identically(iris):
    X, y = iris
    ens = NNEnsembleClassifier(**QUICK).fit(X, y)
    back = pickle.loads(pickle.dumps(ens))
    np.testing.assert_array_equal(back.predict_proba(X), ens.predict_proba(X))
    ens.partial_fit(X, y)
    back.partial_fit(X, y)        # the members' optimizers and the batch generator
    assert back.batch_seed_ == ens.batch_seed_
    for a, b in zip(ens.estimators_, back.estimators_):
        for p, q in zip(a.network_.params, b.network_.params):
            np.testing.assert_array_equal(p, q)
