"""Candidate rules mined from a real table, for a drafted card: each one holds on the data, with its effect noted.

- soft rules: the strongest associations of each column with the target (a mean
  difference or a risk ratio, measured by :func:`synllm.cards.rules.soft_rule_effect`,
  exactly as ``synllm card check`` will), and the strongest correlations between
  numeric columns (Spearman);
- hard rules: implications that hold on every row (``when A == a`` then ``B == b``) and
  orderings between numeric columns of related names (``ap_lo <= ap_hi`` on every row).

Leakage columns are left out: a rule about a column measured after the outcome would
only restate the outcome.

Every candidate is written with a ``# CHECK:`` comment: the data only show what is
true in this file, the user decides whether it is clinical knowledge.
"""

from __future__ import annotations

import dataclasses
import itertools
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card, Kind, Rule
from synllm.cards.expressions import FUNCTIONS
from synllm.cards.rules import EFFECT_NAMES, MIN_PAIRS, soft_rule_effect

#: Rows used for mining (a random sample beyond this, to bound the time).
MAX_ROWS = 20_000
#: Smallest effects worth proposing: |SMD|, risk ratio away from 1, |rho|.
MIN_SMD, MIN_RISK_RATIO, MIN_RHO = 0.2, 1.25, 0.3
#: Most levels a categorical column may have to be tried level by level.
MAX_LEVELS = 10


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key: value`` line of a drafted card, with an optional comment (``CHECK:`` marks a guess)."""

    key: str
    value: Any
    comment: str = ""
    commented_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Mined:
    """Candidate rules (as draft entries) and the columns most associated with the target."""

    hard: tuple[list[Entry], ...]
    soft: tuple[list[Entry], ...]
    predictors: tuple[str, ...]


def mine_rules(
    table: pd.DataFrame,
    card: Card,
    *,
    leakage: list[str] = (),
    random_state: int = 0,
    max_soft: int = 6,
    max_correlations: int = 3,
    max_hard: int = 5,
) -> Mined:
    """Candidate rules for ``card`` from its typed ``table`` (rules already in the card are ignored)."""
    rows = table.sample(n=MAX_ROWS, random_state=random_state) if len(table) > MAX_ROWS else table
    card = dataclasses.replace(card, columns=tuple(c for c in card.columns if c.name not in leakage))
    min_rows = int(min(10, max(3, 0.02 * len(rows))))
    with_target = _target_rules(rows, card, min_rows)[:max_soft]
    correlations = _correlation_rules(rows, card, max_correlations)
    hard = (_implications(rows, card, min_rows) + _orderings(rows, card))[:max_hard]
    predictors = [column for column, *_ in with_target if column not in leakage and table[column].isna().mean() < 0.05]
    soft = [_soft_entries(r, e, note) for _, r, e, note in with_target + correlations]
    return Mined(hard=tuple(hard), soft=tuple(soft), predictors=tuple(predictors[:5]))


# --- soft rules ---------------------------------------------------------------------------------------


def target_split(table: pd.DataFrame, card: Card) -> tuple[str, str] | None:
    """(positive, negative) conditions on the target: the yes/no classes, or the lowest code against the others."""
    col, name = card.column(card.target), expression_name(card.target)
    values = table[card.target].dropna()
    if col.kind is Kind.BINARY:
        neg, pos = col.categories
        return f"{name} == {literal(pos)}", f"{name} == {literal(neg)}"
    if col.is_numeric and 2 < values.nunique() <= 10:
        lowest = literal(float(values.min()))
        return f"{name} > {lowest}", f"{name} == {lowest}"
    if col.kind is Kind.CATEGORICAL and len(col.categories) > 2:
        last = literal(col.categories[-1])
        return f"{name} == {last}", f"{name} != {last}"
    return None


def _target_rules(rows: pd.DataFrame, card: Card, min_rows: int) -> list[tuple[str, Rule, Any, str]]:
    """(column, rule, effect, note) of each column's strongest association with the target, strongest first."""
    split = target_split(rows, card)
    if split is None:
        return []
    positive, negative = split
    candidates = []
    for col in card.synth_columns:
        if col.name == card.target:
            continue
        x = expression_name(col.name)
        if col.is_numeric:
            candidates.append(
                (
                    col.name,
                    Rule(
                        id=f"{slug(col.name)}_by_{slug(card.target)}",
                        kind="soft",
                        statement="",
                        measure="mean",
                        value=x,
                        group=positive,
                        versus=negative,
                    ),
                )
            )
            continue
        levels = list(col.categories or ())
        if len(levels) > MAX_LEVELS:
            continue
        for level in levels[1:] if len(levels) == 2 else levels:
            candidates.append(
                (
                    col.name,
                    Rule(
                        id=f"{slug(card.target)}_with_{slug(col.name)}_{slug(str(level))}",
                        kind="soft",
                        statement="",
                        measure="rate",
                        outcome=positive,
                        group=f"{x} == {literal(level)}",
                        versus=f"{x} != {literal(level)}",
                    ),
                )
            )
    best: dict[str, tuple[float, Rule, Any]] = {}
    for column, rule in candidates:
        effect = soft_rule_effect(rows, rule, dataclasses.replace(card, rules=(rule,)))
        strength = _strength(effect)
        if effect.n_group < min_rows or effect.n_versus < min_rows or not strength > 0:
            continue
        if column not in best or strength > best[column][0]:
            best[column] = (strength, rule, effect)
    ranked = sorted(best.items(), key=lambda t: -t[1][0])
    return [(c, _with_direction(r, e), e, _effect_note(r, e)) for c, (_, r, e) in ranked]


def _strength(effect) -> float:
    """How far an effect is from 'none' (0 when below the smallest worth proposing)."""
    if effect.measure == "rate":
        rr = effect.effect
        if math.isnan(rr) or math.isinf(rr) or rr <= 0:
            return 0.0
        return abs(math.log(rr)) if max(rr, 1 / rr) >= MIN_RISK_RATIO else 0.0
    value = effect.effect
    limit = MIN_SMD if effect.measure == "mean" else MIN_RHO
    return abs(value) if not math.isnan(value) and abs(value) >= limit else 0.0


def _with_direction(rule: Rule, effect) -> Rule:
    if rule.measure == "correlation":
        expect = "positive" if effect.effect > 0 else "negative"
        statement = f"{rule.value} {'rises' if expect == 'positive' else 'falls'} as {rule.against} rises."
    else:
        expect = "higher" if effect.group_value > effect.versus_value else "lower"
        what = f"The mean of {rule.value}" if rule.measure == "mean" else f"The share with {rule.outcome}"
        statement = f"{what} is {expect} when {rule.group} than when {rule.versus}."
    return dataclasses.replace(rule, expect=expect, statement=statement)


def _effect_note(rule: Rule, effect) -> str:
    name = EFFECT_NAMES[rule.measure]
    if rule.measure == "correlation":
        return f"CHECK: mined from the data: {name} {effect.effect:+.2f} over {effect.n_group:,} rows"
    fmt = "{:.0%}" if rule.measure == "rate" else "{:.3g}"
    return (
        f"CHECK: mined from the data: {name} {effect.effect:.2f} ({fmt.format(effect.group_value)} in "
        f"{effect.n_group:,} rows vs {fmt.format(effect.versus_value)} in {effect.n_versus:,}); keep it if it is "
        "clinically expected, and reword the statement (P4 prompts show it)"
    )


def _correlation_rules(rows: pd.DataFrame, card: Card, keep: int) -> list[tuple[str, Rule, Any, str]]:
    """The ``keep`` strongest Spearman correlations between numeric columns (not the target).

    All pairs are screened at once on column ranks; only the strongest few are measured
    exactly, by the rule code, so the noted effect is what ``card check`` shows.
    """
    numeric = [c.name for c in card.synth_columns if c.is_numeric and c.name != card.target]
    if len(numeric) < 2 or keep <= 0:
        return []
    screen = rows[numeric].astype(float).rank().corr(min_periods=MIN_PAIRS).abs()
    upper = screen.where(np.triu(np.ones(screen.shape, dtype=bool), k=1)).stack()
    found = []
    for (a, b), _ in upper[upper >= MIN_RHO].sort_values(ascending=False).head(3 * keep).items():
        rule = Rule(
            id=f"{slug(a)}_with_{slug(b)}",
            kind="soft",
            statement="",
            measure="correlation",
            value=expression_name(a),
            against=expression_name(b),
            expect="positive",
        )
        effect = soft_rule_effect(rows, rule, dataclasses.replace(card, rules=(rule,)))
        if _strength(effect) > 0:
            found.append((abs(effect.effect), a, rule, effect))
    found.sort(key=lambda t: -t[0])
    return [(a, _with_direction(r, e), e, _effect_note(r, e)) for _, a, r, e in found[:keep]]


def _soft_entries(rule: Rule, effect, note: str) -> list[Entry]:
    entries = [
        Entry("id", rule.id),
        Entry("kind", "soft"),
        Entry("statement", rule.statement, note),
        Entry("measure", rule.measure),
    ]
    for key in ("outcome", "value", "against", "group", "versus"):
        if getattr(rule, key):
            entries.append(Entry(key, getattr(rule, key)))
    entries.append(Entry("expect", rule.expect))
    return entries


# --- hard rules ---------------------------------------------------------------------------------------


def _implications(rows: pd.DataFrame, card: Card, min_rows: int) -> list[list[Entry]]:
    """``when A == a`` then ``B == b``, holding on every row where both are known, for a common ``a``."""
    cats = [c for c in card.synth_columns if c.is_categorical and len(c.categories) <= MAX_LEVELS]
    found = []
    for a, b in itertools.permutations(cats, 2):
        pair = rows[[a.name, b.name]].dropna().astype(str)
        if pair.empty:
            continue
        counts = pd.crosstab(pair[a.name], pair[b.name])
        share_b = counts.sum(axis=0) / len(pair)
        for level, row in counts.iterrows():
            present = row[row > 0]
            if row.sum() >= min_rows and len(present) == 1 and share_b[present.index[0]] < 0.95:
                found.append((int(row.sum()), a, level, b, present.index[0]))
    found.sort(key=lambda t: -t[0])
    out = []
    for support, a, level, b, value in found:
        when = f"{expression_name(a.name)} == {literal(_category(a, level))}"
        require = f"{expression_name(b.name)} == {literal(_category(b, value))}"
        out.append(
            [
                Entry("id", f"{slug(a.name)}_{slug(level)}_means_{slug(b.name)}_{slug(value)}"),
                Entry("kind", "hard"),
                Entry(
                    "statement",
                    f"When {a.name} is {level}, {b.name} is {value}.",
                    f"CHECK: holds on all {support:,} such rows; keep it only if anything else is impossible",
                ),
                Entry("when", when),
                Entry("require", require),
            ]
        )
    return out


def _orderings(rows: pd.DataFrame, card: Card) -> list[list[Entry]]:
    """``a <= b`` on every complete row, for numeric columns with a word in common (``ap_lo <= ap_hi``)."""
    numeric = [c.name for c in card.synth_columns if c.is_numeric]
    out = []
    for a, b in itertools.permutations(numeric, 2):
        if not _words(a) & _words(b):
            continue
        pair = rows[[a, b]].dropna().astype(float)
        if len(pair) < 10 or not (pair[a] <= pair[b]).all() or pair[a].max() <= pair[b].min():
            continue
        out.append(
            [
                Entry("id", f"{slug(a)}_at_most_{slug(b)}"),
                Entry("kind", "hard"),
                Entry(
                    "statement",
                    f"{a} is never above {b}.",
                    f"CHECK: holds on all {len(pair):,} complete rows; keep it only if the reverse is impossible",
                ),
                Entry("require", f"{expression_name(a)} <= {expression_name(b)}"),
            ]
        )
    return out


def _category(col, label: str) -> Any:
    """The card category whose text is ``label`` (numbers stay numbers)."""
    return next((c for c in col.categories if str(c) == label or _same_number(c, label)), label)


def _same_number(category: Any, label: str) -> bool:
    try:
        return float(category) == float(label)
    except (TypeError, ValueError):
        return False


def _words(name: str) -> set[str]:
    """The words of a column name, split at underscores, spaces and camelCase (``BloodPressure`` -> blood, pressure)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return {w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if len(w) >= 2}


def slug(text: str) -> str:
    """Lower-case letters, digits and '_' (for rule ids): ``Blood Pressure`` -> blood_pressure."""
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower() or "x"


# --- writing expressions --------------------------------------------------------------------------------


def expression_name(name: str) -> str:
    """How a column is written in a rule expression (backticks unless it is a plain identifier)."""
    plain = name.isidentifier() and not keyword.iskeyword(name) and name not in FUNCTIONS and not name.startswith("__")
    return name if plain else f"`{name}`"


def literal(value: Any) -> str:
    """A number or quoted text as a rule expression writes it."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return number_text(float(value))
    text = str(value)
    return f"'{text}'" if "'" not in text else f'"{text}"'


def number_text(x: float) -> str:
    """A number as a card writes it: whole numbers without a decimal point, others in plain notation."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else np.format_float_positional(x, precision=6, trim="-")
