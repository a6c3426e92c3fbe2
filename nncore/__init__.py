"""nncore: dense neural networks trained on the CPU by compiled Cython kernels.

    >>> import nncore
    >>> net = nncore.Network([nncore.Dense(64, 128, activation="relu"),
    ...                       nncore.Dense(128, 10)], loss="cross_entropy", seed=0)

See ``nncore/reference/`` for every formula, written out in NumPy.
"""
from . import callbacks, losses, schedules
from ._gradcheck import GradcheckReport, gradcheck
from .history import History, TrainingDiverged
from .io import load
from .layers import ACTIVATIONS, Dense
from .losses import LOSSES
from .many import fit_many
from .network import Network
from .optimizers import LBFGS, SGD, Adam, AdamW, Optimizer, RMSprop, Rprop
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LBFGS", "LOSSES", "SGD", "Adam", "AdamW", "Dense", "GradcheckReport",
    "History", "Network", "Optimizer", "RMSprop", "Rprop", "TrainingDiverged",
    "__version__", "callbacks", "fit_many", "get_num_threads", "gradcheck", "load", "losses",
    "schedules", "set_num_threads",
]
