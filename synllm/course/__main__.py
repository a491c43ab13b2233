"""``python -m synllm.course [--output DIR] [-p NAME=VALUE ...]``: build the course (what ``make course`` runs)."""

from __future__ import annotations

import argparse
import sys

from synllm import yamlsafe
from synllm.course.build import build_course, lab_paths


def main(argv: list[str] | None = None) -> int:
    """0 when every lab ran with its solutions and every self-check passed, else 1."""
    parser = argparse.ArgumentParser(prog="python -m synllm.course", description=__doc__)
    parser.add_argument("--output", default=None, help="folder (default: reports/course)")
    parser.add_argument("--labs", nargs="+", default=None, help="lab notebooks to build (default: all)")
    parser.add_argument("--no-execute", action="store_true", help="only write the student notebooks")
    parser.add_argument(
        "-p",
        "--parameter",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a lab parameter (YAML value), e.g. -p backend=ollama -p 'models=[llama3.2:1b]'",
    )
    args = parser.parse_args(argv)
    parameters = {}
    for text in args.overrides:
        if "=" not in text:
            parser.error(f"expected NAME=VALUE, got {text!r}")
        name, value = text.split("=", 1)
        parameters[name.strip()] = yamlsafe.safe_load(value)
    outcomes = build_course(
        args.output, labs=args.labs or lab_paths(), parameters=parameters, execute=not args.no_execute
    )
    for o in outcomes:
        print(
            f"{o.name:<28} {'ok' if o.ok else 'FAILED':<7} {o.seconds:>6.0f} s  checks {o.checks_passed} passed"
            + (f", {o.checks_failed} failed" if o.checks_failed else "")
            + (f"  {o.message}" if o.message else "")
        )
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
