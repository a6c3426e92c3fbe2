"""The data arguments of ``Network.fit``, checked and converted once per call: the
training rows, their weights (``sample_weight`` times ``class_weight``), and the
validation rows (``validation_data``, or a stratified ``validation_split``)."""
import math
import numbers

import numpy as np

from . import _validation

# Mixed into the network's seed for the generator of validation_split, so that the
# split draws nothing from (and does not depend on the state of) the shuffling one.
_SPLIT_STREAM = 0x5EED_5B17


class Rows:
    """Checked arrays of one data set, as the kernels take them.

    Attributes
    ----------
    X : ndarray of shape (n, n_inputs)
    T : ndarray of shape (n, width), or None
        Float targets (None when ``labels`` holds them).
    labels : ndarray of shape (n,), or None
        Integer class labels of ``cross_entropy`` (None otherwise).
    w : ndarray of shape (n,), or None
        Sample weights (None: all ones).
    """

    __slots__ = ("T", "X", "labels", "w")

    def __init__(self, X, T, labels, w):
        self.X, self.T, self.labels, self.w = X, T, labels, w

    @property
    def n(self):
        return self.X.shape[0]

    def take(self, rows):
        """The subset ``rows`` (an index array), in that order."""
        def pick(a):
            return None if a is None else a[rows]
        return Rows(self.X[rows], pick(self.T), pick(self.labels), pick(self.w))


def fit_rows(network, X, y, sample_weight, class_weight, validation_data,
             validation_split):
    """(training Rows, validation Rows or None) for one ``fit`` call.

    ``class_weight`` is checked against the whole of ``y``; ``"balanced"`` weighs the
    classes by their counts in the training rows. Validation rows keep their
    ``sample_weight`` but get no class weights (the validation loss stays the loss
    :meth:`Network.evaluate` reports).
    """
    split = _validation.check_float(validation_split, "validation_split", low=0,
                                    high=1, high_open=True)
    if split and validation_data is not None:
        raise ValueError(f"give validation_data or validation_split, not both; got "
                         f"validation_split={split} and validation_data")
    rows = Rows(*network._targets(X, y, sample_weight))
    classes = _classes(network.loss_name, rows) if class_weight is not None else None
    table = _class_table(class_weight, network.loss_name, classes)
    val = None
    if validation_data is not None:
        val = _validation_rows(network, validation_data)
    elif split:
        held = holdout(split_generator(network), rows.n, split,
                       _strata(network.loss_name, rows))
        keep = np.ones(rows.n, dtype=bool)
        keep[held] = False
        train = np.flatnonzero(keep)
        val = rows.take(held)
        if val.w is not None and not val.w.sum() > 0:
            raise ValueError("sample_weight is zero on every row that validation_split "
                             "holds out: the validation loss would be undefined")
        rows, classes = rows.take(train), None if classes is None else classes[train]
    if table is not None:
        rows.w = _weighted(rows.w, _row_class_weights(table, classes), network.dtype)
    return rows, val


def _validation_rows(network, data):
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError("validation_data must be a tuple (X_val, y_val) or (X_val, "
                        f"y_val, sample_weight_val); got {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list))
                           else ""))
    try:
        weights = data[2] if len(data) > 2 else None
        return Rows(*network._targets(data[0], data[1], weights))
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"validation_data: {exc}") from None


def _classes(loss, rows):
    """The class of every row, for class weights: (n,) intp."""
    if loss == "cross_entropy":
        if rows.labels is None:
            raise ValueError("class_weight needs integer class labels for cross_entropy; "
                             "y holds probability rows (pass sample_weight instead)")
        return rows.labels
    if loss == "binary_cross_entropy":
        T = rows.T
        if T.shape[1] != 1 or ((T != 0) & (T != 1)).any():
            what = f"of shape {T.shape}" if T.shape[1] != 1 else "other than 0 and 1"
            raise ValueError("class_weight with binary_cross_entropy needs one output "
                             f"and targets 0 or 1; got targets {what}")
        return T[:, 0].astype(np.intp)
    raise ValueError(f"class_weight applies to the classification losses "
                     f"(cross_entropy, binary_cross_entropy); this network's loss is "
                     f"{loss!r} (pass sample_weight instead)")


def _class_table(class_weight, loss, classes):
    """class_weight checked: None, "balanced", or {label: float} with every label in y."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict "
                             f"{{label: weight}}; got {class_weight!r}")
        return class_weight
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be None, 'balanced' or a dict {{label: "
                        f"weight}}; got {type(class_weight).__name__}")
    present = np.unique(classes)
    table = {}
    for label, weight in class_weight.items():
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, numbers.Integral):
            raise TypeError(f"class_weight's keys must be integer class labels; got "
                            f"{label!r} of type {type(label).__name__}")
        if int(label) not in present:
            raise ValueError(f"class_weight has label {label!r}, which is not in y "
                             f"(its labels: {present.tolist()})")
        table[int(label)] = _validation.check_float(weight, f"class_weight[{label!r}]",
                                                    low=0)
    return table


def _row_class_weights(table, classes):
    """(n,) float64: each row's class weight (1 for classes the dict leaves out)."""
    counts = np.bincount(classes)
    if table == "balanced":
        present = np.flatnonzero(counts)
        per_class = np.ones(counts.shape[0])
        # scikit-learn's "balanced": n_samples / (n_classes * bincount(y))
        per_class[present] = classes.shape[0] / (present.shape[0] * counts[present])
    else:
        per_class = np.ones(max(counts.shape[0], max(table) + 1))
        for label, weight in table.items():
            per_class[label] = weight
    return per_class[classes]


def _weighted(w, class_w, dtype):
    """sample_weight times the class weights, in the network's dtype."""
    product = class_w if w is None else w * class_w
    product = np.ascontiguousarray(product, dtype=dtype)
    if not product.sum() > 0:
        raise ValueError("sample_weight times class_weight is zero on every training "
                         "row: the weighted mean loss would be undefined")
    return product


def _strata(loss, rows):
    """The class of every row for a stratified split (None: not a classification)."""
    if loss == "cross_entropy":
        return rows.labels if rows.labels is not None else rows.T.argmax(axis=1)
    if loss == "binary_cross_entropy":
        # each distinct pattern of 0/1 decisions is a stratum
        return np.unique(rows.T > 0.5, axis=0, return_inverse=True)[1].reshape(-1)
    return None


def split_generator(network):
    """The generator of ``validation_split`` for ``network``: derived from its seed
    (the entropy of its shuffling generator's seed sequence), so the same network
    and data give the same split in every ``fit`` call, and the same seed in every
    run, without touching the shuffling generator's state."""
    entropy = network._rng.bit_generator.seed_seq.entropy
    return np.random.default_rng(np.random.SeedSequence(entropy,
                                                        spawn_key=(_SPLIT_STREAM,)))


def holdout(rng, n, fraction, strata=None):
    """Indices (sorted) of ``ceil(fraction * n)`` rows drawn at random from ``n``.

    With ``strata`` ((n,) integer class of each row), every class gives its share:
    the counts follow ``fraction`` of each class's size rounded by largest remainder
    (ties broken at random), so each class gets the floor or the ceiling of its
    exact share and the total is exact.

    Raises
    ------
    ValueError
        No row would be left to train on.
    """
    n_val = math.ceil(fraction * n)
    if n_val >= n:
        raise ValueError(f"validation_split={fraction} holds out {n_val} of the {n} "
                         "rows, leaving none to train on")
    if strata is None:
        return np.sort(rng.choice(n, n_val, replace=False))
    counts = np.bincount(strata)
    exact = counts * (n_val / n)
    quota = np.floor(exact).astype(np.intp)
    short = n_val - int(quota.sum())
    # The classes with the largest remainders get one row more (random order first,
    # then a stable sort by remainder, so ties fall at random).
    shuffled = rng.permutation(counts.shape[0])
    by_remainder = shuffled[np.argsort(-(exact - quota)[shuffled], kind="stable")]
    quota[by_remainder[:short]] += 1
    by_class = np.argsort(strata, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)))
    held = [rng.choice(by_class[starts[c]:starts[c + 1]], quota[c], replace=False)
            for c in np.flatnonzero(quota)]
    return np.sort(np.concatenate(held))
