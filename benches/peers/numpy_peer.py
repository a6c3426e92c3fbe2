"""The careful NumPy baseline: training by ``nncore.reference.fit`` (the executable
specification, vectorised NumPy, one fresh permutation per epoch); prediction by the
forward pass written by hand in :func:`benches.configs.numpy_forward`."""
import numpy as np

from ..configs import numpy_forward
from . import Trainer, require


class ReferenceTrainer(Trainer):
    def __init__(self, cfg, X, y, dtype, params, seed):
        self.reference = require("nncore.reference")
        self.version = np.__version__
        self.cfg, self.X, self.y = cfg, X, y
        self.params = [np.array(p, dtype=dtype) for p in params]
        self.activations = [cfg.activation] * (len(cfg.sizes) - 2) + ["identity"]
        self.rng = np.random.default_rng(seed + 2)
        self.state = None

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        cfg = self.cfg
        _, self.state = self.reference.fit(
            self.params, self.activations, cfg.loss, self.X, self.y, epochs=1,
            batch_size=cfg.batch_size, optimizer=(cfg.optimizer, cfg.hyper),
            orders=[order], state=self.state)

    def weights(self):
        return [p.copy() for p in self.params]

    def predict(self, X):
        return numpy_forward(self.params, self.cfg, X)


def make(name, cfg, X, y, dtype, params, seed=0):
    return ReferenceTrainer(cfg, X, y, dtype, params, seed)
