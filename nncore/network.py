"""The Network: a stack of Dense layers, its parameters, workspaces and training loop.

The Python layer checks and converts inputs once, owns every buffer, and calls the
compiled kernels (``nncore/_kernels.pyx``) once per chunk of minibatches; it does no
per-batch arithmetic.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _validation
from ._codes import Status as _Status
from ._dispatch import kernels as _kernels
from ._memory import allocate as _allocate
from ._memory import format_bytes as _format_bytes
from ._training import SigintDeferred as _SigintDeferred
from ._training import Snapshot as _Snapshot
from ._training import epoch_order as _epoch_order
from ._training import next_chunk as _next_chunk
from .history import History, TrainingDiverged
from .layers import Dense, activation_code
from .losses import check_loss, check_targets, loss_code
from .optimizers import Adam, Optimizer, optimizer_from_name

if TYPE_CHECKING:
    import onnx

# Rows per chunk for forward/predict/loss: bounds the workspace whatever n is.
_EVAL_CHUNK_ROWS = 1024


class Network:
    """A dense neural network (multi-layer perceptron) trained by compiled kernels.

    Parameters
    ----------
    layers : sequence of Dense
        At least one layer; each layer's fan_in must equal the previous fan_out.
    loss : str, default "mse"
        ``mse``, ``binary_cross_entropy``, ``cross_entropy`` or ``gaussian_nll`` (see
        :mod:`nncore.losses` for the formulas).
    dtype : {"float32", "float64"}, default "float32"
        Type of the parameters and of all arithmetic. Inputs of another type are
        converted.
    seed : int or None, default None
        Seeds the generator used for weight initialisation and for shuffling in
        ``fit``: the same seed and data give the same weights, bit for bit.

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

    def __init__(self, layers: Sequence[Dense], loss: str = "mse",
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
        self._loss = check_loss(loss, layers[-1].fan_out)
        self._loss_code = loss_code(self._loss)
        if seed is not None:
            _validation.check_int(seed, "seed", 0)
        self.layers = layers
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._sizes = np.array([layers[0].fan_in] + [l.fan_out for l in layers],
                               dtype=np.intp)
        self._acts = np.array([activation_code(l.activation) for l in layers],
                              dtype=np.intp)
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
        self.history = None
        self.metadata = {}

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
        return (f"Network([{inner}], loss={self._loss!r}, dtype={self.dtype.name!r}, "
                f"seed={self.seed!r})")

    # ---------------------------------------------------------------- internals
    def _busy(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Network is in use by another thread; use one "
                               "network per thread, or serialise the calls")
        return _Release(self._lock)

    def _workspace(self, rows):
        work = self._workspaces.get(rows)
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
            self._workspaces = {rows: work}   # keep only the latest size
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
            cap = min(X.shape[0], _EVAL_CHUNK_ROWS)
            _kernels.forward(self._flat, self._sizes, self._acts, X, out,
                             self._workspace(cap), cap)
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
        (sigmoid) for ``binary_cross_entropy``, values for ``mse``, and for
        ``gaussian_nll`` an (n, 2k) array of means then variances.

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

    def _targets(self, X, y, sample_weight):
        X = self._check_X(X)
        T, labels = check_targets(self._loss, y, X.shape[0], self.n_outputs, self._dtype)
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

    def _loss_and_grads(self, X, y, sample_weight, want_grads):
        return self._loss_and_grads_checked(*self._targets(X, y, sample_weight),
                                            want_grads)

    def _loss_and_grads_checked(self, X, T, labels, w, want_grads):
        """loss_and_grads on arrays already checked and converted by _targets."""
        with self._busy():
            cap = min(X.shape[0], _EVAL_CHUNK_ROWS)
            grads = np.empty_like(self._flat) if want_grads else None
            value = _kernels.loss_and_grads(
                self._flat, grads, self._sizes, self._acts, self._loss_code, X, T,
                labels, w, self._workspace(cap), cap)
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

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` for the classification losses.
            cross_entropy compares the argmax of the output with the label, or with
            the argmax of a probability row. binary_cross_entropy counts a row as a
            hit when every probability > 0.5 agrees with its target > 0.5.
        """
        X, T, labels, w = self._targets(X, y, sample_weight)    # checked once, here
        result = {"loss": self._loss_and_grads_checked(X, T, labels, w, False)}
        if self._loss in ("cross_entropy", "binary_cross_entropy"):
            scores = self._forward_checked(X)
            if self._loss == "cross_entropy":
                truth = labels if labels is not None else T.argmax(axis=1)
                hit = scores.argmax(axis=1) == truth
            else:
                hit = ((scores > 0) == (T > 0.5)).all(axis=1)
            # the weights as checked and converted, as the loss used them
            w = w.astype(np.float64) if w is not None else None
            result["accuracy"] = float(np.average(hit, weights=w))
        return result

    # ---------------------------------------------------------------- training
    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 1, batch_size: int = 32,
            optimizer: Optimizer | str | None = None, shuffle: bool = True,
            sample_weight: ArrayLike | None = None, verbose: bool = False) -> History:
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
            (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``) means a new one with
            default hyperparameters.
        shuffle : bool, default True
            True: each epoch takes the rows in a permutation drawn from the network's
            seeded generator. False: batches are rows ``[0:B]``, ``[B:2B]``, ..., the
            last partial batch included.
        sample_weight : array-like of shape (n_samples,), optional
            Each batch's loss is its weighted mean; a batch whose weights are all
            zero is skipped.
        verbose : bool, default False
            Print the loss after each epoch.

        Returns
        -------
        History
            Also kept as ``self.history``.

        Raises
        ------
        ValueError, TypeError
            Bad arguments, named in the message; raised before anything changes.
        TrainingDiverged
            The loss, the parameters or the optimizer state became NaN or infinite.
            The parameters, the optimizer state and step count, and the shuffling
            generator are restored to the end of the last good epoch;
            ``self.history`` holds the good epochs.
        KeyboardInterrupt
            On Ctrl-C, within a fraction of a second. The network and optimizer are
            left as after the last completed batch: consistent and usable, and a
            later ``fit`` continues from there. If that batch's update was not
            finite, they are left as at the start of its epoch. ``self.history``
            holds the completed epochs, with ``interrupted`` set.
        MemoryError
            The workspace for ``batch_size`` rows does not fit; the message gives
            its size. Raised before anything changes.
        """
        epochs = _validation.check_int(epochs, "epochs", 0)
        batch_size = _validation.check_int(batch_size, "batch_size", 1)
        shuffle = _validation.check_bool(shuffle, "shuffle")
        if optimizer is None:
            optimizer = self._optimizer if self._optimizer is not None else Adam()
        elif isinstance(optimizer, str):
            optimizer = optimizer_from_name(optimizer)
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be an nncore optimizer (SGD, Adam, AdamW, "
                            "RMSprop), the name of one, or None; got "
                            f"{type(optimizer).__name__}")
        optimizer._check()
        X, T, labels, w = self._targets(X, y, sample_weight)
        n = X.shape[0]
        B = min(batch_size, n)
        _validation.check_int(B, "batch_size (rows per batch)", 1, _validation.BLAS_MAX)
        n_batches = -(-n // B)

        with self._busy():
            if not np.isfinite(self._flat).all():
                raise ValueError("the network's parameters hold NaN or inf (written into "
                                 "net.params?): training cannot start from them; "
                                 "create a new Network")
            work = self._workspace(B)      # may raise MemoryError: nothing changed yet
            optimizer._bind(self)
            self._optimizer = optimizer
            gather = shuffle and n_batches > 1
            order_buf = np.empty(n if gather else 0, np.intp)
            saved = _Snapshot(self, optimizer)
            history = History()
            self.history = history
            per_chunk = getattr(self, "_batches_per_chunk", 1)
            settings, s1, s2 = optimizer._kernel_args()    # fixed for this call
            with _SigintDeferred() as sigint:
                for epoch in range(epochs):
                    saved.take()
                    order = _epoch_order(self._rng, n, order_buf) if gather else None
                    loss_sum = weight_sum = 0.0
                    batch = 0
                    while batch < n_batches:
                        count = min(per_chunk, n_batches - batch)
                        t0 = time.perf_counter()
                        # The running sums by keyword: CPython before 3.13 never
                        # reuses a 20-item argument tuple from its free list
                        # (python/cpython#121439), so each call would park one there.
                        ls, ws, done, steps, status = _kernels.train_batches(
                            self._flat, self._grads, self._sizes, self._acts,
                            self._loss_code, X, T, labels, w, order, work, B, batch,
                            count, settings, s1, s2, optimizer.step, loss_sum=loss_sum,
                            weight_sum=weight_sum)
                        elapsed = time.perf_counter() - t0
                        optimizer.step += steps
                        batch += done
                        loss_sum, weight_sum = ls, ws
                        if status != _Status.OK:
                            saved.restore()
                            raise TrainingDiverged.during(
                                "the loss became NaN or infinite", epoch, batch,
                                optimizer.lr)
                        if done == count and elapsed > 0:
                            per_chunk = _next_chunk(per_chunk, count, elapsed)
                        if sigint.fired and batch < n_batches:
                            # a finished epoch is recorded first, below
                            self._interrupted(history, saved, per_chunk, sigint)
                    if not saved.live_is_finite():
                        # The loss was finite, but the last updates were not.
                        saved.restore()
                        raise TrainingDiverged.during(
                            "the parameters or optimizer state became NaN or infinite "
                            "(the loss itself was still finite)", epoch, n_batches - 1,
                            optimizer.lr)
                    history.loss.append(loss_sum / weight_sum if weight_sum else math.nan)
                    if verbose:
                        print(f"epoch {len(history.loss)}/{epochs}  "
                              f"loss {history.loss[-1]:.6f}", flush=True)
                    if sigint.fired:
                        self._interrupted(history, saved, per_chunk, sigint)
            self._batches_per_chunk = per_chunk
        return history

    def _interrupted(self, history, saved, per_chunk, sigint):
        """Ctrl-C seen between kernel calls: mark the history and raise
        KeyboardInterrupt. The state after the last completed batch stays, unless its
        update was not finite; then the epoch is undone, as for divergence."""
        if not saved.live_is_finite():
            saved.restore()
        history.interrupted = True
        self._batches_per_chunk = per_chunk
        sigint.raise_if_fired()


class _Release:
    __slots__ = ("_lock",)

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False
