"""Command line, one tree of sub-commands: ``synllm <command> ...`` or ``python -m synllm <command> ...``.

``synllm run`` is the batch behind ``make run`` (the notebooks over every dataset, then the comparison),
``synllm course`` builds the course labs (``make course``), ``synllm generate`` runs a grid without
notebooks, ``synllm card draft|check`` brings your own dataset. ``python -m synllm.study.batch`` and
``python -m synllm.course`` are aliases of ``synllm run`` and ``synllm course``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from synllm.arguments import ArgumentParser
from synllm.errors import InvalidArgument, SynllmError
from synllm.text import terminal_text

#: Command-line options checked by the rules of :mod:`synllm.arguments` (option -> rule).
CHECKED_OPTIONS = {
    "rows": "n_rows",
    "batch_size": "batch_size",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_requests": "max_requests",
    "rounds": "rounds",
    "timeout": "timeout_s",
    "holdout": "holdout",
    "seed": "seed",
    "seeds": "seed",
    "split_seed": "seed",
    "cell_timeout": "cell_timeout_s",
}
#: Options whose flag is not their name with dashes (``synllm run --timeout`` is the cell timeout).
FLAGS = {"cell_timeout": "--timeout"}


def _name_value(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line as (name, YAML value), e.g. ``-p n_rows=5`` or ``-p 'seeds=[0, 1]'``."""
    import yaml

    from synllm import yamlsafe

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name.strip(), yamlsafe.safe_load(value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise argparse.ArgumentTypeError(f"{name.strip()}: {value!r} is not a YAML value ({problem})") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task."""
    from synllm.prompts import PROMPT_TYPES

    parser = ArgumentParser(prog="synllm", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("cards", help="list the built-in dataset cards")

    card = sub.add_parser("card", help="bring your own dataset: draft a card from a CSV, check a card on its data")
    card_sub = card.add_subparsers(dest="card_command", required=True)
    draft = card_sub.add_parser("draft", help="write a complete card to edit from a CSV file")
    draft.add_argument("csv", help="the CSV file (a header line, then one patient per line)")
    draft.add_argument(
        "-o", "--output", default=None, help="card file to write (default: <csv name>.yaml beside the CSV; - prints it)"
    )
    draft.add_argument("--name", default=None, help="card name, used for folders and titles (default: the file name)")
    draft.add_argument("--force", action="store_true", help="overwrite an existing card file")
    check = card_sub.add_parser("check", help="load a card and its CSV, measure every rule on the real rows")
    check.add_argument("card", help="card name or path to a card YAML")

    prompt = sub.add_parser("prompt", help="print a rendered prompt")
    prompt.add_argument("dataset", help="card name or path to a card YAML")
    prompt.add_argument("prompt_type", choices=PROMPT_TYPES)
    prompt.add_argument("--seed", type=int, default=0, help="seed for the example rows and the split")
    prompt.add_argument("--rows", type=int, default=20, help="rows asked for per request")
    prompt.add_argument("--output", choices=["csv", "json"], default="csv", help="answer format asked for")

    gen = sub.add_parser("generate", help="generate synthetic rows for models × prompt types × seeds")
    gen.add_argument("--dataset", required=True, help="card name or path to a card YAML")
    gen.add_argument("--backend", default="embedded", help="embedded, ollama, auto, ... (default: embedded)")
    gen.add_argument("--models", nargs="+", default=[None], help="model names or a grid name from models.yaml")
    gen.add_argument("--prompt-types", nargs="+", default=list(PROMPT_TYPES), choices=PROMPT_TYPES)
    gen.add_argument("--seeds", nargs="+", type=int, default=[0], help="run seeds")
    gen.add_argument(
        "--rows", type=int, default=None, help="valid rows wanted per run (default 20, or the conditions')"
    )
    gen.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="COLUMN=VALUE:ROWS",
        help="ask for ROWS rows holding it: stroke=1:15, age=65..90:20, work_type=Private|Govt_job:10 (repeatable)",
    )
    gen.add_argument(
        "--class-mix",
        default=None,
        metavar="MIX",
        help="outcome mix as per-class quotas: real, balanced, or shares such as 1=0.3,0=0.7",
    )
    gen.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="spend the rows over this many feedback rounds, each asked with the gaps so far corrected (default 1)",
    )
    gen.add_argument("--batch-size", type=int, default=20, help="rows asked for per request")
    gen.add_argument("--temperature", type=float, default=0.7)
    gen.add_argument("--top-p", type=float, default=0.9)
    gen.add_argument("--max-requests", type=int, default=None, help="give up after this many requests per run")
    gen.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one model request may take, per attempt (default: $SYNLLM_TIMEOUT or 120)",
    )
    gen.add_argument("--holdout", type=float, default=0.2, help="holdout fraction of the split")
    gen.add_argument("--split-seed", type=int, default=0, help="random_state of the train/holdout split")
    gen.add_argument(
        "--endpoints",
        default=None,
        help="endpoint config name or YAML path: spread the grid over those servers at once",
    )
    gen.add_argument("--out", default=None, help="runs folder (default: data/interim/runs)")
    gen.add_argument("--no-progress", action="store_true", help="hide progress bars")

    sub.add_parser("backends", help="show which backends are available here")
    _add_run(sub)
    _add_course(sub)
    return parser


def _add_run(sub) -> None:
    run = sub.add_parser(
        "run",
        help="what `make run` runs: the study notebook per dataset, then the comparison, as HTML reports",
        description="Run the study notebook for each dataset of a profile, then the comparison notebook; write "
        "<output>/<dataset>/report.html and <output>/index.html. Reruns resume from the generation cache.",
    )
    run.add_argument(
        "--profile", default="quick", help="profile name (synllm/study/profiles/<name>.yaml) or a .yaml path"
    )
    run.add_argument("--backend", default=None, help="override the profile's backend (embedded, auto, ollama, openai)")
    run.add_argument(
        "--endpoints", default=None, help="endpoint configuration (name or YAML path): send the runs to those servers"
    )
    run.add_argument("--models", nargs="+", default=None, help="model tags or grid names from models.yaml")
    run.add_argument(
        "--datasets", nargs="+", default=None, help="override the profile's datasets: card names or card file paths"
    )
    run.add_argument("--output", default=None, help="reports folder (default: reports/ or $SYNLLM_HOME/reports)")
    _add_parameters(run, "override one study parameter (YAML value), e.g. -p n_rows=5")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    run.add_argument(
        "--timeout",
        dest="cell_timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="seconds allowed per notebook cell",
    )


def _add_parameters(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``-p NAME=VALUE`` (repeatable): notebook parameters as YAML values, collected in ``overrides``."""
    parser.add_argument(
        "-p", "--parameter", dest="overrides", action="append", type=_name_value, default=[], metavar="NAME=VALUE",
        help=help_text,
    )  # fmt: skip


def _add_course(sub) -> None:
    course = sub.add_parser(
        "course",
        help="what `make course` runs: build the course labs (student notebooks, executed instructor pages)",
        description="Build the course: 0 when every lab ran with its solutions and every self-check passed.",
    )
    course.add_argument("--output", default=None, help="folder (default: reports/course)")
    course.add_argument("--labs", nargs="+", default=None, help="lab notebooks to build (default: all)")
    course.add_argument("--no-execute", action="store_true", help="only write the student notebooks")
    _add_parameters(course, "a lab parameter (YAML value), e.g. -p backend=ollama -p 'models=[llama3.2:1b]'")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 incomplete or failed runs, 2 usage/setup error).

    Every error is one line on stderr; arguments are checked before anything is read or written.
    """
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        from synllm.arguments import check_values

        given = {key: value for key, value in vars(args).items() if value is not None}  # None: the default
        check_values(given, CHECKED_OPTIONS, name=lambda o: FLAGS.get(o, "--" + o.replace("_", "-")))
        return _COMMANDS[args.command](args)
    except SynllmError as exc:
        print(f"synllm: error: {terminal_text(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synllm: interrupted; answers so far are cached, rerun the same command to resume", file=sys.stderr)
        return 130


def _cards(args: argparse.Namespace) -> int:
    from synllm.cards import available_cards, load_card

    for name in available_cards():
        card = load_card(name)
        print(f"{name:<12} {card.title} ({len(card.columns)} columns, {len(card.rules)} rules, target {card.target})")
    return 0


def _card(args: argparse.Namespace) -> int:
    if args.card_command == "check":
        from synllm.dataset.check import check_card, report_text

        result = check_card(args.card)
        print(terminal_text(report_text(result)))
        return 0 if result.ok else 1
    return _card_draft(args)


def _card_draft(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from synllm import files
    from synllm.dataset import read_text_table
    from synllm.dataset.draft import card_name, draft_card

    csv = Path(args.csv).expanduser().resolve()
    if not csv.is_file():
        raise InvalidArgument(f"{csv}: no such file; give the path of your CSV file")
    to_stdout = args.output == "-"
    out = csv.with_suffix(".yaml") if not args.output or to_stdout else Path(args.output).expanduser().resolve()
    if not to_stdout and out.exists() and not args.force:
        raise InvalidArgument(f"{out} exists; give another file with -o, or --force to overwrite it")
    draft = draft_card(read_text_table(csv), name=args.name or card_name(csv), file=os.path.relpath(csv, out.parent))
    if to_stdout:
        print(draft.text, end="")
        return 0
    files.atomic_write_text(out, draft.text)
    print(
        f"wrote {out}: card {draft.name!r}, {draft.columns} columns, target {draft.target!r} (a guess), "
        f"{draft.hard_rules} hard and {draft.soft_rules} soft candidate rules.\n"
        f"Next: confirm the {draft.checks} lines marked '# CHECK:' (describe each column), then run\n"
        f"  synllm card check {out}"
    )
    return 0


def _prompt(args: argparse.Namespace) -> int:
    from synllm.dataset import load_dataset, split
    from synllm.prompts import render_prompt

    table, card = load_dataset(args.dataset)
    train, _ = split(table, card, random_state=args.seed)
    print(render_prompt(card, train, args.prompt_type, n_rows=args.rows, seed=args.seed, output=args.output))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from synllm.backends.model_catalog import grid_names, model_grid
    from synllm.dataset import load_dataset, split
    from synllm.generation.class_mix import parse_class_mix
    from synllm.generation.grid import run_grid
    from synllm.generation.loop import GenerationOptions
    from synllm.metrics import feedback as metrics_feedback

    table, card = load_dataset(args.dataset)
    train, _ = split(table, card, holdout=args.holdout, random_state=args.split_seed)
    options = GenerationOptions(
        batch_size=args.batch_size, temperature=args.temperature, top_p=args.top_p, timeout_s=args.timeout
    )
    grids = set(grid_names())
    models = [m for name in args.models for m in (model_grid(name) if name in grids else [name])]
    result = run_grid(
        card,
        train,
        backend=args.backend,
        endpoints=args.endpoints,
        models=models,
        prompt_types=args.prompt_types,
        seeds=args.seeds,
        n_rows=args.rows,
        options=options,
        max_requests=args.max_requests,
        conditions=args.condition,
        class_mix=parse_class_mix(args.class_mix),
        out_dir=args.out,
        progress=not args.no_progress,
        rounds=args.rounds,
        feedback=metrics_feedback if args.rounds > 1 else None,
    )
    for run in result.runs:
        m = run.manifest
        print(f"{m.status:<10} {len(run.synthetic):>5} rows  valid rate {m.diagnostics.valid_rate}  {run.run_dir}")
        if m.rounds:
            print(f"{'':<10} rows per round: {' + '.join(str(n) for n in run.rounds)}")
        for c in m.conditions:
            print(f"{'':<10} {c['delivered']:>5} of {c['requested']} rows with {c['condition']}")
    for failed in result.failures:
        print(f"failed     {failed.model} {failed.prompt_type} seed {failed.seed}: {failed.error}", file=sys.stderr)
    return 0 if result.ok else 1


def _backends(args: argparse.Namespace) -> int:
    from synllm.backends.registry import backend_names, get_backend

    for name in backend_names():
        if name in ("auto", "pool"):
            continue
        backend = get_backend(name)
        print(f"{name:<10} {'available' if backend.available() else 'not available'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from synllm.study.batch import load_profile, plan, run_batch, summary

    profile = load_profile(args.profile)
    batch = plan(
        profile,
        backend=args.backend,
        endpoints=args.endpoints,
        models=args.models,
        datasets=args.datasets,
        output=args.output,
        overrides=dict(args.overrides),
    )
    print(f"profile {profile.name}: {profile.description}".rstrip(": "), flush=True)
    outcomes = run_batch(batch, kernel=args.kernel, timeout=args.cell_timeout)
    print(summary(outcomes, batch.output), flush=True)
    return 0 if all(o.ok for o in outcomes) else 1


def _course(args: argparse.Namespace) -> int:
    from synllm.course.build import build_course, lab_paths

    outcomes = build_course(
        args.output, labs=args.labs or lab_paths(), parameters=dict(args.overrides), execute=not args.no_execute
    )
    for o in outcomes:
        print(
            f"{o.name:<28} {'ok' if o.ok else 'FAILED':<7} {o.seconds:>6.0f} s  checks {o.checks_passed} passed"
            + (f", {o.checks_failed} failed" if o.checks_failed else "")
            + (f"  {o.message}" if o.message else "")
        )
    return 0 if all(o.ok for o in outcomes) else 1


_COMMANDS = {
    "backends": _backends,
    "card": _card,
    "cards": _cards,
    "course": _course,
    "generate": _generate,
    "prompt": _prompt,
    "run": _run,
}
