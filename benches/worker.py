"""One measurement in a fresh process: ``python -m benches.worker MODULE:FUNCTION SPEC``.

``benches.MODULE.FUNCTION(spec)`` returns a JSON-able dict; it is printed behind
``harness.MARK`` as the last line of output, with ``status`` ``ok``, ``skip`` (a peer
that cannot run here, and why) or ``error`` (the traceback goes to stderr).
"""
import importlib
import json
import sys
import traceback

from .harness import MARK
from .peers import SkipPeer


def main(argv):
    task, spec = argv[0], json.loads(argv[1])
    module, function = task.split(":")
    try:
        result = getattr(importlib.import_module(f"benches.{module}"), function)(spec)
        result["status"] = "ok"
    except SkipPeer as exc:
        result = {"status": "skip", "reason": str(exc)}
    except Exception as exc:   # reported in the tables; the traceback on stderr
        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
