"""Side-by-side comparison of nncore and its peers: ``python benches/compare.py --help``.

A thin wrapper around ``nncore.bench.main`` (also ``python -m nncore bench``), kept here
so that the benchmarks can be run from a source checkout.
"""

import importlib.util
import os
import sys

if __name__ == "__main__":
    try:
        from nncore.bench import main
    except ImportError:  # nncore not installed or not built: run the harness file itself
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "nncore", "bench.py")
        spec = importlib.util.spec_from_file_location("_nncore_bench", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        main = module.main
    sys.exit(main(sys.argv[1:]))
