"""ModelCheckpoint: save the network during ``fit``, every epoch or when the monitored
value improves. It implements the per-epoch hooks of the callback protocol
(``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch,
logs)``, ``on_train_end(logs)``, the attribute ``network`` set before training)."""
from __future__ import annotations

import math
import os

_MODES = ("auto", "min", "max")


class ModelCheckpoint:
    """Save the network to ``path`` at the end of an epoch.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save (see :meth:`nncore.Network.save`; written atomically, so an
        interrupted save never damages the previous checkpoint). A str may hold
        ``str.format`` fields: ``{epoch}`` (1-based, as counted in ``logs``' epoch
        argument plus one) and any key of the epoch's logs, e.g.
        ``"model-{epoch:03d}-{val_loss:.4f}.npz"``.
    monitor : str, default "val_loss"
        The logs' key compared between epochs when ``save_best_only``.
    save_best_only : bool, default True
        Save only when ``monitor`` improves on the best value seen so far (by this
        callback, across ``fit`` calls); False saves every epoch.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto" means higher for keys that
        contain "acc" and lower otherwise.

    Attributes
    ----------
    best : float
        The best monitored value saved so far (inf or -inf before the first).
    last_path : str or None
        The path of the last save.
    """

    network = None

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss",
                 save_best_only: bool = True, mode: str = "auto") -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a string (a key of the logs); got "
                            f"{monitor!r}")
        if not isinstance(save_best_only, bool):
            raise TypeError(f"save_best_only must be True or False; got "
                            f"{save_best_only!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
        self.path = path
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.higher_is_better = mode == "max" or (mode == "auto" and "acc" in monitor)
        self.best = -math.inf if self.higher_is_better else math.inf
        self.last_path = None

    def on_train_begin(self, logs=None):
        """Nothing to prepare: the best value is kept across fit calls."""

    def on_epoch_begin(self, epoch, logs=None):
        """Nothing to do before an epoch."""

    def on_epoch_end(self, epoch, logs=None):
        """Save when due; ``epoch`` is 0-based, ``logs`` the epoch's values."""
        logs = dict(logs or {})
        if self.save_best_only:
            if self.monitor not in logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r}, which the "
                                 f"epoch's logs do not hold (they hold {sorted(logs)}); "
                                 "pass validation data for val_ keys, or another monitor")
            value = float(logs[self.monitor])
            better = value > self.best if self.higher_is_better else value < self.best
            if not better:      # NaN never improves
                return
            self.best = value
        path = self.path
        if isinstance(path, str):
            try:
                path = path.format(**{**logs, "epoch": epoch + 1})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"ModelCheckpoint's path {self.path!r} has a format "
                                 f"field the epoch cannot fill ({exc!r}); its fields "
                                 f"are epoch and {sorted(logs)}") from None
        self.network.save(path)
        self.last_path = str(path)

    def on_train_end(self, logs=None):
        """Nothing to finish: every save was complete when it returned."""

    def __repr__(self):
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only!r})")
