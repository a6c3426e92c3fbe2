"""Data-parallel scaling over MPI: 1 against 2 processes on the medium configuration
(784-256-128-10 relu, softmax cross-entropy, Adam lr 1e-3), one thread per process.

    python benches/mpi_scaling.py [--rows 59904] [--epochs 3] [--dtype float32]

Runs, each under ``mpirun`` (Open MPI; as root it passes the variables Open MPI
needs to allow root):

- ``fit``: one process, ``Network.fit`` with batches of 128 (the baseline);
- ``1 x 128``: ``fit_distributed`` on one rank, batch 128 (the cost of the
  distributed loop itself: a step per Python iteration, a one-rank Allreduce);
- ``2 x 64``: two ranks, local batch 64: the same global batch of 128 and so the
  same training as the baseline (strong scaling);
- ``2 x 128``: two ranks, local batch 128, global 256 (weak scaling: the same work
  per step per process).

For each: samples per second over the epochs after the first (warm-up), and the
share of the epoch spent in the Allreduce (waiting for the other rank included),
averaged over the ranks. On a machine with 2 cores shared with other work the
figures are noisy: give them as measured, with the load.
"""
import argparse
import json
import os
import subprocess
import sys
import time

WORKER = "--worker"


def _worker(args):
    import numpy as np
    from mpi4py import MPI

    import nncore
    from nncore import bench, distributed

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    cfg = bench.CONFIGS["medium"]
    X, y = bench.make_data(cfg, args.rows, args.dtype)
    rows = distributed.shard_rows(len(X), rank, size, args.batch, shuffle=True)
    X, y = np.ascontiguousarray(X[rows]), y[rows]
    layers = [nncore.Dense(a, b, cfg.activation if i < len(cfg.sizes) - 2 else "identity")
              for i, (a, b) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:]))]
    net = nncore.Network(layers, loss=cfg.loss, dtype=args.dtype, seed=0)
    opt = nncore.Adam(1e-3)
    times, shares = [], []
    with nncore.set_num_threads(1):
        for _ in range(args.epochs):
            comm.Barrier()
            t0 = time.perf_counter()
            if args.plain:
                net.fit(X, y, epochs=1, batch_size=args.batch, optimizer=opt)
                reduce_time = 0.0
            else:
                h = distributed.fit_distributed(net, X, y, comm, epochs=1,
                                                batch_size=args.batch, optimizer=opt)
                reduce_time = h.allreduce_time[0]
            elapsed = time.perf_counter() - t0
            times.append(comm.allreduce(elapsed, op=MPI.MAX))
            shares.append(comm.allreduce(reduce_time / elapsed) / size)
    if rank == 0:
        warm = times[1:] or times
        print(json.dumps({"samples_per_s": args.rows / (sum(warm) / len(warm)),
                          "allreduce_share": sum(shares[1:] or shares) / len(warm)}))


def _run(n, batch, args, plain=False):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", "--bind-to", "none",
           sys.executable, os.path.abspath(__file__), WORKER, "--rows", str(args.rows),
           "--epochs", str(args.epochs), "--dtype", args.dtype, "--batch", str(batch)]
    if plain:
        cmd.append("--plain")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=59904)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(WORKER, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    runs = [("fit (1 process)", 1, 128, True), ("1 x 128", 1, 128, False),
            ("2 x 64 (global 128)", 2, 64, False), ("2 x 128 (global 256)", 2, 128, False)]
    print(f"medium, {args.dtype}, {args.rows} rows, {args.epochs} epochs (first is "
          f"warm-up), 1 thread per process, load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':24s} {'samples/s':>10s} {'vs fit':>7s} {'in Allreduce':>13s}")
    base = None
    for label, n, batch, plain in runs:
        r = _run(n, batch, args, plain)
        base = base or r["samples_per_s"]
        print(f"{label:24s} {r['samples_per_s']:10.0f} {r['samples_per_s'] / base:6.2f}x "
              f"{100 * r['allreduce_share']:12.1f}%", flush=True)


if __name__ == "__main__":
    main()
