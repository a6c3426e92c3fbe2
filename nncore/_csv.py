"""Reading a CSV file of numeric features and one target column, row by row.

The command line trains on (and predicts for) the user's own CSV files. The file is read
with the standard library's ``csv`` module one row at a time: each row's features are
parsed into a growing ``array('d')`` and the target's text into a list, so memory holds
the numbers and never the whole file's text (pandas is not needed).

Every problem with a file is a :class:`CSVError` (a ``ValueError``) whose one-line
message names the file, the line and the column.
"""
import csv
import math
from array import array

import numpy as np

# Field texts that mean "no value" in the files people export from spreadsheets and
# data frames: named in the error, so the message says why the field is refused.
_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


class CSVError(ValueError):
    """A CSV file that cannot be used: missing, empty, ragged or not numeric."""


class Table:
    """The columns read from a CSV file.

    Attributes
    ----------
    path : str
    feature_names : list of str
        In the order of ``X``'s columns.
    X : ndarray of shape (n_rows, n_features), float64
    target_name : str or None
    target : list of str or None
        The target column's texts (stripped of surrounding spaces), one per row.
    lines : ndarray of shape (n_rows,), int
        The file line each row started on (for messages).
    """

    def __init__(self, path, feature_names, X, target_name, target, lines):
        self.path = path
        self.feature_names = feature_names
        self.X = X
        self.target_name = target_name
        self.target = target
        self.lines = lines

    @property
    def n_rows(self):
        return self.X.shape[0]


def read_table(path, target=None, features=None):
    """Read ``path``: a header row, then one row per sample.

    Parameters
    ----------
    path : str or path-like
    target : str, optional
        The target column (any text). None: no target is read, and a column of that
        name is not expected.
    features : list of str, optional
        The feature columns to read, in this order (a saved model's); the file may hold
        them in any order, plus the ``target`` column, and nothing else. None: every
        column but ``target`` is a feature, in the file's order.

    Returns
    -------
    Table

    Raises
    ------
    CSVError
        The file is missing or unreadable, empty, has no data rows, repeats a column
        name, lacks the target or a feature column, has unexpected columns (with
        ``features``), has a row with another number of fields than the header, or a
        feature field that is not a finite number.
    """
    with _open(path) as handle:
        try:
            return _read(handle, str(path), target, features)
        except UnicodeDecodeError as exc:
            raise CSVError(f"{path}: not a UTF-8 text file ({exc.reason} at byte "
                           f"{exc.start})") from None
        except csv.Error as exc:
            raise CSVError(f"{path}: malformed CSV: {exc}") from None


def _open(path):
    """The file opened for the csv module, or a CSVError saying why it cannot be."""
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CSVError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CSVError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CSVError(f"{path}: cannot open: {exc.strerror or exc}") from None


def _read(handle, path, target, features):
    reader = csv.reader(handle)
    header = next((row for row in reader if row), None)
    if header is None:
        raise CSVError(f"{path}: the file is empty; expected a header row of column "
                       "names, then one row per sample")
    names = [name.strip() for name in header]
    _check_header(path, names, reader.line_num)
    feature_idx, target_idx = _columns(path, names, target, features)
    width = len(names)
    values, labels, lines = array("d"), [], array("q")
    for row in reader:
        if not row:           # a blank line
            continue
        if len(row) != width:
            raise CSVError(f"{path}, line {reader.line_num}: {len(row)} fields, but the "
                           f"header has {width} columns")
        try:
            values.extend([float(row[i]) for i in feature_idx])
        except ValueError:
            raise CSVError(_bad_field(path, reader.line_num, row, feature_idx,
                                      names)) from None
        if target_idx is not None:
            labels.append(row[target_idx].strip())
        lines.append(reader.line_num)
    if not lines:
        raise CSVError(f"{path}: no data rows after the header")
    X = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(feature_idx))
    if not np.isfinite(X).all():
        r, c = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise CSVError(f"{path}, line {lines[r]}, column {names[feature_idx[c]]!r}: "
                       f"{X[r, c]} is not a finite number (a missing value?)")
    if target_idx is not None:
        _check_target(path, labels, names[target_idx], lines)
    return Table(path, [names[i] for i in feature_idx], X,
                 None if target_idx is None else names[target_idx],
                 labels if target_idx is not None else None,
                 np.frombuffer(lines, dtype=np.int64))


def _check_header(path, names, line):
    seen = set()
    for i, name in enumerate(names):
        if not name:
            raise CSVError(f"{path}, line {line}: column {i + 1} of the header has no "
                           "name")
        if name in seen:
            raise CSVError(f"{path}, line {line}: the column name {name!r} appears "
                           "twice in the header")
        seen.add(name)


def _columns(path, names, target, features):
    """(indices of the feature columns, index of the target column or None)."""
    where = {name: i for i, name in enumerate(names)}
    target_idx = None
    if target is not None and (features is None or target in where):
        if target not in where:
            raise CSVError(f"{path}: no column {target!r}; the columns are "
                           f"{_listing(names)}")
        target_idx = where[target]
    if features is None:
        feature_idx = [i for i in range(len(names)) if i != target_idx]
        if not feature_idx:
            raise CSVError(f"{path}: the target {target!r} is the only column; "
                           "there are no feature columns")
        return feature_idx, target_idx
    missing = [name for name in features if name not in where]
    if missing:
        raise CSVError(f"{path}: the model's feature column(s) {_listing(missing)} are "
                       f"not in the file, whose columns are {_listing(names)}")
    extra = [name for name in names if name not in features and name != target]
    if extra:
        raise CSVError(f"{path}: column(s) {_listing(extra)} are not among the "
                       f"model's features {_listing(features)}")
    return [where[name] for name in features], target_idx


def _bad_field(path, line, row, feature_idx, names):
    """The message for the first feature field of ``row`` that float() refuses."""
    for i in feature_idx:
        try:
            float(row[i])
        except ValueError:
            text = row[i].strip()
            where = f"{path}, line {line}, column {names[i]!r}"
            if text.lower() in _MISSING:
                what = "a missing value" if text else "an empty field"
                return (f"{where}: {what} ({row[i]!r}); fill in or drop the rows with "
                        "missing values")
            return (f"{where}: {text!r} is not a number; feature columns must be "
                    "numeric (encode categories as numbers, or drop the column)")
    return f"{path}, line {line}: a feature field is not a number"


def _check_target(path, labels, name, lines):
    for i, text in enumerate(labels):
        if text.lower() in _MISSING:
            raise CSVError(f"{path}, line {lines[i]}, column {name!r}: the target is "
                           f"missing ({text!r})")


def _listing(names, limit=12):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def numeric_target(labels):
    """The target texts as a float64 array, or None when any is not a finite number."""
    out = np.empty(len(labels))
    for i, text in enumerate(labels):
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        out[i] = value
    return out


def write_rows(handle, header, columns):
    """Write a header and the rows of ``columns`` (sequences of equal length) as CSV.

    Floats are written with ``repr``, which reads back to the same number.
    """
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    converted = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
    writer.writerows(zip(*converted))
