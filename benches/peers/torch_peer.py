"""PyTorch eager: ``nn.Sequential`` of ``Linear`` layers, the batch gathered from a
fresh ``randperm`` each epoch, the default optimizer (``torch``) or the fused one
(``torch-fused``); prediction under ``torch.no_grad()``."""
import numpy as np
from threadpoolctl import threadpool_limits

from . import SkipPeer, Trainer, require


class TorchTrainer(Trainer):
    def __init__(self, cfg, X, y, dtype, params, seed, fused):
        torch = self.torch = require("torch")
        self.version = torch.__version__
        self.cfg = cfg
        torch.manual_seed(seed)
        tdtype = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
        nn, modules = torch.nn, []
        last = len(cfg.sizes) - 2
        for i, (fan_in, fan_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
            linear = nn.Linear(fan_in, fan_out, dtype=tdtype)
            W, b = params[2 * i], params[2 * i + 1]
            with torch.no_grad():   # torch keeps W as (fan_out, fan_in)
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b))
            modules.append(linear)
            if i < last:
                modules.append(nn.Tanh() if cfg.activation == "tanh" else nn.ReLU())
        self.model = nn.Sequential(*modules)
        self.loss_fn = nn.MSELoss() if cfg.loss == "mse" else nn.CrossEntropyLoss()
        h, extra = cfg.hyper, {"fused": True} if fused else {}
        try:
            if cfg.optimizer == "sgd":
                self.opt = torch.optim.SGD(self.model.parameters(), lr=h["lr"],
                                           momentum=h["momentum"], **extra)
            else:
                self.opt = torch.optim.Adam(self.model.parameters(), lr=h["lr"],
                                            betas=h["betas"], eps=h["eps"], **extra)
        except (TypeError, RuntimeError, ValueError) as exc:
            raise SkipPeer(f"torch {torch.__version__}: no fused {cfg.optimizer} here "
                           f"({exc})") from None
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(self):
        bs, n = self.cfg.batch_size, len(self.X)
        perm = self.torch.randperm(n)
        model, loss_fn, opt, X, y = self.model, self.loss_fn, self.opt, self.X, self.y
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(X[idx]), y[idx]).backward()
            opt.step()

    def weights(self):
        out = []
        for module in self.model:
            if isinstance(module, self.torch.nn.Linear):
                out += [module.weight.detach().numpy().T.copy(),
                        module.bias.detach().numpy().copy()]
        return out

    def predict(self, X):
        torch = self.torch
        with torch.no_grad():
            out = self.model(torch.from_numpy(X))
            if self.cfg.loss == "cross_entropy":
                out = torch.softmax(out, dim=1)
        return out.numpy()

    def threads(self, n):
        return _TorchThreads(self.torch, n)


class _TorchThreads:
    """torch's intra-op pool and every BLAS/OpenMP pool, limited to ``n`` threads."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __enter__(self):
        self.old = self.torch.get_num_threads()
        self.torch.set_num_threads(self.n)
        self.limits = threadpool_limits(limits=self.n)
        return self

    def __exit__(self, *exc):
        self.limits.restore_original_limits()
        self.torch.set_num_threads(self.old)
        return False


def make(name, cfg, X, y, dtype, params, seed=0):
    return TorchTrainer(cfg, X, y, dtype, params, seed, fused=name == "torch-fused")
