"""The frameworks the benchmarks compare: one module each, one interface.

A peer's ``make(name, cfg, X, y, dtype, params, seed)`` returns a :class:`Trainer`
that trains ``cfg`` on (X, y) starting from ``params`` (``[W0, b0, ...]``, W of shape
(fan_in, fan_out)). Every module imports its framework only inside ``make``, through
:func:`require`, so a framework that is not installed is a :class:`SkipPeer` with a
one-line reason, never an ImportError at start-up.
"""
import importlib
import importlib.util
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

INSTALL_HINT = 'pip install ".[bench]"'


class SkipPeer(Exception):
    """The peer cannot run here; the message says why."""


@dataclass(frozen=True)
class Peer:
    label: str       # column header in the reports
    module: str      # benches.peers.<module>
    requires: str    # the import name whose absence skips the peer


PEERS = {
    "nncore": Peer("nncore", "nncore_peer", "nncore"),
    "numpy": Peer("NumPy (nncore.reference)", "numpy_peer", "nncore"),
    "torch": Peer("PyTorch eager", "torch_peer", "torch"),
    "torch-fused": Peer("PyTorch fused", "torch_peer", "torch"),
    "jax-step": Peer("JAX jit step", "jax_peer", "jax"),
    "jax-scan": Peer("JAX jit+scan", "jax_peer", "jax"),
    "sklearn": Peer("scikit-learn", "sklearn_peer", "sklearn"),
}


class Trainer:
    """One peer training one configuration.

    ``epoch()`` runs one shuffled epoch and returns when its work is done;
    ``weights()`` returns ``[W0, b0, ...]`` as NumPy arrays, W of shape (fan_in,
    fan_out); ``predict(X)`` returns class probabilities (cross_entropy) or outputs;
    ``threads(n)`` is a context manager limiting the peer to ``n`` threads.
    """

    version = ""
    compile_s = None      # ahead-of-time compile time, where the peer has one

    def epoch(self):
        raise NotImplementedError

    def weights(self):
        raise NotImplementedError

    def predict(self, X):
        raise NotImplementedError

    def threads(self, n):
        return threadpool_limits(limits=n)


def require(module):
    """Import ``module``, or raise SkipPeer naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".")[0]:
            raise
        raise SkipPeer(f"{module} not installed ({INSTALL_HINT})") from None
    except ImportError as exc:
        raise SkipPeer(f"{module} does not import: {exc}") from None


def missing(name):
    """Why peer ``name`` cannot run here (its framework is not installed), or None.

    Looks the module up without importing it, so the parent process stays light.
    """
    module = PEERS[name].requires
    if importlib.util.find_spec(module) is None:
        return f"{module} not installed ({INSTALL_HINT})"
    return None


def make_trainer(name, cfg, X, y, dtype, params, seed=0):
    """A :class:`Trainer` for peer ``name`` (a key of :data:`PEERS`)."""
    if name not in PEERS:
        raise ValueError(f"peer must be one of {', '.join(PEERS)}; got {name!r}")
    module = importlib.import_module(f"{__name__}.{PEERS[name].module}")
    return module.make(name, cfg, X, y, dtype, params, seed)
