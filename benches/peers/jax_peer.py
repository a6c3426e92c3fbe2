"""JAX, jit-compiled ahead of time (``lower().compile()``, timed apart): one train step
per minibatch (``jax-step``) or the whole epoch in one ``lax.scan`` (``jax-scan``). The
step gathers its batch inside the jit from a host permutation; the optimizers are
PyTorch's rules written out; parameters and optimizer state are donated.

JAX sizes its thread pool when it starts: the harness sets ``XLA_FLAGS`` and pins the
worker process to its CPUs, so ``threads(n)`` has nothing left to change.
"""
import time

import numpy as np

from . import SkipPeer, Trainer, require


def _optimizer(jax, jnp, cfg, params, dtype):
    """(state, update(params, state, grads) -> (params, state)): PyTorch's SGD / Adam."""
    tree_map, h = jax.tree_util.tree_map, cfg.hyper
    if cfg.optimizer == "sgd":
        lr, mu = h["lr"], h["momentum"]

        def sgd(params, buf, grads):   # buf starts at 0, so buf = g on the first step
            if mu:
                buf = tree_map(lambda b, g: mu * b + g, buf, grads)
                grads = buf
            return tree_map(lambda p, g: p - lr * g, params, grads), buf

        return (tree_map(jnp.zeros_like, params) if mu else ()), sgd
    lr, (b1, b2), eps = h["lr"], h["betas"], h["eps"]

    def adam(params, state, grads):
        t, m, v = state
        t = t + 1
        m = tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
        v = tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        def step(p, m_, v_):
            return p - lr * (m_ / c1) / (jnp.sqrt(v_ / c2) + eps)

        params = tree_map(step, params, m, v)
        return params, (t, m, v)

    # m and v must be separate buffers: both are donated to the compiled step, and
    # XLA refuses one buffer donated twice.
    m, v = tree_map(jnp.zeros_like, params), tree_map(jnp.zeros_like, params)
    return (jnp.zeros((), dtype=dtype), m, v), adam


class JaxTrainer(Trainer):
    def __init__(self, cfg, X, y, dtype, params, seed, scan):
        dtype = np.dtype(dtype)
        jax = self.jax = require("jax")
        if dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        self.version, self.cfg, self.scan = jax.__version__, cfg, scan
        self.steps, rest = divmod(len(X), cfg.batch_size)
        if rest:
            raise SkipPeer("the JAX peers need whole batches (rows a multiple of the "
                           "batch size)")
        self.params = [(jnp.asarray(params[i]), jnp.asarray(params[i + 1]))
                       for i in range(0, len(params), 2)]
        self.X = jnp.asarray(X)
        self.y = jnp.asarray(y.astype(np.int32) if cfg.loss == "cross_entropy" else y)
        act = jnp.tanh if cfg.activation == "tanh" else jax.nn.relu

        def forward(params, x):
            for W, b in params[:-1]:
                x = act(x @ W + b)
            return x @ params[-1][0] + params[-1][1]

        def loss_fn(params, xb, yb):
            out = forward(params, xb)
            if cfg.loss == "mse":
                return jnp.mean((out - yb) ** 2)
            logp = jax.nn.log_softmax(out, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        self.state, update = _optimizer(jax, jnp, cfg, self.params, dtype)
        grad_fn = jax.value_and_grad(loss_fn)

        def step(params, state, X, y, idx):
            loss, grads = grad_fn(params, X[idx], y[idx])
            return (*update(params, state, grads), loss)

        def epoch(params, state, X, y, idx2d):
            def body(carry, idx):
                p, s, loss = step(*carry, X, y, idx)
                return (p, s), loss
            (params, state), losses = jax.lax.scan(body, (params, state), idx2d)
            return params, state, losses

        t0 = time.perf_counter()
        shape = (self.steps, cfg.batch_size) if scan else (cfg.batch_size,)
        example = np.zeros(shape, dtype=np.int32)
        self.fn = jax.jit(epoch if scan else step, donate_argnums=(0, 1)).lower(
            self.params, self.state, self.X, self.y, example).compile()
        self.compile_s = time.perf_counter() - t0
        self._forward = jax.jit(forward)
        self.rng = np.random.default_rng(seed + 2)

    def epoch(self):
        perm = self.rng.permutation(len(self.X)).astype(np.int32)
        params, state, fn, X, y = self.params, self.state, self.fn, self.X, self.y
        if self.scan:
            params, state, _ = fn(params, state, X, y, perm.reshape(self.steps, -1))
        else:
            for idx in perm.reshape(self.steps, -1):
                params, state, _ = fn(params, state, X, y, idx)
        self.params, self.state = params, state
        self.jax.block_until_ready(self.params)

    def weights(self):
        return [np.asarray(a) for layer in self.params for a in layer]

    def predict(self, X):
        out = self._forward(self.params, X)
        if self.cfg.loss == "cross_entropy":
            out = self.jax.nn.softmax(out, axis=1)
        return np.asarray(out.block_until_ready())


def make(name, cfg, X, y, dtype, params, seed=0):
    return JaxTrainer(cfg, X, y, dtype, params, seed, scan=name == "jax-scan")
