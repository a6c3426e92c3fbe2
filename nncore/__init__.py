"""nncore: dense neural networks trained on the CPU by compiled Cython kernels.

    >>> import nncore
    >>> net = nncore.Network([nncore.Dense(64, 128, activation="relu"),
    ...                       nncore.Dense(128, 10)], loss="cross_entropy", seed=0)

See ``nncore/reference.py`` for every formula, written out in NumPy.
"""
from .io import load
from .layers import ACTIVATIONS, Dense
from .losses import LOSSES
from .network import History, Network, TrainingDiverged
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "Adam", "AdamW", "Dense", "History", "Network",
    "Optimizer", "RMSprop", "SGD", "TrainingDiverged", "get_num_threads", "load",
    "set_num_threads", "__version__",
]
