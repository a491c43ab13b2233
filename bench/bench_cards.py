"""Cards and CSV files: the header checks, rule evaluation and drafting, side by side in one run.

Prints figures and ratios (no asserts):

1. the duplicate-header check at 10k, 20k and 40k columns: the old quadratic one
   (``header.count(name)`` per name, reproduced here) against :func:`read_text_table`'s
   linear one, and ``read_text_table`` on a 200,000-column file;
2. every rule of the diabetes card on its 100,000 rows: pandas ``DataFrame.eval`` (the
   old evaluator, unsafe: it runs code) against the checked expression language;
3. ``synllm card draft`` on the diabetes file (100,000 rows, 9 columns).

Run: ``.venv/bin/python bench/bench_cards.py [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from synllm.cards.expressions import card_scope, compile_expression, evaluate
from synllm.cards.rules import RULE_FIELDS
from synllm.dataset import load_dataset, read_text_table
from synllm.dataset.draft import draft_card


def _seconds(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def header_checks(widths: list[int]) -> None:
    print("1. duplicate-header check (seconds)")
    print(f"   {'columns':>8} {'quadratic':>10} {'linear':>8} {'ratio':>8}")
    for width in widths:
        header = [f"c{i}" for i in range(width)] + ["c5"]
        old = _seconds(lambda h=header: sorted({n for n in h if h.count(n) > 1}))
        new = _seconds(lambda h=header: sorted(n for n, k in Counter(h).items() if k > 1), repeat=3)
        print(f"   {width:>8,} {old:>10.2f} {new:>8.4f} {old / new:>7.0f}x")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wide.csv"
        width = 200_000
        path.write_text(",".join(f"c{i}" for i in range(width)) + "\n" + ",".join("1" * width) + "\n")
        print(f"   read_text_table on a {width:,}-column file: {_seconds(lambda: read_text_table(path)):.2f} s")


def rule_evaluation(repeat: int) -> None:
    table, card = load_dataset("diabetes")
    scope = card_scope(card)
    fields = [(rule, name, getattr(rule, name)) for rule in card.rules for name in RULE_FIELDS if getattr(rule, name)]
    compiled = [compile_expression(text, scope, want=RULE_FIELDS[name]) for _, name, text in fields]

    def old():
        for _, _, text in fields:
            table.eval(text, engine="python")

    def new():
        for expr in compiled:
            evaluate(expr, table)

    t_old, t_new = _seconds(old, repeat), _seconds(new, repeat)
    print(f"2. {len(fields)} rule expressions of the diabetes card on {len(table):,} rows (best of {repeat})")
    print(
        f"   DataFrame.eval (old, runs code) {t_old:.3f} s   checked language {t_new:.3f} s   "
        f"ratio new/old {t_new / t_old:.2f}"
    )
    started = time.perf_counter()
    for _, name, text in fields:
        compile_expression.__wrapped__(text, scope, want=RULE_FIELDS[name])
    print(f"   parsing and checking them all (uncached): {time.perf_counter() - started:.4f} s")


def drafting() -> None:
    from synllm import config

    path = config.RAW_DIR / "diabetes.csv"
    raw = read_text_table(path)
    seconds = _seconds(lambda: draft_card(raw, name="diabetes", file=path.name))
    print(f"3. card draft of {path.name} ({len(raw):,} rows, {len(raw.columns)} columns): {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller widths, one repeat")
    args = parser.parse_args()
    header_checks([5_000, 10_000] if args.quick else [10_000, 20_000, 40_000])
    rule_evaluation(1 if args.quick else 3)
    drafting()


if __name__ == "__main__":
    main()
