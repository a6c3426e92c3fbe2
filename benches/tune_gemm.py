"""Where should a matrix product leave the kernels' own tiled loop for BLAS?

For each compiled build this CPU runs (portable, AVX2, AVX-512), times the products
that the benchmark networks' layers make (forward Z = A W, weight gradient
dW = A^T D, input gradient dA = D W^T) on both paths of ``matmul_into`` and prints
GFLOP/s and the ratio. The cut-overs in nncore/_simd.h (NN_BLAS_ABOVE) come from
this table. Single-threaded by default (``--threads``).

    python benches/tune_gemm.py [--dtype float32] [--threads 1]
"""
import argparse
import importlib
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nncore import _dispatch

# (M, N, K, A transposed, B transposed): the products of the issue-3 networks.
SHAPES = [
    (32, 16, 2, 0, 0), (32, 1, 16, 0, 0), (16, 1, 32, 1, 0), (32, 16, 1, 0, 1),
    (32, 64, 64, 0, 0), (32, 10, 64, 0, 0), (64, 64, 32, 1, 0), (32, 64, 10, 0, 1),
    (128, 256, 784, 0, 0), (128, 128, 256, 0, 0), (784, 256, 128, 1, 0),
    (256, 128, 128, 1, 0), (128, 256, 128, 0, 1), (128, 10, 128, 0, 0),
    (256, 1024, 784, 0, 0), (256, 1024, 1024, 0, 0), (1024, 1024, 256, 1, 0),
    (784, 1024, 256, 1, 0), (256, 1024, 1024, 0, 1),
]


def best_time(fn, reps, rounds=7):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with threadpool_limits(args.threads):
        for name in _dispatch.supported():
            try:
                build = importlib.import_module("nncore." + _dispatch._MODULES[name])
            except ImportError:
                continue
            print(f"\n{name} build (own loops up to {build.BLAS_ABOVE:.3g} "
                  "multiply-adds)")
            print(f"{'M x N x K':>18} {'op':>4} {'own GF/s':>9} {'BLAS GF/s':>10} "
                  f"{'own/BLAS time':>14}")
            for M, N, K, ta, tb in SHAPES:
                A = rng.normal(size=(K, M) if ta else (M, K)).astype(args.dtype)
                B = rng.normal(size=(N, K) if tb else (K, N)).astype(args.dtype)
                C = np.zeros((M, N), args.dtype)
                reps = max(1, int(2e7 / (M * N * K)))
                def run(path):
                    return build.matmul_into(A, B, C, ta, tb, False, path)
                own = best_time(lambda: run(1), reps)
                blas = best_time(lambda: run(2), reps)
                flops = 2 * M * N * K
                op = ("T" if ta else "N") + ("T" if tb else "N")
                print(f"{M:>5} x{N:>5} x{K:>5} {op:>4} {flops / own / 1e9:9.1f} "
                      f"{flops / blas / 1e9:10.1f} {own / blas:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
