"""A hyperparameter search on a Dask cluster, through joblib's "dask" backend.

    pip install "nncore[distributed]"
    python examples/dask_search.py                    # a LocalCluster on this machine
    python examples/dask_search.py tcp://host:8786    # an existing cluster's scheduler

Each task trains one network on the whole training set with one learning rate and
weight decay and returns its validation loss; joblib hands the tasks to the Dask
workers. Every worker process runs one training at a time on one thread (Dask's
nanny starts its workers with OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1, which
nncore's kernels and BLAS follow), so a cluster of N worker processes runs N trainings
side by side without oversubscribing the cores.

Ray users do the same with Ray's joblib backend: ``from ray.util.joblib import
register_ray``, ``register_ray()``, then ``joblib.parallel_backend("ray")``.

Prints one JSON object: the grid's results, the best setting, and for each task the
worker's process id and nncore's thread count there.
"""
import itertools
import json
import os
import sys

import joblib
import numpy as np

import nncore


def make_data(seed=0, n=2000):
    """Two interleaved spirals, split 3:1 into training and validation rows."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3 * np.pi, size=n)
    label = rng.integers(0, 2, size=n)
    sign = np.where(label == 1, 1.0, -1.0)
    X = np.c_[sign * t * np.cos(t), sign * t * np.sin(t)] / 5
    X += rng.normal(scale=0.05, size=X.shape)
    cut = 3 * n // 4
    return X[:cut], label[:cut], X[cut:], label[cut:]


def train(lr, weight_decay, data):
    """One point of the grid: its validation loss, where it ran, on how many threads."""
    X, y, X_val, y_val = data
    net = nncore.Network([nncore.Dense(2, 32, "tanh"), nncore.Dense(32, 32, "tanh"),
                          nncore.Dense(32, 2)], loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=30, batch_size=32,
            optimizer=nncore.Adam(lr, weight_decay=weight_decay))
    return {"lr": lr, "weight_decay": weight_decay,
            "val_loss": net.evaluate(X_val, y_val)["loss"],
            "params": net.state()["params"].tolist(),
            "pid": os.getpid(), "threads": nncore.get_num_threads()}


GRID = {"lr": [3e-3, 1e-2, 3e-2], "weight_decay": [0.0, 1e-4]}


def search(data):
    """The whole grid through joblib, on whichever backend is active."""
    points = list(itertools.product(GRID["lr"], GRID["weight_decay"]))
    return joblib.Parallel(n_jobs=-1)(
        joblib.delayed(train)(lr, wd, data) for lr, wd in points)


def main(argv):
    from dask.distributed import Client, LocalCluster

    data = make_data()
    if argv:
        client, cluster = Client(argv[0]), None
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        with joblib.parallel_backend("dask"):
            results = search(data)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    best = min(results, key=lambda r: r["val_loss"])
    print(json.dumps({"results": results, "best": {k: best[k] for k in GRID},
                      "client_pid": os.getpid()}))


if __name__ == "__main__":
    main(sys.argv[1:])
