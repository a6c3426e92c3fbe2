"""Many trainings side by side through joblib: loky's worker processes and a Dask
LocalCluster each run single-threaded trainings that reproduce in-process training bit
for bit; streaming data in blocks equals one pass over the same blocks.

The Dask tests need the ``distributed`` extra (dask and distributed); where it is not
installed they are skipped, with the reason.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nncore

from _helpers import child_env

joblib = pytest.importorskip("joblib", reason="joblib comes with scikit-learn "
                             "(the test extra)")

# Worker processes, a Dask cluster, a subprocess: seconds each.
pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dask_search.py"


def _data(seed=0, n=600):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.intp)


def train_in_worker(lr, seed):
    """A training run as a search task runs it: its weights, and the worker's pid
    and nncore thread count."""
    X, y = _data()
    net = nncore.Network([nncore.Dense(12, 64, "relu"), nncore.Dense(64, 2)],
                         loss="cross_entropy", seed=seed)
    net.fit(X, y, epochs=3, batch_size=16, optimizer=nncore.Adam(lr))
    return net.state()["params"], os.getpid(), nncore.get_num_threads()


GRID = [(lr, seed) for lr in (1e-3, 1e-2) for seed in (0, 1)]


def _check_against_in_process(results, expected_threads):
    for (lr, seed), (params, pid, threads) in zip(GRID, results):
        assert pid != os.getpid(), "the task ran in the test process"
        assert threads == expected_threads, (threads, expected_threads)
        alone, _, _ = train_in_worker(lr, seed)
        assert np.array_equal(params, alone), (lr, seed)


def test_loky_workers_train_on_their_share_of_the_threads():
    # joblib's loky backend starts its workers with OMP_NUM_THREADS,
    # OPENBLAS_NUM_THREADS, ... = cpu_count // n_jobs; nncore's OpenMP pool and the
    # BLAS it calls read them when they load, so n_jobs trainings use the cores once.
    with joblib.parallel_backend("loky", n_jobs=2):
        results = joblib.Parallel()(joblib.delayed(train_in_worker)(lr, seed)
                                    for lr, seed in GRID)
    _check_against_in_process(results, max(1, (os.cpu_count() or 1) // 2))


def test_dask_local_cluster_runs_single_threaded_trainings():
    pytest.importorskip("distributed", reason='needs pip install "nncore[distributed]"')
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster), \
            joblib.parallel_backend("dask"):
        results = joblib.Parallel()(joblib.delayed(train_in_worker)(lr, seed)
                                    for lr, seed in GRID)
    # Dask's nanny starts each worker process with one thread for every pool.
    _check_against_in_process(results, 1)


def test_the_dask_search_example_runs_and_matches_in_process_training():
    pytest.importorskip("distributed", reason='needs pip install "nncore[distributed]"')
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=300, env=child_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import dask_search
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    results = out["results"]
    assert len(results) == 6
    assert {r["pid"] for r in results}.isdisjoint({out["client_pid"]})
    assert all(r["threads"] == 1 for r in results)
    best = min(results, key=lambda r: r["val_loss"])
    assert out["best"] == {"lr": best["lr"], "weight_decay": best["weight_decay"]}
    again = dask_search.train(best["lr"], best["weight_decay"], dask_search.make_data())
    assert again["params"] == best["params"] and again["val_loss"] == best["val_loss"]


@pytest.mark.parametrize("opt", [lambda: nncore.Adam(1e-2),
                                 lambda: nncore.SGD(0.05, momentum=0.9)])
def test_streaming_blocks_equals_one_pass_over_them(opt):
    # What an incremental learner (Dask-ML's Incremental, partial_fit) does: one
    # fit call per block, the optimizer's state carried from block to block. With
    # whole batches per block and the rows in order, that is one epoch over the
    # blocks one after the other.
    X, y = _data(n=640)
    blocks = [(X[i:i + 160], y[i:i + 160]) for i in range(0, 640, 160)]
    streamed = nncore.Network([nncore.Dense(12, 64, "relu"), nncore.Dense(64, 2)],
                              loss="cross_entropy", seed=3)
    optimizer = opt()
    for Xb, yb in blocks:
        streamed.fit(Xb, yb, epochs=1, batch_size=32, optimizer=optimizer, shuffle=False)
    whole = nncore.Network([nncore.Dense(12, 64, "relu"), nncore.Dense(64, 2)],
                           loss="cross_entropy", seed=3)
    whole.fit(np.concatenate([Xb for Xb, _ in blocks]),
              np.concatenate([yb for _, yb in blocks]),
              epochs=1, batch_size=32, optimizer=opt(), shuffle=False)
    assert np.array_equal(streamed.state()["params"], whole.state()["params"])
    assert streamed.optimizer.step == whole.optimizer.step == 20


def test_partial_fit_over_blocks_equals_fit_over_the_same_blocks():
    # Dask-ML's Incremental calls partial_fit once per block of a Dask array; with
    # the rows in order and whole batches per block, that is fit's epoch over them.
    pytest.importorskip("sklearn")
    import warnings

    from nncore.sklearn import NNClassifier

    X, y = _data(n=640)
    settings = dict(hidden_layer_sizes=(32,), batch_size=32, shuffle=False,
                    random_state=0, dtype="float64", learning_rate_init=1e-2)
    streamed = NNClassifier(**settings)
    for start in range(0, 640, 160):
        streamed.partial_fit(X[start:start + 160], y[start:start + 160],
                             classes=[0, 1])
    whole = NNClassifier(max_iter=1, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # max_iter=1: not converged
        whole.fit(X, y)
    for a, b in zip(streamed.coefs_ + streamed.intercepts_,
                    whole.coefs_ + whole.intercepts_):
        assert np.array_equal(a, b)


def test_grid_search_of_the_estimator_on_a_dask_cluster():
    pytest.importorskip("distributed", reason='needs pip install "nncore[distributed]"')
    pytest.importorskip("sklearn")
    from dask.distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    from nncore.sklearn import NNClassifier

    X, y = _data(n=300)
    grid = {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 1e-2]}
    model = NNClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    here = GridSearchCV(model, grid, cv=3).fit(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster), \
            joblib.parallel_backend("dask"):
        there = GridSearchCV(model, grid, cv=3, n_jobs=-1).fit(X, y)
    assert there.best_params_ == here.best_params_
    np.testing.assert_array_equal(there.cv_results_["mean_test_score"],
                                  here.cv_results_["mean_test_score"])
