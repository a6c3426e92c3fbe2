"""Network.fit's epoch loop on the tiny network (2-16-1 tanh, MSE, batch 32, SGD lr
0.01, 65,536 rows, float32, 1 thread): this tree against another nncore build, and
the cost of the progress output.

Two measurements per round, each in a fresh worker pinned to one CPU:

- rate: samples/s of ``fit(X, y, epochs=E)`` (one call, E full epochs, after a
  warm-up call), repeated within the worker; the worker's median, by the wall clock
  and by the worker's CPU time.
- overhead: the loop's Python work per epoch, by the method of ``python -m benches
  epoch-overhead`` (E short epochs of k batches against one epoch of E x k batches,
  each less its ``epochs=0`` call), per pass, in CPU time; the worker's median.

CPU time is the figure to trust on a machine that other processes share: a worker
that waits for the CPU does not count the wait (it still feels the others in its
caches and a shared core's other hyperthread).

With ``--against DIR`` (a directory holding another nncore built in place, such as a
worktree of main), every round measures this tree and DIR one after the other, in
alternating order, so that both see the same machine load; the report gives the
median over rounds of each build's figures and of the per-round ratio this / DIR,
with its spread (max - min over the median). Without it, only this tree is measured.

Then the progress output, on this tree only: the rate with ``verbose=0``, ``2`` (one
line per epoch to a pipe), and ``1`` on a pseudo-terminal with the built-in bar and
with tqdm's (when installed), each as a ratio to ``verbose=0`` in the same worker.
"""
import os
import pty
import subprocess
import sys
import time

from . import epoch_overhead, harness, report
from .configs import CONFIGS, init_params, make_data
from .machine import machine_info

HELP = "fit's epoch loop on tiny: samples/s and us per epoch, against another build"
DESCRIPTION = __doc__

_VERBOSE_CASES = ("0", "2-pipe", "1-terminal-builtin", "1-terminal-tqdm")


def add_arguments(p):
    p.add_argument("--against", metavar="DIR",
                   help="a directory holding another nncore built in place (its "
                        "nncore/ package), measured in alternation with this tree")
    p.add_argument("--epochs", type=int, help="E, epochs per timed fit call (5; 2 with "
                   "--quick)")
    p.add_argument("--repeats", type=int, help="timed calls per worker (5; 2 with "
                   "--quick)")


def _import_nncore(path):
    """Import nncore from ``path`` (None: the one ``benches`` chose)."""
    if path is not None:
        sys.path.insert(0, path)
    import nncore
    if path is not None and not nncore.__file__.startswith(os.path.abspath(path)):
        raise RuntimeError(f"imported {nncore.__file__}, not the nncore in {path}")
    return nncore


def _tiny(nncore, rows):
    cfg = CONFIGS["tiny"]
    X, y = make_data(cfg, rows, "float32", seed=0)
    net = nncore.Network([nncore.Dense(2, 16, activation="tanh"), nncore.Dense(16, 1)],
                         loss="mse", seed=0)
    for live, p in zip(net.params, init_params(cfg, "float32")):
        live[...] = p
    return cfg, X, y, net, nncore.SGD(lr=cfg.hyper["lr"])


def measure_rate(spec):
    """Worker: samples/s of spec["repeats"] fit calls of spec["epochs"] epochs, by
    the wall clock ("rates") and by CPU time ("cpu_rates")."""
    nncore = _import_nncore(spec.get("path"))
    cfg, X, y, net, opt = _tiny(nncore, CONFIGS["tiny"].rows())
    E = spec["epochs"]
    out = {"rates": [], "cpu_rates": [], "nncore": nncore.__file__}
    with nncore.set_num_threads(1):
        net.fit(X, y, epochs=E, batch_size=cfg.batch_size, optimizer=opt)   # warm-up
        for _ in range(spec["repeats"]):
            t0, c0 = time.perf_counter(), time.process_time()
            net.fit(X, y, epochs=E, batch_size=cfg.batch_size, optimizer=opt)
            c1, t1 = time.process_time(), time.perf_counter()
            out["rates"].append(E * len(X) / (t1 - t0))
            out["cpu_rates"].append(E * len(X) / (c1 - c0))
    return out


def measure_overhead(spec):
    """Worker: epoch_overhead's passes, with nncore from spec["path"]."""
    _import_nncore(spec.get("path"))
    return epoch_overhead.measure_overhead(spec)


class _Terminal:
    """sys.stdout on a pseudo-terminal for the block, drained by another process
    (a reader thread here would compete with the training for the GIL)."""

    def __enter__(self):
        master, slave = pty.openpty()
        self.reader = subprocess.Popen(["cat"], stdin=master, stdout=subprocess.DEVNULL)
        os.close(master)
        self.saved = sys.stdout
        sys.stdout = open(slave, "w", buffering=1)
        return self

    def __exit__(self, *exc):
        sys.stdout.close()
        sys.stdout = self.saved
        self.reader.wait(10)
        return False


def measure_verbose(spec):
    """Worker: samples/s of fit with each kind of progress output, in turn."""
    nncore = _import_nncore(None)
    cfg, X, y, net, opt = _tiny(nncore, CONFIGS["tiny"].rows())
    E, B = spec["epochs"], cfg.batch_size
    out = {case: [] for case in _VERBOSE_CASES}
    has_tqdm = True
    try:
        import tqdm  # noqa: F401
    except ImportError:
        has_tqdm = False
        del out["1-terminal-tqdm"]
    def timed(verbose):
        t0 = time.process_time()
        net.fit(X, y, epochs=E, batch_size=B, optimizer=opt, verbose=verbose)
        return E * len(X) / (time.process_time() - t0)

    with nncore.set_num_threads(1), open(os.devnull, "w") as devnull:
        net.fit(X, y, epochs=E, batch_size=B, optimizer=opt)    # warm-up
        for _ in range(spec["repeats"]):
            out["0"].append(timed(0))
            saved, sys.stdout = sys.stdout, devnull
            try:
                out["2-pipe"].append(timed(2))
            finally:
                sys.stdout = saved
            saved_tqdm = sys.modules.get("tqdm")
            sys.modules["tqdm"] = None                 # the built-in bar
            try:
                with _Terminal():
                    out["1-terminal-builtin"].append(timed(1))
            finally:
                if saved_tqdm is None:
                    del sys.modules["tqdm"]
                else:
                    sys.modules["tqdm"] = saved_tqdm
            if has_tqdm:
                with _Terminal():
                    out["1-terminal-tqdm"].append(timed(1))
    return out


def run(args):
    quick = args.quick
    rounds = args.rounds or (1 if quick else 5)
    base = {"epochs": args.epochs or (2 if quick else 5),
            "repeats": args.repeats or (2 if quick else 5)}
    over = {"epochs": 200 if quick else 2000, "batches": 4, "passes": 2 if quick else 5,
            "clock": "cpu"}
    builds = {"this": None}
    if args.against:
        builds["against"] = os.path.abspath(args.against)
    results = {"machine": machine_info(), "settings": dict(base, rounds=rounds,
                                                           overhead=over, builds=builds)}
    raw = results["raw"] = {name: {"rate": [], "overhead": []} for name in builds}
    for r in range(rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for name in order:
            harness.log(f"[round {r + 1}/{rounds}] {name} ...")
            spec = dict(base, path=builds[name])
            raw[name]["rate"].append(harness.run_worker("fit_loop:measure_rate", spec, 1,
                                                        args))
            spec = dict(over, path=builds[name])
            raw[name]["overhead"].append(harness.run_worker(
                "fit_loop:measure_overhead", spec, 1, args))
    results["verbose"] = harness.repeat("fit_loop:measure_verbose", base, 1, args,
                                        rounds, "progress output")
    return results


def _per_round(results, name):
    """Per round: {"wall", "cpu": median samples/s; "overhead": median us per
    epoch}, or None where a worker failed."""
    E = results["settings"]["overhead"]["epochs"]
    out = []
    for rate, over in zip(results["raw"][name]["rate"], results["raw"][name]["overhead"]):
        if rate["status"] != "ok" or over["status"] != "ok":
            out.append(None)
            continue
        passes = [((a - a0) - (b - b0)) / E * 1e6 for a, a0, b, b0
                  in zip(over["A"], over["A0"], over["B"], over["B0"])]
        out.append({"wall": harness.median(rate["rates"]),
                    "cpu": harness.median(rate["cpu_rates"]),
                    "overhead": harness.median(passes)})
    return out


def _spread(xs):
    m = harness.median(xs)
    return (max(xs) - min(xs)) / abs(m) if xs and m else None


def _median_spread(xs, spec):
    return [format(harness.median(xs), spec), report.pct(_spread(xs))]


def markdown(results):
    st = results["settings"]
    rounds = {name: _per_round(results, name) for name in st["builds"]}
    rows, lines = [], []
    maximum = report.load_targets()["epoch_overhead"]["max_us_per_epoch"]
    for name, got in rounds.items():
        got = [g for g in got if g is not None]
        label = name if name == "this" else f"against ({st['builds'][name]})"
        if not got:
            rows.append([label, "failed"] + [""] * 5)
            continue
        rows.append([label, *_median_spread([g["cpu"] for g in got], ",.0f"),
                     *_median_spread([g["wall"] for g in got], ",.0f"),
                     *_median_spread([g["overhead"] for g in got], ".1f")])
        if name == "this":
            o = harness.median([g["overhead"] for g in got])
            lines.append(report.verdict(o <= maximum, f"per-epoch overhead {o:.1f} us "
                                        f"(CPU time); target <= {maximum:g} us"))
    ov = st["overhead"]
    intro = (f"tiny, float32, 1 thread; rate: fit(epochs={st['epochs']}) x "
             f"{st['repeats']} per worker; overhead: {ov['epochs']} epochs of "
             f"{ov['batches']} batches, CPU time; {st['rounds']} interleaved rounds; "
             f"{report.others([r for b in results['raw'].values() for r in b['rate']])}.")
    body = [intro, "", report.table(
        ["build", "samples/s (CPU time)", "spread", "samples/s (wall)", "spread",
         "us/epoch overhead", "spread"], rows)]
    if "against" in st["builds"]:
        pairs = [(a, b) for a, b in zip(rounds["this"], rounds["against"]) if a and b]
        for clock in ("cpu", "wall"):
            ratios = [a[clock] / b[clock] for a, b in pairs]
            if not ratios:
                continue
            m = harness.median(ratios)
            body += ["", (f"samples/s this / against ({clock}), per round: "
                          f"{', '.join(f'{x:.3f}' for x in ratios)}; median {m:.3f} "
                          f"(spread {report.pct(_spread(ratios))})")]
            if clock == "cpu":
                lines.append(report.verdict(m >= 0.97, f"tiny samples/s {m:.3f}x the "
                                            "other build's (CPU time); target >= 0.97"))
    ok = [r for r in results["verbose"] if r["status"] == "ok"]
    if ok:
        vrows = []
        for case in _VERBOSE_CASES:
            ratios = [b / a for r in ok if case in r for a, b in zip(r["0"], r[case])]
            if ratios:
                vrows.append([f"verbose={case}", *_median_spread(ratios, ".3f")])
        body += ["", ("Progress output: samples/s (CPU time) over verbose=0, the cases "
                      "alternating call by call in one worker per round:"), "",
                 report.table(["output", "ratio", "spread"], vrows)]
    return "\n".join(body + ["", report.targets_block(lines)])
