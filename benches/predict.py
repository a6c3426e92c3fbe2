"""Predict latency: one row per call, and 1,000 rows per call.

The network is the small configuration's (64-64-10 relu, softmax probabilities), with
the same weights in every peer: nncore's ``Network.predict``, a NumPy forward pass
written by hand, PyTorch eager under ``torch.no_grad()``, JAX jit, and scikit-learn's
``MLPClassifier.predict_proba``. Each peer runs in a fresh process pinned to
``--threads`` CPUs. One row: the calls cycle over 256 distinct one-row arrays (as a
server gets a new array per request); the time of each pass over them, divided by 256,
is one sample, and the report gives the median sample in microseconds. 1,000 rows: the
median call. Both after warm-up calls; the outputs are checked against a float64
NumPy forward pass.
"""
import numpy as np

from . import harness, report
from .configs import CONFIGS, init_params, make_data, numpy_forward
from .machine import machine_info
from .peers import make_trainer, missing
from .train import parse_list

HELP = "one-row and 1,000-row predict latency (nncore, NumPy, PyTorch, JAX, scikit-learn)"
DESCRIPTION = __doc__
LABELS = {"nncore": "nncore", "numpy": "NumPy by hand", "torch": "PyTorch eager, no_grad",
          "jax-step": "JAX jit", "sklearn": "scikit-learn predict_proba"}
DISTINCT_ROWS = 256


def add_arguments(p):
    p.add_argument("--peers", default=",".join(LABELS), help="comma list (%(default)s)")
    p.add_argument("--config", default="small", choices=list(CONFIGS),
                   help="the network (%(default)s: 64-64-10)")
    p.add_argument("--rows", type=int, default=1000,
                   help="rows of the batch call (%(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per peer (%(default)s)")
    p.add_argument("--min-time", type=float,
                   help="seconds of timed calls per measurement (1.0; 0.2 with --quick)")


def measure_predict(spec):
    """Worker: one-row and batch predict times of ``spec["peer"]``, in seconds."""
    cfg, dtype = CONFIGS[spec["config"]], spec["dtype"]
    n = max(spec["rows"], DISTINCT_ROWS)
    n += -n % cfg.batch_size          # whole batches, as the JAX peer needs
    X, y = make_data(cfg, n, dtype, seed=0)
    params = init_params(cfg, dtype, seed=0)
    trainer = make_trainer(spec["peer"], cfg, X, y, dtype, params)
    batch = X[:spec["rows"]]
    singles = [np.array(X[i:i + 1]) for i in range(DISTINCT_ROWS)]
    predict = trainer.predict

    def one_pass():
        for row in singles:
            predict(row)

    with trainer.threads(spec["threads"]):
        out = np.asarray(predict(batch), dtype=np.float64)
        one_pass()
        passes = harness.time_repeats(one_pass, spec["min_time"], 5)
        predict(batch)
        calls = harness.time_repeats(lambda: predict(batch), spec["min_time"], 5)
    expected = numpy_forward([p.astype(np.float64) for p in params], cfg,
                             batch.astype(np.float64))
    return {"one_row": [t / DISTINCT_ROWS for t in passes], "batch": calls,
            "max_abs_err": float(np.max(np.abs(out - expected))),
            "version": trainer.version}


def run(args):
    peers = parse_list(args.peers, list(LABELS), "--peers")
    rounds = args.rounds or (1 if args.quick else 3)
    min_time = args.min_time or (0.2 if args.quick else 1.0)
    skipped = {p: why for p in peers if (why := missing(p))}
    results = {"machine": machine_info(), "skipped": skipped, "raw": {},
               "settings": {"peers": peers, "config": args.config, "rows": args.rows,
                            "threads": args.threads, "rounds": rounds,
                            "min_time": min_time}}
    spec = {"config": args.config, "rows": args.rows, "dtype": "float32",
            "threads": args.threads, "min_time": min_time}
    for r in range(rounds):
        for peer in peers:
            if peer in skipped:
                continue
            harness.log(f"[round {r + 1}/{rounds}] predict {peer} ...")
            res = harness.run_worker("predict:measure_predict", dict(spec, peer=peer),
                                     args.threads, args)
            results["raw"].setdefault(peer, []).append(res)
            if res["status"] == "skip":
                skipped[peer] = res["reason"]
            elif res["status"] == "error":
                harness.log(f"  error: {res['reason']}")
    return results


def markdown(results):
    st = results["settings"]
    goals = report.load_targets()["predict"]
    one = {p: harness.aggregate(runs, "one_row") for p, runs in results["raw"].items()}
    many = {p: harness.aggregate(runs, "batch") for p, runs in results["raw"].items()}
    rows = []
    for p in st["peers"]:
        if not one.get(p):
            continue
        err = max(r["max_abs_err"] for r in results["raw"][p] if r["status"] == "ok")
        ratio = (f"{many[p]['time'] / many['nncore']['time']:.2f}x" if many.get("nncore")
                 else "-")
        rows.append([LABELS[p], f"{one[p]['time'] * 1e6:.2f}",
                     report.pct(one[p]["spread"]), f"{many[p]['time'] * 1e6:.1f}",
                     report.pct(many[p]["spread"]), ratio,
                     report.busy_mark(one[p]["foreign_cpu"]), f"{err:.1e}"])
    header = ["peer", "1 row, us", "spread", f"{st['rows']} rows, us", "spread",
              "peer / nncore", "others' CPU", "max abs err vs float64"]
    cfg = CONFIGS[st["config"]]
    out = [f"{'-'.join(map(str, cfg.sizes))} {cfg.activation} network ({cfg.loss}: "
           f"{'probabilities' if cfg.loss == 'cross_entropy' else 'outputs'}); "
           f"float32, {st['threads']} thread(s), "
           f"median over {st['rounds']} process(es) of {st['min_time']:g} s of calls "
           f"each; one-row calls cycle over {DISTINCT_ROWS} distinct arrays.", ""]
    out += [f"- skipped {LABELS[p]}: {why}" for p, why in results["skipped"].items()]
    out += ["", report.table(header, rows), ""]
    nn, limit = one.get("nncore"), goals["one_row_max_us"]
    lines = [report.verdict(None, "one-row predict: not measured") if nn is None else
             report.verdict(nn["time"] * 1e6 <= limit, f"one-row predict: "
                            f"{nn['time'] * 1e6:.2f} us; target <= {limit:g} us")]
    for peer, minimum in goals["batch_min_ratio"].items():
        a, b = many.get("nncore"), many.get(peer)
        what = f"{st['rows']}-row predict: nncore / {LABELS[peer]}"
        if not (a and b):
            lines.append(report.verdict(None, f"{what}: not measured"))
            continue
        ratio = b["time"] / a["time"]
        lines.append(report.verdict(ratio >= minimum,
                                    f"{what} = {ratio:.2f}x; target >= {minimum:g}x"))
    out.append(report.targets_block(lines))
    return "\n".join(out)
