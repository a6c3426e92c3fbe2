"""The epoch loop of ``Network.fit``: one ``Trainer`` per call.

The trainer checks and converts every argument once, before anything changes; then,
holding the network, it allocates the call's buffers and runs the epochs. An epoch is
a few calls of the training kernel on chunks of batches (sized so that one call takes
about ``TRAIN_CHUNK_SECONDS``: Ctrl-C and the progress bar are served between calls),
one forward pass over the validation rows, and the callbacks. Python does nothing
per batch.
"""
import math
import time

import numpy as np

from . import _validation
from ._codes import Status
from ._dispatch import kernels as _kernels
from ._fit_data import fit_rows
from ._progress import check_verbose, reporter
from ._team import TeamChooser
from ._training import SigintDeferred, Snapshot, epoch_order, next_chunk
from .callbacks import Callback
from .history import History, TrainingDiverged
from .optimizers import Adam, Optimizer, optimizer_from_name


def classifies(network):
    """Whether ``network``'s loss is a classification loss: its training logs an
    accuracy."""
    return network.loss_name in ("cross_entropy", "binary_cross_entropy")


def log_keys(network, validating):
    """The keys of every epoch's logs when ``network`` trains (``validating``: with
    validation rows), in the order they are logged."""
    keys = ["loss", "accuracy"] if classifies(network) else ["loss"]
    if validating:
        keys += ["val_loss", "val_accuracy"] if classifies(network) else ["val_loss"]
    return keys + ["lr", "time"]


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of nncore.callbacks.Callback; got "
                        f"{type(callbacks).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be an nncore.callbacks.Callback "
                            f"(subclass Callback, or use LambdaCallback); got "
                            f"{type(cb).__name__}")
    return list(callbacks)


def _check_optimizer(network, optimizer):
    if optimizer is None:
        optimizer = network.optimizer if network.optimizer is not None else Adam()
    elif isinstance(optimizer, str):
        optimizer = optimizer_from_name(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer must be an nncore optimizer (SGD, Adam, AdamW, "
                        "RMSprop, Rprop), the name of one, or None; got "
                        f"{type(optimizer).__name__}")
    optimizer._check()
    return optimizer


class Trainer:
    """One ``fit`` call: its checked inputs, buffers, epochs and history.

    Constructing it checks every argument (raising ``ValueError``/``TypeError``
    before anything changes); :meth:`run` trains. See ``Network.fit`` for the
    arguments.
    """

    def __init__(self, network, X, y, epochs=1, batch_size=32, optimizer=None,
                 shuffle=True, sample_weight=None, class_weight=None,
                 validation_data=None, validation_split=0.0, callbacks=None, verbose=0,
                 clip_norm=None):
        self.net = network
        self.epochs = _validation.check_int(epochs, "epochs", 0)
        batch_size = _validation.check_int(batch_size, "batch_size", 1)
        self.shuffle = _validation.check_bool(shuffle, "shuffle")
        self.verbose = check_verbose(verbose)
        self.callbacks = _check_callbacks(callbacks)
        self.optimizer = _check_optimizer(network, optimizer)
        self.clip_norm = None if clip_norm is None else _validation.check_float(
            clip_norm, "clip_norm", low=0, low_open=True)
        self.rows, self.val = fit_rows(network, X, y, sample_weight, class_weight,
                                       validation_data, validation_split)
        self.n = self.rows.n
        self.B = min(batch_size, self.n)
        _validation.check_int(self.B, "batch_size (rows per batch)", 1,
                              _validation.BLAS_MAX)
        self.n_batches = -(-self.n // self.B)
        for cb in self.callbacks:
            cb._check_logs(self.metrics())

    @property
    def classifies(self):
        """Whether the loss is a classification loss (accuracy is logged)."""
        return classifies(self.net)

    def metrics(self):
        """The keys this call puts in every epoch's logs."""
        return log_keys(self.net, self.val is not None)

    # ------------------------------------------------------------------ the call
    def run(self):
        """Train; return the History (also kept as ``network.history``)."""
        net = self.net
        with net._busy():
            if net._fitting:        # (the same thread: _busy refuses any other)
                raise RuntimeError("fit was called from a callback of a fit call on "
                                   "the same network; train it after that call returns")
            self._prepare()
            self.history = net.history = History()
            net._fitting = True
            try:
                with SigintDeferred() as self.sigint:
                    self._train()
            except KeyboardInterrupt:
                self.history.interrupted = True
                raise
            finally:
                net._fitting = False
                net._batches_per_chunk = self.per_chunk
        return self.history

    def _prepare(self):
        """The call's buffers; the optimizer bound. (May fail: before any change.)"""
        net = self.net
        if not np.isfinite(net._flat).all():
            raise ValueError("the network's parameters hold NaN or inf (written into "
                             "net.params?): training cannot start from them; "
                             "create a new Network")
        self.work = net._workspace(self.B)
        self.gather = self.shuffle and self.n_batches > 1
        self.order_buf = np.empty(self.n if self.gather else 0, np.intp)
        # The kernels add each batch's weighted count of right answers here.
        self.hits = np.zeros(1) if self.classifies else None
        val = self.val
        if val is not None:
            self.val_out = np.empty((val.n, net.n_outputs), net.dtype)
            self.val_work = net._evaluation_workspace(val.n)
            self.val_weights = None if val.w is None else val.w.astype(np.float64)
        self.optimizer._bind(net)
        net._optimizer = self.optimizer
        self.saved = Snapshot(net, self.optimizer)
        self.per_chunk = getattr(net, "_batches_per_chunk", 1)
        # The team's measurements carry over from the network's last fit, unless the
        # thread limit changed since.
        full = _kernels.team_size()
        self.team = getattr(net, "_team", None)
        if self.team is None or self.team.full != full:
            self.team = net._team = TeamChooser(full)
        self.progress = reporter(self.verbose, self.epochs, self.n_batches, self.B,
                                 self.n)
        self._configure()

    def _configure(self):
        """The optimizer's settings as the kernel takes them: read once per call, and
        again when a callback changed the learning rate."""
        self.optimizer._check()
        self.lr = self.optimizer.lr
        self.settings, self.s1, self.s2 = self.optimizer._kernel_args()
        self.settings["clip_norm"] = self.clip_norm or 0.0

    def _train(self):
        net, callbacks = self.net, self.callbacks
        net.stop_training = False
        params = {"epochs": self.epochs, "batch_size": self.B, "n_samples": self.n,
                  "n_batches": self.n_batches, "verbose": self.verbose,
                  "metrics": self.metrics()}
        for cb in callbacks:
            cb.network, cb.params = net, dict(params)
        with self.sigint.undeferred():
            for cb in callbacks:
                cb.on_train_begin({})
        logs = {}
        for epoch in range(self.epochs):
            logs = self._epoch(epoch)
            if net.stop_training:
                break
        with self.sigint.undeferred():
            for cb in callbacks:
                cb.on_train_end(logs)
        if self.progress is not None:
            self.progress.close()

    def _epoch(self, epoch):
        """Train, validate and report one epoch; return its logs."""
        if self.callbacks:
            with self.sigint.undeferred():     # (a hook may be interrupted anywhere)
                for cb in self.callbacks:
                    cb.on_epoch_begin(epoch, {})
        if self.optimizer.lr != self.lr:
            self._configure()
        start = time.perf_counter()
        self.saved.take()
        logs = self._train_epoch(epoch)
        trained = time.perf_counter() - start
        if self.val is not None:
            logs["val_loss"], accuracy = self._validate()
            if accuracy is not None:
                logs["val_accuracy"] = accuracy
        logs["lr"] = self.lr
        logs["time"] = time.perf_counter() - start
        if self.callbacks:
            try:
                with self.sigint.undeferred():
                    for cb in self.callbacks:
                        cb.on_epoch_end(epoch, logs)
            finally:
                # Whatever a hook raised, the epoch is complete: record it.
                self.history.record(logs)
        else:
            self.history.record(logs)
        if self.progress is not None:
            self.progress.epoch_end(epoch, logs, trained)
        # Ctrl-C during the epoch's last chunk or its validation: the epoch is
        # complete and recorded; stop here.
        self.sigint.raise_if_fired()
        return logs

    def _validate(self):
        """(loss, accuracy or None) on the validation rows."""
        return self.net._evaluate_checked(self.val.X, self.val.T, self.val.labels,
                                          self.val.w, self.val_out, self.val_weights,
                                          self.val_work)

    def _train_epoch(self, epoch):
        """The epoch's batches, a chunk per kernel call; return the epoch's logs so
        far: its loss and (classification) accuracy, each batch's taken before its
        update."""
        n_batches, sigint, progress = self.n_batches, self.sigint, self.progress
        live = progress is not None and progress.live
        if progress is not None:
            progress.epoch_begin(epoch)
        order = None                     # rows in their stored order
        if self.gather:
            order = epoch_order(self.net._rng, self.n, self.order_buf)
        loss_sum = weight_sum = 0.0
        if self.hits is not None:
            self.hits[0] = 0.0
        batch = 0
        per_chunk = self.per_chunk
        while batch < n_batches:
            count = min(per_chunk, n_batches - batch)
            threads = self.team.pick()
            count = self.team.batches(count)
            t0 = time.perf_counter()
            loss_sum, weight_sum, done, status = self._run_batches(
                order, batch, count, loss_sum, weight_sum, threads)
            elapsed = time.perf_counter() - t0
            self.team.record(threads, done, elapsed)
            batch += done
            if status != Status.OK:
                self.saved.restore()
                raise TrainingDiverged.during("the loss became NaN or infinite", epoch,
                                              batch, self.lr)
            if done == count and elapsed > 0 and not self.team.probing:
                per_chunk = next_chunk(per_chunk, count, elapsed)
            self.per_chunk = per_chunk
            if sigint.fired and batch < n_batches:
                self._interrupted()
            if live and weight_sum:
                progress.update(batch, loss_sum / weight_sum)
        if not self.saved.live_is_finite():
            # The loss was finite, but the last updates were not.
            self.saved.restore()
            raise TrainingDiverged.during(
                "the parameters or optimizer state became NaN or infinite (the loss "
                "itself was still finite)", epoch, n_batches - 1, self.lr)
        logs = {"loss": loss_sum / weight_sum if weight_sum else math.nan}
        if self.hits is not None:
            logs["accuracy"] = self.hits[0] / weight_sum if weight_sum else math.nan
        return logs

    def _run_batches(self, order, first, count, loss_sum, weight_sum, threads=0):
        """The one call of the training kernel: batches ``first`` .. ``first + count
        - 1`` of the epoch, the sums carried through, on at most ``threads`` threads
        (0: the full team). Returns (loss_sum, weight_sum, batches done, status)."""
        net, rows, opt = self.net, self.rows, self.optimizer
        loss_sum, weight_sum, done, steps, status = _kernels.train_batches(
            net._flat, net._grads, net._sizes, net._acts, net._loss_code,
            net._loss_params, rows.X, rows.T, rows.labels, rows.w, order, self.work,
            self.B, first, count, self.settings, self.s1, self.s2, opt.step, loss_sum,
            weight_sum, dropout=net._dropout, seed=net._dropout_seed, hits=self.hits,
            threads=threads)
        opt.step += steps
        return loss_sum, weight_sum, done, status

    def _interrupted(self):
        """Ctrl-C seen between kernel calls: keep the state after the last completed
        batch (unless its update was not finite: then the start of the epoch, as for
        divergence), and raise KeyboardInterrupt."""
        if not self.saved.live_is_finite():
            self.saved.restore()
        self.sigint.raise_if_fired()
