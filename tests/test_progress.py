"""fit(verbose=...): a progress bar on a terminal (built-in or tqdm), plain lines in a
pipe, one line per epoch with verbose=2, and the bar's redraw throttle."""
import io
import os
import re
import struct
import subprocess
import sys

import pytest

import nncore
from nncore import _progress
from nncore.datasets import make_spiral

from _helpers import child_env

CHILD = """
import sys
import nncore
from nncore import _progress, _training
from nncore.datasets import make_spiral
if {no_tqdm}:
    sys.modules["tqdm"] = None            # as if tqdm were not installed
# Redraw after every kernel call, and make every batch a kernel call, so that a
# short run shows many redraws.
_progress.REDRAW_SECONDS = 0.0
_training.FIXED_CHUNK = 1
X, y = make_spiral(n_per_class=50, seed=0)
net = nncore.Network([nncore.Dense(2, 16, "tanh"), nncore.Dense(16, 3)],
                     loss="cross_entropy", seed=0)
net.fit(X, y, epochs=2, batch_size=10, verbose=1, validation_split=0.2)
print("DONE")
"""


def run_in_terminal(code):
    """Run ``code`` with its stdout on a pseudo-terminal; return what it wrote."""
    fcntl = pytest.importorskip("fcntl")          # (POSIX only)
    pty = pytest.importorskip("pty")
    termios = pytest.importorskip("termios")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:            # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    return b"".join(chunks).decode()


def epoch_lines(text):
    return re.findall(r"epoch (\d)/2  loss \d\.\d{6}  accuracy [01]\.\d{4}  "
                      r"val_loss \d\.\d{6}  "
                      r"val_accuracy [01]\.\d{4}  lr 0\.001  [\d.]+ m?s  "
                      r"[\d,]+ samples/s",
                      text)


@pytest.mark.slow
def test_builtin_bar_in_a_terminal():
    out = run_in_terminal(CHILD.format(no_tqdm=True))
    assert out.rstrip().endswith("DONE")
    bars = re.findall(r"\repoch (\d)/2 \[[#.]+\] (\d+)/12  loss \d\.\d{4}  "
                      r"[\d,]+ samples/s  ETA \d+:\d\d", out)
    assert len(bars) >= 10 and {b[0] for b in bars} == {"1", "2"}
    assert [int(b[1]) for b in bars if b[0] == "1"] == sorted(
        int(b[1]) for b in bars if b[0] == "1")
    assert epoch_lines(out) == ["1", "2"]      # each bar ends as the epoch's line


@pytest.mark.slow
def test_tqdm_bar_in_a_terminal():
    pytest.importorskip("tqdm")
    out = run_in_terminal(CHILD.format(no_tqdm=False))
    assert out.rstrip().endswith("DONE")
    assert re.search(r"epoch 1/2: +\d+%.*\| *\d+/\d+ .*sample/s.*batch \d+/12, loss \d",
                     out)
    assert epoch_lines(out) == ["1", "2"]


@pytest.mark.slow
def test_plain_lines_in_a_pipe():
    proc = subprocess.run([sys.executable, "-c", CHILD.format(no_tqdm=False)],
                          check=False, capture_output=True, text=True, env=child_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout and proc.stderr == ""
    assert proc.stdout.splitlines()[-1] == "DONE"
    assert len(proc.stdout.splitlines()) == 3 and epoch_lines(proc.stdout) == ["1", "2"]


def test_verbose_2_prints_one_line_per_epoch(capsys):
    X, y = make_spiral(n_per_class=20, seed=0)
    net = nncore.Network([nncore.Dense(2, 8, "tanh"), nncore.Dense(8, 3)],
                         loss="cross_entropy", seed=0)
    history = net.fit(X, y, epochs=2, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert epoch_lines("\n".join(lines)) == ["1", "2"] and len(lines) == 2
    assert f"loss {history.loss[1]:.6f}" in lines[1]


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_redraws_a_few_times_a_second(monkeypatch):
    clock = iter([0.0, 0.05, 0.1, 0.25, 0.3, 0.5, 0.55])
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    stream = _FakeTerminal()
    bar = _progress.Bar(epochs=1, n_batches=100, batch_size=10, n_samples=1000,
                        stream=stream)
    bar.epoch_begin(0)                                   # t = 0
    for batches in (10, 20, 30, 40, 50, 60):             # t = 0.05 ... 0.55
        bar.update(batches, 0.5)
    assert [m.group(1) for m in re.finditer(r"\] (\d+)/100", stream.getvalue())] == \
        ["30", "50"]                                    # at 0.25 s and 0.5 s only
    bar.epoch_end(0, {"loss": 0.5, "lr": 0.1, "time": 1.0}, 1.0)
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("epoch 1/1  loss 0.500000  lr 0.1  1.00 s")
    assert last.endswith("\n")


def test_reporter_choice():
    terminal, pipe = _FakeTerminal(), io.StringIO()
    assert _progress.reporter(0, 1, 1, 1, 1, terminal) is None
    assert type(_progress.reporter(2, 1, 1, 1, 1, terminal)) is _progress.EpochLines
    assert type(_progress.reporter(1, 1, 1, 1, 1, pipe)) is _progress.EpochLines
    assert type(_progress.reporter(1, 1, 1, 1, 1, terminal)) in (_progress.Bar,
                                                                  _progress.TqdmBar)
    for bad in (3, -1, 1.0, "1", None):
        with pytest.raises(ValueError, match="verbose"):
            _progress.check_verbose(bad)
