"""Learning-rate schedules: functions ``(epoch, lr) -> lr`` for
:class:`nncore.callbacks.LearningRateScheduler`.

Each schedule is defined from a base rate ``lr0``, as PyTorch's schedulers are from
the optimizer's initial rate: the rate it is given at epoch 0, that is the
optimizer's ``lr`` when a ``fit`` call starts. So every ``fit`` call runs the
schedule from the rate it starts with, one schedule object can serve any optimizer,
and the rate at epoch ``e`` does not depend on what other callbacks did to it in
between. (A first call at an epoch other than 0 takes the rate it is given as
``lr0``.) To run a schedule again from the same rate, set ``optimizer.lr`` back.

>>> from nncore.schedules import step_decay
>>> schedule = step_decay(step_size=2, gamma=0.5)
>>> [schedule(e, 0.1) for e in range(5)]
[0.1, 0.1, 0.05, 0.05, 0.025]
"""
import math

from . import _validation


class _Schedule:
    """Remembers the base rate; subclasses give the rate at each epoch from it."""

    def __init__(self):
        self.lr0 = None

    def __call__(self, epoch, lr):
        epoch = _validation.check_int(epoch, "epoch", 0)
        if epoch == 0 or self.lr0 is None:
            self.lr0 = _validation.check_float(lr, "lr", low=0)
        return self.rate(epoch, self.lr0)

    def rate(self, epoch, lr0):
        raise NotImplementedError


class _StepDecay(_Schedule):
    def __init__(self, step_size, gamma):
        super().__init__()
        self.step_size = _validation.check_int(step_size, "step_size", 1)
        self.gamma = _validation.check_float(gamma, "gamma", low=0)

    def rate(self, epoch, lr0):
        return lr0 * self.gamma ** (epoch // self.step_size)

    def __repr__(self):
        return f"step_decay(step_size={self.step_size}, gamma={self.gamma})"


class _ExponentialDecay(_Schedule):
    def __init__(self, gamma):
        super().__init__()
        self.gamma = _validation.check_float(gamma, "gamma", low=0)

    def rate(self, epoch, lr0):
        return lr0 * self.gamma ** epoch

    def __repr__(self):
        return f"exponential_decay(gamma={self.gamma})"


class _CosineAnnealing(_Schedule):
    def __init__(self, T_max, eta_min, warmup_epochs):
        super().__init__()
        self.T_max = _validation.check_int(T_max, "T_max", 1)
        self.eta_min = _validation.check_float(eta_min, "eta_min", low=0)
        self.warmup_epochs = _validation.check_int(warmup_epochs, "warmup_epochs", 0)

    def rate(self, epoch, lr0):
        w = self.warmup_epochs
        if epoch < w:
            return lr0 * (epoch + 1) / (w + 1)
        t = min(epoch - w, self.T_max)
        cosine = (1 + math.cos(math.pi * t / self.T_max)) / 2
        return self.eta_min + (lr0 - self.eta_min) * cosine

    def __repr__(self):
        return (f"cosine_annealing(T_max={self.T_max}, eta_min={self.eta_min}, "
                f"warmup_epochs={self.warmup_epochs})")


def step_decay(step_size, gamma):
    """``lr(e) = lr0 * gamma ** (e // step_size)``: the rate times ``gamma`` every
    ``step_size`` epochs (PyTorch's ``StepLR``).

    Parameters
    ----------
    step_size : int
        >= 1.
    gamma : float
        >= 0 (below 1 to decay).

    Returns
    -------
    callable ``(epoch, lr) -> float``
    """
    return _StepDecay(step_size, gamma)


def exponential_decay(gamma):
    """``lr(e) = lr0 * gamma ** e``: the rate times ``gamma`` every epoch (PyTorch's
    ``ExponentialLR``).

    Parameters
    ----------
    gamma : float
        >= 0 (below 1 to decay).

    Returns
    -------
    callable ``(epoch, lr) -> float``
    """
    return _ExponentialDecay(gamma)


def cosine_annealing(T_max, eta_min=0.0, warmup_epochs=0):
    """A linear warm-up, then half a cosine from ``lr0`` down to ``eta_min``.

    With ``w = warmup_epochs``:

    - ``e < w``: ``lr(e) = lr0 * (e + 1) / (w + 1)`` (``lr0 / (w + 1)``, ...,
      ``lr0 * w / (w + 1)``);
    - ``e >= w``: ``lr(e) = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2``
      with ``t = min(e - w, T_max)``: ``lr0`` at ``e = w``, ``eta_min`` from
      ``e = w + T_max`` on (PyTorch's ``CosineAnnealingLR`` in closed form, held at
      its minimum instead of rising again after ``T_max``).

    Parameters
    ----------
    T_max : int
        Epochs of the cosine, >= 1.
    eta_min : float, default 0
        The final rate, >= 0.
    warmup_epochs : int, default 0
        >= 0.

    Returns
    -------
    callable ``(epoch, lr) -> float``
    """
    return _CosineAnnealing(T_max, eta_min, warmup_epochs)
