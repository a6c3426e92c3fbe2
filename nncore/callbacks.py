"""Per-epoch hooks into ``Network.fit``, and the stock callbacks.

``fit(..., callbacks=[...])`` calls each callback's hooks, in list order, once at the
start of training, at the start and end of every epoch, and once at the end; never per
batch (the batches run in the compiled kernels). A hook may read and change the
network between epochs: its ``optimizer.lr`` (read again at the start of every
epoch), its weights, or ``network.stop_training = True`` to end training after the
current epoch.

The logs of ``on_epoch_end`` hold the epoch's ``"loss"`` (and ``"accuracy"`` for the
classification losses), ``"lr"`` and ``"time"``, and with validation data
``"val_loss"`` (and ``"val_accuracy"``); see :class:`nncore.History`. A hook may add
keys: later callbacks see them, and the history records them.

Example
-------
>>> from nncore.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint
>>> from nncore.schedules import cosine_annealing
>>> callbacks = [LearningRateScheduler(cosine_annealing(T_max=50)),
...              EarlyStopping(monitor="val_loss", patience=5),
...              ModelCheckpoint("best.npz", monitor="val_loss")]
"""
import csv
import math
import os
import string

from . import _validation

# The keys that fit itself may put in the logs (which of them it does is known when
# training begins: ``Callback.params["metrics"]``).
FIT_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")


class Callback:
    """Base class of the callbacks: every hook does nothing.

    Attributes
    ----------
    network : Network
        The network being trained; set by ``fit`` before ``on_train_begin``.
    params : dict
        Set with it: ``"epochs"``, ``"batch_size"``, ``"n_samples"`` (training rows),
        ``"n_batches"`` (per epoch), ``"verbose"`` and ``"metrics"`` (the keys ``fit``
        puts in the logs of ``on_epoch_end``).
    """

    network = None
    params = None

    def on_train_begin(self, logs=None):
        """Called once, before the first epoch. ``logs`` is an empty dict."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called before epoch ``epoch`` (0-based, of this fit call) trains."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after epoch ``epoch`` trained and was validated; ``logs`` holds its
        values (a dict the hook may add to)."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch (not when training ends by an exception);
        ``logs`` holds the last epoch's values."""

    def _check_logs(self, metrics):
        """Raise ValueError if this callback needs a value that fit will not log
        (``metrics``: the keys it logs). Called before anything changes."""


def _check_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


class _Monitored(Callback):
    """A callback that watches one value of the logs for improvement (the base of
    EarlyStopping and ReduceLROnPlateau, and of any callback that keeps a best)."""

    def __init__(self, monitor, min_delta=0.0, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value such as "
                            f"'val_loss'; got {monitor!r}")
        self.monitor = monitor
        self.min_delta = _validation.check_float(min_delta, "min_delta", low=0)
        self.mode = _check_mode(mode, monitor)

    def _check_logs(self, metrics):
        # Another key may come from a callback: _current checks it after an epoch.
        if self.monitor in FIT_KEYS and self.monitor not in metrics:
            hint = (" (pass validation_data or validation_split to fit)"
                    if self.monitor.startswith("val_") else "")
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which "
                             f"this fit call does not log{hint}; it logs {list(metrics)}")

    def _reset(self):
        """Start a new watch."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def _current(self, logs):
        """The monitored value of this epoch (a ValueError when the logs lack it: a
        key that is not there after the first epoch will never be)."""
        if self.monitor not in logs:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which "
                             f"is not in the logs; they hold {sorted(logs)}")
        return float(logs[self.monitor])

    def _improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(_Monitored):
    """Stop training when a logged value has stopped improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The key of the logs to watch.
    patience : int, default 10
        Stop after this many epochs in a row without improvement (0: at the first).
    min_delta : float, default 0
        An improvement must beat the best value so far by more than this.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto" means "max" for accuracies (a key
        containing "acc"), "min" otherwise.
    restore_best_weights : bool, default True
        At the end of training, put the network back as it was at the end of the
        best epoch: its parameters, its optimizer's state and step count, and its
        shuffling generator (:meth:`Network.state`), so that a later ``fit``
        continues exactly from there. The learning rate is a setting, not state: it
        stays as it is.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int or None
        Its 0-based epoch.
    stopped_epoch : int or None
        The epoch after which this callback stopped training (None: it did not).
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, mode="auto",
                 restore_best_weights=True):
        super().__init__(monitor, min_delta, mode)
        self.patience = _validation.check_int(patience, "patience", 0)
        self.restore_best_weights = _validation.check_bool(restore_best_weights,
                                                           "restore_best_weights")
        self.best_epoch = self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self._reset()
        self.best_epoch = self.stopped_epoch = None
        self._last_epoch = None
        self._best_state = None      # allocated at the first improvement of this call

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        self._last_epoch = epoch
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self._best_state = self.network.state(out=self._best_state)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs=None):
        if self._best_state is not None and self.best_epoch != self._last_epoch:
            self.network.restore(self._best_state)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class ReduceLROnPlateau(_Monitored):
    """Multiply the learning rate by ``factor`` when a logged value stops improving.

    After ``patience`` epochs in a row without improvement, ``lr`` becomes
    ``max(lr * factor, min_lr)`` and the count starts again; the new rate is used
    from the next epoch on.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        In (0, 1).
    patience : int, default 5
        >= 0 (0: reduce after every epoch without improvement).
    min_lr : float, default 0
        The rate is never reduced below this.
    min_delta : float, default 0
        An improvement must beat the best value so far by more than this.
    mode : {"auto", "min", "max"}, default "auto"
        As for :class:`EarlyStopping`.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=5, min_lr=0.0,
                 min_delta=0.0, mode="auto"):
        super().__init__(monitor, min_delta, mode)
        self.patience = _validation.check_int(patience, "patience", 0)
        self.factor = _validation.check_float(factor, "factor", low=0, high=1,
                                              low_open=True, high_open=True)
        self.min_lr = _validation.check_float(min_lr, "min_lr", low=0)

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if self._improved(current):
            self.best, self.wait = current, 0
            return
        self.wait += 1
        optimizer = self.network.optimizer
        if self.wait >= self.patience and optimizer.lr > self.min_lr:
            optimizer.lr = max(optimizer.lr * self.factor, self.min_lr)
            self.wait = 0

    def __repr__(self):
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, min_lr={self.min_lr})")


class ModelCheckpoint(_Monitored):
    """Save the network at the end of an epoch: when a logged value improves, or
    every epoch.

    Each save is :meth:`Network.save` (parameters, optimizer state and step,
    shuffling generator), written atomically: a crash or a full disk during a save
    leaves the previous checkpoint intact.

    Parameters
    ----------
    path : str or path-like
        Where to save. A str may hold ``str.format`` fields: ``{epoch}`` (1-based:
        the 0-based epoch of the fit call plus one) and any key of the epoch's logs,
        e.g. ``"model-{epoch:03d}-{val_loss:.4f}.npz"``.
    monitor : str, default "val_loss"
        The key of the logs compared between epochs when ``save_best_only``.
    save_best_only : bool, default True
        Save only when ``monitor`` improves on the best value this callback has
        saved (across fit calls: a later call saves only what beats it); False
        saves every epoch.
    mode : {"auto", "min", "max"}, default "auto"
        As for :class:`EarlyStopping`.

    Attributes
    ----------
    best : float
        The best value saved so far (inf, or -inf for "max", before the first).
    last_path : str or None
        Where the last save went.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto"):
        super().__init__(monitor, 0.0, mode)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or path-like; got {type(path).__name__}")
        self.path = path
        self.save_best_only = _validation.check_bool(save_best_only, "save_best_only")
        self._reset()
        self.last_path = None

    def _check_logs(self, metrics):
        if self.save_best_only:
            super()._check_logs(metrics)
        if isinstance(self.path, str):
            fields = {name.split(".")[0].split("[")[0]
                      for _, name, _, _ in string.Formatter().parse(self.path) if name}
            missing = sorted(f for f in fields if f in FIT_KEYS and f not in metrics)
            if missing:
                raise ValueError(f"ModelCheckpoint's path {self.path!r} names {missing}, "
                                 f"which this fit call does not log; it logs "
                                 f"{list(metrics)}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._current(logs)
            if not self._improved(current):        # NaN never improves
                return
            self.best = current
        path = self.path
        if isinstance(path, str):
            try:
                path = path.format(**{**logs, "epoch": epoch + 1})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"ModelCheckpoint's path {self.path!r} has a format "
                                 f"field the epoch cannot fill ({exc!r}); its fields "
                                 f"are epoch and {sorted(logs)}") from None
        self.network.save(path)
        self.last_path = os.fspath(path)

    def __repr__(self):
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only}, mode={self.mode!r})")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch: ``lr = schedule(epoch, lr)``.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> float``: the 0-based epoch of the fit call and the
        optimizer's current rate; returns the rate for that epoch (finite, >= 0).
        :mod:`nncore.schedules` provides step, exponential and cosine schedules.
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr; got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.network.optimizer
        lr = self.schedule(epoch, optimizer.lr)
        optimizer.lr = _validation.check_float(
            lr, f"the learning rate that schedule {self.schedule!r} gave for epoch "
                f"{epoch}", low=0)

    def __repr__(self):
        return f"LearningRateScheduler({self.schedule!r})"


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file.

    The first row names the columns: ``epoch`` (0-based), then the keys of the first
    epoch's logs. Each row is written and the file closed at the end of its epoch,
    so the file holds every completed epoch whatever stops training.

    Parameters
    ----------
    path : str or path-like
    separator : str, default ","
    append : bool, default False
        Add to an existing file (without a second header row) instead of
        replacing it.
    """

    def __init__(self, path, separator=",", append=False):
        self.path = os.fspath(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character; got {separator!r}")
        self.separator = separator
        self.append = _validation.check_bool(append, "append")
        self._keys = None

    def on_train_begin(self, logs=None):
        self._keys = None
        if not self.append:
            open(self.path, "w").close()       # (fails here, before training, if it can)

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if self._keys is None:
                self._keys = list(logs)
                if f.tell() == 0:
                    writer.writerow(["epoch", *self._keys])
            writer.writerow([epoch, *(logs.get(k, "") for k in self._keys)])

    def __repr__(self):
        return f"CSVLogger({self.path!r})"


class LambdaCallback(Callback):
    """A callback made of functions given as arguments (each optional).

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, optional
        ``f(epoch, logs)``.
    on_train_begin, on_train_end : callable, optional
        ``f(logs)``.

    Example
    -------
    >>> from nncore.callbacks import LambdaCallback
    >>> show = LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None):
        given = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end}
        for name, function in given.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"{name} must be a function or None; got "
                                f"{type(function).__name__}")
            setattr(self, name, function)     # the instance's hook replaces the no-op
