"""Synchronous data-parallel training over MPI (mpi4py, the optional extra ``mpi``).

Every process (rank) holds a replica of the network and its own shard of the rows.
Rank 0's weights, optimizer state and shuffling generator are broadcast first; then
each step every rank computes, in the kernels, the weighted sums of its part of the
global batch (gradient, loss, weight), one ``Allreduce`` adds them up in a single
contiguous buffer, and every rank applies the same optimizer update to its replica
(the mean gradient is the summed gradient over the summed weight). The replicas stay
bit-identical; the loop checks it once per epoch.

Which rows make up a global batch
---------------------------------
The global data set is the ranks' shards in rank order. A global batch holds
``size * batch_size`` rows (``batch_size`` is the local batch size, ``B``):

- ``shuffle=False``: global batch b is the ranks' local batches b (rows
  ``b*B .. b*B+B-1`` of each shard), one after the other in rank order. Split a data
  set with :func:`shard_rows` and this is batch b of the whole set, in order.
- ``shuffle=True``: every epoch, every rank draws the same permutation of the
  global row indices from the network's generator (rank 0's, broadcast), exactly
  as ``Network.fit`` draws it for the concatenated data; global batch b is
  permutation entries ``b*G .. b*G+G-1`` (``G = size * B``) and each rank takes
  those that fall in its shard. A rank's share of a batch is B rows on average.

Either way, training equals ``Network.fit`` in one process on the global data set
with ``batch_size = size * B`` and the same ``shuffle`` and seed, to rounding (the
sums are added in another order): the same rows in every step, the same updates.

Failure
-------
The inputs are checked on every rank, and the verdicts (and the shards' widths and
row counts, the layer sizes, optimizers and settings) exchanged before anything
changes: a bad shard on one rank is a ValueError or TypeError on every rank, naming
the rank. Divergence and Ctrl-C are decided from the summed buffer, so every rank
stops at the same step. Anything else that fails on one rank (an exception in its
training step) is printed with the rank's number and ends the whole job through
``comm.Abort``: the other ranks would otherwise wait forever in the next Allreduce.
"""
import hashlib
import math
import sys
import time
import traceback

import numpy as np

from . import _validation
from ._dispatch import kernels as _kernels
from ._training import SigintDeferred, Snapshot, epoch_order
from .history import History, TrainingDiverged
from .optimizers import Adam, Optimizer, optimizer_from_name

__all__ = ["fit_distributed", "shard_rows"]

# Slots after the gradient in the buffer that is summed each step.
_LOSS, _WEIGHT, _STOP = 0, 1, 2
_EXTRA = 3


def shard_rows(n_samples, rank, size, batch_size=32, shuffle=True):
    """The rows of a data set that rank ``rank`` of ``size`` should hold.

    With every rank passing ``X[shard_rows(len(X), rank, size, B, shuffle)]`` (and
    the same rows of y and sample_weight) to :func:`fit_distributed` with
    ``batch_size=B`` and that ``shuffle``, training equals ``Network.fit(X, y,
    batch_size=size * B, shuffle=shuffle)`` in one process.

    Parameters
    ----------
    n_samples : int
        Rows of the whole data set.
    rank, size : int
        This process's rank and the number of ranks (``comm.rank``, ``comm.size``).
    batch_size : int, default 32
        The local batch size B.
    shuffle : bool, default True
        True: contiguous blocks in rank order (``np.array_split``), since the
        shuffled order is drawn over the concatenated shards. False: rank r takes the
        r-th B rows of each global batch of ``size * B`` rows (and of the last,
        shorter one, what is left of it: ranks late in the order may get fewer rows,
        or none).

    Returns
    -------
    ndarray of shape (n_rows,), dtype intp
        Increasing row indices.
    """
    n = _validation.check_int(n_samples, "n_samples", 0)
    size = _validation.check_int(size, "size", 1)
    rank = _validation.check_int(rank, "rank", 0, size - 1)
    B = _validation.check_int(batch_size, "batch_size", 1)
    if _validation.check_bool(shuffle, "shuffle"):
        return np.array_split(np.arange(n, dtype=np.intp), size)[rank]
    rows = np.arange(n, dtype=np.intp)
    return rows[(rows % (size * B)) // B == rank]


def fit_distributed(net, X, y, comm, epochs=1, batch_size=32, optimizer=None,
                    shuffle=True, sample_weight=None, verbose=0):
    """Train ``net`` by synchronous data-parallel SGD over the ranks of ``comm``;
    ``net.fit(..., comm=comm)`` calls this.

    Called on every rank of ``comm`` with the same arguments except the data: each
    rank passes its own shard (see the module's notes for which rows make up each
    global batch, and :func:`shard_rows` for a split that reproduces single-process
    training).

    Parameters
    ----------
    net : Network
        This rank's replica (same layer sizes, activations, loss and dtype on every
        rank); its weights, generator and optimizer state are replaced by rank 0's.
    X : array-like of shape (n_rows, n_inputs)
        This rank's shard; n_rows may differ between ranks, the width may not.
    y : array-like
        The shard's targets, as ``Network.fit`` takes them.
    comm : mpi4py.MPI.Intracomm
        For example ``MPI.COMM_WORLD``.
    epochs : int, default 1
    batch_size : int, default 32
        Local rows per step; a global batch holds ``comm.size * batch_size``.
    optimizer : Optimizer or str, optional
        As in ``Network.fit``; the same class and hyperparameters on every rank.
    shuffle : bool, default True
    sample_weight : array-like of shape (n_rows,), optional
        The shard's weights; each step's loss and gradient are the weighted means
        over the global batch.
    verbose : int, default 0
        Above 0, rank 0 prints a line per epoch.

    Returns
    -------
    History
        The same on every rank: per epoch the weighted mean loss over all ranks'
        rows, and ``allreduce_time``, the seconds this rank spent in the Allreduce
        per epoch (waiting for the slowest rank included).

    Raises
    ------
    TypeError
        ``comm`` is not an mpi4py intracommunicator (on the rank that passed it).
    ValueError, TypeError
        A bad argument or shard on any rank, or ranks that disagree on the network,
        the optimizer or the settings: on every rank, naming the rank.
    TrainingDiverged, KeyboardInterrupt
        As in ``Network.fit``, on every rank at the same step.
    """
    MPI = _mpi_module(comm)
    args = _agree(net, X, y, sample_weight, comm, epochs, batch_size, shuffle,
                  optimizer)
    # From here on every rank has agreed to train: a failure on one rank alone
    # ends the job.
    try:
        busy = net._busy()
    except RuntimeError as exc:
        _abort(comm, exc)
    with busy:
        try:
            job = _Job(net, comm, MPI, args, verbose)
        except Exception as exc:   # noqa: BLE001 (any local fault: end the job)
            _abort(comm, exc)
        return job.run()


def _mpi_module(comm):
    """mpi4py's MPI module, if ``comm`` is one of its intracommunicators."""
    # A communicator object exists only once mpi4py.MPI is imported: no need to
    # import it (and start MPI) to refuse anything else.
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not isinstance(comm, MPI.Intracomm):
        raise TypeError("comm must be an mpi4py intracommunicator (e.g. "
                        f"mpi4py.MPI.COMM_WORLD); got {type(comm).__name__}. mpi4py "
                        'comes with pip install "nncore[mpi]"')
    if comm == MPI.COMM_NULL:
        raise TypeError("comm is MPI.COMM_NULL; pass a communicator this process is in")
    return MPI


def _local_check(net, X, y, sample_weight, epochs, batch_size, shuffle, optimizer):
    """This rank's inputs checked and converted: a dict, or the error's text."""
    from .network import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be an nncore.Network; got {type(net).__name__}")
    epochs = _validation.check_int(epochs, "epochs", 0)
    batch_size = _validation.check_int(batch_size, "batch_size", 1,
                                       _validation.BLAS_MAX)
    shuffle = _validation.check_bool(shuffle, "shuffle")
    if optimizer is None:
        optimizer = net.optimizer if net.optimizer is not None else Adam()
    elif isinstance(optimizer, str):
        optimizer = optimizer_from_name(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer must be an nncore optimizer, the name of one, or "
                        f"None; got {type(optimizer).__name__}")
    optimizer._check()
    owner = optimizer._owner() if optimizer._owner is not None else None
    if owner is not None and owner is not net:
        raise ValueError(f"this {type(optimizer).__name__} already holds the state of "
                         "another network; create a new optimizer for this network")
    Xc, T, labels, w = net._targets(X, y, sample_weight)
    return {"X": Xc, "T": T, "labels": labels, "w": w, "epochs": epochs,
            "batch_size": batch_size, "shuffle": shuffle, "optimizer": optimizer}


def _agree(net, X, y, sample_weight, comm, epochs, batch_size, shuffle, optimizer):
    """Check every rank's inputs and exchange the verdicts: each rank returns its
    converted inputs, or every rank raises (the same error, naming the ranks)."""
    rank = comm.Get_rank()
    local, error = None, None
    try:
        local = _local_check(net, X, y, sample_weight, epochs, batch_size, shuffle,
                             optimizer)
    except (TypeError, ValueError, MemoryError) as exc:
        error = exc
    try:
        shape = X.shape if hasattr(X, "shape") else np.shape(X)
        width = int(shape[1]) if len(shape) == 2 else None
    except (TypeError, ValueError, IndexError):   # _local_check has said why
        width = None
    mine = {"error": None if error is None else f"{type(error).__name__}: {error}",
            "width": width, "rows": local["X"].shape[0] if local else 0}
    if local is not None:
        opt = local["optimizer"]
        mine["settings"] = (
            tuple(int(s) for s in net._sizes), tuple(int(a) for a in net._acts),
            net.loss_name, net.dtype.name, local["epochs"], local["batch_size"],
            local["shuffle"], type(opt).__name__, repr(opt))
    everyone = comm.allgather(mine)
    problems = [f"rank {r}: {v['error']}" for r, v in enumerate(everyone) if v["error"]]
    widths = {r: v["width"] for r, v in enumerate(everyone)}
    if len(set(widths.values())) > 1:
        problems.insert(0, f"the shards of X differ in width (columns by rank: {widths})")
    if not problems:
        names = ("layer sizes", "activations", "loss", "dtype", "epochs", "batch_size",
                 "shuffle", "optimizer class", "optimizer")
        for i, name in enumerate(names):
            values = {r: v["settings"][i] for r, v in enumerate(everyone)}
            if len(set(values.values())) > 1:
                problems.append(f"the ranks disagree on the {name}: {values}")
    if problems:
        text = (f"fit_distributed (rank {rank} of {len(everyone)}): "
                + "; ".join(problems))
        if error is not None:
            raise type(error)(text) from error
        raise ValueError(text)
    local["rows_by_rank"] = [v["rows"] for v in everyone]
    return local


def _abort(comm, exc):
    """Print this rank's error and end every rank of the job."""
    rank, size = comm.Get_rank(), comm.Get_size()
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(f"nncore.distributed: rank {rank} of {size} failed; aborting "
                     f"all ranks so that none waits forever:\n{text}")
    sys.stderr.flush()
    comm.Abort(1)


def _replica_digest(net, optimizer):
    h = hashlib.blake2b(digest_size=16)
    for a in [net._flat, *optimizer.state_arrays()]:
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    h.update(str(optimizer.step).encode())
    return h.digest()


class _Job:
    """One fit_distributed call on one rank: the agreed inputs, the broadcast
    replica, the buffers, and the epoch loop."""

    def __init__(self, net, comm, MPI, args, verbose):
        self.net, self.comm, self.MPI, self.verbose = net, comm, MPI, verbose
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.X, self.T = args["X"], args["T"]
        self.labels, self.w = args["labels"], args["w"]
        self.epochs, self.batch_size = args["epochs"], args["batch_size"]
        self.shuffle, self.optimizer = args["shuffle"], args["optimizer"]
        counts = args["rows_by_rank"]
        self.n_total = sum(counts)
        self.lo = sum(counts[:self.rank])
        n, B = self.X.shape[0], self.batch_size
        self.G = self.size * B
        if self.shuffle:
            self.steps = -(-self.n_total // self.G)
            self.cap = min(self.G, n)
        else:
            self.steps = max(-(-c // B) for c in counts)
            self.cap = min(B, n)
        self._allocate(n)
        self._broadcast()

    def _allocate(self, n):
        net, dt, cap = self.net, self.net._dtype, self.cap
        gather = self.shuffle and self.steps > 1
        self.work = net._workspace(cap)
        self.buf = np.zeros(net.n_params + _EXTRA, dtype=dt)
        self.grads = self.buf[:net.n_params]
        self.perm = np.empty(self.n_total, np.intp) if gather else None
        if not gather:
            # Local batch b: rows b*B .. b*B+B-1 read in place (all rows in one
            # batch when shuffling has a single global batch to shuffle).
            B = self.batch_size if not self.shuffle else n
            self.starts = np.arange(self.steps, dtype=np.intp) * B
            self.counts = np.clip(n - self.starts, 0, B)

    def _broadcast(self):
        net, opt = self.net, self.optimizer
        opt._bind(net)
        net._optimizer = opt
        state = net.state() if self.rank == 0 else None
        state = self.comm.bcast(state, root=0)
        if self.rank != 0:
            net._restore_locked(state)

    def _epoch_plan(self):
        """(order, starts, counts): this rank's rows of each global batch."""
        if self.perm is None:
            return None, self.starts, self.counts
        perm = epoch_order(self.net._rng, self.n_total, self.perm)
        mine = (perm >= self.lo) & (perm < self.lo + self.X.shape[0])
        order = perm[mine] - self.lo
        counts = np.bincount(np.flatnonzero(mine) // self.G, minlength=self.steps)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
        return order, starts, counts

    def run(self):
        """The epochs; errors that every rank sees alike are raised here, anything
        else aborts the job."""
        history = History()
        history.allreduce_time = []
        self.net.history = history
        outcome = None
        try:
            outcome = self._epochs(history)
        except BaseException as exc:   # noqa: BLE001 (one rank alone: end the job)
            _abort(self.comm, exc)
        if outcome is not None:
            raise outcome
        return history

    def _epochs(self, history):
        """Train; return the exception to raise on every rank, or None."""
        net, opt = self.net, self.optimizer
        saved = Snapshot(net, opt)
        settings, s1, s2 = opt._kernel_args()
        with SigintDeferred() as sigint:
            for epoch in range(self.epochs):
                saved.take()
                loss_sum, weight_sum, comm_time, stop = self._epoch(
                    epoch, settings, s1, s2, sigint, saved)
                if isinstance(stop, BaseException):
                    return stop
                if stop == "interrupted":
                    # As Network.fit: the state after the last step, unless its
                    # update was not finite; the epoch is not recorded.
                    if not saved.live_is_finite():
                        saved.restore()
                    history.interrupted = True
                    sigint.fired = False
                    return KeyboardInterrupt()
                if not saved.live_is_finite():
                    saved.restore()
                    return TrainingDiverged.during(
                        "the parameters or optimizer state became NaN or infinite",
                        epoch, self.steps - 1, opt.lr)
                history.loss.append(loss_sum / weight_sum if weight_sum else math.nan)
                history.allreduce_time.append(comm_time)
                mismatch = self._check_replicas()
                if mismatch is not None:
                    return mismatch
                if self.verbose and self.rank == 0:
                    print(f"epoch {len(history.loss)}/{self.epochs}  "
                          f"loss {history.loss[-1]:.6f}", flush=True)
                if stop == "last step":
                    history.interrupted = True
                    sigint.fired = False
                    return KeyboardInterrupt()
        return None

    def _epoch(self, epoch, settings, s1, s2, sigint, saved):
        """One epoch's steps: (loss_sum, weight_sum, seconds in Allreduce, stop).

        stop: None; "interrupted" (Ctrl-C on some rank, seen by all in the summed
        buffer: stopped after that step) or "last step" (the same, at the epoch's
        last step); or the exception every rank raises."""
        net, opt, buf, comm = self.net, self.optimizer, self.buf, self.comm
        n_params = net.n_params
        order, starts, counts = self._epoch_plan()
        loss_code = net._loss_code
        SUM, IN_PLACE = self.MPI.SUM, self.MPI.IN_PLACE
        loss_sum = weight_sum = comm_time = 0.0
        for b in range(self.steps):
            _kernels.grad_sums(net._flat, buf, net._sizes, net._acts, loss_code,
                               self.X, self.T, self.labels, self.w, order,
                               starts[b], counts[b], self.work, self.cap)
            buf[n_params + _STOP] = 1.0 if sigint.fired else 0.0
            t0 = time.perf_counter()
            comm.Allreduce(IN_PLACE, buf, op=SUM)
            comm_time += time.perf_counter() - t0
            batch_loss = float(buf[n_params + _LOSS])
            batch_weight = float(buf[n_params + _WEIGHT])
            if not math.isfinite(batch_loss):
                saved.restore()
                return loss_sum, weight_sum, comm_time, TrainingDiverged.during(
                    "the loss became NaN or infinite", epoch, b, opt.lr)
            if batch_weight > 0:    # else every row of the global batch weighs 0
                _kernels.apply_gradient(net._flat, self.grads, s1, s2,
                                        1.0 / batch_weight, settings, opt.step + 1)
                opt.step += 1
                loss_sum += batch_loss
                weight_sum += batch_weight
            if buf[n_params + _STOP] > 0:
                stop = "last step" if b == self.steps - 1 else "interrupted"
                return loss_sum, weight_sum, comm_time, stop
        return loss_sum, weight_sum, comm_time, None

    def _check_replicas(self):
        digests = self.comm.allgather(_replica_digest(self.net, self.optimizer))
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            return RuntimeError(
                f"the replicas of ranks {differ} differ from rank 0's after the same "
                "updates: this MPI's Allreduce did not give every rank the same sums")
        return None
