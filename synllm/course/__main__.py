"""``python -m synllm.course [--output DIR] [-p NAME=VALUE ...]``: an alias of ``synllm course`` (``make course``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every lab ran with its solutions and every self-check passed, else 1 (2: a usage error)."""
    from synllm.cli import main as cli_main

    return cli_main(["course", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
