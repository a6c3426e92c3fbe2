"""What ``fit(verbose=...)`` prints.

``verbose=2``, or any verbose output to something that is not a terminal (a pipe, a
file, a notebook's captured stream): one line per epoch. ``verbose=1`` on a terminal:
a progress bar per epoch (tqdm's when it is installed, else a built-in one-line bar)
that becomes that epoch's line when the epoch ends. The training loop calls
:meth:`update` between kernel calls only, and the bar redraws at most
``REDRAW_SECONDS`` apart, so a progress bar costs the kernels nothing.
"""
import shutil
import sys
import time

# The bar redraws at most this often (seconds): a few times a second.
REDRAW_SECONDS = 0.2


def check_verbose(verbose):
    """0, 1 or 2 (False and True mean 0 and 2: one line per epoch, as before)."""
    if isinstance(verbose, bool):
        return 2 if verbose else 0
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line "
                         f"per epoch); got {verbose!r}")
    return verbose


def reporter(verbose, epochs, n_batches, batch_size, n_samples, stream=None):
    """The printer for ``verbose`` (None for 0), writing to ``stream`` (stdout)."""
    if verbose == 0:
        return None
    stream = sys.stdout if stream is None else stream
    if verbose == 2 or not _is_terminal(stream):
        return EpochLines(epochs, n_samples, stream)
    try:
        import tqdm
    except ImportError:
        return Bar(epochs, n_batches, batch_size, n_samples, stream)
    return TqdmBar(epochs, n_batches, batch_size, n_samples, stream, tqdm.tqdm)


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):      # no isatty, or closed
        return False


def _format_logs(logs):
    parts = []
    for key, value in logs.items():
        if key == "time" or not isinstance(value, (int, float)):
            continue
        if key == "lr":
            parts.append(f"lr {value:.3g}")
        elif "acc" in key:
            parts.append(f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {value:.6f}")
    return "  ".join(parts)


def _seconds(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def _rate(samples, seconds):
    return f"{samples / seconds:,.0f} samples/s" if seconds > 0 else ""


class EpochLines:
    """One line per epoch: ``epoch 3/10  loss 0.123456  val_loss ...  lr 0.001
    0.52 s  125,952 samples/s``."""

    live = False         # the loop need not call update

    def __init__(self, epochs, n_samples, stream):
        self.width = len(str(epochs))
        self.epochs = epochs
        self.n_samples = n_samples
        self.stream = stream

    def epoch_begin(self, epoch):
        pass

    def line(self, epoch, logs, train_seconds):
        head = f"epoch {epoch + 1:{self.width}d}/{self.epochs}  {_format_logs(logs)}"
        seconds = _seconds(logs.get("time", 0.0))
        tail = f"{seconds}  {_rate(self.n_samples, train_seconds)}"
        return f"{head}  {tail}".rstrip()

    def epoch_end(self, epoch, logs, train_seconds):
        self.stream.write(self.line(epoch, logs, train_seconds) + "\n")
        self.stream.flush()

    def close(self):
        pass


class Bar(EpochLines):
    """A single-line bar redrawn in place (``\\r``), for terminals without tqdm:
    ``epoch 3/10 [#####.....] 1024/2048  loss 0.1234  52,000 samples/s  ETA 0:02``."""

    live = True

    def __init__(self, epochs, n_batches, batch_size, n_samples, stream):
        super().__init__(epochs, n_samples, stream)
        self.n_batches = n_batches
        self.batch_size = batch_size
        self._drawn = 0

    def epoch_begin(self, epoch):
        self.epoch = epoch
        self.start = self.last = time.perf_counter()

    def update(self, batches, loss):
        now = time.perf_counter()
        if now - self.last < REDRAW_SECONDS or batches <= 0:
            return
        self.last = now
        elapsed = now - self.start
        eta = (self.n_batches - batches) * elapsed / batches
        frac = batches / self.n_batches
        head = f"epoch {self.epoch + 1:{self.width}d}/{self.epochs} "
        tail = (f" {batches}/{self.n_batches}  loss {loss:.4f}  "
                f"{_rate(min(batches * self.batch_size, self.n_samples), elapsed)}  "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        columns = shutil.get_terminal_size().columns - 1
        bar = max(10, min(30, columns - len(head) - len(tail) - 2))
        filled = int(frac * bar)
        self._draw(f"{head}[{'#' * filled}{'.' * (bar - filled)}]{tail}"[:columns])

    def _draw(self, text):
        pad = max(0, self._drawn - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._drawn = len(text)

    def epoch_end(self, epoch, logs, train_seconds):
        if self._drawn:
            self._draw(self.line(epoch, logs, train_seconds))
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
        else:
            super().epoch_end(epoch, logs, train_seconds)


class TqdmBar(EpochLines):
    """A tqdm bar per epoch (in samples, so tqdm's rate and ETA are samples/s), closed
    and replaced by the epoch's line when the epoch ends."""

    live = True

    def __init__(self, epochs, n_batches, batch_size, n_samples, stream, tqdm):
        super().__init__(epochs, n_samples, stream)
        self.n_batches = n_batches
        self.batch_size = batch_size
        self._tqdm = tqdm
        self._bar = None

    def epoch_begin(self, epoch):
        self.epoch = epoch
        self.start = self.last = time.perf_counter()

    def update(self, batches, loss):
        now = time.perf_counter()
        if now - self.last < REDRAW_SECONDS:
            return
        self.last = now
        if self._bar is None:
            # Made on the first redraw: an epoch shorter than REDRAW_SECONDS shows
            # only its line.
            self._bar = self._tqdm(
                total=self.n_samples, unit="sample", unit_scale=True,
                desc=f"epoch {self.epoch + 1:{self.width}d}/{self.epochs}",
                file=self.stream, leave=False, dynamic_ncols=True, mininterval=0)
            self._bar.start_t -= now - self.start       # the epoch began earlier
        done = min(batches * self.batch_size, self.n_samples)
        self._bar.set_postfix_str(f"batch {batches}/{self.n_batches}, loss {loss:.4f}",
                                  refresh=False)
        self._bar.update(done - self._bar.n)

    def epoch_end(self, epoch, logs, train_seconds):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        super().epoch_end(epoch, logs, train_seconds)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
