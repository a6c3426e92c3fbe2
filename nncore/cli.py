"""The ``nncore`` command: train a network on a built-in data set or a CSV file,
predict with a model trained on a CSV file, or describe a saved one.

::

    python -m nncore train                      # 2-64-64-3 ReLU net on a 3-class spiral
    python -m nncore train --dataset digits --epochs 20 --optimizer sgd --lr 0.05
    python -m nncore train --out model.npz      # ... and save the trained network
    python -m nncore info model.npz             # describe a saved network
    python -m nncore train data.csv --target species --out model.npz
    python -m nncore predict model.npz new.csv --out predictions.csv

The CSV mode of ``train`` and the ``predict`` command live in nncore/_cli_csv.py.

On a built-in data set, ``train`` prints the training loss after every epoch (and the
test accuracy, where the data set has a held-out part), then the final train and test
accuracy and the time spent in ``fit``. Exit status: 0 on success; 2 for a bad
argument, whether argparse or nncore itself (a ``ValueError``/``TypeError``) rejects
it; 1 when training fails (the loss diverged, a data set's optional package is
missing); 130 on Ctrl-C.
"""
import argparse
import inspect
import os
import sys

import numpy as np

from . import _cli_csv
from .callbacks import Callback

PROG = "nncore"

# Per data set: the network and training defaults that the command line can override.
DATASET_DEFAULTS = {
    "spiral": {"hidden": (64, 64), "activation": "relu", "epochs": 100, "batch_size": 32},
    "digits": {"hidden": (64,), "activation": "relu", "epochs": 20, "batch_size": 32},
    "xor": {"hidden": (8,), "activation": "tanh", "epochs": 300, "batch_size": 4},
}

# The command's learning rates where they differ from the optimizer's own default
# (nncore.optimizers, PyTorch's): its data sets are small and its runs short, which
# the library defaults (sized for long runs) would leave far from fitted.
COMMAND_LR = {"adam": 1e-2, "adamw": 1e-2, "sgd": 1e-1}


def _per_batch(optimizers):
    """The optimizers that take a learning rate (all but the full-batch LBFGS)."""
    return [name for name, cls in optimizers.items()
            if "lr" in inspect.signature(cls).parameters]


def _optimizer_lr(name):
    """The learning rate the command uses for optimizer ``name`` by default."""
    from .optimizers import OPTIMIZERS

    default = inspect.signature(OPTIMIZERS[name]).parameters["lr"].default
    return COMMAND_LR.get(name, default)


class CommandError(Exception):
    """A failure to report as ``nncore: error: ...`` with the given exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def _hidden_sizes(text):
    """``"64,64"`` -> ``(64, 64)``; ``""`` or ``"none"`` -> ``()`` (no hidden layer)."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes >= 1 such as 64,64; got {text!r}")
    return sizes


def build_parser():
    """The argument parser of the ``nncore`` command."""
    from . import ACTIVATIONS, __version__
    from .optimizers import OPTIMIZERS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="nncore: dense neural networks trained on the CPU by compiled "
                    "Cython kernels.")
    parser.add_argument("--version", action="version", version=f"nncore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    defaults = "; ".join(
        f"{name}: {','.join(map(str, d['hidden'])) or 'none'} {d['activation']}, "
        f"{d['epochs']} epochs, batch {d['batch_size']}"
        for name, d in DATASET_DEFAULTS.items())
    lrs = ", ".join(f"{name} {_optimizer_lr(name):g}" for name in _per_batch(OPTIMIZERS))
    train = commands.add_parser(
        "train", help="train a network on a built-in data set",
        description="Train a dense network on a built-in data set, printing the loss "
                    "per epoch and the final accuracy.",
        epilog=f"Defaults per data set: {defaults}. Default learning rates: {lrs}. "
               "spiral is tested on a second spiral drawn with another seed, digits "
               "on a seeded 20% hold-out; xor has no test set.")
    train.add_argument("--dataset", choices=sorted(DATASET_DEFAULTS), default="spiral",
                       help="built-in data set (default: spiral; digits needs "
                            "scikit-learn)")
    train.add_argument("--epochs", type=int, metavar="N",
                       help="passes over the training data (default: per data set)")
    train.add_argument("--batch-size", type=int, metavar="B",
                       help="rows per minibatch (default: per data set)")
    train.add_argument("--hidden", type=_hidden_sizes, metavar="SIZES",
                       help="hidden layer sizes, comma-separated, e.g. 64,64; 'none' "
                            "for no hidden layer (default: per data set)")
    train.add_argument("--activation", choices=list(ACTIVATIONS),
                       help="activation of the hidden layers (default: per data set)")
    train.add_argument("--optimizer", choices=_per_batch(OPTIMIZERS), default="adam",
                       help="default: adam")
    train.add_argument("--lr", type=float, metavar="X",
                       help="learning rate (default: per optimizer)")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                       help="default: float32")
    train.add_argument("--seed", type=int, default=0, metavar="S",
                       help="seeds the data, the weights and the shuffling (default: 0)")
    train.add_argument("--threads", type=int, metavar="T",
                       help="threads for the kernels and BLAS, through "
                            "nncore.set_num_threads (default: all cores)")
    train.add_argument("--log-every", type=int, default=1, metavar="K",
                       help="print every K-th epoch, and the last (default: 1)")
    train.set_defaults(run=_train)
    _add_model_commands(commands, train)
    _cli_csv.add_train_arguments(train)
    _cli_csv.add_predict_parser(commands)
    return parser


def _load(name, seed):
    """(X_train, y_train, X_test, y_test, n_outputs, loss); the test pair may be None."""
    from . import datasets

    try:
        X, y, X_test, y_test = datasets.load(name, seed)
    except ImportError as exc:
        raise CommandError(f"the {name} data set needs scikit-learn "
                           f"(pip install scikit-learn): {exc}") from None
    if name == "xor":
        return X, y, X_test, y_test, 1, "binary_cross_entropy"
    return X, y, X_test, y_test, int(np.max(y)) + 1, "cross_entropy"


class _EpochReport(Callback):
    """Prints every ``log_every``-th epoch and the last: the training loss and, where
    the data set has a held-out part, the test accuracy (evaluated only then)."""

    def __init__(self, epochs, log_every, X_test, y_test):
        self.epochs, self.log_every = epochs, log_every
        self.X_test, self.y_test = X_test, y_test
        self.width = len(str(epochs))

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.log_every and done != self.epochs:
            return
        line = f"epoch {done:{self.width}d}/{self.epochs}  loss {logs['loss']:.6f}"
        if self.X_test is not None:
            accuracy = self.network.evaluate(self.X_test, self.y_test)["accuracy"]
            line += f"  test accuracy {accuracy:.4f}"
        print(line, flush=True)


def _train(args):
    import nncore

    if _cli_csv.demo_defaults(args):
        return _cli_csv.train_command(args)
    defaults = DATASET_DEFAULTS[args.dataset]
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    batch_size = defaults["batch_size"] if args.batch_size is None else args.batch_size
    hidden = defaults["hidden"] if args.hidden is None else args.hidden
    activation = args.activation or defaults["activation"]
    lr = _optimizer_lr(args.optimizer) if args.lr is None else args.lr
    for flag, value, minimum in (("--epochs", epochs, 0), ("--batch-size", batch_size, 1),
                                 ("--threads", args.threads, 1),
                                 ("--log-every", args.log_every, 1)):
        if value is not None and value < minimum:
            raise ValueError(f"{flag} must be >= {minimum}; got {value}")

    X, y, X_test, y_test, n_outputs, loss = _load(args.dataset, args.seed)
    if X_test is not None:
        # Converted once here, so that each evaluation has nothing to copy.
        X_test = np.ascontiguousarray(X_test, dtype=np.dtype(args.dtype))

    sizes = [X.shape[1], *hidden, n_outputs]
    layers = [nncore.Dense(a, b, activation=activation)
              for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers.append(nncore.Dense(sizes[-2], sizes[-1]))
    net = nncore.Network(layers, loss=loss, dtype=args.dtype, seed=args.seed)
    optimizer = nncore.optimizers.OPTIMIZERS[args.optimizer](lr=lr)
    if args.threads is not None:
        limiter = nncore.set_num_threads(args.threads)
    else:
        limiter = None

    split = f"{len(X)} train" + ("" if X_test is None else f" / {len(X_test)} test")
    print(f"nncore {nncore.__version__}: {args.dataset} ({split} samples, "
          f"{X.shape[1]} features, {max(n_outputs, 2)} classes)")
    hidden_text = f"{activation} hidden" if hidden else "no hidden layer"
    print(f"network: {'-'.join(map(str, sizes))}, {hidden_text}, loss {loss}, "
          f"{args.dtype}, {optimizer!r}, batch {batch_size}, seed {args.seed}, "
          f"{nncore.get_num_threads()} thread(s)", flush=True)

    report = _EpochReport(epochs, args.log_every, X_test, y_test)
    try:
        history = net.fit(X, y, epochs=epochs, batch_size=batch_size,
                          optimizer=optimizer, callbacks=[report])
    except nncore.TrainingDiverged as exc:
        state = f"epoch {exc.epoch}" if exc.epoch else "initialisation"
        raise CommandError(
            f"the loss became NaN or infinite in epoch {exc.epoch + 1} (the weights are "
            f"restored to those after {state}). Try a lower --lr (this run: "
            f"{lr:g}) or another optimizer.") from None
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    # The epochs' own time: training, without the test evaluations of the report.
    seconds = sum(history.history["time"])

    result = f"train accuracy {net.evaluate(X, y)['accuracy']:.4f}"
    if X_test is not None:
        result += f"  test accuracy {net.evaluate(X_test, y_test)['accuracy']:.4f}"
    print(result)
    rate = f" ({epochs * len(X) / seconds:,.0f} samples/s)" if seconds > 0 else ""
    print(f"training time {seconds:.3f} s{rate}")
    _save_trained(net, args)
    return 0


# ------------------------------------------------------------------ model files
def _add_model_commands(commands, train):
    """``train --out PATH`` and the ``info`` command."""
    train.add_argument("--out", metavar="PATH",
                       help="save the trained network (with its optimizer) to PATH, a "
                            "file that nncore.load and 'nncore info' read")
    info = commands.add_parser(
        "info", help="describe a saved model file",
        description="Print a saved network's architecture, loss, dtype, parameter "
                    "count and training state. Exit status 2 for a file that is not a "
                    "valid nncore model (nothing in it is executed).")
    info.add_argument("path", help="a file written by Network.save or train --out")
    info.set_defaults(run=_info)


def _save_trained(net, args):
    if args.out is None:
        return
    try:
        net.save(args.out)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
    print(f"saved to {args.out}")


def _info(args):
    from . import io

    try:
        header, net = io.read(args.path, allow_nonfinite=True)
    except OSError as exc:
        raise CommandError(f"cannot open {args.path!r}: {exc.strerror or exc}",
                           status=2) from None
    sizes = "-".join(str(s) for s in [net.n_inputs] + [l.fan_out for l in net.layers])
    print(f"{args.path}: nncore model, format version {header['format_version']}, "
          f"written by nncore {header['nncore_version']}")
    print(f"network: {sizes}, {len(net.layers)} layers")
    for i, layer in enumerate(net.layers):
        print(f"  {i}: {layer!r}, {layer.n_params:,} parameters")
    print(f"loss: {net.loss_name}")
    print(f"dtype: {net.dtype.name}")
    bad = sum(int(p.size - np.count_nonzero(np.isfinite(p))) for p in net.params)
    print(f"parameters: {net.n_params:,}"
          + (f" ({bad:,} NaN or infinite)" if bad else ""))
    if net.optimizer is None:
        print("optimizer: not saved (training would go on with a new one)")
    else:
        print(f"optimizer: {net.optimizer!r}, step {net.optimizer.step:,}")
    print(f"seed: {net.seed}")
    if net.metadata:
        print(f"metadata: {', '.join(sorted(net.metadata))}")
    return 0


def main(argv=None):
    """Run the ``nncore`` command with ``argv`` (default ``sys.argv[1:]``).

    Returns the exit status: 0 success, 1 failure, 2 bad arguments, 130 Ctrl-C.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)    # exits 2 by itself on bad usage
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep Python's exit-time
        # flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
