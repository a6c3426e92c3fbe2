"""nncore through its public API: ``Network``, ``Dense``, an optimizer, ``fit``,
``predict`` and ``set_num_threads``; one ``fit(epochs=1)`` call per epoch, input checks
included, as a user would train."""
import numpy as np

from . import Trainer, require


class NncoreTrainer(Trainer):
    def __init__(self, cfg, X, y, dtype, params, seed):
        nncore = self.nncore = require("nncore")
        self.version = nncore.__version__
        self.cfg, self.X, self.y = cfg, X, y
        sizes = cfg.sizes
        layers = [nncore.Dense(a, b, activation=cfg.activation)
                  for a, b in zip(sizes[:-2], sizes[1:-1])]
        layers.append(nncore.Dense(sizes[-2], sizes[-1]))
        self.net = nncore.Network(layers, loss=cfg.loss, dtype=np.dtype(dtype).name,
                                  seed=seed)
        for live, p in zip(self.net.params, params):
            live[...] = p
        h = cfg.hyper
        if cfg.optimizer == "sgd":
            self.optimizer = nncore.SGD(lr=h["lr"], momentum=h["momentum"])
        else:
            self.optimizer = nncore.Adam(lr=h["lr"], betas=h["betas"], eps=h["eps"])

    def epoch(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.cfg.batch_size,
                     optimizer=self.optimizer)

    def weights(self):
        return [p.copy() for p in self.net.params]

    def predict(self, X):
        return self.net.predict(X)

    def threads(self, n):
        return self.nncore.set_num_threads(n)


def make(name, cfg, X, y, dtype, params, seed=0):
    return NncoreTrainer(cfg, X, y, dtype, params, seed)
