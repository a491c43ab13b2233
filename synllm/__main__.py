"""``python -m synllm``: the command line (:mod:`synllm.cli`)."""

import sys

from synllm.cli import main

if __name__ == "__main__":  # pragma: no cover - also keeps doctest collection from running the CLI
    sys.exit(main())
