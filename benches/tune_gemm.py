"""Where should a matrix product leave the kernels' own tiled loop for BLAS?

For each compiled build of the kernels this CPU runs (portable, AVX2, AVX-512), times
the products the benchmark networks' layers make (forward Z = A W, weight gradient
dW = A^T D, input gradient dA = D W^T) through the build's ``matmul_into`` (a private
entry point: this is a tuning tool) on its own loop, on BLAS, and on the path training
takes (own loop up to the build's ``BLAS_ABOVE`` multiply-adds), and prints GFLOP/s,
the own/BLAS ratio and, in float32 at one thread, the share of the machine's ceiling
(``python -m benches ceiling``) that the path training takes reaches.
Per network, the share of all its products together (their flops over their summed
time) is checked against ``targets.toml``. Runs in a worker pinned to ``--threads``
CPUs. Also runnable as ``python benches/tune_gemm.py [options]``.
"""
import importlib
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__" and not __package__:   # run as a file: the package's way
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benches.__main__ import main as _main
    sys.exit(_main(["tune-gemm", *sys.argv[1:]]))

from . import ceiling, harness, report  # noqa: E402
from .machine import machine_info  # noqa: E402

HELP = "nncore's products on its own loop and on BLAS, per build (a tuning tool)"
DESCRIPTION = __doc__
# network -> (M, N, K, A transposed, B transposed) of its layers' products
SHAPES = {
    "tiny": [(32, 16, 2, 0, 0), (32, 1, 16, 0, 0), (16, 1, 32, 1, 0), (32, 16, 1, 0, 1)],
    "small": [(32, 64, 64, 0, 0), (32, 10, 64, 0, 0), (64, 64, 32, 1, 0),
              (32, 64, 10, 0, 1)],
    "medium": [(128, 256, 784, 0, 0), (128, 128, 256, 0, 0), (784, 256, 128, 1, 0),
               (256, 128, 128, 1, 0), (128, 256, 128, 0, 1), (128, 10, 128, 0, 0)],
    "large": [(256, 1024, 784, 0, 0), (256, 1024, 1024, 0, 0), (1024, 1024, 256, 1, 0),
              (784, 1024, 256, 1, 0), (256, 1024, 1024, 0, 1)],
}
PATHS = {"own": 1, "blas": 2, "trained": 0}   # matmul_into's path: 0 chooses as training


def add_arguments(p):
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1, help="(%(default)s)")
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the ceiling measurement")


def _best_time(fn, reps, rounds):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def _time_shape(build, shape, spec, rng):
    """{path name: best seconds} of one product on each path of ``build``."""
    M, N, K, ta, tb = shape
    dtype = spec["dtype"]
    A = rng.normal(size=(K, M) if ta else (M, K)).astype(dtype)
    B = rng.normal(size=(N, K) if tb else (K, N)).astype(dtype)
    C = np.zeros((M, N), dtype)
    reps = max(1, int(2e7 / (M * N * K)))
    return {name: _best_time(lambda: build.matmul_into(A, B, C, ta, tb, False, path),
                             reps, spec["rounds"])
            for name, path in PATHS.items()}


def measure_products(spec):
    """Worker: per build and shape, the best seconds on each path."""
    from threadpoolctl import threadpool_limits

    from nncore import _dispatch

    rng, out = np.random.default_rng(0), {}
    with threadpool_limits(spec["threads"]):
        for name in _dispatch.supported():
            try:
                build = importlib.import_module(f"nncore.{_dispatch._MODULES[name]}")
            except ImportError:   # not compiled here
                continue
            rows = [[config, *shape, _time_shape(build, shape, spec, rng)]
                    for config, shapes in SHAPES.items() for shape in shapes]
            out[name] = {"blas_above": build.BLAS_ABOVE, "rows": rows}
    return {"builds": out}


def run(args):
    results = {"machine": machine_info(),
               "settings": {"dtype": args.dtype, "threads": args.threads,
                            "rounds": args.rounds or (3 if args.quick else 7)}}
    results["ceiling"] = None if args.no_ceiling else ceiling.measure(args)
    harness.log("products of the benchmark networks, per build ...")
    res = harness.run_worker("tune_gemm:measure_products", results["settings"],
                             args.threads, args)
    if res["status"] != "ok":
        raise SystemExit(f"tune-gemm: {res['reason']}")
    results["builds"] = res["builds"]
    return results


def _build_table(b, best):
    """(Markdown table of one build, {network: (flops, seconds) as trained})."""
    rows, totals = [], {}
    for config, M, N, K, ta, tb, t in b["rows"]:
        flops = 2 * M * N * K
        f, s = totals.get(config, (0, 0.0))
        totals[config] = (f + flops, s + t["trained"])
        trained = flops / t["trained"] / 1e9
        rows.append([config, f"{M} x {N} x {K}", "NT"[ta] + "NT"[tb],
                     f"{flops / t['own'] / 1e9:.1f}", f"{flops / t['blas'] / 1e9:.1f}",
                     f"{t['own'] / t['blas']:.2f}", f"{trained:.1f}",
                     report.pct(trained / best) if best else "-"])
    header = ["network", "M x N x K", "op", "own GF/s", "BLAS GF/s", "own/BLAS time",
              "as trained GF/s", "% ceiling"]
    return report.table(header, rows), totals


def markdown(results):
    st = results["settings"]
    best = (results.get("ceiling") or {}).get("best")
    if st["dtype"] != "float32" or st["threads"] != 1:
        best = None   # the ceiling is a 1-thread float32 rate
    goals = report.load_targets()["tune_gemm"]["min_ceiling_share"]
    out = [ceiling.describe(results.get("ceiling")), "",
           f"{st['dtype']}, {st['threads']} thread(s), best of {st['rounds']} rounds.",
           ""]
    lines = []
    for name, b in results["builds"].items():
        table, totals = _build_table(b, best)
        out += [f"### {name} build (own loop up to {b['blas_above']:.3g} multiply-adds)",
                "", table, ""]
        for config, minimum in goals.items():
            if config in totals and best:
                share = totals[config][0] / totals[config][1] / 1e9 / best
                lines.append(report.verdict(
                    share >= minimum, f"{name} {config}: products as trained at "
                                      f"{100 * share:.0f}% of the ceiling; target >= "
                                      f"{100 * minimum:.0f}%"))
    if not lines:
        lines = [report.verdict(None, "no 1-thread float32 ceiling to compare with")]
    out.append(report.targets_block(lines))
    return "\n".join(out)


if __name__ == "__main__":   # python -m benches.tune_gemm
    from .__main__ import main
    sys.exit(main(["tune-gemm", *sys.argv[1:]]))
