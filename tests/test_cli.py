"""The command line: ``python -m nncore train``, ``--help``, ``--version``, exit codes.

A few tests run the real command in a subprocess (``sys.executable -m nncore``); the
rest call ``nncore.cli.main`` in-process, which is the same code without the start-up
cost. Every run is a few epochs of a small network, so the module takes about a second.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nncore
from nncore import cli

from _helpers import child_env


def run_nncore(args, tmp_path, timeout=120):
    """Run ``python -m nncore ARGS`` from ``tmp_path``; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "nncore", *args], cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True,
                          timeout=timeout)


def epoch_lines(text):
    return [line for line in text.splitlines() if line.startswith("epoch ")]


# ------------------------------------------------------------------ subprocess runs
def test_train_spiral_in_subprocess(tmp_path):
    proc = run_nncore(["train", "--epochs", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = epoch_lines(proc.stdout)
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    for line in lines:
        assert re.search(r"loss \d+\.\d+\s+test accuracy [01]\.\d{4}$", line), line
    assert re.search(r"^train accuracy [01]\.\d{4}\s+test accuracy [01]\.\d{4}$",
                     proc.stdout, re.M)
    assert re.search(r"^training time \d+\.\d+ s", proc.stdout, re.M)
    assert "2-64-64-3" in proc.stdout          # the spiral default network


def test_bad_argument_exits_2_with_argparse_message(tmp_path):
    proc = run_nncore(["train", "--epochs", "many"], tmp_path)
    assert proc.returncode == 2
    assert "usage: nncore train" in proc.stderr
    assert "argument --epochs: invalid int value: 'many'" in proc.stderr
    assert proc.stdout == ""


def test_library_error_exits_2_without_traceback(tmp_path):
    proc = run_nncore(["train", "--epochs", "1", "--lr", "-1"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nncore: error: ")
    assert "lr" in proc.stderr and "-1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_and_help(tmp_path):
    proc = run_nncore(["--version"], tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"nncore {nncore.__version__}"
    proc = run_nncore(["--help"], tmp_path)
    assert proc.returncode == 0
    assert "train" in proc.stdout


def test_train_imports_no_other_framework(tmp_path):
    code = ("import sys, nncore.cli\n"
            "assert nncore.cli.main(['train', '--epochs', '1']) == 0\n"
            "loaded = {'torch', 'jax'} & set(sys.modules)\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_console_script_from_the_source_tree_root():
    """The README's first command, ``nncore train``, run where the README runs it: in
    the top directory of a clone (whose unbuilt ``nncore/`` must not shadow the
    installed package)."""
    script = Path(sys.executable).parent / "nncore"
    if not script.exists():
        pytest.skip("no nncore console script beside this Python (not pip-installed)")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([str(script), "train", "--epochs", "2"], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(epoch_lines(proc.stdout)) == 2 and "train accuracy" in proc.stdout
    proc = subprocess.run([str(script), "--version"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"nncore {nncore.__version__}"


# ------------------------------------------------------------------- in-process runs
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_options(capsys, optimizer, dtype):
    status = cli.main(["train", "--epochs", "2", "--optimizer", optimizer, "--dtype",
                       dtype, "--hidden", "16", "--activation", "tanh", "--batch-size",
                       "50", "--threads", "1", "--seed", "3"])
    out = capsys.readouterr().out
    assert status == 0
    assert len(epoch_lines(out)) == 2
    assert dtype in out and "2-16-3" in out and "tanh" in out
    assert {"adam": "Adam(", "adamw": "AdamW(", "sgd": "SGD(",
            "rmsprop": "RMSprop("}[optimizer] in out


def test_spiral_default_run_learns(capsys):
    """The README's `python -m nncore train` (defaults) fits the spiral."""
    assert cli.main(["train", "--log-every", "1000"]) == 0
    out = capsys.readouterr().out
    assert len(epoch_lines(out)) == 1           # only the last epoch with --log-every
    train_acc, test_acc = map(float, re.search(
        r"train accuracy (\S+)\s+test accuracy (\S+)", out).groups())
    assert train_acc > 0.95 and test_acc > 0.9


def test_same_seed_same_output(capsys):
    def losses(seed):
        assert cli.main(["train", "--epochs", "3", "--seed", str(seed)]) == 0
        return [line.split("loss")[1] for line in epoch_lines(capsys.readouterr().out)]

    assert losses(5) == losses(5)
    assert losses(5) != losses(6)


def test_xor_has_no_test_split(capsys):
    assert cli.main(["train", "--dataset", "xor", "--epochs", "300",
                     "--log-every", "100"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" not in out
    assert "train accuracy 1.0000" in out
    assert [line.split()[1] for line in epoch_lines(out)] == ["100/300", "200/300",
                                                              "300/300"]


def test_digits_uses_a_held_out_split(capsys):
    pytest.importorskip("sklearn")
    assert cli.main(["train", "--dataset", "digits", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "1438 train / 359 test samples" in out and "64-64-10" in out
    assert len(epoch_lines(out)) == 2
    assert "test accuracy" in epoch_lines(out)[0]


def test_no_hidden_layer(capsys):
    assert cli.main(["train", "--epochs", "1", "--hidden", "none"]) == 0
    assert "2-3, no hidden layer" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--hidden", "64,x"], "argument --hidden"),
    (["train", "--hidden", "0"], "argument --hidden"),
    (["train", "--lr", "fast"], "argument --lr: invalid float value"),
    (["train", "--unknown"], "unrecognized arguments: --unknown"),
    ([], "required: COMMAND"),
])
def test_usage_errors_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "-1"], "--epochs must be >= 0; got -1"),
    (["train", "--batch-size", "0"], "--batch-size must be >= 1; got 0"),
    (["train", "--threads", "0"], "--threads must be >= 1; got 0"),
    (["train", "--lr", "nan"], "lr"),
    (["train", "--seed", "-1"], "seed"),
])
def test_value_errors_exit_2(capsys, args, message):
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("nncore: error: ")
    assert message in captured.err
    assert "epoch " not in captured.out             # rejected before any training


def test_divergence_exits_1_with_advice(capsys):
    status = cli.main(["train", "--epochs", "3", "--optimizer", "sgd", "--lr", "1e6"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("nncore: error: ") and "lower --lr" in err
