"""nncore.fit_many against K separate Network.fit calls on the same batches, 1 thread.

For each configuration (tiny 2-16-1, small 64-64-10, medium 784-256-128-10), K
networks with their own seeds are trained for a few epochs two ways, and end with the
same bits either way (checked): one ``fit_many`` call, and K ``fit`` calls whose
generators start where fit_many's ``seed`` does, so that every call draws the same
batches. In a worker pinned to one CPU, the two are interleaved ``--passes`` times on
fresh networks; the report gives the median over passes and processes of each, and
their ratio, against the targets of benches/targets.toml (K = 16).
"""
import time

from . import harness, report
from .configs import CONFIGS, make_data
from .machine import machine_info

HELP = "fit_many against K separate fit calls on the same batches (K = 16, 1 thread)"
DESCRIPTION = __doc__
SEED = 0
# Rows per configuration (whole batches), about a second of training per pass.
ROWS = {"tiny": 32768, "small": 16384, "medium": 2048, "large": 512}


def add_arguments(p):
    p.add_argument("--configs", default="tiny,small,medium",
                   help="comma-separated (%(default)s)")
    p.add_argument("--k", type=int, default=16, help="networks (%(default)s)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--epochs", type=int, default=2, help="(%(default)s)")
    p.add_argument("--passes", type=int, help="passes per process (5; 1 with --quick)")


def _networks(cfg, k, dtype):
    import nncore

    acts = [cfg.activation] * (len(cfg.sizes) - 2) + ["identity"]
    return [nncore.Network([nncore.Dense(a, b, act) for a, b, act in
                            zip(cfg.sizes[:-1], cfg.sizes[1:], acts)],
                           loss=cfg.loss, dtype=dtype, seed=s) for s in range(k)]


def _optimizer(cfg):
    import nncore

    if cfg.optimizer == "sgd":
        return nncore.SGD(cfg.hyper["lr"], momentum=cfg.hyper.get("momentum", 0.0))
    return nncore.Adam(cfg.hyper["lr"])


def _separate(cfg, nets, X, y, epochs):
    import numpy as np

    t0 = time.perf_counter()
    for net in nets:
        state = net.state(include_optimizer=False)
        state["rng"] = np.random.default_rng(SEED).bit_generator.state
        net.restore(state)
        net.fit(X, y, epochs=epochs, batch_size=cfg.batch_size, optimizer=_optimizer(cfg))
    return time.perf_counter() - t0


def _together(cfg, nets, X, y, epochs):
    import nncore

    t0 = time.perf_counter()
    nncore.fit_many(nets, X, y, epochs=epochs, batch_size=cfg.batch_size,
                    optimizers=[_optimizer(cfg) for _ in nets], seed=SEED)
    return time.perf_counter() - t0


def measure(spec):
    """Worker: per pass, the seconds of K fit calls and of one fit_many call."""
    import numpy as np

    import nncore

    cfg = CONFIGS[spec["config"]]
    X, y = make_data(cfg, spec["rows"], spec["dtype"])
    out = {"separate": [], "fit_many": []}
    with nncore.set_num_threads(1):
        for _ in range(spec["passes"]):
            a = _networks(cfg, spec["k"], spec["dtype"])
            b = _networks(cfg, spec["k"], spec["dtype"])
            out["separate"].append(_separate(cfg, a, X, y, spec["epochs"]))
            out["fit_many"].append(_together(cfg, b, X, y, spec["epochs"]))
            for p, q in zip(a, b):
                if not np.array_equal(p.state()["params"], q.state()["params"]):
                    raise AssertionError("fit_many and fit ended apart")
    return out


def run(args):
    rounds = args.rounds or (1 if args.quick else 3)
    passes = args.passes or (1 if args.quick else 5)
    results = {"machine": machine_info(), "settings": {
        "k": args.k, "dtype": args.dtype, "epochs": args.epochs, "passes": passes,
        "rounds": rounds}, "raw": {}}
    for name in args.configs.split(","):
        rows = ROWS[name] // (8 if args.quick else 1)
        cfg = CONFIGS[name]
        spec = {"config": name, "rows": cfg.rows(rows / cfg.n_samples),
                "k": args.k, "dtype": args.dtype, "epochs": args.epochs, "passes": passes}
        results["raw"][name] = {"rows": spec["rows"], "runs": harness.repeat(
            "fit_many:measure", spec, 1, args, rounds, f"fit_many, {name}")}
    return results


def markdown(results):
    st = results["settings"]
    rows, lines = [], []
    targets = report.load_targets()["fit_many"]["min_ratio"]
    for name, entry in results["raw"].items():
        ok = [r for r in entry["runs"] if r["status"] == "ok"]
        if not ok:
            rows.append([name, "-", "-", "-", report.failures(entry["runs"]).strip()])
            continue
        sep = harness.median([t for r in ok for t in r["separate"]])
        many = harness.median([t for r in ok for t in r["fit_many"]])
        samples = st["k"] * entry["rows"] * st["epochs"]
        ratio = sep / many
        rows.append([name, entry["rows"], report.rate(samples / sep),
                     report.rate(samples / many), f"{ratio:.2f}x"])
        if name in targets and st["k"] == 16:
            lines.append(report.verdict(ratio >= targets[name], f"fit_many {name}: "
                                        f"{ratio:.2f}x; target >= {targets[name]:g}x"))
    intro = (f"K = {st['k']} networks, {st['dtype']}, {st['epochs']} epochs, 1 thread; "
             f"samples/s over all K networks, median of {st['passes']} passes x "
             f"{st['rounds']} processes; bit-identical results checked every pass. "
             "Method: `python -m benches fit-many --help`.")
    table = report.table(["config", "rows", "K x fit", "fit_many", "ratio"], rows)
    return "\n".join([intro, "", table, "", report.targets_block(lines or ["(none)"])])
