"""Data-parallel scaling over MPI: 1 against 2 processes on the medium configuration
(784-256-128-10 relu, softmax cross-entropy, Adam lr 1e-3), one thread per process.

Runs, each under Open MPI's ``mpirun`` (as root it sets the variables Open MPI needs
to allow root):

- ``fit``: one process, ``Network.fit`` with batches of 128 (the baseline);
- ``1 x 128``: ``fit_distributed`` on one rank, batch 128 (the cost of the
  distributed loop itself: its steps are driven from Python, one Allreduce each);
- ``2 x 64``: two ranks, local batch 64: the same global batch of 128, and so the
  same training as the baseline (strong scaling);
- ``2 x 128``: two ranks, local batch 128, global 256 (weak scaling: the same work
  per step per process).

For each: samples per second over the epochs after the first (a warm-up), and the
share of each epoch a rank spent in the Allreduce (waiting for the other rank
included), averaged over the ranks. ``--yield`` sets Open MPI's
``mpi_yield_when_idle``: a rank waiting in the Allreduce then gives its CPU away
instead of spinning, which matters when the machine has fewer free cores than ranks.
"""
import json
import os
import shutil
import subprocess
import sys
import time

from . import ROOT, report
from .configs import CONFIGS, make_data
from .machine import machine_info

HELP = "fit_distributed on 1 and 2 MPI processes, medium network, and its Allreduce share"
DESCRIPTION = __doc__
RUNS = [("fit (1 process)", 1, 128, True), ("1 x 128", 1, 128, False),
        ("2 x 64 (global batch 128)", 2, 64, False),
        ("2 x 128 (global batch 256)", 2, 128, False)]


def add_arguments(p):
    p.add_argument("--rows", type=int, help="rows (59904; 6400 with --quick)")
    p.add_argument("--epochs", type=int, help="epochs, the first a warm-up (4; 2 with "
                   "--quick)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--yield", dest="yield_idle", action="store_true",
                   help="OMPI_MCA_mpi_yield_when_idle=1")


def worker(spec):
    """Under mpirun: train, and print rank 0's measurements as one JSON line."""
    import numpy as np
    from mpi4py import MPI

    import nncore
    from nncore import distributed

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    cfg = CONFIGS["medium"]
    X, y = make_data(cfg, spec["rows"], spec["dtype"])
    rows = distributed.shard_rows(len(X), rank, size, spec["batch"], shuffle=True)
    X, y = np.ascontiguousarray(X[rows]), y[rows]
    acts = [cfg.activation] * (len(cfg.sizes) - 2) + ["identity"]
    net = nncore.Network([nncore.Dense(a, b, act) for a, b, act in
                          zip(cfg.sizes[:-1], cfg.sizes[1:], acts)],
                         loss=cfg.loss, dtype=spec["dtype"], seed=0)
    opt = nncore.Adam(cfg.hyper["lr"])
    times, shares = [], []
    with nncore.set_num_threads(1):
        for _ in range(spec["epochs"]):
            comm.Barrier()
            t0 = time.perf_counter()
            if spec["plain"]:
                net.fit(X, y, epochs=1, batch_size=spec["batch"], optimizer=opt)
                in_reduce = 0.0
            else:
                h = distributed.fit_distributed(net, X, y, comm, epochs=1,
                                                batch_size=spec["batch"], optimizer=opt)
                in_reduce = h.history["allreduce_time"][0]
            elapsed = time.perf_counter() - t0
            times.append(comm.allreduce(elapsed, op=MPI.MAX))
            shares.append(comm.allreduce(in_reduce / elapsed) / size)
    if rank == 0:
        print(json.dumps({"times": times[1:], "shares": shares[1:]}), flush=True)


def _mpirun(spec, n, args):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if args.yield_idle:
        env["OMPI_MCA_mpi_yield_when_idle"] = "1"
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", "--bind-to", "core" if n <= len(
        os.sched_getaffinity(0)) else "none", sys.executable, "-m", "benches.mpi_scaling",
        json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {args.timeout:g} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        # The rank's exception, not Open MPI's banner of dashes after it.
        lines = [line for line in proc.stderr.splitlines() if "Error" in line]
        tail = (lines or proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "reason": f"mpirun exited {proc.returncode}: {tail}"}
    return dict(json.loads(lines[-1]), status="ok")


def run(args):
    results = {"machine": machine_info(), "settings": {
        "rows": args.rows or (6400 if args.quick else 59904),
        "epochs": args.epochs or (2 if args.quick else 4), "dtype": args.dtype,
        "yield": args.yield_idle, "load": os.getloadavg()[0]}, "raw": []}
    if shutil.which("mpirun") is None:
        results["skip"] = "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"
        return results
    for label, n, batch, plain in RUNS:
        spec = dict(results["settings"], batch=batch, plain=plain)
        results["raw"].append(dict(_mpirun(spec, n, args), label=label))
    return results


def markdown(results):
    st = results["settings"]
    if results.get("skip"):
        return f"Skipped: {results['skip']}\n"
    rows, base = [], None
    for r in results["raw"]:
        if r["status"] != "ok":
            rows.append([r["label"], "-", "-", r["reason"]])
            continue
        rate = st["rows"] / (sum(r["times"]) / len(r["times"]))
        base = base or rate
        rows.append([r["label"], report.rate(rate), f"{rate / base:.2f}x",
                     report.pct(sum(r["shares"]) / len(r["shares"]))])
    intro = (f"medium, {st['dtype']}, {st['rows']} rows, {st['epochs']} epochs (the "
             f"first a warm-up, not counted), 1 thread per process, "
             f"mpi_yield_when_idle {'on' if st['yield'] else 'off'}, load average "
             f"{st['load']:.1f} at the start. Method: `python -m benches mpi-scaling "
             "--help`.")
    return "\n".join([intro, "", report.table(
        ["run", "samples/s", "vs fit", "in Allreduce"], rows), ""])


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
