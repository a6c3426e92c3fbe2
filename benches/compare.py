"""Side-by-side comparison of nncore and its peers: ``python benches/compare.py --help``.

A thin wrapper around ``nncore.bench.main`` (also ``python -m nncore bench``), kept here
so that the benchmarks can be run from a source checkout.
"""

import sys

if __name__ == "__main__":
    # bench_helpers imports nncore.bench, or the harness file itself where nncore is not
    # built or installed.
    from bench_helpers import nb
    sys.exit(nb.main(sys.argv[1:]))
