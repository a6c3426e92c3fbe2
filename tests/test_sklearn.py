"""nncore.sklearn: scikit-learn's own estimator checks, the estimators' behaviour
(targets, stopping, warm starts, partial_fit, the alpha mapping), meta-estimators
(Pipeline, GridSearchCV with worker processes, cross-validation, clone, pickling) and
accuracy within noise of scikit-learn's MLPs on two bundled data sets.

Networks are small and epochs few: the module runs in well under a minute.
scikit-learn is part of the ``test`` extra.
"""
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import (
    GridSearchCV,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_random_state

import nncore
from nncore import _sklearn_fit
from nncore.sklearn import NNClassifier, NNRegressor, _expected_failed_checks

# Most fits here stop at max_iter on purpose (few epochs keep the tests fast).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

QUICK = {"hidden_layer_sizes": (16,), "max_iter": 50, "learning_rate_init": 1e-2,
         "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def params_of(est):
    return [np.array(p) for p in est.network_.params]


def assert_same_params(a, b):
    for i, (p, q) in enumerate(zip(params_of(a), params_of(b))):
        np.testing.assert_array_equal(p, q, err_msg=f"params[{i}]")


# ------------------------------------------------------- scikit-learn's checks
# batch_size "auto": the checks' data sets are small (the batch is all of them).
CHECKED = {**QUICK, "batch_size": "auto"}


@parametrize_with_checks(
    [NNClassifier(**CHECKED), NNRegressor(**CHECKED),
     NNClassifier(**CHECKED, dtype="float64"), NNRegressor(**CHECKED, dtype="float64")],
    expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_only_float32_estimators_expect_failures():
    assert _expected_failed_checks(NNClassifier(dtype="float64")) == {}
    assert _expected_failed_checks(NNRegressor(dtype="float64")) == {}
    assert set(_expected_failed_checks(NNRegressor())) > \
        set(_expected_failed_checks(NNClassifier()))


def test_import_nncore_does_not_import_sklearn():
    code = "import sys, nncore; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": _import_root()}, check=True)
    assert out.stdout.strip() == "False"


def test_missing_sklearn_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import nncore.sklearn\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": _import_root()}, check=True)
    assert 'pip install "nncore[sklearn]"' in out.stdout


def _import_root():
    from pathlib import Path
    return str(Path(nncore.__file__).resolve().parents[1])


# ------------------------------------------------------------------- targets
@pytest.mark.parametrize("labels", [np.array(["setosa", "versicolor", "virginica"]),
                                    np.array([10, -3, 7]), None])
def test_multiclass_labels_of_any_type(iris, labels):
    X, y = iris
    target = y if labels is None else labels[y]
    clf = NNClassifier(**QUICK).fit(X, target)
    assert list(clf.classes_) == sorted(set(target.tolist()))
    pred = clf.predict(X)
    assert pred.dtype == target.dtype
    assert np.mean(pred == target) > 0.9
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3


def test_binary_bool_labels_two_probability_columns(iris):
    X, y = iris
    target = y == 2
    clf = NNClassifier(**QUICK).fit(X, target)
    assert clf.classes_.tolist() == [False, True]
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert clf.coefs_[-1].shape == (16, 1)
    P = clf.predict_proba(X)
    assert P.shape == (150, 2) and P.dtype == np.float32
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)
    # columns in classes_ order: column 1 is True
    np.testing.assert_array_equal(clf.predict(X), P[:, 1] > 0.5)
    # from the logits, not log(1 - p) of a rounded p: accurate where p is near 1
    z = clf.network_.forward(X).astype(np.float64)[:, 0]
    exact = -np.logaddexp(0, -np.stack([-z, z], axis=1))
    np.testing.assert_allclose(clf.predict_log_proba(X), exact, rtol=1e-6)
    assert clf.score(X, target) > 0.9


def test_multilabel_indicator(iris):
    X, y = iris
    Y = np.stack([y == 0, y == 2, X[:, 0] > 0], axis=1).astype(int)
    clf = NNClassifier(**QUICK).fit(X, Y)
    assert clf.n_outputs_ == 3 and clf.out_activation_ == "logistic"
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    assert clf.predict_proba(X).shape == (150, 3)
    assert clf.score(X, Y) > 0.8      # subset accuracy


def test_multi_output_regression_keeps_float32():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    Y = np.stack([y, -y / 2], axis=1)
    Y = (Y - Y.mean(0)) / Y.std(0)
    reg = NNRegressor(**QUICK).fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == (442, 2) and pred.dtype == np.float32
    assert reg.score(X, Y) > 0.4
    assert NNRegressor(**QUICK).fit(X, Y[:, 0]).predict(X).shape == (442,)


def test_float32_input_is_not_copied(iris, monkeypatch):
    X, y = iris
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    seen = []
    original = nncore.Network.fit

    def spy(self, X, *args, **kwargs):
        seen.append(X)
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(nncore.Network, "fit", spy)
    NNClassifier(**{**QUICK, "max_iter": 2}).fit(X32, y)
    assert seen[0] is X32


# ---------------------------------------------------------- training behaviour
def test_weight_decay_follows_sklearns_alpha():
    assert _sklearn_fit.weight_decay(1e-3, "cross_entropy", 5, 100, 1.0) == 1e-5
    assert _sklearn_fit.weight_decay(1e-3, "binary_cross_entropy", 1, 100, 2.0) == 5e-6
    assert _sklearn_fit.weight_decay(1e-3, "binary_cross_entropy", 4, 100, 1.0) == 2.5e-6
    assert _sklearn_fit.weight_decay(1e-3, "mse", 2, 50, 1.0) == 2e-5
    X, y = load_diabetes(return_X_y=True)
    reg = NNRegressor(**{**QUICK, "max_iter": 1, "alpha": 0.5, "batch_size": 40})
    reg.fit(X, y)
    assert reg.network_.optimizer.weight_decay == pytest.approx(2 * 0.5 / 40)


@pytest.mark.parametrize("solver, cls", [("adam", "Adam"), ("sgd", "SGD"),
                                         ("adamw", "AdamW"), ("rmsprop", "RMSprop")])
def test_solver_names_map_to_nncore_optimizers(iris, solver, cls):
    X, y = iris
    clf = NNClassifier(**{**QUICK, "max_iter": 1}, solver=solver, momentum=0.5,
                       beta_1=0.8, epsilon=1e-6).fit(X, y)
    opt = clf.network_.optimizer
    assert type(opt).__name__ == cls and opt.lr == 1e-2
    if solver == "sgd":
        assert opt.momentum == 0.5 and opt.nesterov
    if solver.startswith("adam"):
        assert opt.betas == (0.8, 0.999) and opt.eps == 1e-6


def test_max_iter_warns_and_tol_stops(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        NNClassifier(**{**QUICK, "max_iter": 3}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = NNClassifier(**{**QUICK, "max_iter": 100}, tol=1e9,
                           n_iter_no_change=4).fit(X, y)
    # scikit-learn's rule: the first epoch improves on best_loss_ = inf; training stops
    # once more than n_iter_no_change epochs in a row did not improve
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.t_ == 6 * 150 and clf.validation_scores_ is None


def test_early_stopping_restores_the_best_epoch(iris):
    X, y = iris
    clf = NNClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.05, max_iter=200,
                       batch_size=16, random_state=3, early_stopping=True,
                       validation_fraction=0.2, n_iter_no_change=5, tol=0)
    clf.fit(X, y)
    scores = clf.validation_scores_
    best = int(np.argmax(scores))
    assert clf.best_validation_score_ == scores[best]
    assert clf.n_iter_ == len(scores) == len(clf.validation_loss_curve_) > best + 1
    assert clf.best_loss_ is None
    # the validation rows, as the estimator drew them
    _, val = train_test_split(np.arange(150), test_size=0.2,
                              random_state=check_random_state(3), stratify=y)
    assert clf.score(X[val], y[val]) == scores[best]
    # the restored state holds the best epoch's optimizer state too: its step count
    steps_per_epoch = -(-120 // 16)
    assert clf.network_.optimizer.step == (best + 1) * steps_per_epoch


def test_partial_fit_keeps_the_optimizer_state(iris):
    X, y = iris
    est = NNClassifier(hidden_layer_sizes=(8,), random_state=0, batch_size=50)
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert est.n_iter_ == 1 and est.t_ == 450 and len(est.loss_curve_) == 3
    # the same three epochs by hand: one network, one Adam, three fit calls
    seed = check_random_state(0).randint(np.iinfo(np.int32).max)
    net = nncore.Network([nncore.Dense(4, 8, "relu"), nncore.Dense(8, 3)],
                         loss="cross_entropy", seed=int(seed))
    adam = nncore.Adam(lr=1e-3, weight_decay=1e-4 / 50)
    for _ in range(3):
        net.fit(X, y, epochs=1, batch_size=50, optimizer=adam)
    for p, q in zip(net.params, est.network_.params):
        np.testing.assert_array_equal(p, q)


def test_warm_start_continues_exactly(iris):
    X, y = iris
    settings = {**QUICK, "n_iter_no_change": 1000}
    once = NNClassifier(**{**settings, "max_iter": 6}).fit(X, y)
    twice = NNClassifier(**{**settings, "max_iter": 3}, warm_start=True)
    twice.fit(X, y).fit(X, y)
    assert_same_params(once, twice)
    assert twice.loss_curve_ == pytest.approx(once.loss_curve_, rel=1e-6)
    twice.set_params(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        twice.fit(X, y)


def test_partial_fit_argument_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="classes must be passed"):
        NNClassifier().partial_fit(X, y)
    clf = NNClassifier(**QUICK).partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes .*2.* not in classes_"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        NNClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="balanced"):
        NNClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_bad_parameters_are_named_in_fit(iris):
    X, y = iris
    est = NNClassifier(alpha=-1.0, dropout=1.5)         # stored untouched
    assert est.alpha == -1.0
    with pytest.raises(ValueError, match="'alpha' parameter of NNClassifier"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="'solver'"):
        NNRegressor(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        NNClassifier().fit(X, np.zeros(150))


def test_class_weight_balanced_equals_its_formula_and_moves_the_boundary(iris):
    X, y = iris
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:10]]
    Xi, yi = X[keep], y[keep]                    # 50 against 10
    counts = np.bincount(yi)
    explicit = {c: len(yi) / (2 * counts[c]) for c in (0, 1)}
    settings = {**QUICK, "max_iter": 5, "learning_rate_init": 1e-3}
    a = NNClassifier(**settings, class_weight="balanced").fit(Xi, yi)
    b = NNClassifier(**settings, class_weight=explicit).fit(Xi, yi)
    plain = NNClassifier(**settings).fit(Xi, yi)
    assert_same_params(a, b)
    assert a.predict_proba(Xi)[:, 1].mean() > plain.predict_proba(Xi)[:, 1].mean()


# ------------------------------------------------------------ meta-estimators
def test_pipeline_cross_val_score_and_clone(iris):
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), NNClassifier(**QUICK))
    scores = cross_val_score(model, X, y, cv=3)
    assert scores.mean() > 0.85
    copy = clone(model[-1])
    assert copy.get_params() == model[-1].get_params()
    assert not hasattr(copy, "network_")


def test_pickle_round_trip_predicts_and_resumes_identically(iris):
    X, y = iris
    clf = NNClassifier(**QUICK).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    back.partial_fit(X, y)           # the optimizer state and generator came along
    assert_same_params(clf, back)


def test_grid_search_with_two_workers(iris):
    X, y = iris
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]}
    serial = GridSearchCV(NNClassifier(**QUICK), grid, cv=3).fit(X, y)
    parallel = GridSearchCV(NNClassifier(**QUICK), grid, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(serial.cv_results_["mean_test_score"],
                                  parallel.cv_results_["mean_test_score"])
    assert parallel.best_score_ > 0.85


class ThreadProbe(NNClassifier):
    """Records nncore's thread count while it trains (in whichever process)."""

    def fit(self, X, y, sample_weight=None):
        self.threads_seen_ = nncore.get_num_threads()
        return super().fit(X, y, sample_weight)


def test_workers_share_the_cores(iris):
    import joblib

    X, y = iris
    result = cross_validate(ThreadProbe(**QUICK), X, y, cv=2, n_jobs=2,
                            return_estimator=True)
    share = max(1, joblib.cpu_count() // 2)
    for est in result["estimator"]:
        assert 1 <= est.threads_seen_ <= share


# ------------------------------------------------------- against scikit-learn
def _mean_score(make, X, y, seeds=(0, 1, 2)):
    scores = []
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25,
                                                  random_state=seed)
        scaler = StandardScaler().fit(X_tr)
        est = make(seed).fit(scaler.transform(X_tr), y_tr)
        scores.append(est.score(scaler.transform(X_te), y_te))
    return float(np.mean(scores))


@pytest.mark.parametrize("data, mlp, ours, margin", [
    (load_breast_cancer, MLPClassifier, NNClassifier, 0.02),
    (load_diabetes, MLPRegressor, NNRegressor, 0.05),
])
def test_scores_within_noise_of_sklearn(data, mlp, ours, margin):
    X, y = data(return_X_y=True)
    if mlp is MLPRegressor:
        y = (y - y.mean()) / y.std()
    settings = {"hidden_layer_sizes": (32,), "max_iter": 100,
                "learning_rate_init": 1e-2 if mlp is MLPRegressor else 1e-3}
    theirs = _mean_score(lambda s: mlp(**settings, random_state=s), X, y)
    mine = _mean_score(lambda s: ours(**settings, random_state=s), X, y)
    assert mine >= theirs - margin, (mine, theirs)


def test_plain_arrays_skip_validation_with_the_same_results(iris):
    X, y = iris
    clf = NNClassifier(**QUICK).fit(X, y)
    X32 = np.ascontiguousarray(X, dtype=np.float32)      # the network's own kind
    np.testing.assert_array_equal(clf.predict_proba(X32), clf.predict_proba(X.tolist()))
    bad = X32.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(X32[:, :3].copy())
