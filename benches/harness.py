"""Worker processes, timing and the load meter: how every benchmark measures.

Each measurement runs in a fresh Python process (``python -m benches.worker``), so no
library's thread pools, caches or allocator state leak into another's. The process is
pinned to the first ``threads`` usable CPUs before it starts (``--no-pin`` turns that
off) and gets the thread-count variables of every pool in its environment; inside, the
peer's own ``threads(n)`` applies the limit too. The worker prints one JSON line behind
:data:`MARK` as its last line of output.

While a worker runs, :class:`LoadMeter` reads from ``/proc/stat`` the share of the
machine's CPUs that other processes kept busy. Above :data:`BUSY` the measurement is
repeated (``--retry-busy`` times, the quietest kept) and the report marks it ``!``.
"""
import gc
import json
import os
import statistics
import subprocess
import sys
import time

from . import ROOT

MARK = "@@BENCHES@@"
BUSY = 0.10          # others' share of the CPUs above which a timing is suspect

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def usable_cpus():
    """The CPUs this process may run on, sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return list(range(os.cpu_count() or 1))


def worker_env(threads, limit_pools=True):
    """The environment of a worker allowed ``threads`` threads.

    ``limit_pools=False`` leaves the pools' variables as they are: for measuring what
    a user gets from nncore's own thread setting alone.
    """
    env = dict(os.environ)
    if limit_pools:
        env.update((var, str(threads)) for var in _THREAD_VARS)
    if threads == 1:
        # XLA sizes its pool from the CPUs it may use (pinning); this also keeps
        # Eigen's contractions on the calling thread.
        flags = env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = flags.strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _busy_cpu_seconds():
    """CPU seconds all processes on the machine have spent busy (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")   # less idle and iowait


class LoadMeter:
    """Share of the machine's CPUs that processes other than ours (and our waited-for
    children) kept busy since construction."""

    def __init__(self):
        self.busy0, self.own0 = _busy_cpu_seconds(), self._own()
        self.t0 = time.perf_counter()

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def foreign(self):
        busy = _busy_cpu_seconds()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        other = (busy - self.busy0) - (self._own() - self.own0)
        return max(0.0, other / (wall * (os.cpu_count() or 1)))


def time_repeats(fn, min_time, min_repeats, max_repeats=10_000):
    """Call ``fn`` until ``min_time`` seconds and ``min_repeats`` calls; the times (s).

    The garbage collector is off while timing, so its pauses land on no one call.
    """
    times = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(times) < max_repeats and (len(times) < min_repeats
                                            or sum(times) < min_time):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


def pinned_cpus(threads, opts):
    """The CPUs a worker of ``threads`` threads is pinned to, or None (not pinned)."""
    cpus = usable_cpus()
    if opts.no_pin or threads > len(cpus):
        return None
    return cpus[:threads]


def run_worker(task, spec, threads, opts, env=None, expect_busy=False):
    """Run ``task`` ("module:function" in benches) on ``spec`` in a fresh process.

    Returns the worker's result dict (``status`` ok / skip / error) with
    ``foreign_cpu``, the others' share of the CPUs meanwhile. ``expect_busy``: the
    caller loads the machine on purpose, so a busy reading is no reason to measure
    again.
    """
    best = None
    for attempt in range(1 + (0 if expect_busy else opts.retry_busy)):
        meter = LoadMeter()
        result = _run_process(task, spec, pinned_cpus(threads, opts),
                              worker_env(threads) if env is None else env, opts.timeout,
                              opts.verbose)
        result["foreign_cpu"] = meter.foreign()
        share = result["foreign_cpu"]
        if best is None or (share is not None and share < (best["foreign_cpu"] or 0)):
            best = result
        if expect_busy or result["status"] != "ok" or share is None or share <= BUSY:
            break
        if attempt < opts.retry_busy:
            log(f"  others used {100 * share:.0f}% of the CPUs meanwhile: measuring "
                "again")
    return best


def repeat(task, spec, threads, opts, rounds, what, env=None):
    """``rounds`` workers of one measurement, one after another: their results."""
    runs = []
    for r in range(rounds):
        log(f"[round {r + 1}/{rounds}] {what} ...")
        runs.append(run_worker(task, spec, threads, opts, env=env))
        if runs[-1]["status"] != "ok":
            log(f"  {runs[-1]['status']}: {runs[-1]['reason']}")
    return runs


def call(task, spec, timeout=300):
    """Run ``task`` once in a worker, unpinned, in this process's environment."""
    return _run_process(task, spec, None, dict(os.environ), timeout, verbose=True)


def _run_process(task, spec, cpus, env, timeout, verbose):
    cmd = [sys.executable, "-m", "benches.worker", task, json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            if result["status"] == "error" and verbose:
                log(proc.stderr[-4000:])
            return result
    if verbose:
        log(proc.stderr[-4000:])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "error", "reason": f"worker exited {proc.returncode}: {tail}"}


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def aggregate(runs, key="times"):
    """The runs of one measurement -> median over processes of each one's median.

    ``spread`` is (max - min) / median of the per-process medians; with one process,
    the interquartile range of its repeats over their median. None if no run is ok.
    """
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return None
    per_process = [median(r[key]) for r in ok]
    t = median(per_process)
    if len(per_process) > 1:
        spread = (max(per_process) - min(per_process)) / t
    elif len(ok[0][key]) >= 4:
        q1, _, q3 = statistics.quantiles(ok[0][key], n=4)
        spread = (q3 - q1) / t
    else:
        spread = None
    shares = [r["foreign_cpu"] for r in ok if r.get("foreign_cpu") is not None]
    return {"time": t, "spread": spread, "processes": len(ok),
            "foreign_cpu": max(shares) if shares else None}
