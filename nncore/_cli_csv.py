"""``nncore train DATA.csv --target COLUMN`` and ``nncore predict MODEL DATA.csv``.

Training on the user's own CSV file: numeric feature columns and one target column,
class labels (any text) or numbers. The features are standardized with the training
rows' mean and standard deviation; the scaler, the feature names, the target's name and
the class labels go into the saved model's metadata, so that ``predict`` applies the
same transformation and writes the original label names. Number targets trained with
a squared, absolute or Huber loss are standardized too (and the predictions scaled
back); Poisson targets are counts and keep their scale.

Every problem with the files or the arguments is a ``ValueError`` (the command prints
it as one line and exits with status 2).
"""
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import _csv

# The model metadata written by ``train`` and required by ``predict``.
METADATA_KIND = "nncore.csv"
METADATA_VERSION = 1

# Defaults of the CSV mode of ``train`` (the demo's are per data set).
DEFAULTS = {"hidden": (64, 32), "activation": "relu", "epochs": 200, "batch_size": 32,
            "lr": 1e-3, "out": "model.npz"}

# Losses for a number target whose targets are standardized for training.
_STANDARDIZED_TARGETS = {"mse", "mae", "huber"}


def _add(parser, *flags, **kwargs):
    """parser.add_argument, unless the parser has the flag already: the demo mode of
    ``train`` may define ``--out``, ``--verbose`` or ``--plot`` with the same meaning."""
    taken = {s for action in parser._actions for s in action.option_strings}
    if not taken.intersection(flags):
        parser.add_argument(*flags, **kwargs)


def add_train_arguments(train):
    """The CSV mode's positional argument and options, on the ``train`` parser."""
    from .losses import LOSSES

    regression = [name for name in ("mse", "mae", "huber", "poisson") if name in LOSSES]
    train.add_argument("data", nargs="?", metavar="DATA.csv",
                       help="train on this CSV file (a header row, numeric feature "
                            "columns and the --target column) instead of a built-in "
                            "data set")
    # (None marks "not given", so that a CSV file and --dataset together are refused.)
    train.set_defaults(dataset=None)
    train.add_argument("--target", metavar="COLUMN",
                       help="CSV mode: the column to predict (class labels or numbers)")
    train.add_argument("--loss", choices=["auto", "cross_entropy", *regression],
                       help="CSV mode: cross_entropy for class labels, a regression "
                            "loss for numbers; auto (default) picks cross_entropy for "
                            "a target with any non-numeric value, else mse")
    train.add_argument("--validation-split", type=float, default=0.1, metavar="F",
                       help="CSV mode: fraction of the rows held out for validation, "
                            "stratified by class (default: 0.1; 0 for none)")
    train.add_argument("--early-stopping", action="store_true",
                       help="CSV mode: stop when the validation loss has not improved "
                            "for --patience epochs and keep the best epoch's weights")
    train.add_argument("--patience", type=int, default=10, metavar="N",
                       help="CSV mode: epochs without improvement before early "
                            "stopping (default: 10)")
    _add(train, "--out", metavar="MODEL.npz",
         help="save the trained model there (CSV mode default: model.npz)")
    _add(train, "--plot", metavar="CURVES.png",
         help="draw the loss and accuracy curves into this PNG file (needs "
              "matplotlib)")
    _add(train, "--verbose", action="store_true",
         help="one line per epoch instead of a progress bar")


def add_predict_parser(commands):
    """The ``predict`` command."""
    predict = commands.add_parser(
        "predict", help="predict for a CSV file with a model saved by 'train DATA.csv'",
        description="Write one prediction per row of DATA.csv, with the original "
                    "label names, using a model saved by 'nncore train DATA.csv'.")
    predict.add_argument("model", metavar="MODEL.npz")
    predict.add_argument("data", metavar="DATA.csv",
                         help="the model's feature columns (in any order), and "
                              "optionally its target column, which is ignored")
    predict.add_argument("--out", metavar="PREDICTIONS.csv",
                         help="write there instead of to standard output")
    predict.add_argument("--proba", action="store_true",
                         help="also write each class's probability (classification "
                              "models)")
    predict.set_defaults(run=predict_command)


def demo_defaults(args):
    """Fill in what add_train_arguments left unset for the built-in data sets, and
    refuse the CSV mode's options there. Returns True when ``args`` is the CSV mode."""
    if args.data is not None:
        if args.dataset is not None:
            raise ValueError(f"give a CSV file ({args.data}) or --dataset "
                             f"{args.dataset}, not both")
        return True
    csv_only = {"--target": args.target, "--loss": args.loss,
                "--early-stopping": args.early_stopping or None}
    given = [flag for flag, value in csv_only.items() if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} "
                         "a CSV file: nncore train DATA.csv --target COLUMN ...")
    if args.dataset is None:
        args.dataset = "spiral"
    return False


# --------------------------------------------------------------------- training
def train_command(args):
    """Run ``nncore train DATA.csv --target COLUMN ...``; returns the exit status."""
    import nncore

    settings = _train_settings(args)
    table = _csv.read_table(args.data, target=args.target)
    task = _task(table, settings["loss"])
    rows_train, rows_val = _split(task, table.n_rows, settings["validation_split"],
                                  args.seed)
    scaler = _standardizer(table.X[rows_train])
    X = _standardize(table.X, scaler, settings["dtype"])
    y, target_scaler = _targets(task, rows_train)
    net = _network(X.shape[1], task, settings, args.seed)
    optimizer = nncore.optimizers.OPTIMIZERS[args.optimizer](lr=settings["lr"])
    print(f"nncore {nncore.__version__}: {table.path} ({len(rows_train)} train / "
          f"{len(rows_val)} validation rows, {X.shape[1]} features, "
          f"{_describe(task)})")
    sizes = "-".join(str(s) for s in [X.shape[1], *settings["hidden"], net.n_outputs])
    print(f"network: {sizes}, {settings['activation']} hidden, loss {task['loss']}, "
          f"{settings['dtype']}, {optimizer!r}, batch {settings['batch_size']}, "
          f"seed {args.seed}", flush=True)
    validation = (X[rows_val], y[rows_val]) if len(rows_val) else None
    callbacks = []
    if args.early_stopping:
        callbacks.append(nncore.callbacks.EarlyStopping(
            monitor="val_loss", patience=args.patience, restore_best_weights=True))
    t0 = time.perf_counter()
    try:
        history = net.fit(X[rows_train], y[rows_train], epochs=settings["epochs"],
                          batch_size=settings["batch_size"], optimizer=optimizer,
                          validation_data=validation, callbacks=callbacks,
                          verbose=2 if args.verbose else 1)
    except nncore.TrainingDiverged as exc:
        from .cli import CommandError
        raise CommandError(f"training diverged: {exc}") from None
    seconds = time.perf_counter() - t0
    print(f"{history.epochs} epochs in {seconds:.3f} s")
    _report(net, task, X, y, target_scaler, rows_train, rows_val)
    metadata = _metadata(table, task, scaler, target_scaler)
    net.save(settings["out"], metadata=metadata)
    print(f"model saved to {settings['out']}")
    if args.plot:
        history.plot(args.plot)
        print(f"curves drawn in {args.plot}")
    return 0


def _train_settings(args):
    """The CSV mode's settings, with its defaults, checked before any file is read."""
    if args.target is None:
        raise ValueError(f"--target COLUMN is required with a CSV file ({args.data}): "
                         "the column to predict")
    pick = {key: (DEFAULTS[key] if getattr(args, key, None) is None
                  else getattr(args, key)) for key in DEFAULTS}
    for flag, value, low in (("--epochs", pick["epochs"], 0),
                             ("--batch-size", pick["batch_size"], 1),
                             ("--patience", args.patience, 0)):
        if value < low:
            raise ValueError(f"{flag} must be >= {low}; got {value}")
    if not (math.isfinite(pick["lr"]) and pick["lr"] > 0):
        raise ValueError(f"--lr must be a positive number; got {pick['lr']}")
    split = args.validation_split
    if not (0 <= split < 1):
        raise ValueError(f"--validation-split must be in [0, 1); got {split}")
    if args.early_stopping and split == 0:
        raise ValueError("--early-stopping needs validation rows: give "
                         "--validation-split > 0")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        from .cli import CommandError
        raise CommandError('--plot needs matplotlib: pip install "nncore[plot]"')
    out = Path(pick["out"])
    if out.parent and not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    pick.update(validation_split=split, loss=args.loss or "auto",
                dtype=args.dtype, out=str(out))
    return pick


def _task(table, loss):
    """What to learn: ``{"loss", "kind" ("classification"/"regression"), "classes"
    (label texts) or None, "y" (class indices or float64 values)}``."""
    values = _csv.numeric_target(table.target)
    if loss == "auto":
        loss = "mse" if values is not None else "cross_entropy"
    if loss == "cross_entropy":
        classes = _sorted_labels(set(table.target))
        if len(classes) < 2:
            raise ValueError(f"{table.path}: the target {table.target_name!r} holds a "
                             f"single class ({classes[0]!r}); a classifier needs two "
                             "or more")
        index = {label: i for i, label in enumerate(classes)}
        y = np.array([index[t] for t in table.target], dtype=np.intp)
        return {"loss": loss, "kind": "classification", "classes": classes, "y": y,
                "name": table.target_name}
    if values is None:
        bad = next(i for i, t in enumerate(table.target)
                   if _csv.numeric_target([t]) is None)
        raise ValueError(f"{table.path}, line {table.lines[bad]}: --loss {loss} needs a "
                         f"numeric target, but column {table.target_name!r} holds "
                         f"{table.target[bad]!r}; use --loss cross_entropy for labels")
    if loss == "poisson" and (values < 0).any():
        bad = int(np.argmax(values < 0))
        raise ValueError(f"{table.path}, line {table.lines[bad]}: --loss poisson needs "
                         f"counts >= 0; column {table.target_name!r} holds {values[bad]}")
    return {"loss": loss, "kind": "regression", "classes": None, "y": values,
            "name": table.target_name}


def _sorted_labels(labels):
    """Numeric labels in numeric order (2 before 10), others in text order."""
    if _csv.numeric_target(list(labels)) is not None:
        return sorted(labels, key=lambda t: (float(t), t))
    return sorted(labels)


def _describe(task):
    if task["kind"] == "classification":
        return f"{len(task['classes'])} classes in {task['name']!r}"
    return f"number target {task['name']!r}"


def _split(task, n, fraction, seed):
    """(training rows, validation rows), seeded; stratified by class."""
    rng = np.random.default_rng(seed)
    if fraction == 0:
        return np.arange(n), np.arange(0)
    groups = ([np.flatnonzero(task["y"] == c) for c in range(len(task["classes"]))]
              if task["kind"] == "classification" else [np.arange(n)])
    val = [rng.permutation(g)[:round(fraction * len(g))] for g in groups]
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(n), val)
    if len(val) == 0 or len(train) == 0:
        raise ValueError(f"--validation-split {fraction} of {n} rows leaves "
                         f"{len(train)} training and {len(val)} validation rows; "
                         "change it (0 for no validation)")
    return train, val


def _standardizer(X):
    """{"mean", "scale"} lists per column; a constant column gets scale 1."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[~(scale > 0)] = 1.0
    return {"mean": mean.tolist(), "scale": scale.tolist()}


def _standardize(X, scaler, dtype):
    out = (X - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])
    return np.ascontiguousarray(out, dtype=dtype)


def _targets(task, rows_train):
    """The network's targets and the target scaler (None: targets unscaled)."""
    if task["kind"] == "classification":
        return task["y"], None
    y = task["y"]
    if task["loss"] not in _STANDARDIZED_TARGETS:
        return y.reshape(-1, 1), None
    mean = float(y[rows_train].mean())
    scale = float(y[rows_train].std())
    scale = scale if scale > 0 else 1.0
    return ((y - mean) / scale).reshape(-1, 1), {"mean": mean, "scale": scale}


def _network(n_features, task, settings, seed):
    import nncore

    width = len(task["classes"]) if task["kind"] == "classification" else 1
    sizes = [n_features, *settings["hidden"], width]
    layers = [nncore.Dense(a, b, activation=settings["activation"])
              for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers.append(nncore.Dense(sizes[-2], sizes[-1]))
    return nncore.Network(layers, loss=task["loss"], dtype=settings["dtype"], seed=seed)


def _report(net, task, X, y, target_scaler, rows_train, rows_val):
    """Print the final metrics on the training and validation rows."""
    for name, rows in (("train", rows_train), ("validation", rows_val)):
        if not len(rows):
            continue
        result = net.evaluate(X[rows], y[rows])
        line = f"{name}: loss {result['loss']:.6f}"
        if task["kind"] == "classification":
            line += f"  accuracy {result['accuracy']:.4f}"
        else:
            pred = _unscale(net.predict(X[rows])[:, 0], target_scaler)
            truth = task["y"][rows]
            rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
            var = float(np.var(truth))
            r2 = 1 - rmse ** 2 / var if var > 0 else float("nan")
            line += f"  rmse {rmse:.6g}  r2 {r2:.4f}"
        print(f"{line}  ({len(rows)} rows)")


def _unscale(values, target_scaler):
    values = values.astype(np.float64)
    if target_scaler is None:
        return values
    return values * target_scaler["scale"] + target_scaler["mean"]


def _metadata(table, task, scaler, target_scaler):
    return {"kind": METADATA_KIND, "version": METADATA_VERSION,
            "features": list(table.feature_names), "target": table.target_name,
            "task": task["kind"], "classes": task["classes"], "scaler": scaler,
            "target_scaler": target_scaler}


# ------------------------------------------------------------------- prediction
def predict_command(args):
    """Run ``nncore predict MODEL.npz DATA.csv``; returns the exit status."""
    net, meta = load_model(args.model)
    if args.proba and meta["task"] != "classification":
        raise ValueError(f"--proba needs a classification model; {args.model} predicts "
                         f"the number {meta['target']!r}")
    table = _csv.read_table(args.data, target=meta["target"], features=meta["features"])
    X = _standardize(table.X, meta["scaler"], net.dtype)
    P = net.predict(X)
    if meta["task"] == "classification":
        classes = np.array(meta["classes"], dtype=object)
        header, columns = [meta["target"]], [classes[P.argmax(axis=1)]]
        if args.proba:
            header += [f"proba_{label}" for label in meta["classes"]]
            columns += [P[:, j].astype(np.float64) for j in range(P.shape[1])]
    else:
        header = [meta["target"]]
        columns = [_unscale(P[:, 0], meta["target_scaler"])]
    if args.out is None:
        _csv.write_rows(sys.stdout, header, columns)
        sys.stdout.flush()
    else:
        try:
            with open(args.out, "w", newline="", encoding="utf-8") as handle:
                _csv.write_rows(handle, header, columns)
        except OSError as exc:
            raise ValueError(f"--out {args.out}: cannot write: "
                             f"{exc.strerror or exc}") from None
        print(f"{table.n_rows} predictions written to {args.out}", file=sys.stderr)
    return 0


def load_model(path):
    """(network, metadata) of a model saved by ``train DATA.csv``; ValueError naming
    the file for anything else."""
    import nncore

    if not Path(path).is_file():
        raise ValueError(f"{path}: no such model file")
    net = nncore.load(path)
    meta = getattr(net, "metadata", None) or {}
    if meta.get("kind") != METADATA_KIND:
        raise ValueError(f"{path} is an nncore network without the CSV command's "
                         "metadata (feature names, scaler): predict takes models saved "
                         "by 'nncore train DATA.csv --target COLUMN'")
    if meta.get("version") != METADATA_VERSION:
        raise ValueError(f"{path}: CSV model metadata version {meta.get('version')!r}; "
                         f"this nncore reads version {METADATA_VERSION}")
    _check_metadata(path, net, meta)
    return net, meta


def _check_metadata(path, net, meta):
    """The metadata's fields against each other and the network, so that a damaged
    or hand-edited file is a clear error rather than a wrong prediction."""
    features, scaler = meta.get("features"), meta.get("scaler") or {}
    problems = []
    if not (isinstance(features, list) and all(isinstance(f, str) for f in features)
            and len(features) == net.n_inputs):
        problems.append(f"'features' must list the network's {net.n_inputs} inputs")
    for key in ("mean", "scale"):
        column = scaler.get(key)
        if not (isinstance(column, list) and len(column) == net.n_inputs and
                all(isinstance(v, (int, float)) and math.isfinite(v) for v in column)):
            problems.append(f"'scaler.{key}' must hold {net.n_inputs} finite numbers")
    if not isinstance(meta.get("target"), str):
        problems.append("'target' must be a column name")
    if meta.get("task") == "classification":
        classes = meta.get("classes")
        if not (isinstance(classes, list) and len(classes) == net.n_outputs):
            problems.append(f"'classes' must list the network's {net.n_outputs} outputs")
    elif meta.get("task") == "regression":
        ts = meta.get("target_scaler")
        if ts is not None and not (isinstance(ts, dict) and all(
                isinstance(ts.get(k), (int, float)) for k in ("mean", "scale"))):
            problems.append("'target_scaler' must be null or {mean, scale}")
    else:
        problems.append("'task' must be 'classification' or 'regression'")
    if problems:
        raise ValueError(f"{path}: damaged CSV model metadata: {'; '.join(problems)}")
