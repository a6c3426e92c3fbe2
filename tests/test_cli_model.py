"""The command line and model files: ``nncore train --out`` and ``nncore info``."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore import cli
from nncore.datasets import make_spiral

from _helpers import PicklePayload, archive_parts, child_env, saved_bytes, trained_net


def test_train_out_saves_the_trained_network(capsys, tmp_path):
    path = tmp_path / "model.npz"
    assert cli.main(["train", "--epochs", "3", "--hidden", "8", "--seed", "4",
                     "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"saved to {path}" in out
    net = nncore.load(path)
    assert repr(net.layers) == repr((nncore.Dense(2, 8, "relu"), nncore.Dense(8, 3)))
    assert isinstance(net.optimizer, nncore.Adam) and net.optimizer.lr == 0.01
    assert net.optimizer.step == 3 * 10                 # 300 samples, batches of 32
    # The saved network is the trained one: its accuracy is the one printed.
    X, y = make_spiral(seed=4)
    printed = re.search(r"train accuracy (\S+)", out).group(1)
    assert f"{net.evaluate(X, y)['accuracy']:.4f}" == printed


def test_train_out_to_a_folder_that_does_not_exist(capsys, tmp_path):
    status = cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "no" / "m.npz")])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("nncore: error: cannot write")
    assert err.count("\n") == 1


def test_info(capsys, tmp_path):
    net, _, _ = trained_net(dtype="float64", optimizer=nncore.SGD(0.1, momentum=0.9))
    net.metadata = {"classes": [0, 1, 2], "feature_names": ["a", "b", "c", "d"]}
    path = tmp_path / "m.npz"
    net.save(path)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{path}: nncore model, format version 1, written by nncore {nncore.__version__}",
        "network: 4-6-6-3, 3 layers",
        "  0: Dense(4, 6, activation='tanh'), 30 parameters",
        "  1: Dense(6, 6, activation='relu'), 42 parameters",
        "  2: Dense(6, 3, activation='identity'), 21 parameters",
        "loss: cross_entropy",
        "dtype: float64",
        "parameters: 93",
        "optimizer: SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0), step 16",
        "seed: 0",
        "metadata: classes, feature_names",
    ]


def test_info_without_optimizer_and_with_nan(capsys, tmp_path):
    net, _, _ = trained_net()
    net.params[0][0, 0] = np.nan
    net.save(tmp_path / "m.npz", include_optimizer=False)
    assert cli.main(["info", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "parameters: 93 (1 NaN or infinite)" in out
    assert "optimizer: not saved" in out


def _run(args, cwd):
    env = child_env()
    return subprocess.run([sys.executable, "-m", "nncore", *args], check=False,
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _one_error_line(proc, start):
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"nncore: error: {start}"), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_info_on_bad_files_is_one_line_and_status_2(tmp_path):
    """In a subprocess, as a user runs it: a truncated file, a foreign file, a
    missing one, and a malicious one whose object array would write a marker file
    if it were unpickled."""
    net, _, _ = trained_net()
    data = saved_bytes(net)
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    header, arrays = archive_parts(data)
    marker = tmp_path / "marker"
    evil = np.empty(1, dtype=object)
    evil[0] = PicklePayload(str(marker))
    np.savez(tmp_path / "evil.npz", allow_pickle=True,
             header=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **dict(arrays, params=evil))
    _one_error_line(_run(["info", "cut.npz"], tmp_path),
                    "cannot load 'cut.npz': damaged or truncated")
    _one_error_line(_run(["info", "text.npz"], tmp_path),
                    "cannot load 'text.npz': not an nncore model file")
    _one_error_line(_run(["info", "missing.npz"], tmp_path),
                    "cannot open 'missing.npz': No such file")
    _one_error_line(_run(["info", "evil.npz"], tmp_path),
                    "cannot load 'evil.npz': member 'params' holds Python objects")
    assert not marker.exists()
