"""Two networks trained at once in two Python threads, against one after the other.

The scenario of a thread-based grid search: two 256-256-10 relu networks (softmax CE,
Adam, batch 128) each train a few epochs on 8192x256 float32 data, after
``nncore.set_num_threads(1)``. One after the other in the main thread, then at once in
two ``threading.Thread``s: the speed-up is the ratio of the two wall times, and on two
idle cores it should be close to 2. Two ways of limiting the threads are measured:

- ``main``: ``nncore.set_num_threads(1)`` is called once, in the main thread, before
  the threads start (the setting a user expects to hold process-wide);
- ``each``: each training thread also calls it first.

The worker runs pinned to two CPUs, with none of the pools' thread-count variables
(``OMP_NUM_THREADS``...) set: nncore's own setting is all that limits it. Each pass
times the sequential run and both concurrent ones, interleaved, on fresh networks; the
report gives the medians. ``nncore.get_num_threads()`` as seen inside a new thread is
reported too.
"""
import threading
import time

import numpy as np

from . import harness, report
from .machine import machine_info

HELP = "two networks in two Python threads (set_num_threads(1)) vs one after the other"
DESCRIPTION = __doc__
MODES = ("main", "each")


def add_arguments(p):
    p.add_argument("--epochs", type=int, help="epochs per network (3; 1 with --quick)")
    p.add_argument("--rows", type=int, default=8192, help="rows of data (%(default)s)")
    p.add_argument("--width", type=int, default=256,
                   help="inputs and hidden units (%(default)s)")
    p.add_argument("--batch-size", type=int, default=128, help="(%(default)s)")
    p.add_argument("--passes", type=int, help="passes per process (3; 1 with --quick)")


def _fit_all(nncore, nets, X, y, spec, concurrent, limit_in_thread):
    """Wall time of fitting every network, at once in threads or one after another."""
    def fit(net):
        if limit_in_thread:
            nncore.set_num_threads(1)
        net.fit(X, y, epochs=spec["epochs"], batch_size=spec["batch_size"],
                optimizer="adam")

    t0 = time.perf_counter()
    if concurrent:
        workers = [threading.Thread(target=fit, args=(net,)) for net in nets]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        for net in nets:
            fit(net)
    return time.perf_counter() - t0


def measure_threads(spec):
    """Worker: sequential and concurrent wall times (s), one per pass and mode."""
    import nncore

    rng = np.random.default_rng(0)
    d = spec["width"]
    X = rng.standard_normal((spec["rows"], d), dtype=np.float32)
    y = np.argmax(X @ rng.standard_normal((d, 10), dtype=np.float32), axis=1)

    def nets():
        return [nncore.Network([nncore.Dense(d, d, activation="relu"),
                                nncore.Dense(d, 10)], loss="cross_entropy", seed=s)
                for s in (1, 2)]

    nncore.set_num_threads(1)
    seen = []
    probe = threading.Thread(target=lambda: seen.append(nncore.get_num_threads()))
    probe.start()
    probe.join()
    warm_up = dict(spec, epochs=1)
    _fit_all(nncore, nets(), X[:1024], y[:1024], warm_up, True, False)
    out = {"sequential": [], "main": [], "each": [],
           "threads_in_main": nncore.get_num_threads(), "threads_in_new_thread": seen[0]}
    for _ in range(spec["passes"]):
        out["sequential"].append(_fit_all(nncore, nets(), X, y, spec, False, False))
        for mode in MODES:
            out[mode].append(_fit_all(nncore, nets(), X, y, spec, True, mode == "each"))
    return out


def run(args):
    if len(harness.usable_cpus()) < 2:
        raise SystemExit("threads: needs at least 2 usable CPUs")
    rounds = args.rounds or (1 if args.quick else 3)
    spec = {"epochs": args.epochs or (1 if args.quick else 3), "rows": args.rows,
            "width": args.width, "batch_size": args.batch_size,
            "passes": args.passes or (1 if args.quick else 3)}
    results = {"machine": machine_info(), "settings": dict(spec, rounds=rounds)}
    results["raw"] = harness.repeat(
        "threads:measure_threads", spec, 2, args, rounds,
        "two networks, one after the other and at once",
        env=harness.worker_env(2, limit_pools=False))
    return results


def markdown(results):
    st, ok = results["settings"], [r for r in results["raw"] if r["status"] == "ok"]
    if not ok:
        return report.failures(results["raw"])
    seq = harness.median([t for r in ok for t in r["sequential"]])
    minimum = report.load_targets()["threads"]["min_speedup"]
    rows, lines = [], []
    for mode in MODES:
        con = harness.median([t for r in ok for t in r[mode]])
        rows.append([mode, f"{seq:.3f}", f"{con:.3f}", f"{seq / con:.2f}x"])
        lines.append(report.verdict(seq / con >= minimum,
                                    f"limit set in {mode}: speed-up {seq / con:.2f}x; "
                                    f"target >= {minimum:g}x"))
    seen = ", ".join(map(str, sorted({r["threads_in_new_thread"] for r in ok})))
    w = st["width"]
    intro = (f"Two {w}-{w}-10 networks, {st['rows']}x{w} float32, batch "
             f"{st['batch_size']}, {st['epochs']} epoch(s) each; medians over {len(ok)} "
             f"process(es) x {st['passes']} pass(es); worker pinned to 2 CPUs, no "
             f"thread-count variables; {report.others(ok)}. After set_num_threads(1) in "
             f"the main thread, get_num_threads() in a new thread reports {seen}.")
    header = ["limit set in", "one after the other, s", "at once, s", "speed-up"]
    return "\n".join([intro, "", report.table(header, rows), "",
                      report.targets_block(lines)])
