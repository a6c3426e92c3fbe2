"""What ``fit`` records, and the error it raises when training diverges."""
import math


class History:
    """What ``fit`` recorded, one entry per completed epoch.

    Attributes
    ----------
    history : dict of str to list
        Per-epoch values, Keras-style, every list as long as :attr:`epoch`:

        ``"loss"``
            The sample-weighted mean of the batch losses, each computed before that
            batch's update.
        ``"accuracy"``
            For the classification losses: the sample-weighted share of the training
            rows classified right, each batch judged by its output before its update
            (as ``"loss"``; counted as :meth:`Network.evaluate` counts).
        ``"val_loss"``, ``"val_accuracy"``
            With validation data: the loss and (for classification losses) the
            accuracy on it at the end of the epoch, exactly as
            :meth:`Network.evaluate` reports them.
        ``"lr"``
            The learning rate the epoch's updates used.
        ``"time"``
            Seconds from the start of the epoch to the end of its validation.

        Keys that callbacks add to the logs of ``on_epoch_end`` are recorded too
        (NaN for the epochs whose logs lacked them).
    epoch : list of int
        The 0-based indices of the completed epochs of the ``fit`` call.
    interrupted : bool
        True when the call was stopped by KeyboardInterrupt.
    """

    def __init__(self):
        self.history = {"loss": []}
        self.epoch = []
        self.interrupted = False

    def record(self, logs):
        """Append one epoch: every value of ``logs`` under its key."""
        n = len(self.epoch)
        history = self.history
        for key, value in logs.items():
            if key in history:
                history[key].append(value)
            else:
                history[key] = [math.nan] * n + [value]
        if len(history) > len(logs):
            for column in history.values():
                if len(column) == n:          # a key this epoch's logs lacked
                    column.append(math.nan)
        self.epoch.append(n)

    @property
    def loss(self):
        """``history["loss"]``: list of float, one per epoch."""
        return self.history["loss"]

    @property
    def val_loss(self):
        """``history["val_loss"]``; an empty list when ``fit`` had no validation data."""
        return self.history.get("val_loss", [])

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(self.epoch)

    def __len__(self):
        return len(self.epoch)

    def plot(self, path=None):
        """Draw the loss curves (and the accuracy curves, when recorded).

        Needs matplotlib (``pip install "nncore[plot]"``).

        Parameters
        ----------
        path : str or path-like, optional
            Also write the figure there, as PNG.

        Returns
        -------
        matplotlib.figure.Figure
            One axes for ``loss``/``val_loss`` against the epoch (1-based), and a
            second one for ``accuracy``/``val_accuracy`` when either was recorded.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise ImportError('History.plot needs matplotlib: pip install "nncore[plot]" '
                              f"(or pip install matplotlib); {exc}") from None
        panels = [("loss", ["loss", "val_loss"])]
        if "accuracy" in self.history or "val_accuracy" in self.history:
            panels.append(("accuracy", ["accuracy", "val_accuracy"]))
        # A bare Figure, not pyplot: no GUI backend and no global figure list.
        fig = Figure(figsize=(6.4 * len(panels), 4.2), layout="constrained")
        x = [e + 1 for e in self.epoch]
        for i, (title, keys) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for key in keys:
                if key in self.history:
                    ax.plot(x, self.history[key], marker="." if len(x) < 30 else None,
                            label=key)
            ax.set_xlabel("epoch")
            ax.set_ylabel(title)
            ax.grid(alpha=0.3)
            ax.legend()
        if path is not None:
            fig.savefig(path, format="png")
        return fig

    def __repr__(self):
        last = f", last loss {self.loss[-1]:.6g}" if self.loss else ""
        flag = ", interrupted" if self.interrupted else ""
        return f"History({self.epochs} epochs{last}{flag})"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite during ``fit``.

    Attributes
    ----------
    epoch : int
        0-based epoch (of this ``fit`` call) in which it happened.
    batch : int
        0-based batch within that epoch.
    """

    def __init__(self, message, epoch, batch):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch

    @classmethod
    def during(cls, what, epoch, batch, lr):
        """The error for ``what`` going wrong in ``epoch``/``batch`` of a fit call."""
        return cls(
            f"{what} in epoch {epoch} (0-based, of this fit call), batch {batch}: the "
            "parameters and optimizer state are restored to the end of the last good "
            f"epoch. Try a lower learning rate (lr={lr:g}) or scale the inputs.",
            epoch, batch)
