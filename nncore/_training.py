"""The machinery around the training loop of ``Network.fit``: deferring Ctrl-C to a
point where the network is consistent, snapshots that undo a diverged epoch, and the
number of batches per kernel call."""
import signal
import threading

import numpy as np

from ._dispatch import kernels as _kernels

# A chunk of training batches should take about this long (seconds): long enough that
# the call overhead vanishes, short enough that Ctrl-C is honoured promptly.
TRAIN_CHUNK_SECONDS = 0.05

# Batches per kernel call in fit after a network's first call, when set (an int
# >= 1); None sizes the calls by time. A private knob: the tests set it to cut epochs in
# chosen places and show that no result depends on where the cuts fall.
FIXED_CHUNK = None


class SigintDeferred:
    """Within the block, SIGINT sets a flag instead of raising at an arbitrary point.

    The training loop looks at the flag between kernel calls, where the network is
    consistent, and raises ``KeyboardInterrupt`` there. Only the main thread can
    install signal handlers; elsewhere this does nothing (SIGINT goes to the main
    thread anyway).
    """

    def __init__(self):
        self.fired = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            # SIGINT ignored, or handled outside Python (old is None): leave it be.
            if old is not None and old is not signal.SIG_IGN:
                try:
                    signal.signal(signal.SIGINT, self._handler)
                    self._old = old
                except ValueError:   # e.g. an embedded interpreter
                    self._old = None
        return self

    def _handler(self, signum, frame):
        self.fired = True

    def __exit__(self, exc_type, exc, tb):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        if self.fired and exc_type is None:
            # Ctrl-C after the last check (e.g. while the last epoch was recorded):
            # honour it here rather than lose it.
            self.fired = False
            raise KeyboardInterrupt
        return False

    def raise_if_fired(self):
        if self.fired:
            self.fired = False
            raise KeyboardInterrupt


class Snapshot:
    """The network's and its optimizer's state at the start of an epoch, in buffers
    allocated once per ``fit`` call, so that a diverged epoch can be undone."""

    def __init__(self, network, optimizer):
        self._net = network
        self._opt = optimizer
        self._saved = network.state()
        self._finite = np.empty(network.n_params, dtype=bool)

    def take(self):
        # The shuffling generator is part of it: a retried fit draws what the undone
        # one drew.
        self._net.state(out=self._saved)

    def restore(self):
        self._net._restore_locked(self._saved)   # fit holds the network

    def live_is_finite(self):
        """Whether the live parameters and optimizer state are all finite (checked
        once per epoch, into a buffer allocated once)."""
        for live in [self._net._flat, *self._opt.state_arrays()]:
            if not np.isfinite(live, out=self._finite).all():
                return False
        return True


def next_chunk(per_chunk, count, elapsed):
    """Batches for the next kernel call, so that it takes about TRAIN_CHUNK_SECONDS.

    The speed comes from the last call: ``count`` batches in ``elapsed`` seconds.
    ``count`` is what that call ran, which is less than ``per_chunk`` for the short
    last chunk of an epoch. Timing that chunk as a full one would overestimate the
    speed, and the next call would keep Ctrl-C waiting.
    """
    if FIXED_CHUNK is not None:
        return FIXED_CHUNK
    target = count * TRAIN_CHUNK_SECONDS / elapsed
    # Grow at most 8x a step: the first calls are timed with cold caches.
    return max(1, min(int(target), 8 * per_chunk, 1 << 20))


def epoch_order(rng, n, out=None):
    """The order in which an epoch of ``fit(shuffle=True)`` takes the rows.

    A uniformly random permutation of ``range(n)``, drawn from the NumPy Generator
    ``rng``. The draws are ``n`` 32-bit integers: the halves of ``ceil(n / 2)`` raw
    64-bit outputs of its bit generator. ``random_raw`` gives uniform bits for less
    than ``rng.integers``, whose cost shows in a tiny network's epoch. The kernels then
    shuffle by Fisher-Yates; ``_kernels.shuffle_into`` gives the exact rule.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    out : ndarray of shape (n,), intp, optional
        Written into when given.

    Returns
    -------
    ndarray of shape (n,), intp
    """
    draws = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
    if out is None:
        out = np.empty(n, dtype=np.intp)
    _kernels.shuffle_into(out, draws)
    return out
