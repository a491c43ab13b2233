"""Check a card against its real data: every rule measured on the real rows, every mistake named with its fix.

``synllm card check card.yaml`` calls :func:`check_card`. Loading the card already stops
unknown names, refused constructs and type mistakes in expressions; loading the CSV stops
cells that do not fit the card. This module adds what only the data can tell:

- problems (the check fails): a hard rule broken by real rows or applying to none, a soft
  rule with an empty group, a soft rule whose direction contradicts the real rows, a
  target (or its positive class) with a single value in the real rows;
- warnings: guesses still marked ``# CHECK``, columns without a description, values
  outside a plausible range, soft rules resting on few rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synllm.cards import Card, Rule, load_card
from synllm.cards.rules import EFFECT_NAMES, hard_rule_violations, soft_rule_effect, target_values

#: Fewest rows in a soft rule's group before its effect is called uncertain.
FEW_ROWS = 10
_OPPOSITE = {"higher": "lower", "lower": "higher", "positive": "negative", "negative": "positive"}
RULE_COLUMNS = ["rule", "kind", "applies to", "breaks", "effect", "expect", "real rows", "verdict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CardCheck:
    """A card checked on its real rows: one table row per rule, then problems (failing) and warnings."""

    card: Card
    rows: int
    rules: pd.DataFrame
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings do not fail a check)."""
        return not self.problems


def check_card(name_or_path: str | Path | Card) -> CardCheck:
    """Load a card and its CSV, measure every rule on the real rows and list what is wrong, with the fix."""
    from synllm.dataset.load import load_dataset

    card = name_or_path if isinstance(name_or_path, Card) else load_card(name_or_path)
    data = load_dataset(card)
    rows, problems, warnings = [], [], []
    for rule in card.rules:
        row, problem, warning = (_hard if rule.is_hard else _soft)(data.table, rule, card)
        rows.append(row)
        problems += [problem] if problem else []
        warnings += [warning] if warning else []
    problems += _target_problems(data.table, card)
    warnings += [issue for issue in data.issues if "hard rule" not in issue]  # broken hard rules are problems
    warnings += _unfinished(card)
    frame = pd.DataFrame(rows, columns=RULE_COLUMNS).set_index("rule")
    return CardCheck(card=card, rows=len(data.table), rules=frame, problems=tuple(problems), warnings=tuple(warnings))


def _hard(table: pd.DataFrame, rule: Rule, card: Card) -> tuple[dict, str | None, str | None]:
    applicable, violated = hard_rule_violations(table, rule, card)
    n, broken = int(applicable.sum()), int(violated.sum())
    row = dict.fromkeys(RULE_COLUMNS, "") | {"rule": rule.id, "kind": "hard", "applies to": n, "breaks": broken}
    problem = None
    if n == 0:
        why = f" (when: {rule.when!r})" if rule.when else " (every row misses one of its columns)"
        row["verdict"] = "PROBLEM: applies to no row"
        problem = f"hard rule {rule.id!r} applies to no real row{why}; fix its condition or delete the rule"
    elif broken:
        lines = ", ".join(str(i) for i in table.index[violated][:5])
        row["verdict"] = "PROBLEM: broken by real rows"
        problem = (
            f"hard rule {rule.id!r} is broken by {broken:,} of {n:,} real rows (file lines {lines}); real rows are "
            f"possible by definition, so loosen 'require' ({rule.require!r}), make it a soft rule, or fix those rows"
        )
    return row | {"verdict": row["verdict"] or "ok"}, problem, None


def _soft(table: pd.DataFrame, rule: Rule, card: Card) -> tuple[dict, str | None, str | None]:
    effect = soft_rule_effect(table, rule, card)
    name = EFFECT_NAMES[rule.measure]
    pairs = rule.measure == "correlation"
    size = f"{effect.n_group:,} pairs" if pairs else f"{effect.n_group:,} vs {effect.n_versus:,}"
    measured = not math.isnan(effect.effect)
    seen = _direction(effect, rule) if measured else "not measurable"
    row = dict.fromkeys(RULE_COLUMNS, "") | {
        "rule": rule.id,
        "kind": f"soft ({rule.measure})",
        "applies to": size,
        "effect": f"{name} {effect.effect:.2f}" if measured else "",
        "expect": rule.expect,
        "real rows": seen,
        "verdict": "ok",
    }
    problem = warning = None
    if not pairs and (effect.n_group == 0 or effect.n_versus == 0):
        side, expr = ("group", rule.group) if effect.n_group == 0 else ("versus", rule.versus)
        row["verdict"] = f"PROBLEM: empty {side}"
        problem = (
            f"soft rule {rule.id!r}: its {side} ({expr!r}) matches no real row with its inputs present, so the rule "
            "can never be measured; fix the condition (a value that never occurs? a column always missing?)"
        )
    elif not measured or effect.holds is None:
        why = "fewer than 3 complete pairs or no spread" if pairs else "no spread or no events"
        row["verdict"] = "PROBLEM: not measurable"
        problem = f"soft rule {rule.id!r} cannot be measured on the real rows ({why}); fix or delete it"
    elif not effect.holds:
        row["verdict"] = "PROBLEM: contradicts the data"
        problem = (
            f"soft rule {rule.id!r} expects {rule.expect!r} but the real rows show {seen} ({name} "
            f"{effect.effect:.2f}); if the data are right, set expect: {_OPPOSITE[rule.expect]}; "
            "else check the statement and the groups"
        )
    elif min(effect.n_group, effect.n_versus) < FEW_ROWS:
        warning = f"soft rule {rule.id!r} rests on few real rows ({size}); its measured effect is uncertain"
    return row, problem, warning


def _target_problems(table: pd.DataFrame, card: Card) -> list[str]:
    """A target with one value (or none) in the real rows: no model can learn it, utility is never measured."""
    if not card.target:
        return []
    seen = target_values(table, card).dropna()
    if seen.nunique() >= 2:
        return []
    what = (
        f"roles.target_positive ({card.target_positive!r})" if card.target_positive else f"the target {card.target!r}"
    )
    found = f"the single value {seen.astype(str).iloc[0]}" if len(seen) else "no value at all"
    return [f"{what} gives {found} in the real rows; choose a target (or a condition) that splits the patients"]


def _direction(effect, rule: Rule) -> str:
    if rule.measure == "correlation":
        return "positive" if effect.effect > 0 else "negative" if effect.effect < 0 else "none"
    if effect.group_value == effect.versus_value:
        return "no difference"
    return "higher" if effect.group_value > effect.versus_value else "lower"


def _unfinished(card: Card) -> list[str]:
    """Guesses still marked ``# CHECK`` in the card file, and columns without a description."""
    out = []
    if card.path is not None and card.path.is_file():
        marked = [
            i
            for i, line in enumerate(card.path.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"#\s*CHECK:", line)
        ]
        if marked:
            shown = ", ".join(str(i) for i in marked[:8]) + (" ..." if len(marked) > 8 else "")
            out.append(
                f"{card.path}: {len(marked)} line(s) still marked '# CHECK' (lines {shown}); confirm each guess "
                "and delete the marker"
            )
    bare = [c.name for c in card.columns if not c.description]
    if bare:
        out.append(f"column(s) without a description: {', '.join(bare)} (prompts P2-P4 show descriptions)")
    return out


def report_text(check: CardCheck) -> str:
    """The check as the command line prints it: a summary line, the rules table, warnings, problems."""
    card = check.card
    lines = [
        f"card {card.name!r} ({card.path or 'built in'}): {check.rows:,} real rows, {len(card.columns)} columns, "
        f"{len(card.hard_rules)} hard and {len(card.soft_rules)} soft rules",
    ]
    if len(check.rules):
        with pd.option_context("display.max_colwidth", 60, "display.width", 200):
            lines += ["", check.rules.to_string()]
    if check.warnings:
        lines += ["", "warnings:"] + [f"- {w}" for w in check.warnings]
    if check.problems:
        lines += ["", f"{len(check.problems)} problem(s):"] + [f"- {p}" for p in check.problems]
    else:
        lines += ["", "card check passed: every rule fits the real rows"]
    return "\n".join(lines)
