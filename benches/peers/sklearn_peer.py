"""scikit-learn's ``MLPClassifier`` / ``MLPRegressor``: one ``partial_fit`` per epoch
(solver sgd or adam, ``alpha=0``, constant learning rate, shuffled), predictions by
``predict_proba`` (classifier) or ``predict`` (regressor)."""
import warnings

import numpy as np

from . import Trainer, require


class SklearnTrainer(Trainer):
    def __init__(self, cfg, X, y, dtype, params, seed):
        sklearn = require("sklearn")
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.version = sklearn.__version__
        self.cfg, self.X, self.y = cfg, X, y
        h = cfg.hyper
        kw = dict(hidden_layer_sizes=tuple(cfg.sizes[1:-1]), activation=cfg.activation,
                  batch_size=cfg.batch_size, learning_rate_init=h["lr"], alpha=0.0,
                  shuffle=True, random_state=seed)
        if cfg.optimizer == "sgd":
            kw.update(solver="sgd", learning_rate="constant", momentum=h["momentum"],
                      nesterovs_momentum=False)
        else:
            kw.update(solver="adam", beta_1=h["betas"][0], beta_2=h["betas"][1],
                      epsilon=h["eps"])
        classify = cfg.loss == "cross_entropy"
        self.est = (MLPClassifier if classify else MLPRegressor)(**kw)
        # scikit-learn makes its weights in the first partial_fit: one batch, then the
        # shared initial weights written into them in place (its optimizer holds them).
        b = cfg.batch_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if classify:
                self.est.partial_fit(X[:b], y[:b], classes=np.arange(cfg.sizes[-1]))
            else:
                self.est.partial_fit(X[:b], y[:b])
        for live, p in zip(self.est.coefs_ + self.est.intercepts_,
                           params[0::2] + params[1::2]):
            live[...] = p

    def epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.est.partial_fit(self.X, self.y)

    def weights(self):
        return [np.array(a) for pair in zip(self.est.coefs_, self.est.intercepts_)
                for a in pair]

    def predict(self, X):
        if self.cfg.loss == "cross_entropy":
            return self.est.predict_proba(X)
        return self.est.predict(X).reshape(len(X), -1)   # one output comes back raveled


def make(name, cfg, X, y, dtype, params, seed=0):
    return SklearnTrainer(cfg, X, y, dtype, params, seed)
