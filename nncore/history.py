"""What ``fit`` records, and the error it raises when training diverges."""


class History:
    """What ``fit`` recorded.

    Attributes
    ----------
    loss : list of float
        Per completed epoch, the sample-weighted mean of the batch losses (each
        computed before that batch's update).
    epochs : int
        Number of completed epochs.
    interrupted : bool
        True when the call was stopped by KeyboardInterrupt.
    """

    def __init__(self):
        self.loss = []
        self.interrupted = False

    @property
    def history(self):
        """Keras-style dict view: ``{"loss": [...]}``."""
        return {"loss": list(self.loss)}

    @property
    def epochs(self):
        return len(self.loss)

    def __len__(self):
        return len(self.loss)

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
