"""``nncore train DATA.csv`` and ``nncore predict``: the CSV reader, the commands run as
real subprocesses on files the tests write, every error case, and a round trip (train,
save, predict) compared with ``Network.predict`` in this process.

Each training run is a few epochs of a small network on a few hundred rows.
"""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nncore
from nncore import _csv

_IMPORT_ROOT = str(Path(nncore.__file__).resolve().parent.parent)
LABELS = np.array(["setosa", "versi color", "virginica, late"])   # a space, a comma


def run_nncore(args, cwd, timeout=120):
    """``python -m nncore ARGS`` from ``cwd``: the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_IMPORT_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "nncore", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def assert_clean_error(proc, *fragments):
    """Exit status 2 and one line on stderr, ``nncore: error: ...``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("nncore: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def classification_rows(n=240, seed=0):
    """Three separable blobs in 3 features on very different scales (so that an
    unscaled network would struggle), labels as text."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[0, 0, 0], [3, 3, 0], [0, 3, 3]], dtype=float)
    X = centers[y] + rng.normal(scale=0.6, size=(n, 3))
    X *= np.array([1.0, 100.0, 0.01])
    X[:, 1] += 1000
    return X, y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """CSV files and a trained classification and regression model."""
    root = tmp_path_factory.mktemp("csv")
    X, y = classification_rows()
    header = ["width", "height", "depth", "species"]
    write_csv(root / "train.csv", header,
              [[*map(repr, row), LABELS[t]] for row, t in zip(X.tolist(), y)])
    # The same features in another order, without the target: what predict reads.
    write_csv(root / "new.csv", ["depth", "width", "height"],
              [[row[2], row[0], row[1]] for row in X[:50].tolist()])
    rng = np.random.default_rng(1)
    Xr = rng.normal(size=(300, 4))
    yr = 50 + 20 * (Xr @ np.array([1.0, -2.0, 0.5, 0.0])) + rng.normal(size=300)
    write_csv(root / "reg.csv", ["a", "b", "c", "d", "price"],
              [[*row, t] for row, t in zip(Xr.tolist(), yr.tolist())])
    proc = run_nncore(["train", "train.csv", "--target", "species", "--epochs", "30",
                       "--hidden", "16", "--lr", "0.01", "--out", "clf.npz"], root)
    assert proc.returncode == 0, proc.stderr
    proc_reg = run_nncore(["train", "reg.csv", "--target", "price", "--epochs", "30",
                           "--hidden", "16", "--lr", "0.01", "--out", "reg.npz"], root)
    assert proc_reg.returncode == 0, proc_reg.stderr
    return {"root": root, "X": X, "y": y, "Xr": Xr, "yr": yr, "train": proc,
            "train_reg": proc_reg}


# ------------------------------------------------------------------ the reader
def test_reader_reads_columns_in_any_order(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["x", "label", "y"],
                     [["1.5", "a", "2"], ["-3", " b ", "4e2"]])
    table = _csv.read_table(path, target="label")
    assert table.feature_names == ["x", "y"]
    np.testing.assert_array_equal(table.X, [[1.5, 2.0], [-3.0, 400.0]])
    assert table.target == ["a", "b"]
    table = _csv.read_table(path, target="label", features=["y", "x"])
    np.testing.assert_array_equal(table.X, [[2.0, 1.5], [400.0, -3.0]])


def test_reader_skips_blank_lines_and_reports_lines(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("x,t\n1,a\n\n2,b\nzz,c\n")
    with pytest.raises(_csv.CSVError, match=r"line 5, column 'x': 'zz' is not a number"):
        _csv.read_table(path, target="t")


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("x,t\n", "no data rows"),
    ("x,t\n1,a\n2\n", "line 3: 1 fields, but the header has 2 columns"),
    ("x,x,t\n1,2,a\n", "'x' appears twice"),
    ("x,t\n,a\n", "column 'x': an empty field"),
    ("x,t\nNA,a\n", "column 'x': a missing value"),
    ("x,t\ninf,a\n", "column 'x': inf is not a finite number"),
    ("x,t\n1,\n", "column 't': the target is missing"),
    ("t\na\n", "the only column"),
])
def test_reader_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(_csv.CSVError, match=message):
        _csv.read_table(path, target="t")


def test_reader_refuses_columns_that_do_not_match(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["x", "extra", "t"], [["1", "2", "a"]])
    with pytest.raises(_csv.CSVError, match=r"'extra' are not among the model's"):
        _csv.read_table(path, target="t", features=["x"])
    with pytest.raises(_csv.CSVError, match=r"'z' are not in the file"):
        _csv.read_table(path, target="t", features=["x", "extra", "z"])


def test_reader_missing_file_and_binary_file(tmp_path):
    with pytest.raises(_csv.CSVError, match="no such file"):
        _csv.read_table(tmp_path / "nope.csv", target="t")
    (tmp_path / "bin.csv").write_bytes(b"x,t\n\xff\xfe,1\n")
    with pytest.raises(_csv.CSVError, match="not a UTF-8 text file"):
        _csv.read_table(tmp_path / "bin.csv", target="t")


# ----------------------------------------------------------- train and predict
def test_train_prints_metrics_and_saves_a_model(files):
    out = files["train"].stdout
    assert "3 classes in 'species'" in out
    for part in ("train", "validation"):
        line = next(ln for ln in out.splitlines() if ln.startswith(part + ":"))
        accuracy = float(line.split("accuracy")[1].split()[0])
        assert accuracy > 0.9, line           # separable blobs, scaled features
    assert (files["root"] / "clf.npz").is_file()
    assert "r2" in files["train_reg"].stdout


def _model_predict(model, X):
    """Class probabilities or values from the saved model, in this process."""
    net = nncore.load(model)
    meta = net.metadata
    Xs = (X - np.array(meta["scaler"]["mean"])) / np.array(meta["scaler"]["scale"])
    return net.predict(Xs.astype(net.dtype)), meta


def test_predict_round_trip_matches_network_predict(files):
    root = files["root"]
    proc = run_nncore(["predict", "clf.npz", "new.csv", "--proba", "--out", "p.csv"],
                      root)
    assert proc.returncode == 0, proc.stderr
    with open(root / "p.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    P, meta = _model_predict(root / "clf.npz", files["X"][:50])
    assert rows[0] == ["species"] + [f"proba_{label}" for label in meta["classes"]]
    assert sorted(meta["classes"]) == sorted(LABELS.tolist())
    assert len(rows) == 51
    labels = [row[0] for row in rows[1:]]
    assert labels == [meta["classes"][i] for i in P.argmax(axis=1)]
    got = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_array_equal(got, P.astype(np.float64))     # written exactly
    # the labels are the original texts, and mostly right
    assert np.mean(np.array(labels) == LABELS[files["y"][:50]]) > 0.9


def test_predict_regression_to_stdout_in_original_units(files):
    root = files["root"]
    proc = run_nncore(["predict", "reg.npz", "reg.csv"], root)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "price" and len(lines) == 301
    got = np.array([float(v) for v in lines[1:]])
    out, meta = _model_predict(root / "reg.npz", files["Xr"])
    ts = meta["target_scaler"]
    np.testing.assert_array_equal(got, out[:, 0].astype(np.float64) * ts["scale"]
                                  + ts["mean"])
    r2 = 1 - np.mean((got - files["yr"]) ** 2) / np.var(files["yr"])
    assert r2 > 0.8


def test_train_plot_writes_a_png(files):
    pytest.importorskip("matplotlib")
    root = files["root"]
    proc = run_nncore(["train", "train.csv", "--target", "species", "--epochs", "3",
                       "--out", "plot.npz", "--plot", "curves.png"], root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_early_stopping_and_verbose_lines(files):
    root = files["root"]
    proc = run_nncore(["train", "train.csv", "--target", "species", "--epochs", "200",
                       "--early-stopping", "--patience", "2", "--lr", "0.05",
                       "--verbose", "--out", "es.npz"], root)
    assert proc.returncode == 0, proc.stderr
    epochs = int(next(ln for ln in proc.stdout.splitlines()
                      if ln.endswith(" s") and " epochs in " in ln).split()[0])
    assert epochs < 200


# ----------------------------------------------------------------- error cases
@pytest.fixture(scope="module")
def bad_files(files):
    root = files["root"]
    (root / "empty.csv").write_text("")
    (root / "ragged.csv").write_text("a,b,t\n1,2,x\n3,4\n")
    (root / "text.csv").write_text("a,b,t\n1,red,x\n2,blue,y\n")
    (root / "other.csv").write_text("a,b\n1,2\n")
    (root / "not_a_model.npz").write_text("hello")
    net = nncore.Network([nncore.Dense(3, 3)], loss="cross_entropy", seed=0)
    net.save(root / "plain.npz")               # an nncore network, without CSV metadata
    return root


@pytest.mark.parametrize("args, fragments", [
    (["train", "missing.csv", "--target", "t"], ["missing.csv: no such file"]),
    (["train", "train.csv", "--target", "nope"], ["no column 'nope'", "'species'"]),
    (["train", "text.csv", "--target", "t"], ["column 'b'", "'red' is not a number"]),
    (["train", "empty.csv", "--target", "t"], ["empty.csv: the file is empty"]),
    (["train", "ragged.csv", "--target", "t"], ["line 3: 2 fields", "3 columns"]),
    (["train", "train.csv"], ["--target COLUMN is required"]),
    (["train", "train.csv", "--target", "species", "--loss", "mse"],
     ["needs a numeric target"]),
    (["train", "train.csv", "--target", "species", "--validation-split", "1"],
     ["--validation-split must be in [0, 1)"]),
    (["train", "train.csv", "--target", "species", "--dataset", "xor"], ["not both"]),
    (["train", "--target", "species"], ["--target needs a CSV file"]),
    (["predict", "missing.npz", "new.csv"], ["missing.npz: no such model file"]),
    (["predict", "not_a_model.npz", "new.csv"], ["not_a_model.npz"]),
    (["predict", "plain.npz", "new.csv"], ["without the CSV command's metadata"]),
    (["predict", "clf.npz", "other.csv"], ["'width'", "not in the file"]),
    (["predict", "clf.npz", "reg.csv"], ["not in the file"]),
    (["predict", "clf.npz", "missing.csv"], ["missing.csv: no such file"]),
    (["predict", "reg.npz", "reg.csv", "--proba"], ["--proba needs a classification"]),
])
def test_errors_are_one_line_and_exit_2(bad_files, args, fragments):
    proc = run_nncore(args, bad_files)
    assert_clean_error(proc, *fragments)
    assert proc.stdout == ""


def test_predict_refuses_extra_columns(files, tmp_path):
    X = files["X"][:5]
    write_csv(tmp_path / "extra.csv", ["width", "height", "depth", "id"],
              [[*row, i] for i, row in enumerate(X.tolist())])
    proc = run_nncore(["predict", files["root"] / "clf.npz", "extra.csv"], tmp_path)
    assert_clean_error(proc, "'id' are not among the model's features")


def test_predict_ignores_the_target_column(files):
    proc = run_nncore(["predict", "clf.npz", "train.csv"], files["root"])
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 + len(files["X"])


def test_help_lists_the_csv_mode_and_predict(tmp_path):
    proc = run_nncore(["train", "--help"], tmp_path)
    assert proc.returncode == 0
    assert "DATA.csv" in proc.stdout and "--dataset" in proc.stdout
    assert "--target" in proc.stdout
    proc = run_nncore(["--help"], tmp_path)
    assert "predict" in proc.stdout
