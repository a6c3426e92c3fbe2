"""The Network: a stack of Dense layers, its parameters and workspaces, inference,
and ``fit`` (a front for the epoch loop in ``nncore/_trainer.py``).

The Python layer checks and converts inputs once, owns every buffer, and calls the
compiled kernels (``nncore/_kernels.pyx``) once per chunk of minibatches; it does no
per-batch arithmetic.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _lbfgs, _validation
from ._dispatch import kernels as _kernels
from ._memory import allocate as _allocate
from ._memory import format_bytes as _format_bytes
from ._trainer import Trainer
from ._training import SigintDeferred
from .history import History
from .layers import Dense, activation_code
from .losses import Loss, accuracy, check_loss, check_targets, loss_code
from .optimizers import LBFGS, optimizer_from_name

if TYPE_CHECKING:
    from .callbacks import Callback
    from .optimizers import Optimizer

if TYPE_CHECKING:
    import onnx

# Rows per chunk for forward/predict/loss: bounds the workspace whatever n is.
_EVAL_CHUNK_ROWS = 1024
# Workspaces kept per network, most recently used first: training and validation
# (or fit and evaluate in turn) each keep theirs, and memory stays bounded.
_WORKSPACES_KEPT = 3


class Network:
    """A dense neural network (multi-layer perceptron) trained by compiled kernels.

    Parameters
    ----------
    layers : sequence of Dense
        At least one layer; each layer's fan_in must equal the previous fan_out.
    loss : str or Loss, default "mse"
        A name from :data:`nncore.LOSSES` (``mse``, ``binary_cross_entropy``,
        ``cross_entropy``, ``gaussian_nll``, ``mae``, ``huber``, ``poisson``,
        ``quantile``) or a loss object (:class:`nncore.losses.Huber`,
        :class:`nncore.losses.Quantile`); see :mod:`nncore.losses` for the formulas.
    dtype : {"float32", "float64"}, default "float32"
        Type of the parameters and of all arithmetic. Inputs of another type are
        converted.
    seed : int or None, default None
        Seeds the generator used for weight initialisation and for shuffling in
        ``fit``, and keys the dropout masks: the same seed and data give the same
        weights, bit for bit.

    Attributes
    ----------
    history : History or None
        What the last ``fit`` call recorded.
    stop_training : bool
        Set by a callback during ``fit`` to end training after the current epoch;
        ``fit`` resets it when it starts.

    Examples
    --------
    >>> import numpy as np, nncore
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> net = nncore.Network([nncore.Dense(4, 16, "relu"), nncore.Dense(16, 2)],
    ...                      loss="cross_entropy", seed=0)
    >>> history = net.fit(X, y, epochs=20, batch_size=16, optimizer=nncore.Adam(1e-2))
    >>> float((net.predict(X).argmax(1) == y).mean()) > 0.9
    True

    Notes
    -----
    One network may be used by one thread at a time; a second thread calling into it
    while it is busy gets a ``RuntimeError``. Different networks train in parallel.
    """

    def __init__(self, layers: Sequence[Dense], loss: str | Loss = "mse",
                 dtype: DTypeLike = "float32", seed: int | None = None) -> None:
        if isinstance(layers, Dense):
            raise TypeError("layers must be a list of Dense layers; got a single Dense "
                            "(wrap it in a list)")
        try:
            layers = tuple(layers)
        except TypeError:
            raise TypeError(f"layers must be a list of Dense layers; got "
                            f"{type(layers).__name__}") from None
        if not layers:
            raise ValueError("layers must hold at least one Dense layer; got an empty "
                             "list")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a Dense layer; got "
                                f"{type(layer).__name__}")
        for i in range(1, len(layers)):
            if layers[i].fan_in != layers[i - 1].fan_out:
                raise ValueError(
                    f"layer sizes do not chain: layers[{i - 1}] has fan_out="
                    f"{layers[i - 1].fan_out} but layers[{i}] has "
                    f"fan_in={layers[i].fan_in}")
        self._dtype = _validation.check_dtype(dtype)
        self._loss, self._loss_obj = check_loss(loss, layers[-1].fan_out)
        self._loss_spec = loss       # as given, for repr
        self._loss_code = loss_code(self._loss)
        self._loss_params = None if self._loss_obj is None else \
            self._loss_obj._kernel_params()
        if seed is not None:
            _validation.check_int(seed, "seed", 0)
        self.layers = layers
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._sizes = np.array([layers[0].fan_in] + [l.fan_out for l in layers],
                               dtype=np.intp)
        self._acts = np.array([activation_code(l.activation) for l in layers],
                              dtype=np.intp)
        rates = np.array([l.dropout for l in layers], dtype=np.float64)
        self._dropout = rates if rates.any() else None
        # The dropout masks' key: the seed, or for an unseeded network fresh entropy
        # (not a draw from the generator, whose draws a seeded run must keep).
        self._dropout_seed = (seed if seed is not None else
                              np.random.SeedSequence().entropy) % (1 << 64)
        self._flat = _allocate((sum(l.n_params for l in layers),), self._dtype,
                               "the parameters")
        self._grads = _allocate(self._flat.shape, self._dtype, "the gradients")
        self._views = []
        offset = 0
        for layer in layers:
            W = self._flat[offset:offset + layer.fan_in * layer.fan_out]
            W = W.reshape(layer.fan_in, layer.fan_out)
            offset += W.size
            b = self._flat[offset:offset + layer.fan_out]
            offset += b.size
            layer.init_params(self._rng, W, b)
            self._views += [W, b]
        self._workspaces = {}
        self._optimizer = None
        self._lock = threading.Lock()
        self._holder = None      # thread id of the holder of _lock (see _busy)
        self._fitting = False
        self.history = None
        self.metadata = {}
        self.stop_training = False

    # ------------------------------------------------------------------ properties
    @property
    def params(self) -> list[np.ndarray]:
        """Live list ``[W0, b0, W1, b1, ...]``: W (fan_in, fan_out), b (fan_out,).

        They are views into the network's parameter buffer: writing into them (for
        example ``net.params[0][...] = W``) changes the network.
        """
        return list(self._views)

    @property
    def dtype(self) -> np.dtype:
        """NumPy dtype of the parameters and arithmetic."""
        return np.dtype(self._dtype)

    @property
    def loss_name(self) -> str:
        return self._loss

    @property
    def n_params(self) -> int:
        """Total number of weights and biases."""
        return self._flat.size

    @property
    def n_inputs(self) -> int:
        return int(self._sizes[0])

    @property
    def n_outputs(self) -> int:
        return int(self._sizes[-1])

    @property
    def optimizer(self) -> Optimizer | None:
        """The optimizer of the last ``fit`` call (None before the first)."""
        return self._optimizer

    def state(self, include_optimizer=True, out=None):
        """A copy of everything that training changes.

        Parameters
        ----------
        include_optimizer : bool, default True
            Include the optimizer's state (step count and moments).
        out : dict, optional
            A state returned by an earlier call on this network: overwritten in
            place and returned, without allocating.

        Returns
        -------
        dict
            ``{"params": ndarray of shape (n_params,), "rng": dict, "optimizer":
            dict or None}``: the flat parameters (layer by layer, ``W`` then ``b``),
            the shuffling generator's state (``bit_generator.state``) and
            :meth:`Optimizer.state` of the optimizer of the last ``fit``.
        """
        opt = self._optimizer if include_optimizer else None
        if out is None:
            out = {"params": self._flat.copy(), "optimizer": None}
        else:
            np.copyto(out["params"], self._flat)
        out["rng"] = self._rng.bit_generator.state
        out["optimizer"] = None if opt is None else opt.state(out.get("optimizer"))
        return out

    def restore(self, state):
        """Put back a state from :meth:`state`: parameters, generator, optimizer.

        A network restored from the state taken after epoch k of a ``fit`` call
        continues, in a later ``fit`` with the same optimizer, exactly as the
        uninterrupted call would have.

        Raises
        ------
        ValueError
            The parameters do not have this network's size.
        """
        params = np.asarray(state["params"])
        if params.shape != self._flat.shape:
            raise ValueError(f"the state holds {params.size} parameters; this network "
                             f"has {self._flat.size}")
        opt_state = state.get("optimizer")
        if opt_state is not None and self._optimizer is None:
            raise ValueError("the state holds optimizer state but this network has no "
                             "optimizer yet; restore it into the optimizer with "
                             "optimizer.restore(state['optimizer'])")
        with self._busy():
            self._restore_locked(state)

    def _restore_locked(self, state):
        """restore, for a caller that already holds this network (the fit loop)."""
        np.copyto(self._flat, state["params"], casting="same_kind")
        self._rng.bit_generator.state = state["rng"]
        if state.get("optimizer") is not None:
            self._optimizer.restore(state["optimizer"])

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike | IO[bytes], include_optimizer: bool = True,
             metadata: dict[str, Any] | None = None) -> None:
        """Write the network to one ``.npz`` file that :func:`nncore.load` reads back.

        The file holds data only (a JSON header and arrays; the format is described
        in :mod:`nncore.io`): the architecture, loss and dtype, the parameters, the
        shuffling generator's state, and the optimizer's class, hyperparameters,
        step and state arrays. A network loaded from it predicts bit for bit as
        this one, and ``fit`` continues exactly as this network's would.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Used as given (no suffix is added). A path is written atomically: to a
            temporary file in the same folder, flushed to disk, then renamed over
            ``path``, so a crash or a full disk never leaves a damaged file where a
            good one was. A file object is written from its current position.
        include_optimizer : bool, default True
            Include the optimizer of the last ``fit`` (without it, a loaded network
            trains on with a new optimizer).
        metadata : dict, optional
            JSON data stored in the header and given back as ``metadata`` of the
            loaded network (class labels, feature names, ...). Default:
            ``self.metadata``.
        """
        from . import io

        io.save(self, path, include_optimizer, metadata)

    def to_onnx(self, path: str | os.PathLike | None = None) -> onnx.ModelProto:
        """The inference function, :meth:`predict`, as an ONNX model.

        Needs the ``onnx`` package (``pip install "nncore[onnx]"``); see
        :func:`nncore.onnx.to_onnx`.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to write the model (atomically); None: only return it.

        Returns
        -------
        onnx.ModelProto
            Input ``X`` of shape (batch, n_inputs), output ``Y`` of shape (batch,
            n_outputs), both of the network's dtype; the batch dimension is dynamic.
        """
        from . import onnx

        return onnx.to_onnx(self, path)

    def __reduce__(self):
        # Pickle and copy.deepcopy go through the file format's header and arrays.
        from . import io

        return io.reduce_network(self)

    def __repr__(self):
        inner = ", ".join(repr(l) for l in self.layers)
        return (f"Network([{inner}], loss={self._loss_spec!r}, "
                f"dtype={self.dtype.name!r}, seed={self.seed!r})")

    # ---------------------------------------------------------------- internals
    def _busy(self):
        me = threading.get_ident()
        if self._holder == me:
            # The thread that holds the network already: fit's callbacks, which run
            # in the training thread and may call evaluate, state or restore.
            return _Release(None)
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Network is in use by another thread; use one "
                               "network per thread, or serialise the calls")
        self._holder = me
        return _Release(self)

    def _workspace(self, rows):
        work = self._workspaces.pop(rows, None)
        if work is None:
            what = f"the workspace for batches of {rows} rows"
            # Far beyond any memory, and beyond what the kernel's Py_ssize_t
            # arithmetic in workspace_size can count without overflowing.
            values = rows * sum(int(s) for s in self._sizes)
            if values >= 1 << 58:
                raise MemoryError(
                    f"cannot allocate {what}: more than "
                    f"{_format_bytes(values * self.dtype.itemsize)}")
            work = _allocate((_kernels.workspace_size(self._sizes, rows),), self._dtype,
                             what)
            while len(self._workspaces) >= _WORKSPACES_KEPT:
                del self._workspaces[next(iter(self._workspaces))]   # least recent
        self._workspaces[rows] = work        # (re)inserted last: most recent
        return work

    def _check_X(self, X):
        return _validation.check_X(X, self.n_inputs, self._dtype)

    # ---------------------------------------------------------------- inference
    # forward and predict's compiled one-call path (_fast_output); None until the
    # first call.
    _predictor = None

    def forward(self, X: ArrayLike) -> np.ndarray:
        """Raw output of the last layer (after its activation).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs), the network's dtype; a new array.
        """
        out = self._fast_output(X, False)
        if out is None:
            out = self._forward_checked(self._check_X(X))
        return out

    def _forward_checked(self, X):
        """forward on an X already checked and converted by _check_X."""
        with self._busy():
            out = _allocate((X.shape[0], self.n_outputs), self._dtype, "the output")
            _kernels.forward(self._flat, self._sizes, self._acts, X, out,
                             *self._evaluation_workspace(X.shape[0]))
        return out

    def _fast_output(self, X, transform):
        """forward (or predict, when ``transform``) of X in one compiled call, or None
        when X needs the general path (conversion, checks with their messages) or the
        network is busy. The Predictor is made once, and again after the tests switch
        to another build of the kernels."""
        predictor = self._predictor
        if type(predictor) is not _kernels.Predictor:
            predictor = _kernels.Predictor(self._flat, self._sizes, self._acts,
                                           self._loss_code, self._lock)
            self._predictor = predictor
        return predictor.run(X, transform)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Output in the loss's own space.

        Class probabilities (softmax rows) for ``cross_entropy``, probabilities
        (sigmoid) for ``binary_cross_entropy``, rates ``exp(z)`` for ``poisson``,
        for ``gaussian_nll`` an (n, 2k) array of means then variances (see
        :meth:`predict_mean_var`), and the output itself for the other losses.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs), a new array.
        """
        out = self._fast_output(X, True)
        if out is None:
            out = self._forward_checked(self._check_X(X))
            _kernels.output_transform(self._loss_code, out)
        return out

    def predict_mean_var(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and variance of a ``gaussian_nll`` network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)

        Returns
        -------
        mean, variance : ndarray of shape (n_samples, k)
            ``mu = z[:, :k]`` and ``exp(s)``, ``s = z[:, k:]`` the log variance (k =
            n_outputs / 2); new arrays.
        """
        if self._loss != "gaussian_nll":
            raise ValueError("predict_mean_var needs a network trained with loss "
                             f"'gaussian_nll'; this one has loss {self._loss_spec!r}")
        out = self.predict(X)
        k = self.n_outputs // 2
        return out[:, :k].copy(), out[:, k:].copy()

    def _targets(self, X, y, sample_weight):
        X = self._check_X(X)
        T, labels = check_targets(self._loss, y, X.shape[0], self.n_outputs, self._dtype,
                                  self._loss_obj)
        w = _validation.check_sample_weight(sample_weight, X.shape[0], self._dtype)
        return X, T, labels, w

    def loss(self, X: ArrayLike, y: ArrayLike,
             sample_weight: ArrayLike | None = None) -> float:
        """Loss on (X, y): the weighted mean ``sum_i w_i l_i / sum_i w_i``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like
            Targets; see :mod:`nncore.losses` for the shapes each loss takes.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative, not all zero.

        Returns
        -------
        float
        """
        return self._loss_and_grads(X, y, sample_weight, want_grads=False)

    def loss_and_grads(self, X: ArrayLike, y: ArrayLike,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[float, list[np.ndarray]]:
        """Loss on (X, y) and its gradient with respect to every parameter.

        Same arguments as :meth:`loss`. The weights are not changed.

        Returns
        -------
        loss : float
        grads : list of ndarray
            New arrays, in the order and shapes of :attr:`params`.
        """
        return self._loss_and_grads(X, y, sample_weight, want_grads=True)

    def input_gradient(self, X: ArrayLike, y: ArrayLike,
                       sample_weight: ArrayLike | None = None) -> np.ndarray:
        """The gradient of the loss on (X, y) with respect to the inputs X.

        From the same backward pass as :meth:`loss_and_grads`, one matrix product
        further: ``dLoss/dX = delta_1 W_1^T``. For saliency and the sensitivity of a
        model to each feature. Same arguments as :meth:`loss`.

        Returns
        -------
        ndarray of shape (n_samples, n_inputs)
            In the network's dtype; a new array.
        """
        X, T, labels, w = self._targets(X, y, sample_weight)
        with self._busy():
            dX = _allocate(X.shape, self._dtype, "the input gradient")
            cap = min(X.shape[0], _EVAL_CHUNK_ROWS)
            _kernels.loss_and_grads(
                self._flat, self._grads, self._sizes, self._acts, self._loss_code,
                self._loss_params, X, T, labels, w, self._workspace(cap), cap, dX)
        return dX

    def _loss_and_grads(self, X, y, sample_weight, want_grads):
        return self._loss_and_grads_checked(*self._targets(X, y, sample_weight),
                                            want_grads)

    def _loss_and_grads_checked(self, X, T, labels, w, want_grads):
        """loss_and_grads on arrays already checked and converted by _targets."""
        with self._busy():
            grads = np.empty_like(self._flat) if want_grads else None
            value = _kernels.loss_and_grads(
                self._flat, grads, self._sizes, self._acts, self._loss_code,
                self._loss_params, X, T, labels, w,
                *self._evaluation_workspace(X.shape[0]))
        if not want_grads:
            return float(value)
        out, offset = [], 0
        for p in self._views:
            out.append(grads[offset:offset + p.size].reshape(p.shape))
            offset += p.size
        return float(value), out

    def evaluate(self, X: ArrayLike, y: ArrayLike,
                 sample_weight: ArrayLike | None = None) -> dict[str, float]:
        """Loss and, for classification losses, accuracy on (X, y).

        Both come from one forward pass; the loss is the one :meth:`loss` returns.

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` for the classification losses.
            cross_entropy compares the argmax of the output with the label, or with
            the argmax of a probability row. binary_cross_entropy counts a row as a
            hit when every probability > 0.5 agrees with its target > 0.5.
        """
        X, T, labels, w = self._targets(X, y, sample_weight)    # checked once, here
        # the weights as checked and converted, as the loss used them
        weights = w.astype(np.float64) if w is not None else None
        loss, acc = self._evaluate_checked(X, T, labels, w, None, weights)
        return {"loss": loss} if acc is None else {"loss": loss, "accuracy": acc}

    def _evaluate_checked(self, X, T, labels, w, out, weights, work=None):
        """(loss, accuracy or None) on arrays checked by _targets, from one forward
        pass; ``out`` (n, n_outputs) receives the raw output (None: allocated);
        ``work``: the pair from _evaluation_workspace (None: from the cache)."""
        with self._busy():
            if out is None:
                out = _allocate((X.shape[0], self.n_outputs), self._dtype, "the output")
            buf, cap = self._evaluation_workspace(X.shape[0]) if work is None else work
            loss = _kernels.loss_and_grads(
                self._flat, None, self._sizes, self._acts, self._loss_code,
                self._loss_params, X, T, labels, w, buf, cap, out=out)
        return float(loss), accuracy(self._loss, out, T, labels, weights)

    def _evaluation_workspace(self, n):
        """(workspace, rows per chunk) for a pass over ``n`` rows."""
        cap = min(n, _EVAL_CHUNK_ROWS)
        return self._workspace(cap), cap

    # ---------------------------------------------------------------- training
    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 1, batch_size: int = 32,
            optimizer: Optimizer | str | None = None, shuffle: bool = True,
            sample_weight: ArrayLike | None = None,
            class_weight: str | dict[int, float] | None = None,
            validation_data: tuple | None = None, validation_split: float = 0.0,
            callbacks: Sequence[Callback] | None = None,
            verbose: int | bool = 0, clip_norm: float | None = None,
            comm: Any = None) -> History:
        """Train by minibatch gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like
            Targets; see :mod:`nncore.losses`.
        epochs : int, default 1
            Passes over the data, >= 0.
        batch_size : int, default 32
            Rows per batch, >= 1; a batch size above n_samples means one batch.
        optimizer : Optimizer or str, optional
            Keeps its state between calls. None continues with the optimizer of the
            previous ``fit`` call, or a new ``Adam()`` on the first call. A name
            (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"rprop"``,
            ``"lbfgs"``) means a new one with default hyperparameters. Its ``lr`` is
            read at the start of every epoch (callbacks may change it); the other
            settings once per call. With :class:`~nncore.LBFGS`, ``epochs`` counts
            its iterations over the whole set; ``batch_size``, ``shuffle``,
            validation and callbacks do not apply.
        shuffle : bool, default True
            True: each epoch takes the rows in a permutation drawn from the network's
            seeded generator. False: batches are rows ``[0:B]``, ``[B:2B]``, ..., the
            last partial batch included.
        sample_weight : array-like of shape (n_samples,), optional
            Each batch's loss is its weighted mean; a batch whose weights are all
            zero is skipped.
        class_weight : None, "balanced" or dict {label: weight}, optional
            For ``cross_entropy`` with integer labels and ``binary_cross_entropy``
            with one output and targets 0 or 1: each row's weight is multiplied by
            its class's (classes left out of the dict weigh 1; every label in the
            dict must occur in y). ``"balanced"`` weighs class c by ``n_samples /
            (n_classes * count_c)`` over the training rows, scikit-learn's formula.
            Not applied to the validation rows.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)
            Evaluated after every epoch (one forward pass): ``"val_loss"`` (and
            ``"val_accuracy"`` for the classification losses) in the logs and the
            history, exactly as :meth:`evaluate` reports them.
        validation_split : float in [0, 1), default 0
            Hold out ``ceil(validation_split * n_samples)`` rows as validation data
            instead: drawn at random (stratified by class for the classification
            losses: each class gives its share) from a generator derived from the
            network's seed, so the same network and data hold out the same rows in
            every call; the shuffling generator is not touched. The held-out rows
            keep their sample weights. Not together with ``validation_data``.
        callbacks : list of nncore.callbacks.Callback, optional
            Called at the start and end of training and of every epoch, in list
            order (see :mod:`nncore.callbacks`).
        verbose : {0, 1, 2}, default 0
            0 prints nothing; 2 one line per epoch; 1 a progress bar with the epoch,
            batches done, loss, samples/s and ETA, redrawn a few times a second
            (tqdm's when installed), or one line per epoch when stdout is not a
            terminal. False and True mean 0 and 2.
        clip_norm : float, optional
            Clip each batch's gradient by its global L2 norm before the update, as
            ``torch.nn.utils.clip_grad_norm_`` does: when ``norm + 1e-6`` exceeds
            ``clip_norm``, every gradient is scaled by ``clip_norm / (norm + 1e-6)``.
            > 0.
        comm : mpi4py.MPI.Intracomm, optional
            Train by synchronous data-parallel SGD over its ranks, each passing its
            own shard of X and y: see :func:`nncore.distributed.fit_distributed`.

        Returns
        -------
        History
            Also kept as ``self.history``.

        Raises
        ------
        ValueError, TypeError
            Bad arguments, named in the message; raised before anything changes.
            (A monitored key that no callback and no validation provides is found
            at the end of the first epoch.)
        TrainingDiverged
            The loss, the parameters or the optimizer state became NaN or infinite.
            The parameters, the optimizer state and step count, and the shuffling
            generator are restored to the end of the last good epoch;
            ``self.history`` holds the good epochs.
        KeyboardInterrupt
            On Ctrl-C, within a fraction of a second. Between kernel calls, the
            network and optimizer are left as after the last completed batch:
            consistent and usable, and a later ``fit`` continues from there. If that
            batch's update was not finite, they are left as at the start of its epoch.
            In a callback, they are left as at the end of the last epoch.
            ``self.history`` holds the completed epochs, with ``interrupted`` set.
        MemoryError
            The workspace for ``batch_size`` rows does not fit; the message gives
            its size. Raised before anything changes.

        Any exception raised by a callback propagates, with the network as at the
        end of the last completed epoch and ``self.history`` holding the completed
        epochs (the one whose ``on_epoch_end`` raised included).
        """
        if comm is not None:
            from .distributed import fit_distributed
            return fit_distributed(
                self, X, y, comm, epochs=epochs, batch_size=batch_size,
                optimizer=optimizer, shuffle=shuffle, sample_weight=sample_weight,
                class_weight=class_weight, validation_data=validation_data,
                validation_split=validation_split, callbacks=callbacks, verbose=verbose,
                clip_norm=clip_norm)
        if isinstance(optimizer, str):
            optimizer = optimizer_from_name(optimizer)
        if isinstance(optimizer, LBFGS):
            return self._fit_lbfgs(X, y, sample_weight, class_weight, validation_data,
                                   validation_split, callbacks, epochs, optimizer,
                                   clip_norm, verbose)
        return Trainer(self, X, y, epochs=epochs, batch_size=batch_size,
                       optimizer=optimizer, shuffle=shuffle, sample_weight=sample_weight,
                       class_weight=class_weight, validation_data=validation_data,
                       validation_split=validation_split, callbacks=callbacks,
                       verbose=verbose, clip_norm=clip_norm).run()

    def _fit_lbfgs(self, X, y, sample_weight, class_weight, validation_data,
                   validation_split, callbacks, epochs, optimizer, clip_norm, verbose):
        """fit with LBFGS (see nncore/_lbfgs.py): full-batch iterations."""
        epochs = _validation.check_int(epochs, "epochs", 0)
        optimizer._check()
        unsupported = {"class_weight": class_weight, "validation_data": validation_data,
                       "callbacks": callbacks or None, "clip_norm": clip_norm,
                       "validation_split": validation_split or None}
        given = sorted(k for k, v in unsupported.items() if v is not None)
        if given:
            raise ValueError(f"{', '.join(given)} apply to the per-batch optimizers, not "
                             "to LBFGS, which takes full-batch iterations; fold class "
                             "weights into sample_weight")
        if self._dropout is not None:
            raise ValueError("LBFGS takes the network as a deterministic function: "
                             "its layers may not use dropout; got dropout rates "
                             f"{[layer.dropout for layer in self.layers]}")
        X, T, labels, w = self._targets(X, y, sample_weight)
        _lbfgs.check_start(self, X, T, labels, w)
        with self._busy():
            optimizer._bind(self)
            self._optimizer = optimizer
            history = History()
            self.history = history
            with SigintDeferred() as sigint:
                _lbfgs.fit(self, X, T, labels, w, epochs, optimizer, history, sigint,
                           bool(verbose))
        return history


class _Release:
    """Leaving the block releases the network (unless it was entered re-entrantly:
    ``net`` None)."""

    __slots__ = ("_net",)

    def __init__(self, net):
        self._net = net

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._net is not None:
            self._net._holder = None
            self._net._lock.release()
        return False
