"""``python -m nncore``: the same command as the ``nncore`` script (see nncore/cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
