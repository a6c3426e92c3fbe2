"""The machine's ceiling: its best 1-thread 2048x2048 float32 matrix product.

Measured per library in a fresh process pinned to one CPU: NumPy's OpenBLAS with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from that process's environment
(so it detects the CPU itself rather than running kernels set for another one), and
JAX's jit ``@`` where JAX is installed. The ceiling is the best of them. The training
benchmarks report a step's share of it, counting the step's arithmetic as
``2 x (3 x weights - first-layer weights) x samples/s`` (``Config.step_flops``).
"""
import importlib.util
import os

import numpy as np

from . import harness
from .machine import machine_info

HELP = "the machine's best 1-thread 2048x2048 float32 matmul (NumPy's OpenBLAS, JAX)"
DESCRIPTION = __doc__
LIBRARIES = ("numpy", "jax")
_CPU_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=2048, help="N of the N x N x N "
                        "product (%(default)s)")


def gemm_rate(spec):
    """Worker: the best GFLOP/s of ``spec["size"]``-square float32 products."""
    n, lib = spec["size"], spec["lib"]
    rng = np.random.default_rng(0)
    A, B = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    if lib == "numpy":
        C = np.empty((n, n), np.float32)

        def product():
            np.matmul(A, B, out=C)
    else:
        import jax

        f = jax.jit(lambda a, b: a @ b)
        jA, jB = jax.numpy.asarray(A), jax.numpy.asarray(B)

        def product():
            f(jA, jB).block_until_ready()
    product()
    times = harness.time_repeats(product, spec["min_time"], 3, 200)
    out = {"gflops": 2.0 * n ** 3 / min(times) / 1e9}
    if lib == "numpy":
        from threadpoolctl import threadpool_info

        out["openblas"] = [{k: d.get(k) for k in ("version", "architecture")}
                           for d in threadpool_info()
                           if d.get("internal_api") == "openblas"]
    return out


def measure(opts, size=2048, min_time=1.0):
    """``{"size", "rates": {lib: GFLOP/s}, "notes": {lib: why not}, "best", "lib",
    "openblas"}`` for the libraries installed here."""
    rates, notes, openblas = {}, {}, None
    for lib in LIBRARIES:
        if importlib.util.find_spec(lib) is None:
            notes[lib] = "not installed"
            continue
        env = harness.worker_env(1)
        if lib == "numpy":
            for var in _CPU_OVERRIDES:
                env.pop(var, None)
        harness.log(f"ceiling: {lib} {size}x{size} float32, 1 thread ...")
        spec = {"lib": lib, "size": size, "min_time": min_time}
        res = harness.run_worker("ceiling:gemm_rate", spec, 1, opts, env=env)
        if res["status"] == "ok":
            rates[lib] = res["gflops"]
            openblas = res.get("openblas", openblas)
        else:
            notes[lib] = res["reason"]
    best = max(rates, key=rates.get) if rates else None
    return {"size": size, "rates": rates, "notes": notes, "lib": best,
            "best": rates[best] if best else None, "openblas": openblas,
            "removed_env": {k: os.environ[k] for k in _CPU_OVERRIDES if k in os.environ}}


def step_share(cfg, samples_per_s, ceiling):
    """(GFLOP/s of a training step, its share of ``ceiling["best"]`` or None)."""
    gflops = cfg.step_flops * samples_per_s / 1e9
    best = (ceiling or {}).get("best")
    return gflops, (gflops / best if best else None)


def describe(ceiling):
    """One sentence naming the ceiling and every rate measured."""
    if not ceiling or not ceiling.get("best"):
        why = "; ".join(f"{k}: {v}" for k, v in (ceiling or {}).get("notes", {}).items())
        return f"Ceiling: not measured ({why or 'skipped'})."
    parts = [f"{lib} {r:.0f}" for lib, r in ceiling["rates"].items()]
    parts += [f"{lib} {why}" for lib, why in ceiling["notes"].items()]
    blas = ", ".join(f"OpenBLAS {b['version']} detects {b['architecture']}"
                     for b in ceiling.get("openblas") or [])
    removed = ", ".join(f"{k}={v}" for k, v in ceiling.get("removed_env", {}).items())
    if removed:
        blas += f" (with {removed} removed from its environment)"
    return (f"Ceiling ({ceiling['size']}^2 float32 matmul, 1 thread): "
            f"**{ceiling['best']:.0f} GFLOP/s** ({ceiling['lib']}); " + ", ".join(parts)
            + (f"; {blas}" if blas else "") + ".")


def run(args):
    return {"machine": machine_info(), "ceiling": measure(args, args.size)}


def markdown(results):
    return describe(results["ceiling"]) + "\n"
