"""A job that tests/test_distributed.py runs under ``mpirun -n 2``: trains with
nncore.distributed.fit_distributed and writes what it saw to OUT_DIR/rank<r>.json
(files rather than stdout, where the ranks' lines can interleave).

    python mpi_job.py SCENARIO OUT_DIR
"""
import hashlib
import json
import os
import signal
import sys

import numpy as np
from mpi4py import MPI

import nncore
from nncore import distributed

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def report(**fields):
    with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
        json.dump(fields, f)


def data(n=203, n_in=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = np.sin(X @ rng.normal(size=(n_in, 2)))
    w = rng.uniform(0.5, 2.0, size=n)
    return X, y, w


def network(seed=1, width=4, activation="tanh"):
    return nncore.Network([nncore.Dense(width, 16, activation), nncore.Dense(16, 2)],
                          loss="mse", dtype="float64", seed=seed)


def digest(net):
    h = hashlib.sha256(net.state()["params"].tobytes())
    for a in net.optimizer.state_arrays():
        h.update(a.tobytes())
    return h.hexdigest()


def equivalence(opt_name, shuffle):
    """k ranks with local batch B against one process with batch k*B."""
    X, y, w = data()
    B = 8
    make_opt = {"sgd": lambda: nncore.SGD(0.05, momentum=0.9),
                "adam": lambda: nncore.Adam(1e-2)}[opt_name]
    rows = distributed.shard_rows(len(X), rank, size, B, shuffle)
    Xv, yv, wv = data(n=61, seed=5)
    mine = np.array_split(np.arange(61), size)[rank]      # each rank's validation rows
    # Every rank's replica starts from other weights: rank 0's are broadcast.
    net = network(seed=1 + rank)
    # SGD with its gradient clipped (by the norm of the global batch's gradient)
    clip = 0.05 if opt_name == "sgd" else None
    hist = net.fit(X[rows], y[rows], epochs=4, batch_size=B, optimizer=make_opt(),
                   shuffle=shuffle, sample_weight=w[rows], comm=comm, clip_norm=clip,
                   validation_data=(Xv[mine], yv[mine], wv[mine]))
    single = network(seed=1)
    ref = single.fit(X, y, epochs=4, batch_size=size * B, optimizer=make_opt(),
                     shuffle=shuffle, sample_weight=w, validation_data=(Xv, yv, wv),
                     clip_norm=clip)
    p, q = net.state()["params"], single.state()["params"]
    digests = comm.allgather(digest(net))
    report(max_rel=float(np.max(np.abs(p - q)) / np.max(np.abs(q))),
           loss=hist.loss, ref_loss=ref.loss, val_loss=hist.val_loss,
           ref_val_loss=ref.val_loss, same_replicas=len(set(digests)) == 1,
           step=net.optimizer.step, ref_step=single.optimizer.step,
           rng_same=net._rng.bit_generator.state == single._rng.bit_generator.state,
           allreduce_epochs=len(hist.history["allreduce_time"]))


def early_stopping():
    """Callbacks see the same logs on every rank: EarlyStopping stops every rank at
    the epoch where it stops one process, restoring the same best weights; a
    CSVLogger given to rank 0 only writes the log."""
    X, y, w = data()
    Xv, yv, wv = data(n=60, seed=5)
    B = 8
    rows = distributed.shard_rows(len(X), rank, size, B, shuffle=True)
    mine = np.array_split(np.arange(60), size)[rank]

    def callbacks(log):
        stop = [nncore.callbacks.EarlyStopping(monitor="val_loss", patience=2)]
        return stop + ([nncore.callbacks.CSVLogger(log)] if log else [])

    log = os.path.join(sys.argv[2], "log.csv") if rank == 0 else None
    net, single = network(seed=1 + rank), network(seed=1)
    hist = net.fit(X[rows], y[rows], epochs=60, batch_size=B, comm=comm,
                   optimizer=nncore.Adam(0.05), validation_data=(Xv[mine], yv[mine]),
                   callbacks=callbacks(log))
    ref = single.fit(X, y, epochs=60, batch_size=size * B, optimizer=nncore.Adam(0.05),
                     validation_data=(Xv, yv), callbacks=callbacks(None))
    p, q = net.state()["params"], single.state()["params"]
    digests = comm.allgather(digest(net))
    report(epochs=len(hist.loss), ref_epochs=len(ref.loss),
           max_rel=float(np.max(np.abs(p - q)) / np.max(np.abs(q))),
           same_replicas=len(set(digests)) == 1)


def balanced():
    X, y, _ = data()
    labels = (y[:, 0] > 0).astype(int)
    net = nncore.Network([nncore.Dense(4, 8, "tanh"), nncore.Dense(8, 2)],
                         loss="cross_entropy", dtype="float64", seed=0)
    messages = []
    for kwargs in ({"class_weight": "balanced"}, {"optimizer": nncore.LBFGS()}):
        try:
            net.fit(X, labels, comm=comm, **kwargs)
        except ValueError as exc:
            messages.append(str(exc))
    report(error="ValueError", message=" | ".join(messages), count=len(messages))


def bad_widths():
    X, y, _ = data(n_in=4 + rank)
    try:
        distributed.fit_distributed(network(width=4 + rank), X, y, comm, epochs=1)
    except ValueError as exc:
        report(error="ValueError", message=str(exc))


def bad_shard():
    X, y, _ = data()
    if rank == 1:
        X[5, 2] = np.nan
    net = network()
    before = net.state()["params"].copy()
    try:
        distributed.fit_distributed(net, X, y, comm, epochs=1)
    except ValueError as exc:
        report(error="ValueError", message=str(exc),
               unchanged=bool(np.array_equal(before, net.state()["params"])))


class FailingKernels:
    """The kernels, with grad_sums raising (or signalling) at its fourth call."""

    def __init__(self, real, action):
        self.real, self.action, self.calls = real, action, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def grad_sums(self, *args):
        self.calls += 1
        if self.calls == 4:
            if self.action == "raise":
                raise RuntimeError("an error planted in rank 1's fourth step")
            os.kill(os.getpid(), signal.SIGINT)
        return self.real.grad_sums(*args)


def failure(action):
    X, y, _ = data(n=2000)
    if rank == 1:
        distributed._kernels = FailingKernels(distributed._kernels, action)
    net = network()
    try:
        distributed.fit_distributed(net, X, y, comm, epochs=1000, batch_size=4,
                                    optimizer=nncore.SGD(1e-3))
    except KeyboardInterrupt:
        digests = comm.allgather(digest(net))
        report(error="KeyboardInterrupt", step=net.optimizer.step,
               same_replicas=len(set(digests)) == 1,
               interrupted=net.history.interrupted, epochs=len(net.history.loss))


def diverge():
    """Inputs too large for the learning rate: every rank stops at the step where
    one process would, with the state restored as one process restores it."""
    X, y, _ = data()
    X *= 10
    B = 8
    rows = distributed.shard_rows(len(X), rank, size, B, shuffle=False)
    net, single = network(seed=1 + rank, activation="relu"), network(activation="relu")
    kwargs = {"epochs": 3, "optimizer": nncore.SGD(0.1), "shuffle": False}
    where = ref_where = None
    try:
        distributed.fit_distributed(net, X[rows], y[rows], comm, batch_size=B, **kwargs)
    except nncore.TrainingDiverged as exc:
        where = (exc.epoch, exc.batch)
    kwargs["optimizer"] = nncore.SGD(0.1)
    try:
        single.fit(X, y, batch_size=size * B, **kwargs)
    except nncore.TrainingDiverged as exc:
        ref_where = (exc.epoch, exc.batch)
    p, q = net.state()["params"], single.state()["params"]
    digests = comm.allgather(digest(net))
    report(where=where, ref_where=ref_where, same_replicas=len(set(digests)) == 1,
           max_rel=float(np.max(np.abs(p - q)) / np.max(np.abs(q))),
           step=net.optimizer.step, ref_step=single.optimizer.step)


if __name__ == "__main__":
    scenario = sys.argv[1]
    if scenario.startswith("equivalence"):
        _, opt_name, shuffle = scenario.split("-")
        equivalence(opt_name, shuffle == "shuffle")
    elif scenario in ("raise", "sigint"):
        failure(scenario)
    else:
        {"bad_widths": bad_widths, "bad_shard": bad_shard, "diverge": diverge,
         "early_stopping": early_stopping, "balanced": balanced}[scenario]()
