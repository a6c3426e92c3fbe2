"""Train K networks of one architecture on one data set in a single loop.

A learning-rate or weight-decay sweep, cross-validation repeats or a seed ensemble
train K networks of the same layer sizes on the same rows. ``fit_many`` runs them
together: every batch is drawn once (one permutation per epoch from ``seed``) and
gathered once, and one kernel call per chunk of batches takes each network's step on
it. Each network takes exactly the step ``Network.fit`` takes (the same passes, in
the same layout), so it ends bit for bit where ``Network.fit`` with the same batch
order leaves it.
"""
import contextlib
import math
import time

import numpy as np

from . import _validation
from ._dispatch import kernels as _kernels
from ._fit_data import _validation_rows
from ._memory import allocate as _allocate
from ._trainer import _check_callbacks as check_callbacks
from ._trainer import classifies, log_keys
from ._training import TRAIN_CHUNK_SECONDS, SigintDeferred, Snapshot, epoch_order, next_chunk
from .callbacks import Callback
from .history import History, TrainingDiverged
from .optimizers import LBFGS, Adam, Optimizer, optimizer_from_name

__all__ = ["fit_many"]

# The longest a chunk of batches is planned to take, so that Ctrl-C is answered
# within about that (see _Run._groups).
CALL_SECONDS_MAX = 1.0


def fit_many(networks, X, y, epochs=1, batch_size=32, optimizers=None, shuffle=True,
             sample_weight=None, validation_data=None, callbacks=None, seed=None):
    """Train several networks of one architecture on the same batches, at once.

    Parameters
    ----------
    networks : sequence of Network
        K >= 1 distinct networks with the same layer sizes, activations, loss and
        dtype (their weights are their own).
    X : array-like of shape (n_samples, n_inputs)
    y : array-like
        Targets, as ``Network.fit`` takes them.
    epochs : int, default 1
    batch_size : int, default 32
    optimizers : sequence of Optimizer or str, or str, optional
        One per network, all of one class (their hyperparameters may differ); a
        name gives each network a new optimizer of that kind. None: each network's
        optimizer of its last ``fit`` (all of one class), or a new ``Adam()`` each.
    shuffle : bool, default True
        True: each epoch the rows are taken in one permutation drawn from ``seed``,
        the same for every network. False: rows in their stored order.
    sample_weight : array-like of shape (n_samples,), optional
    validation_data : tuple, optional
        ``(X_val, y_val)`` or ``(X_val, y_val, w_val)``: every network is evaluated
        on it after every epoch, as ``Network.fit`` does (``"val_loss"`` and, for the
        classification losses, ``"val_accuracy"`` in its logs and history).
    callbacks : sequence, optional
        One entry per network: None, a ``nncore.callbacks.Callback`` or a list of
        them, called for that network as ``Network.fit`` calls them (a callback
        object serves one network). A callback that sets ``stop_training`` stops
        its network only; one that changes its optimizer's ``lr`` changes it from
        the next epoch on.
    seed : int, optional
        Seeds the generator of the batch order (None: fresh entropy).

    Returns
    -------
    list of History
        One per network, in order (also kept as each ``network.history``), with
        ``Network.fit``'s keys (``"time"`` is the epoch of all K). A network whose
        training diverged has ``history.diverged`` set to the ``TrainingDiverged``
        error (else None): it stopped there, restored to the end of its last good
        epoch, while the others went on.

    Raises
    ------
    ValueError, TypeError
        Networks of different architectures or dtypes, the same network twice,
        optimizers of mixed classes or bound to other networks, bad data: before
        anything changes.
    KeyboardInterrupt
        On Ctrl-C: every network is left after the last batch they all finished
        (as ``Network.fit`` leaves one), and every history is marked ``interrupted``.

    Notes
    -----
    The batch order of epoch e is ``nncore._training.epoch_order`` drawn from
    ``np.random.default_rng(seed)``, as ``Network.fit`` draws it from the network's
    own generator. To reproduce network k's training with ``Network.fit``, start its
    generator where ``seed`` starts::

        state = net.state(include_optimizer=False)
        state["rng"] = np.random.default_rng(seed).bit_generator.state
        net.restore(state)
        net.fit(X, y, epochs=..., batch_size=..., optimizer=..., shuffle=True)

    ``fit_many`` itself leaves the networks' generators alone.

    Examples
    --------
    A learning-rate sweep in one call:

    >>> import numpy as np, nncore
    >>> X = np.random.default_rng(0).normal(size=(256, 2)); y = np.sin(X[:, :1])
    >>> nets = [nncore.Network([nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 1)],
    ...                        seed=s) for s in range(4)]
    >>> opts = [nncore.SGD(lr) for lr in (0.3, 0.1, 0.03, 0.01)]
    >>> histories = nncore.fit_many(nets, X, y, epochs=5, optimizers=opts, seed=0)
    >>> len(histories), len(histories[0].loss)
    (4, 5)
    """
    nets = _check_networks(networks)
    opts = _check_optimizers(optimizers, nets)
    epochs = _validation.check_int(epochs, "epochs", 0)
    batch_size = _validation.check_int(batch_size, "batch_size", 1)
    shuffle = _validation.check_bool(shuffle, "shuffle")
    if seed is not None:
        _validation.check_int(seed, "seed", 0)
    hooks = _check_callbacks(callbacks, len(nets))
    data = nets[0]._targets(X, y, sample_weight)
    val = None if validation_data is None else _validation_rows(nets[0], validation_data)
    keys = log_keys(nets[0], val is not None)
    for cb in (cb for per_net in hooks for cb in per_net):
        cb._check_logs(keys)
    B = min(batch_size, data[0].shape[0])
    _validation.check_int(B, "batch_size (rows per batch)", 1, _validation.BLAS_MAX)
    with contextlib.ExitStack() as held:
        for net in nets:
            held.enter_context(net._busy())
        for i, net in enumerate(nets):
            if not np.isfinite(net._flat).all():
                raise ValueError(f"networks[{i}]'s parameters hold NaN or inf: "
                                 "training cannot start from them")
        run = _Run(nets, opts, data, B, shuffle, np.random.default_rng(seed))
        return run.train(epochs, val, hooks)


def _check_networks(networks):
    from .network import Network
    try:
        nets = list(networks)
    except TypeError:
        raise TypeError("networks must be a list of nncore.Network; got "
                        f"{type(networks).__name__}") from None
    if not nets:
        raise ValueError("networks must hold at least one Network; got none")
    for i, net in enumerate(nets):
        if not isinstance(net, Network):
            raise TypeError(f"networks[{i}] must be an nncore.Network; got "
                            f"{type(net).__name__}")
    first = nets[0]
    for i, net in enumerate(nets[1:], 1):
        if any(net is other for other in nets[:i]):
            raise ValueError(f"networks[{i}] appears twice in networks; pass "
                             "distinct networks")
        for what, mine, theirs in (
                ("layer sizes", tuple(net._sizes), tuple(first._sizes)),
                ("activations", tuple(layer.activation for layer in net.layers),
                 tuple(layer.activation for layer in first.layers)),
                ("loss", net.loss_name, first.loss_name),
                ("loss parameters", _loss_params(net), _loss_params(first)),
                ("dtype", net.dtype.name, first.dtype.name)):
            if mine != theirs:
                raise ValueError(f"networks must share one architecture and dtype: "
                                 f"networks[{i}] has {what} {_show(mine, what)}, "
                                 f"networks[0] {_show(theirs, what)}")
    return nets


def _loss_params(net):
    return () if net._loss_params is None else tuple(float(v) for v in net._loss_params)


def _show(value, what):
    if what == "layer sizes":
        return "-".join(str(int(v)) for v in value)
    return repr(value)


def _check_callbacks(callbacks, K):
    """One list of callbacks per network."""
    if callbacks is None:
        return [[] for _ in range(K)]
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError("callbacks must be a list with one entry per network (None, a "
                        "Callback or a list of them); got "
                        f"{type(callbacks).__name__}")
    if len(callbacks) != K:
        raise ValueError(f"callbacks must have one entry per network: {len(callbacks)} "
                         f"for {K} networks")
    hooks = [check_callbacks(entry) for entry in callbacks]
    seen = {}
    for k, per_net in enumerate(hooks):
        for cb in per_net:
            if seen.setdefault(id(cb), k) != k:
                raise ValueError(f"the same {type(cb).__name__} is given to networks "
                                 f"{seen[id(cb)]} and {k}; each network needs its own")
    return hooks


def _check_optimizers(optimizers, nets):
    K = len(nets)
    if optimizers is None:
        opts = [net.optimizer if net.optimizer is not None else Adam() for net in nets]
    elif isinstance(optimizers, str):
        opts = [optimizer_from_name(optimizers) for _ in nets]
    elif isinstance(optimizers, Optimizer):
        raise TypeError("optimizers must be a list of one optimizer per network (an "
                        "optimizer keeps one network's state); got a single "
                        f"{type(optimizers).__name__}")
    else:
        try:
            opts = list(optimizers)
        except TypeError:
            raise TypeError("optimizers must be a list of optimizers, a name or None; "
                            f"got {type(optimizers).__name__}") from None
        if len(opts) != K:
            raise ValueError(f"optimizers must hold one optimizer per network: "
                             f"{len(opts)} for {K} networks")
        opts = [optimizer_from_name(o) if isinstance(o, str) else o for o in opts]
    for i, opt in enumerate(opts):
        if not isinstance(opt, Optimizer):
            raise TypeError(f"optimizers[{i}] must be an nncore optimizer or the name "
                            f"of one; got {type(opt).__name__}")
        if isinstance(opt, LBFGS):
            raise TypeError("fit_many takes minibatch optimizers (SGD, Adam, AdamW, "
                            "RMSprop, Rprop); LBFGS trains on the whole data set at "
                            "once: train those networks with Network.fit")
        if type(opt) is not type(opts[0]):
            raise TypeError("optimizers must all be of one class: optimizers[0] is "
                            f"{type(opts[0]).__name__}, optimizers[{i}] "
                            f"{type(opt).__name__}")
        if any(opt is other for other in opts[:i]):
            raise ValueError(f"optimizers[{i}] is given twice; each network needs "
                             "its own")
        opt._check()
        owner = opt._owner() if opt._owner is not None else None
        if owner is not None and owner is not nets[i]:
            raise ValueError(f"optimizers[{i}] already holds the state of another "
                             "network; create a new optimizer or call reset()")
    return opts


class _Run:
    """One fit_many call after its checks: buffers, per-network bookkeeping, epochs."""

    def __init__(self, nets, opts, data, B, shuffle, rng):
        self.nets, self.opts, self.B, self.rng = nets, opts, B, rng
        self.X, self.T, self.labels, self.w = data
        net, dt, n = nets[0], nets[0]._dtype, data[0].shape[0]
        self.n_batches = -(-n // B)
        self.gather = shuffle and self.n_batches > 1
        self.work = _allocate((_kernels.workspace_size(net._sizes, B),), dt,
                              f"the workspace for batches of {B} rows")
        g = self.gather
        self.order = np.empty(n, np.intp) if g else None
        K = len(nets)
        self.settings = [None] * K
        self.steps = np.empty(K, np.intp)
        self.active = np.ones(K, np.intp)
        self.loss_sums, self.weight_sums = np.zeros(K), np.zeros(K)
        # each network's weighted count of rows classified right this epoch
        self.hits = np.zeros(K) if classifies(nets[0]) else None
        self.seeds = np.array([n._dropout_seed for n in nets], dtype=np.uint64)
        for net, opt in zip(nets, opts):
            opt._bind(net)
            net._optimizer = opt
        self.saved = [Snapshot(net, opt) for net, opt in zip(nets, opts)]
        self.histories = [History() for _ in nets]
        self._probe = True         # the run's first chunk is still to be timed
        self._last_logs = {}
        for net, history in zip(nets, self.histories):
            net.history = history
            history.diverged = None

    def _kernel_arguments(self):
        """The state arrays and settings, read afresh each epoch (a callback may have
        changed a learning rate)."""
        s1, s2 = [], []
        for k, opt in enumerate(self.opts):
            self.settings[k], a1, a2 = opt._kernel_args()
            s1.append(a1)
            s2.append(a2)
        return s1, s2

    def train(self, epochs, val, hooks):
        self.val, self.hooks = val, hooks
        if val is not None:
            net = self.nets[0]
            self.val_out = np.empty((val.n, net.n_outputs), net.dtype)
            self.val_weights = None if val.w is None else val.w.astype(np.float64)
        keys = log_keys(self.nets[0], val is not None)
        params = {"epochs": epochs, "batch_size": self.B, "n_samples": self.X.shape[0],
                  "n_batches": self.n_batches, "verbose": 0, "metrics": keys}
        try:
            self._train(epochs, params)
        except KeyboardInterrupt:
            for history in self.histories:
                history.interrupted = True
            raise
        return self.histories

    def _train(self, epochs, params):
        per_chunk = 1
        with SigintDeferred() as sigint:
            for net, per_net in zip(self.nets, self.hooks):
                net.stop_training = False
                for cb in per_net:
                    cb.network, cb.params = net, dict(params)
            self._call(sigint, lambda k, cb: cb.on_train_begin({}))
            for epoch in range(epochs):
                if not (self.active == 1).any():
                    break
                self._call(sigint, lambda k, cb: cb.on_epoch_begin(epoch, {}))
                start = time.perf_counter()
                per_chunk = self._epoch(epoch, per_chunk, sigint)
                self._report(epoch, start, sigint)
            self._call(sigint, lambda k, cb: cb.on_train_end(
                self._last_logs.get(k, {})), everyone=True)

    def _call(self, sigint, hook, everyone=False):
        """hook(k, cb) for the callbacks of every network still training (every
        network with ``everyone``), where Ctrl-C may land anywhere."""
        with sigint.undeferred():
            for k, per_net in enumerate(self.hooks):
                if everyone or self.active[k] == 1:
                    for cb in per_net:
                        hook(k, cb)

    def _report(self, epoch, start, sigint):
        """Each trained network's logs: validation, callbacks, history; networks
        whose callbacks stopped them are left out from the next epoch on."""
        for k in np.flatnonzero(self.active == 1):
            net = self.nets[k]
            w = self.weight_sums[k]
            logs = {"loss": self.loss_sums[k] / w if w else math.nan}
            if self.hits is not None:
                logs["accuracy"] = self.hits[k] / w if w else math.nan
            if self.val is not None:
                v = self.val
                logs["val_loss"], accuracy = net._evaluate_checked(
                    v.X, v.T, v.labels, v.w, self.val_out, self.val_weights)
                if accuracy is not None:
                    logs["val_accuracy"] = accuracy
            logs["lr"] = float(self.settings[k]["lr"])
            logs["time"] = time.perf_counter() - start
            try:
                with sigint.undeferred():
                    for cb in self.hooks[k]:
                        cb.on_epoch_end(epoch, logs)
            finally:
                self.histories[k].record(logs)     # the epoch is complete
            self._last_logs[k] = logs
            if net.stop_training:
                self.active[k] = 0
        sigint.raise_if_fired()

    def _epoch(self, epoch, per_chunk, sigint):
        s1, s2 = self._kernel_arguments()
        groups, share = self._groups(s1[0], s2[0])
        order = epoch_order(self.rng, self.X.shape[0], self.order) if self.gather \
            else self.order
        self.loss_sums[:] = 0
        if self.hits is not None:
            self.hits[:] = 0
        self.weight_sums[:] = 0
        batch = 0
        while batch < self.n_batches and (self.active == 1).any():
            count = min(per_chunk, self.n_batches - batch)
            for k, opt in enumerate(self.opts):
                self.steps[k] = opt.step
            t0 = time.perf_counter()
            for k0, k1 in groups:
                live = np.flatnonzero(self.active[k0:k1] == 1) + k0
                if not live.size:
                    continue
                if batch == 0:
                    # (taken group by group: the copy leaves the group's arrays in
                    # cache for its first batches, as fit's leaves its network's)
                    for k in live:
                        self.saved[k].take()
                t1 = time.perf_counter()
                done = self._train_group(k0, k1, s1, s2, order, batch, count)
                if self._probe and len(groups) > 1 and done == count:
                    # The run's first chunk: the first group's first batch alone
                    # times it; that group then goes on to the chunk's length and
                    # the others take it whole (a first chunk of one batch for
                    # every group would cost every network a reload of its arrays).
                    self._probe = False
                    per_chunk = next_chunk(per_chunk, count, time.perf_counter() - t1)
                    more = min(per_chunk, self.n_batches - batch) - count
                    if more > 0:
                        done += self._train_group(k0, k1, s1, s2, order, batch + count,
                                                  more)
                        count += more
                if batch + done == self.n_batches:
                    self._end_epoch(epoch, k0, k1)
            elapsed = time.perf_counter() - t0
            for k, opt in enumerate(self.opts):
                opt.step = int(self.steps[k])
            self._stop_diverged(epoch)
            batch += done
            if done == count and elapsed > 0:
                per_chunk = next_chunk(per_chunk, count, elapsed / share)
            if sigint.fired and batch < self.n_batches:
                self._interrupted(sigint)
        return per_chunk

    def _groups(self, state1, state2):
        """The networks of each kernel call, as ranges (k0, k1), and the share of a
        chunk's time that next_chunk is to take for one chunk.

        One call per group of networks whose arrays stay in cache together
        (``_kernels.many_group_size``: all K for small networks), the groups one
        after another on each chunk of batches. Timing each group's part as one
        fit chunk gives every network as many batches in a row as fit gives it, over
        which the reload of its arrays at its group's turn is spread; but no chunk
        is planned longer than CALL_SECONDS_MAX, which bounds how long Ctrl-C
        waits."""
        net, K = self.nets[0], len(self.nets)
        arrays = 2 + sum(s is not None and s.size > 0 for s in (state1, state2))
        size = _kernels.many_group_size(net.n_params, net.dtype.itemsize, arrays, K)
        groups = [(k0, min(K, k0 + size)) for k0 in range(0, K, size)]
        return groups, min(len(groups), max(1.0, CALL_SECONDS_MAX / TRAIN_CHUNK_SECONDS))

    def _train_group(self, k0, k1, s1, s2, order, batch, count):
        """Networks k0 .. k1-1 on batches batch .. batch + count - 1: one kernel call;
        returns the batches done."""
        nets, net, g = self.nets[k0:k1], self.nets[0], slice(k0, k1)
        return _kernels.train_many(
            [n._flat for n in nets], [n._grads for n in nets], s1[g], s2[g], net._sizes,
            net._acts, net._loss_code, net._loss_params, self.X, self.T, self.labels,
            self.w, order, self.work, self.B, batch, count, self.settings[g],
            self.steps[g], self.active[g], self.loss_sums[g], self.weight_sums[g],
            None if self.hits is None else self.hits[g], [n._dropout for n in nets],
            self.seeds[g])

    def _stop_diverged(self, epoch):
        """Networks whose loss became non-finite in the last call: restored to the
        start of the epoch and left out from now on."""
        for k in np.flatnonzero(self.active < 0):
            batch = -1 - int(self.active[k])
            self._stop(k, TrainingDiverged.during(
                "the loss became NaN or infinite", epoch, batch, self.opts[k].lr))

    def _stop(self, k, error):
        self.saved[k].restore()
        self.active[k] = 0
        self.histories[k].diverged = error

    def _end_epoch(self, epoch, k0, k1):
        """Networks k0 .. k1-1 after their last batch of the epoch: those whose
        parameters or state are no longer finite are restored and left out."""
        for k in np.flatnonzero(self.active[k0:k1] == 1) + k0:
            if not self.saved[k].live_is_finite():
                self._stop(k, TrainingDiverged.during(
                    "the parameters or optimizer state became NaN or infinite (the "
                    "loss itself was still finite)", epoch, self.n_batches - 1,
                    self.opts[k].lr))

    def _interrupted(self, sigint):
        for k in np.flatnonzero(self.active == 1):
            if not self.saved[k].live_is_finite():
                self.saved[k].restore()
        sigint.raise_if_fired()
