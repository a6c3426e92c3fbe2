"""Side-by-side training: nncore and its peers on the four benchmark networks.

Every (peer, configuration, dtype, thread count) is measured in a fresh process pinned
to its CPUs (see ``benches.harness``). All peers train the same seeded synthetic data
from the same initial weights, drawing a fresh permutation every epoch. Per process:
one warm-up epoch, untimed (JAX's compile time is measured apart), then timed epochs
until ``--min-time`` seconds and ``--min-repeats`` epochs; the process reports its
median epoch. ``--rounds`` processes per measurement, interleaved: rounds outermost,
so a slow drift of the machine touches every peer alike. The tables show the median
over the processes and their spread. A step's GFLOP/s counts
``2 x (3 x weights - first-layer weights)`` per sample; "% ceiling" is its share of
the machine's best 1-thread 2048^2 float32 matmul, measured in the same run.

Peers: nncore (``Network.fit(epochs=1)`` per epoch, input checks included), NumPy
(``nncore.reference.fit``), PyTorch eager (default and fused optimizers), JAX (a jit
step per batch, and the whole epoch in one ``lax.scan``), scikit-learn (``partial_fit``).
A peer that is not installed is skipped with a one-line reason.
"""
import resource
import time

from . import ceiling, harness, report
from .configs import CONFIGS, init_params, make_data, numpy_loss
from .machine import machine_info
from .peers import PEERS, make_trainer, missing

HELP = "training rate of nncore and every peer, four networks (the README's table)"
DESCRIPTION = __doc__


def add_arguments(p):
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help="comma list (%(default)s)")
    p.add_argument("--peers", default=",".join(PEERS), help="comma list (%(default)s)")
    p.add_argument("--dtype", default="float32",
                   help="float32, float64, or both comma-separated (%(default)s)")
    p.add_argument("--threads", default="1,2",
                   help="comma list of thread counts (%(default)s)")
    add_timing_arguments(p)
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the ceiling measurement")


def add_timing_arguments(p):
    p.add_argument("--scale", type=float, help="multiply every configuration's rows "
                   "(rounded to whole batches; 1, or 0.25 with --quick)")
    p.add_argument("--min-time", type=float,
                   help="seconds of timed epochs per process (1.0; 0.3 with --quick)")
    p.add_argument("--min-repeats", type=int,
                   help="timed epochs per process at least (2; 1 with --quick)")
    p.add_argument("--max-repeats", type=int, default=1000,
                   help="timed epochs per process at most (%(default)s)")


def parse_list(text, allowed, flag, convert=str):
    """``"a,b"`` -> ``[a, b]``, each converted and in ``allowed`` (None: any positive
    number); SystemExit with the flag's name otherwise."""
    try:
        items = [convert(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError:
        items = []
    if allowed is None:
        ok = items and all(x > 0 for x in items)
        choices = "positive numbers"
    else:
        ok = items and all(x in allowed for x in items)
        choices = ", ".join(allowed)
    if not ok:
        raise SystemExit(f"{flag}: got {text!r}; expected a comma list of {choices}")
    return items


def timing(args):
    """The per-process timing settings of ``args`` (with --quick's defaults)."""
    quick = args.quick

    def pick(value, full, short):
        return value if value is not None else (short if quick else full)

    return {"scale": pick(args.scale, 1.0, 0.25),
            "min_time": pick(args.min_time, 1.0, 0.3),
            "min_repeats": pick(args.min_repeats, 2, 1),
            "max_repeats": args.max_repeats, "rounds": pick(args.rounds, 3, 1)}


def measure_training(spec):
    """Worker: time ``spec["peer"]`` training ``spec["config"]``; epoch times in s."""
    cfg = CONFIGS[spec["config"]]
    X, y = make_data(cfg, spec["rows"], spec["dtype"], seed=0)
    params = init_params(cfg, spec["dtype"], seed=0)
    n_eval = min(len(X), 4096)
    trainer = make_trainer(spec["peer"], cfg, X, y, spec["dtype"], params)
    with trainer.threads(spec["threads"]):
        t0 = time.perf_counter()
        trainer.epoch()
        warmup_s = time.perf_counter() - t0
        times = harness.time_repeats(trainer.epoch, spec["min_time"], spec["min_repeats"],
                                     spec["max_repeats"])
    return {"times": times, "warmup_s": warmup_s, "compile_s": trainer.compile_s,
            "loss0": numpy_loss(params, cfg, X[:n_eval], y[:n_eval]),
            "loss1": numpy_loss(trainer.weights(), cfg, X[:n_eval], y[:n_eval]),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "version": trainer.version}


def run(args):
    configs = parse_list(args.configs, list(CONFIGS), "--configs")
    peers = parse_list(args.peers, list(PEERS), "--peers")
    dtypes = parse_list(args.dtype, ["float32", "float64"], "--dtype")
    threads = parse_list(args.threads, None, "--threads", int)
    t = timing(args)
    skipped = {p: why for p in peers if (why := missing(p))}
    for peer, why in skipped.items():
        harness.log(f"skip {peer}: {why}")
    results = {"machine": machine_info(),
               "rows": {c: CONFIGS[c].rows(t["scale"]) for c in configs},
               "settings": {"configs": configs, "peers": peers, "dtypes": dtypes,
                            "threads": threads, "pinned": not args.no_pin, **t},
               "skipped": skipped, "raw": {}}
    results["ceiling"] = None if args.no_ceiling else ceiling.measure(args)
    cells = [(d, n, c, p)
             for d in dtypes for n in threads for c in configs for p in peers]
    try:
        for r in range(t["rounds"]):
            for dtype, n, cname, peer in cells:
                if peer in skipped:
                    continue
                key = f"{dtype}/{n}/{cname}/{peer}"
                harness.log(f"[round {r + 1}/{t['rounds']}] train {key} ...")
                spec = {"peer": peer, "config": cname, "dtype": dtype, "threads": n,
                        "rows": results["rows"][cname], **t}
                res = harness.run_worker("train:measure_training", spec, n, args)
                results["raw"].setdefault(key, []).append(res)
                if res["status"] == "skip":
                    skipped[peer] = res["reason"]
                if res["status"] != "ok":
                    harness.log(f"  {res['status']}: {res['reason']}")
    except KeyboardInterrupt:
        harness.log("interrupted: reporting what was measured so far")
        results["interrupted"] = True
    return results


def summarize(results):
    """key -> aggregate with ``sps`` (samples/s) and the medians of the extras."""
    out = {}
    for key, runs in results["raw"].items():
        agg = harness.aggregate(runs)
        if agg is None:
            continue
        ok = [r for r in runs if r["status"] == "ok"]
        for field in ("compile_s", "loss0", "loss1", "peak_rss_mib"):
            values = [r[field] for r in ok if r.get(field) is not None]
            agg[field] = harness.median(values) if values else None
        agg["sps"] = results["rows"][key.split("/")[2]] / agg["time"]
        agg["version"] = ok[0].get("version", "")
        out[key] = agg
    return out


def best_peer(aggs, dtype, threads, cname, peers):
    """(samples/s, peer) of the fastest of ``peers`` but nncore, or (None, None)."""
    found = [(a["sps"], p) for p in peers if p != "nncore"
             and (a := aggs.get(f"{dtype}/{threads}/{cname}/{p}"))]
    return max(found) if found else (None, None)


# ------------------------------------------------------------------------ report
def markdown(results):
    aggs = summarize(results)
    st = results["settings"]
    peers = [p for p in st["peers"] if p not in results["skipped"]]
    pinned = " pinned to its CPUs" if st["pinned"] else ""
    rows = ", ".join(f"{c} {n}" for c, n in results["rows"].items())
    out = [ceiling.describe(results["ceiling"]), "",
           f"Each measurement in a fresh process{pinned}; 1 warm-up epoch, then timed "
           f"epochs (>= {st['min_time']:g} s, >= {st['min_repeats']}); median over "
           f"{st['rounds']} process(es). Rows: {rows}.", ""]
    out += [f"- skipped {PEERS[p].label}: {why}"
            for p, why in results["skipped"].items()]
    out += [""] if results["skipped"] else []
    for dtype in st["dtypes"]:
        for n in st["threads"]:
            out += [f"### {dtype}, {n} thread{'s' if n > 1 else ''}", "",
                    _wide_table(results, aggs, dtype, n, peers), "",
                    _detail_table(results, aggs, dtype, n, peers), ""]
    out.append(report.targets_block(target_lines(results, aggs)))
    return "\n".join(out)


def _wide_table(results, aggs, dtype, n, peers):
    header = ["config", "network"] + [PEERS[p].label for p in peers] + ["nncore / best"]
    rows = []
    for cname in results["settings"]["configs"]:
        cells = [aggs.get(f"{dtype}/{n}/{cname}/{p}") for p in peers]
        best, who = best_peer(aggs, dtype, n, cname, peers)
        nn = aggs.get(f"{dtype}/{n}/{cname}/nncore")
        ratio = f"{nn['sps'] / best:.2f}x ({PEERS[who].label})" if nn and best else "-"
        rows.append([cname, CONFIGS[cname].describe()]
                    + [report.rate(a["sps"]) if a else "-" for a in cells] + [ratio])
    return "Samples per second:\n\n" + report.table(header, rows)


def _detail_table(results, aggs, dtype, n, peers):
    header = ["config", "peer", "samples/s", "us/step", "step GFLOP/s", "% ceiling",
              "nncore / peer", "spread", "others' CPU", "compile s", "peak RSS MiB",
              "loss start -> end"]
    rows = []
    for cname in results["settings"]["configs"]:
        cfg = CONFIGS[cname]
        steps = results["rows"][cname] // cfg.batch_size
        nn = aggs.get(f"{dtype}/{n}/{cname}/nncore")
        for p in peers:
            key = f"{dtype}/{n}/{cname}/{p}"
            a = aggs.get(key)
            if a is None:
                why = [r["reason"] for r in results["raw"].get(key, [])
                       if r["status"] == "error"]
                if why:
                    rows.append([cname, PEERS[p].label, f"error: {why[0][:100]}"]
                                + [""] * (len(header) - 3))
                continue
            gflops, share = ceiling.step_share(cfg, a["sps"], results["ceiling"])
            rows.append([
                cname, PEERS[p].label, report.rate(a["sps"]),
                report.num(a["time"] / steps * 1e6, ".1f"), report.num(gflops, ".1f"),
                report.pct(share) if (dtype, n) == ("float32", 1) else "-",
                f"{nn['sps'] / a['sps']:.2f}x" if nn else "-", report.pct(a["spread"]),
                report.busy_mark(a["foreign_cpu"]), report.num(a["compile_s"], ".2f"),
                report.num(a["peak_rss_mib"], ".0f"),
                f"{report.num(a['loss0'], '.3f')} -> {report.num(a['loss1'], '.3f')}"])
    return report.table(header, rows)


def target_lines(results, aggs):
    goals, st = report.load_targets()["train"], results["settings"]
    lines = []
    for goal in goals["ratio"]:
        dtype = goal["dtype"]
        against = st["peers"] if goal["against"] == "all" else goal["against"]
        for cname, minimum in goal["min"].items():
            for n in st["threads"]:
                nn = aggs.get(f"{dtype}/{n}/{cname}/nncore")
                best, who = best_peer(aggs, dtype, n, cname, against)
                what = f"{dtype} {cname} {n}t: nncore / best peer"
                if nn is None or best is None:
                    lines.append(report.verdict(None, f"{what}: not measured"))
                    continue
                absent = [p for p in against if p != "nncore"
                          and f"{dtype}/{n}/{cname}/{p}" not in aggs]
                what += f" (not measured: {', '.join(absent)})" if absent else ""
                lines.append(report.verdict(
                    nn["sps"] >= minimum * best,
                    f"{what} = {nn['sps'] / best:.2f}x ({PEERS[who].label}); "
                    f"target >= {minimum:g}x"))
    for cname, minimum in goals["ceiling_share"].items():
        nn = aggs.get(f"float32/1/{cname}/nncore")
        what = f"float32 {cname} 1t: training step / ceiling"
        if nn is None or not (results["ceiling"] or {}).get("best"):
            lines.append(report.verdict(None, f"{what}: not measured"))
            continue
        gflops, share = ceiling.step_share(CONFIGS[cname], nn["sps"], results["ceiling"])
        lines.append(report.verdict(
            share >= minimum, f"{what} = {gflops:.0f} GFLOP/s = {100 * share:.0f}%; "
                              f"target >= {100 * minimum:.0f}%"))
    return lines
