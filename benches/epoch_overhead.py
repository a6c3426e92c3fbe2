"""Network.fit's Python work per epoch, on the tiny network (2-16-1 tanh, MSE, batch 32).

Method: the same batches, split into many short epochs or run as one long one.

- A: ``fit(X_short, epochs=E)``, where X_short holds k batches (k x 32 rows);
- B: ``fit(X_long, epochs=1)``, where X_long holds E x k batches: the same number of
  kernel batches, of the same size, in one epoch.

Both draw a permutation of E x k x 32 rows in all (A: E small ones, B: one long one).
A call's own costs (checking X and y, which grows with the rows, the workspace, the
snapshot) are measured by ``fit(..., epochs=0)`` on the same arrays and taken off each
side, so what remains is the epoch loop alone::

    per-epoch overhead = ((A - A0) - (B - B0)) / E

where A0 and B0 are the epochs=0 calls. The kernel time per batch is (B - B0) / (E k).
Each pass measures A, A0, B and B0 in turn, on one network and optimizer (SGD lr 0.01),
in a worker pinned to one CPU at one thread; the report gives the median over passes
of each pass's overhead and its spread. Short epochs (small k) make the overhead a
large share of the time, which is what this measures; the tiny benchmark's real epochs
(2,048 batches) are also reported as the share the overhead takes of one of them.
"""
import time

from . import harness, report
from .configs import CONFIGS, init_params, make_data
from .machine import machine_info

HELP = "Network.fit's Python overhead per epoch on the tiny network, in us per epoch"
DESCRIPTION = __doc__


def add_arguments(p):
    p.add_argument("--epochs", type=int, help="E, epochs of the short-epoch run "
                   "(2000; 200 with --quick)")
    p.add_argument("--batches", type=int, default=4,
                   help="k, batches per short epoch (%(default)s)")
    p.add_argument("--passes", type=int, help="passes per process (7; 2 with --quick)")


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_overhead(spec):
    """Worker: per pass, the times (s) of A, A0, B and B0 (see the module docstring)."""
    import nncore

    cfg = CONFIGS["tiny"]
    E, k, B = spec["epochs"], spec["batches"], cfg.batch_size
    X, y = make_data(cfg, E * k * B, "float32", seed=0)
    Xs, ys = X[:k * B].copy(), y[:k * B].copy()
    net = nncore.Network([nncore.Dense(2, 16, activation="tanh"), nncore.Dense(16, 1)],
                         loss="mse", seed=0)
    for live, p in zip(net.params, init_params(cfg, "float32")):
        live[...] = p
    opt = nncore.SGD(lr=cfg.hyper["lr"])
    runs = {"A": (Xs, ys, E), "A0": (Xs, ys, 0), "B": (X, y, 1), "B0": (X, y, 0)}
    with nncore.set_num_threads(1):
        net.fit(X, y, epochs=1, batch_size=B, optimizer=opt)   # warm-up
        out = {name: [] for name in runs}
        for _ in range(spec["passes"]):
            for name, (Xr, yr, epochs) in runs.items():
                out[name].append(_time(lambda: net.fit(
                    Xr, yr, epochs=epochs, batch_size=B, optimizer=opt)))
    return out


def run(args):
    rounds = args.rounds or (1 if args.quick else 3)
    spec = {"epochs": args.epochs or (200 if args.quick else 2000),
            "batches": args.batches, "passes": args.passes or (2 if args.quick else 7)}
    results = {"machine": machine_info(), "settings": dict(spec, rounds=rounds)}
    results["raw"] = harness.repeat("epoch_overhead:measure_overhead", spec, 1, args,
                                    rounds, "epoch overhead, tiny")
    return results


def markdown(results):
    st, ok = results["settings"], [r for r in results["raw"] if r["status"] == "ok"]
    if not ok:
        return report.failures(results["raw"])
    E, k = st["epochs"], st["batches"]
    per_pass = [{name: r[name][i] for name in ("A", "A0", "B", "B0")}
                for r in ok for i in range(len(r["A"]))]
    overhead = [((p["A"] - p["A0"]) - (p["B"] - p["B0"])) / E for p in per_pass]
    kernel = [(p["B"] - p["B0"]) / (E * k) for p in per_pass]
    o, kb = harness.median(overhead), harness.median(kernel)
    spread = (max(overhead) - min(overhead)) / abs(o) if o else None
    real = CONFIGS["tiny"].rows() // CONFIGS["tiny"].batch_size
    maximum = report.load_targets()["epoch_overhead"]["max_us_per_epoch"]
    medians = [harness.median([p[n] for p in per_pass]) for n in ("A", "A0", "B", "B0")]
    rows = [["per-epoch overhead of fit", f"{o * 1e6:.1f} us", report.pct(spread)],
            ["kernel time per batch", f"{kb * 1e6:.3f} us", ""],
            [f"overhead / a short epoch ({k} batches)", report.pct(o / (o + k * kb)), ""],
            [f"overhead / a tiny benchmark epoch ({real} batches)",
             f"{100 * o / (o + real * kb):.2f}%", ""],
            ["A, A0, B, B0 (median), s", ", ".join(f"{t:.4f}" for t in medians), ""]]
    line = report.verdict(o * 1e6 <= maximum, f"per-epoch overhead {o * 1e6:.1f} us; "
                          f"target <= {maximum:g} us")
    intro = (f"tiny network; E = {E} epochs of k = {k} batches against one epoch of "
             f"E x k batches; {len(per_pass)} passes in {len(ok)} process(es), 1 thread; "
             f"{report.others(ok)}. Method: `python -m benches epoch-overhead --help`.")
    return "\n".join([intro, "", report.table(["quantity", "median", "spread"], rows), "",
                      report.targets_block([line])])
