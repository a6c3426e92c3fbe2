"""``python -m benches SUBCOMMAND [options]``: nncore's benchmarks, from a clone.

Adding a subcommand: write a module in benches/ with ``HELP`` (one line),
``DESCRIPTION``, ``add_arguments(parser)``, ``run(args) -> dict`` (JSON-able, with
``"machine"``) and ``markdown(results) -> str``, and add one line to SUBCOMMANDS.
"""
import argparse
import datetime
import importlib
import json
import shlex
import sys
import time

from . import report

SUBCOMMANDS = {
    "train": "train",
    "predict": "predict",
    "busy": "busy",
    "threads": "threads",
    "epoch-overhead": "epoch_overhead",
    "fit-loop": "fit_loop",
    "ceiling": "ceiling",
    "tune-gemm": "tune_gemm",
    "sklearn": "sklearn_compare",
    "fit-many": "fit_many",
    "mpi-scaling": "mpi_scaling",
}

EPILOG = """\
Run from the top directory of a clone, after `pip install ".[bench]"` (or with nncore
built in place: python setup.py build_ext --inplace). PyTorch, JAX and scikit-learn are
optional: a peer that is not installed is skipped with a one-line reason.

Every run prints a Markdown report and writes it to
benches/results/<date>-<subcommand>.md, with the raw results as JSON beside it
(git-ignored; --from-json re-renders one). Each report starts with the CPU (model,
vendor, family/model, cache sizes), nncore's kernel build and the library versions,
and ends with PASS/FAIL lines for the goals in benches/targets.toml.

The full measurement wants an idle machine: every measurement records the share of the
CPUs other processes used meanwhile, repeats a measurement taken while they used more
than 10%, and marks it `!` if they still did. --quick is a smoke run, not a result.

Examples:
  python -m benches train                         # the README's table (about 15 min)
  python -m benches train --dtype float64 --configs tiny,small --threads 1
  python -m benches predict                       # one-row and 1,000-row predict
  python -m benches busy                          # training with one core held busy
  python -m benches threads                       # two networks in two Python threads
  python -m benches epoch-overhead                # Network.fit's Python cost per epoch
  python -m benches fit-loop --against ../main    # the same, and tiny's rate, A/B
  python -m benches ceiling                       # the best 1-thread matmul here
  python -m benches tune-gemm                     # nncore's products, own loop vs BLAS
  python -m benches sklearn                       # NNClassifier vs MLPClassifier, etc.
  python -m benches fit-many                      # fit_many against K fit calls
  python -m benches mpi-scaling                   # fit_distributed on 1 and 2 processes
  python -m benches SUBCOMMAND --help             # what it measures, and its options
  pytest benches                                  # the pytest-benchmark suites
"""


def _common(parser):
    g = parser.add_argument_group("options of every subcommand")
    g.add_argument("--rounds", type=int,
                   help="processes (or passes) per measurement, interleaved; the median "
                        "is reported (default per subcommand; 1 with --quick)")
    g.add_argument("--quick", action="store_true",
                   help="a smoke run: less data, fewer and shorter rounds")
    g.add_argument("--no-pin", action="store_true", help="do not pin workers to CPUs")
    g.add_argument("--retry-busy", type=int, default=1, metavar="N",
                   help="measure again, up to N times, when other processes used more "
                        "than 10%% of the CPUs meanwhile; the quietest try is kept "
                        "(%(default)s)")
    g.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker "
                   "process (%(default)s)")
    g.add_argument("--out", metavar="DIR", default=str(report.RESULTS),
                   help="where the .md report and its .json go (benches/results)")
    g.add_argument("--no-save", action="store_true", help="print the report only")
    g.add_argument("--from-json", metavar="PATH",
                   help="re-render a saved .json; run nothing")
    g.add_argument("--verbose", action="store_true",
                   help="show a failing worker's stderr")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m benches", description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND",
                                     required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        sub = commands.add_parser(name, help=module.HELP,
                                  description=module.DESCRIPTION.replace("``", "`"),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        _common(sub)
        sub.set_defaults(module=module)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    module = args.module
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        print(report.document(results, module.markdown(results)))
        return 0
    t0 = time.perf_counter()
    results = module.run(args)
    results.update(subcommand=args.subcommand, date=datetime.date.today().isoformat(),
                   command=shlex.join(["python", "-m", "benches", *argv]),
                   wall_s=time.perf_counter() - t0)
    text = report.document(results, module.markdown(results))
    print(text)
    if not args.no_save:
        for path in report.save(results, text, args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
