"""Draft a card from a CSV: every column's kind, range, categories and missing values, roles and candidate rules.

``synllm card draft data.csv`` calls :func:`draft_card` and writes the YAML it returns.
The draft is a complete, loadable card, so ``synllm card check`` can run on it at once;
every guess the user must confirm carries a ``# CHECK:`` comment saying what was seen
and what to decide. Candidate rules come from :mod:`synllm.dataset.mining`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import card_from_dict
from synllm.cards.expressions import looks_numeric
from synllm.cards.schema import name_problem
from synllm.dataset.mining import Entry, expression_name, mine_rules, number_text, slug
from synllm.dataset.schema import parse_table
from synllm.errors import DataError

#: Cells that mean "missing" in many files (blank cells always do).
MISSING_WORDS = ("?", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "#N/A", ".", "-", "--")
#: Most categories a text column may have before it is drafted as an identifier (free text).
MAX_CATEGORIES = 30
#: A 0 is flagged as a missing code when the smallest other value is this many typical gaps away.
ZERO_GAP_FACTOR = 5
_TARGET_NAMES = re.compile(
    r"^(outcome|target|class|label|diagnosis|disease|num|y|death|died|dead|status|stroke|diabetes|event)$", re.I
)
_ID_NAMES = re.compile(r"(^id$|_id$|^id_|patient|record|^pid$|^mrn$)", re.I)
_LEAKAGE_NAMES = re.compile(r"(days|time|follow|surviv|duration|stay|censor|discharge)", re.I)
_OUTSIDE = (
    "  # CHECK: the CSV is outside this card's folder, and a card reads data only from inside its folder: "
    "move the card beside the CSV (or set SYNLLM_DATA_DIR to the CSV's folder)"
)
_QUASI_NAMES = re.compile(r"^(age|sex|gender|race|ethnic\w*|zip|postcode|height|weight|bmi)$", re.I)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """A drafted card: its YAML text, and counts for the summary the CLI prints."""

    text: str
    name: str
    columns: int
    target: str
    hard_rules: int
    soft_rules: int
    checks: int = field(default=0)


def draft_card(raw: pd.DataFrame, *, name: str, file: str, random_state: int = 0) -> Draft:
    """Draft a card for a table of text cells (as :func:`synllm.dataset.read_text_table` reads a CSV)."""
    if raw.empty or not len(raw.columns):
        raise DataError(f"{file}: no rows to draft a card from")
    for i, column in enumerate(raw.columns, 1):
        if problem := name_problem(str(column)):
            shown = escaped(ascii(str(column))[:60])
            raise DataError(f"{file}: column {i} of the header ({shown}) {problem}; rename it in the CSV header")
    cells = distinct_cells(raw)
    tokens = missing_tokens(cells)
    columns = [column_entries(counts, name, tokens) for name, counts in cells.items()]
    specs = [{e.key: e.value for e in entries if not e.commented_out} for entries in columns]
    target = guess_target(specs, raw)
    probe = card_from_dict(  # only the columns matter here: the file is named, never read
        {
            "name": name,
            "file": Path(file).name or "data.csv",
            "columns": specs,
            "roles": {"target": target},
            "missing": {"tokens": tokens},
        }
    )
    table, _ = parse_table(raw, probe)
    leakage = [s["name"] for s in specs if _LEAKAGE_NAMES.search(s["name"]) and s["name"] != target]
    mined = mine_rules(table.reset_index(drop=True), probe, leakage=leakage, random_state=random_state)
    hard, soft, predictors = mined.hard, mined.soft, list(mined.predictors)
    lines = _header(name, file, len(raw), tokens, cells)
    lines += _roles(probe, specs, target, predictors, leakage, table)
    lines.append("columns:")
    for entries in columns:
        lines += _block(entries, indent=2)
    lines += ["rules:"] if hard or soft else ["rules: []"]
    for rule in [*hard, *soft]:
        lines += _block(rule, indent=2)
    lines += _bound_suggestions(probe, table)
    text = "\n".join(escaped(line) for line in lines) + "\n"  # comments can quote cells: nothing breaks a line
    n_checks = sum("# CHECK" in line for line in lines)
    return Draft(
        text=text,
        name=name,
        columns=len(specs),
        target=target,
        hard_rules=len(hard),
        soft_rules=len(soft),
        checks=n_checks,
    )


def card_name(path: Path) -> str:
    """A card name from a file name: lower case, other characters as '_' (``Heart Disease.csv`` -> heart_disease)."""
    return re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "dataset"


# --- missing values -----------------------------------------------------------------------------------


def distinct_cells(raw: pd.DataFrame) -> dict[str, pd.Series]:
    """Per column, its distinct cells (spaces stripped) -> how many rows hold each, most common first.

    Everything the draft reads from the cells comes from these counts, so a long file costs
    what its distinct values cost.
    """
    out = {}
    for name in raw.columns:
        counts = raw[name].astype(str).value_counts(sort=False)
        stripped = counts.groupby(counts.index.str.strip(), sort=False).sum()
        out[str(name)] = stripped.sort_values(ascending=False, kind="stable")
    return out


def missing_tokens(cells: dict[str, pd.Series]) -> list[str]:
    """Card-wide missing tokens: the usual words (``?``, ``NA``, ...) found in any column, most frequent first."""
    found: Counter[str] = Counter()
    for counts in cells.values():
        for word, n in counts[counts.index.isin(MISSING_WORDS)].items():
            found[word] += int(n)
    return [w for w, _ in found.most_common()]


def zero_is_missing(numbers: np.ndarray) -> bool:
    """True when 0 looks like a code for 'not measured': every other value is positive and far from 0.

    Far means more than :data:`ZERO_GAP_FACTOR` times the typical gap between the smallest
    distinct values (insulin 0 then 14, 15, 16: yes; pregnancies 0 then 1, 2, 3: no).
    """
    if not (numbers == 0).any():
        return False
    rest = np.unique(numbers[numbers != 0])
    if len(rest) < 3 or rest[0] < 0:
        return False
    typical = float(np.median(np.diff(rest[:20])))
    return bool(typical > 0 and rest[0] > ZERO_GAP_FACTOR * typical)


# --- columns ------------------------------------------------------------------------------------------


def column_entries(counts: pd.Series, name: str, tokens: list[str]) -> list[Entry]:
    """The draft of one column from its distinct cells and their counts (:func:`distinct_cells`)."""
    blank = counts.index.isin(["", *tokens])
    present = counts[~blank].sort_values(ascending=False)
    n_rows, n_blank = int(counts.sum()), int(counts[blank].sum())
    numbers = pd.to_numeric(pd.Series(present.index, index=present.index), errors="coerce")
    out = [Entry("name", name)]
    coded = 0
    if present.empty:
        out.append(Entry("kind", "identifier", "CHECK: every cell is missing; an empty column is never generated"))
    elif numbers.notna().all():
        out += _numeric_entries(name, present, numbers.to_numpy(dtype=float), n_rows)
        coded = int(present[numbers.to_numpy() == 0].sum()) if any(e.key == "missing_codes" for e in out) else 0
    else:
        out += _text_entries(present)
    if n_blank and not coded:
        out.append(Entry("nullable", True))
    if n_blank + coded:
        why = f"CHECK: {n_blank + coded} cells ({(n_blank + coded) / n_rows:.0%}) are missing: say why"
        out.append(Entry("missing", "", why + " (prompts P2-P4 show this)"))
    out.append(Entry("description", "", f"CHECK: what {name} means and how it was measured (prompts P2-P4 show this)"))
    return out


def _numeric_entries(name: str, present: pd.Series, numbers: np.ndarray, n_rows: int) -> list[Entry]:
    """Entries of a numeric column from its distinct cells (``present``: text -> count) and their ``numbers``."""
    whole = bool(np.all(np.mod(numbers, 1) == 0))
    distinct = np.unique(numbers)
    written_as_float = whole and any("." in text for text in present.index)
    if whole and set(distinct.tolist()) == {0.0, 1.0}:
        note = " (written as 0.0 / 1.0)" if written_as_float else ""
        return [Entry("kind", "binary", f"CHECK: only 0 and 1{note}; say what 1 means in the description")]
    if whole and len(distinct) == n_rows and _ID_NAMES.search(name):
        return [Entry("kind", "identifier", "CHECK: a distinct whole number per row; never generated")]
    out = []
    codes = [0] if zero_is_missing(distinct) else []
    real = distinct[distinct != 0] if codes else distinct
    if whole:
        note = "every value is whole" + (" (written like 63.0)" if written_as_float else "")
        if len(distinct) <= 10:
            shown = ", ".join(number_text(v) for v in distinct)
            note += f"; only {len(distinct)} values ({shown}): if they are codes, make it kind: categorical"
        out.append(Entry("kind", "integer", f"CHECK: {note}"))
    else:
        out.append(Entry("kind", "float"))
    lo, hi = float(real.min()), float(real.max())
    out.append(
        Entry(
            "range",
            list(widen(lo, hi, whole=whole)),
            f"CHECK: observed {number_text(lo)} to {number_text(hi)}, widened; set the clinically plausible limits",
        )
    )
    if not whole:
        out.append(Entry("decimals", min(max(_decimals(text) for text in present.index), 4)))
    if codes:
        zeros = int(present[numbers == 0].sum())
        out.append(
            Entry(
                "missing_codes",
                codes,
                f"CHECK: 0 in {zeros} rows while the smallest other value is {number_text(lo)}: "
                "is 0 a code for 'not measured'? If 0 is a real value, delete this line",
            )
        )
    return out


def _text_entries(present: pd.Series) -> list[Entry]:
    """Entries of a text column from its distinct cells (``present``: text -> count, most common first)."""
    levels = sorted(present.index)
    if any(name_problem(level) for level in levels):
        why = "some values are empty, over 200 characters or hold control or line-separator characters"
        return [Entry("kind", "identifier", f"CHECK: {why}; never generated (clean the values to use it)")]
    if len(levels) > MAX_CATEGORIES or (present.max() == 1 and len(levels) > 2):
        why = "a distinct value per row" if present.max() == 1 else f"{len(levels)} distinct values"
        return [Entry("kind", "identifier", f"CHECK: {why}; an identifier or free text is never generated")]
    shown = ", ".join(f"{k} {v}" for k, v in present.head(8).items())
    numeric_like = [level for level in levels if looks_numeric(level)]
    note = f"CHECK: counts {shown}" + ("; some look like numbers: keep them quoted" if numeric_like else "")
    return [Entry("kind", "binary" if len(levels) == 2 else "categorical"), Entry("categories", levels, note)]


def widen(lo: float, hi: float, *, whole: bool) -> tuple[float, float]:
    """Observed bounds widened by 10 % of the span (never below 0 for a non-negative column), rounded outwards."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    step = 10 ** math.floor(math.log10(span)) / 10 if span > 0 else 1.0
    step = max(step, 1.0) if whole else step
    low = math.floor((lo - 0.1 * span) / step) * step
    high = math.ceil((hi + 0.1 * span) / step) * step
    if lo >= 0:
        low = max(low, 0.0)
    return _tidy(low), _tidy(high)


def _tidy(x: float) -> float:
    return float(np.format_float_positional(x, precision=6, trim="-"))


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1].rstrip()) if "." in text and "e" not in text.lower() else 0


# --- roles --------------------------------------------------------------------------------------------


def guess_target(specs: list[dict[str, Any]], raw: pd.DataFrame) -> str:
    """A named outcome column (``outcome``, ``diagnosis``, ``num``...), else the last binary column, else the last."""
    usable = [s for s in specs if s["kind"] != "identifier"]
    named = [s for s in usable if _TARGET_NAMES.match(s["name"])]
    binary = [s for s in usable if s["kind"] == "binary"]
    chosen = (named or binary or usable or specs)[-1]
    return chosen["name"]


def _roles(card, specs, target: str, predictors: list[str], leakage: list[str], table: pd.DataFrame) -> list[str]:
    col = card.column(target)
    distinct = table[target].dropna().nunique()
    lines = ["roles:", f"  target: {_scalar(target)}  # CHECK: the column the study predicts (guessed from the data)"]
    if (col.is_numeric or col.kind.value == "categorical") and distinct > 2:
        lowest = table[target].dropna().min() if col.is_numeric else None
        example = f"{expression_name(target)} > {number_text(float(lowest))}" if lowest is not None else ""
        lines.append(
            f"  # target_positive: {_scalar(example or expression_name(target) + ' == ...')}  # CHECK: {target} has "
            f"{distinct} values; to predict a yes/no class instead, uncomment with the condition that means 'yes'"
        )
    identifiers = [s["name"] for s in specs if s["kind"] == "identifier"]
    quasi = [s["name"] for s in specs if _QUASI_NAMES.match(s["name"])]
    lines += [
        f"  outcomes: {_scalar([target])}",
        f"  identifiers: {_scalar(identifiers)}",
        f"  quasi_identifiers: {_scalar(quasi)}  # CHECK: columns an attacker could know (age, sex, ...)",
        f"  sensitive: {_scalar([target])}  # CHECK: columns a patient would not want revealed",
        f"  predictors: {_scalar(predictors)}  # CHECK: the columns most associated with the target in the data",
    ]
    note = "CHECK: columns measured after the outcome (e.g. follow-up time ending at death)"
    note += "; guessed from the names, remove any known when the record is made" if leakage else ""
    lines.append(f"  leakage: {_scalar(leakage)}  # {note}")
    return lines


# --- YAML text ------------------------------------------------------------------------------------------


def _header(name: str, file: str, n_rows: int, tokens: list[str], cells: dict[str, pd.Series]) -> list[str]:
    where = {t: [c for c, counts in cells.items() if t in counts.index] for t in tokens}
    found = "; ".join(f"{t!r} in {', '.join(cols[:5])}{' ...' if len(cols) > 5 else ''}" for t, cols in where.items())
    lines = [
        f"# Dataset card drafted by `synllm card draft` from {Path(file).name} ({n_rows:,} rows, {len(cells)} "
        "columns).",
        "# Every guess you must confirm ends in a 'CHECK:' comment: fix the line, then delete the comment.",
        "# Then run `synllm card check <this file>` until it passes. Rule expressions: see README, 'Rule expressions'.",
        f"name: {_scalar(name)}",
        f"title: {_scalar(name.replace('_', ' ').title())}  # CHECK: the title reports show",
        f'domain: {_scalar("clinical research")}  # CHECK: the field, e.g. "heart disease research" (prompts show it)',
        f"description: {_scalar('')}  # CHECK: source, patients, years, what the target means (reports show it)",
        f"file: {_scalar(file)}" + (_OUTSIDE if Path(file).is_absolute() or ".." in Path(file).parts else ""),
        "missing:",
        f"  tokens: {_scalar(tokens)}" + (f"  # CHECK: cells meaning 'missing': {found}" if tokens else ""),
        f"  notes: {_scalar('')}  # CHECK: what missing values mean in this file (prompts show it)",
    ]
    return lines


def _block(entries: list[Entry], *, indent: int) -> list[str]:
    """A YAML list item: ``- key: value  # comment`` then the other keys, aligned."""
    pad = " " * indent
    lines = []
    first = True
    for entry in entries:
        lead = f"{pad}- " if first else f"{pad}  "
        first = False
        comment = f"  # {entry.comment}" if entry.comment else ""
        line = f"{lead}{entry.key}: {_scalar(entry.value)}{comment}"
        lines.append(f"{pad}  # {line.strip()}" if entry.commented_out else line)
    return lines


def _bound_suggestions(card, table: pd.DataFrame) -> list[str]:
    """Observed bounds of each numeric column as commented-out hard rules, for the user to adopt or ignore."""
    numeric = [c for c in card.columns if c.is_numeric and table[c.name].notna().any()]
    if not numeric:
        return []
    lines = ["  # Observed bounds, as hard rules to uncomment where they are clinical limits (each column's range"]
    lines.append("  # already bounds generated values):")
    for col in numeric:
        values = table[col.name].dropna().astype(float)
        expr = f"{number_text(values.min())} <= {expression_name(col.name)} <= {number_text(values.max())}"
        lines.append(
            f"  # - {{id: {slug(col.name)}_bounds, kind: hard, statement: {_scalar(f'{col.name} lies in {expr}')}, "
            f"require: {_scalar(expr)}}}"
        )
    return lines


def escaped(text: str) -> str:
    """``text`` with control, format and line-separator characters as visible ``\\uXXXX`` escapes.

    A double-quoted YAML value reads the escape back as the character; a comment shows it
    as text instead of ending early (YAML 1.1 breaks lines at U+2028, U+2029 and U+0085).
    """
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def _unsafe(ch: str) -> bool:
    """Control, format, surrogate and line-separator characters, and the two YAML refuses (U+FFFE, U+FFFF)."""
    return ch != "\t" and (unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") or ch in "\ufffe\uffff")


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _scalar(value: Any) -> str:
    """One YAML value: strings double-quoted (JSON, unsafe characters escaped), numbers plain, lists in flow style."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return number_text(float(value))
    return escaped(json.dumps(str(value), ensure_ascii=False))
