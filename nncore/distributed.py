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
from ._progress import check_verbose
from ._trainer import Trainer
from ._training import epoch_order
from .history import TrainingDiverged
from .optimizers import LBFGS

__all__ = ["fit_distributed", "shard_rows"]

# Slots after the gradient in the buffer that is summed each step: grad_sums's
# loss, weight and hits, then the stop flag.
_LOSS, _WEIGHT, _HITS, _STOP = 0, 1, 2, 3
_EXTRA = 4
# Steps between two updates of rank 0's progress bar.
_PROGRESS_STEPS = 64


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
                    shuffle=True, sample_weight=None, class_weight=None,
                    validation_data=None, validation_split=0.0, callbacks=None,
                    verbose=0, clip_norm=None):
    """Train ``net`` by synchronous data-parallel SGD over the ranks of ``comm``;
    ``net.fit(..., comm=comm)`` calls this.

    Called on every rank of ``comm`` with the same settings; each rank passes its own
    shard of the data (see the module's notes for which rows make up each global
    batch, and :func:`shard_rows` for a split that reproduces single-process
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
    epochs, optimizer, shuffle, sample_weight, callbacks
        As in ``Network.fit``; the same epochs, optimizer class and hyperparameters
        and shuffle on every rank. Callbacks run on every rank with the same logs
        (every value in them is summed over the ranks, but ``time``); training stops
        when a callback stops it on any rank. Give callbacks that write files
        (``CSVLogger``, ``ModelCheckpoint``) to rank 0 only.
    batch_size : int, default 32
        Local rows per step; a global batch holds ``comm.size * batch_size``.
    class_weight : None or dict
        As in ``Network.fit``; ``"balanced"`` would weigh the classes by this
        shard's counts, so it is refused: pass the weights of the whole data set.
    validation_data, validation_split
        Each rank's own validation rows (all ranks or none); ``val_loss`` and
        ``val_accuracy`` are over all of them.
    verbose : {0, 1, 2}
        Rank 0 reports; the others print nothing.
    clip_norm : float, optional
        As in ``Network.fit``: the summed (global batch's) gradient is clipped.
        ``LBFGS``, a full-batch method, is refused with a communicator.

    Returns
    -------
    History
        The same on every rank, as ``Network.fit`` returns it, with one more key:
        ``"allreduce_time"``, the seconds this rank spent in the Allreduce per epoch
        (waiting for the slowest rank included).

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
    trainer = _agree(comm, lambda: _DistributedTrainer(
        net, comm, MPI, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        shuffle=shuffle, sample_weight=sample_weight, class_weight=class_weight,
        validation_data=validation_data, validation_split=validation_split,
        callbacks=callbacks, verbose=verbose, clip_norm=clip_norm))
    # From here on every rank has agreed to train: a failure on one rank alone
    # ends the job.
    return trainer.run()


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


def _agree(comm, build):
    """Build this rank's trainer (which checks and converts its inputs) and exchange
    the verdicts: every rank returns its trainer, or every rank raises (the same
    error, naming the ranks)."""
    rank = comm.Get_rank()
    trainer, error = None, None
    try:
        trainer = build()
    except (TypeError, ValueError, MemoryError) as exc:
        error = exc
    everyone = comm.allgather({
        "error": None if error is None else f"{type(error).__name__}: {error}",
        "settings": None if trainer is None else trainer.settings()})
    problems = [f"rank {r}: {v['error']}" for r, v in enumerate(everyone) if v["error"]]
    if not problems:
        widths = {r: v["settings"]["width"] for r, v in enumerate(everyone)}
        if len(set(widths.values())) > 1:
            problems.append("the shards of X differ in width (columns by rank: "
                            f"{widths})")
        for name in everyone[0]["settings"]:
            values = {r: v["settings"][name] for r, v in enumerate(everyone)}
            if name not in ("width", "rows") and len(set(values.values())) > 1:
                problems.append(f"the ranks disagree on the {name}: {values}")
    if problems:
        text = (f"fit_distributed (rank {rank} of {len(everyone)}): "
                + "; ".join(problems))
        if error is not None:
            raise type(error)(text) from error
        raise ValueError(text)
    trainer.rows_by_rank = [v["settings"]["rows"] for v in everyone]
    return trainer


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


class _DistributedTrainer(Trainer):
    """The training loop of ``Network.fit`` with each step's gradient summed over
    the ranks (``_train_epoch``), validation summed over them (``_validate``) and
    the decision to stop agreed (``_epoch``); everything else (checks, callbacks,
    history, progress) is the Trainer's."""

    def __init__(self, net, comm, MPI, X, y, *, batch_size, class_weight, verbose,
                 **kwargs):
        from .network import Network
        if not isinstance(net, Network):
            raise TypeError(f"net must be an nncore.Network; got {type(net).__name__}")
        if isinstance(class_weight, str):
            raise ValueError("class_weight='balanced' would weigh the classes by this "
                             "rank's counts; with comm, pass a dict {label: weight} "
                             "computed over the whole data set")
        self.comm, self.MPI = comm, MPI
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.local_B = _validation.check_int(batch_size, "batch_size", 1,
                                             _validation.BLAS_MAX)
        verbose = check_verbose(verbose)
        super().__init__(net, X, y, batch_size=batch_size, class_weight=class_weight,
                         verbose=verbose if self.rank == 0 else 0, **kwargs)
        self._verbose_asked = verbose
        opt = self.optimizer
        if net._dropout is not None:
            raise ValueError("dropout with comm is not supported: the ranks' masks would "
                             "not be one process's; train without dropout layers")
        if isinstance(opt, LBFGS):
            raise ValueError("LBFGS trains on the whole data set at once; with comm, "
                             "use a minibatch optimizer (SGD, Adam, AdamW, RMSprop, Rprop)")
        owner = opt._owner() if opt._owner is not None else None
        if owner is not None and owner is not net:
            raise ValueError(f"this {type(opt).__name__} already holds the state of "
                             "another network; create a new optimizer for this network")
        self.collective = None       # the exception every rank raises alike
        self.collective_interrupt = False
        self.allreduce_times = []

    def settings(self):
        """What every rank must agree on (and its shard's width and rows)."""
        net, opt = self.net, self.optimizer
        return {"width": self.rows.X.shape[1], "rows": self.rows.n,
                "layer sizes": tuple(int(s) for s in net._sizes),
                "activations": tuple(int(a) for a in net._acts),
                "loss": net.loss_name, "dtype": net.dtype.name, "epochs": self.epochs,
                "batch_size": self.local_B, "shuffle": self.shuffle,
                "verbose": self._verbose_asked, "optimizer class": type(opt).__name__,
                "optimizer": repr(opt), "validation": self.val is not None}

    # ------------------------------------------------------------------ set-up
    def _prepare(self):
        super()._prepare()             # (binds the optimizer)
        net, counts = self.net, self.rows_by_rank
        if self.rank != 0:
            net._restore_locked(self.comm.bcast(None, root=0))
        else:
            self.comm.bcast(net.state(), root=0)
        self._configure()
        n, B = self.rows.n, self.local_B
        self.n_total, self.lo = sum(counts), sum(counts[:self.rank])
        self.G = self.size * B
        if self.shuffle:
            self.steps, self.cap = -(-self.n_total // self.G), min(self.G, n)
        else:
            self.steps, self.cap = max(-(-c // B) for c in counts), min(B, n)
        self._allocate(n)

    def _allocate(self, n):
        net, dt, cap = self.net, self.net.dtype, self.cap
        gather = self.shuffle and self.steps > 1
        self.dwork = net._workspace(cap)
        self.buf = np.zeros(net.n_params + _EXTRA, dtype=dt)
        self.grads = self.buf[:net.n_params]
        self.perm = np.empty(self.n_total, np.intp) if gather else None
        if not gather:
            # Local batch b: rows b*B .. b*B+B-1 read in place (all rows in one
            # batch when shuffling has a single global batch to shuffle).
            B = self.local_B if not self.shuffle else n
            self.starts = np.arange(self.steps, dtype=np.intp) * B
            self.counts = np.clip(n - self.starts, 0, B)

    def _epoch_plan(self):
        """(order, starts, counts): this rank's rows of each global batch."""
        if self.perm is None:
            return None, self.starts, self.counts
        perm = epoch_order(self.net._rng, self.n_total, self.perm)
        mine = (perm >= self.lo) & (perm < self.lo + self.rows.n)
        order = perm[mine] - self.lo
        counts = np.bincount(np.flatnonzero(mine) // self.G, minlength=self.steps)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
        return order, starts, counts

    # ------------------------------------------------------------------ the loop
    def run(self):
        try:
            return super().run()
        except BaseException as exc:   # noqa: BLE001 (one rank alone: end the job)
            if exc is self.collective or (self.collective_interrupt and
                                          isinstance(exc, KeyboardInterrupt)):
                raise
            _abort(self.comm, exc)

    def _raise_on_every_rank(self, exc):
        self.collective = exc
        raise exc

    def _epoch(self, epoch):
        self.comm_time = 0.0
        logs = super()._epoch(epoch)
        # (after the History recorded the logs: it pads a key the logs lack)
        self.allreduce_times.append(self.comm_time)
        self.history.history["allreduce_time"] = list(self.allreduce_times)
        stop = self.comm.allreduce(int(bool(self.net.stop_training)), op=self.MPI.MAX)
        self.net.stop_training = bool(stop)
        digests = self.comm.allgather(_replica_digest(self.net, self.optimizer))
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            self._raise_on_every_rank(RuntimeError(
                f"the replicas of ranks {differ} differ from rank 0's after the same "
                "updates (a callback that changed the optimizer on some ranks only, or "
                "an MPI whose Allreduce does not give every rank the same sums)"))
        return logs

    def _validate(self):
        loss, accuracy = super()._validate()
        w = float(self.val_weights.sum()) if self.val_weights is not None else self.val.n
        sums = np.array([loss * w, (accuracy or 0.0) * w, w])
        self.comm.Allreduce(self.MPI.IN_PLACE, sums, op=self.MPI.SUM)
        return sums[0] / sums[2], (None if accuracy is None else sums[1] / sums[2])

    def _train_epoch(self, epoch):
        """This epoch's steps; its logs so far (loss and, for the classification
        losses, accuracy: each batch's before its update), over every rank's rows."""
        net, opt, buf, comm = self.net, self.optimizer, self.buf, self.comm
        n_params, rows = net.n_params, self.rows
        order, starts, counts = self._epoch_plan()
        SUM, IN_PLACE = self.MPI.SUM, self.MPI.IN_PLACE
        progress = self.progress if self.progress is not None and self.progress.live \
            else None
        if self.progress is not None:
            self.progress.epoch_begin(epoch)
        loss_sum = weight_sum = hits = 0.0
        for b in range(self.steps):
            _kernels.grad_sums(net._flat, buf, net._sizes, net._acts, net._loss_code,
                               net._loss_params, rows.X, rows.T, rows.labels, rows.w,
                               order, starts[b], counts[b], self.dwork, self.cap)
            buf[n_params + _STOP] = 1.0 if self.sigint.fired else 0.0
            t0 = time.perf_counter()
            comm.Allreduce(IN_PLACE, buf, op=SUM)
            self.comm_time += time.perf_counter() - t0
            batch_loss = float(buf[n_params + _LOSS])
            batch_weight = float(buf[n_params + _WEIGHT])
            if not math.isfinite(batch_loss):
                self.saved.restore()
                self._raise_on_every_rank(TrainingDiverged.during(
                    "the loss became NaN or infinite", epoch, b, self.lr))
            if batch_weight > 0:    # else every row of the global batch weighs 0
                _kernels.apply_gradient(net._flat, self.grads, self.s1, self.s2,
                                        1.0 / batch_weight, self.settings, opt.step + 1)
                opt.step += 1
                loss_sum += batch_loss
                weight_sum += batch_weight
                hits += float(buf[n_params + _HITS])
            if buf[n_params + _STOP] > 0 and b < self.steps - 1:
                self._stop_on_every_rank()
            if progress is not None and weight_sum and b % _PROGRESS_STEPS == 0:
                progress.update(b + 1, loss_sum / weight_sum)
        if not self.saved.live_is_finite():
            self.saved.restore()
            self._raise_on_every_rank(TrainingDiverged.during(
                "the parameters or optimizer state became NaN or infinite (the loss "
                "itself was still finite)", epoch, self.steps - 1, self.lr))
        if buf[n_params + _STOP] > 0:
            # Ctrl-C in the last step: the epoch is complete; the Trainer records it,
            # then raises KeyboardInterrupt (on every rank).
            self.collective_interrupt = True
            self.sigint.fired = True
        logs = {"loss": loss_sum / weight_sum if weight_sum else math.nan}
        if self.classifies:
            logs["accuracy"] = hits / weight_sum if weight_sum else math.nan
        return logs

    def _stop_on_every_rank(self):
        """Ctrl-C on some rank, seen by all in the summed buffer: as Network.fit, the
        state after the last step, unless its update was not finite."""
        if not self.saved.live_is_finite():
            self.saved.restore()
        self.sigint.fired = False
        self._raise_on_every_rank(KeyboardInterrupt())
