"""Model text -> candidate rows -> valid rows and rejected rows with reasons.

The parser accepts JSON (``{"rows": [[...], ...]}``, a bare list, or objects keyed by
column) or CSV lines, tolerates code fences, numbering and prose around the data,
and records every repair it makes. Validation checks each row against the card.

An answer cut off at ``max_tokens`` (``parse_text(..., cut=True)``) keeps its complete rows,
JSON or CSV; its unfinished end becomes one :class:`CutRow`, rejected with the reason
``cut``, never read as if whole (``228.6`` cut to ``22`` would pass a range check).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

import pandas as pd

from synllm.cards import Card
from synllm.dataset.schema import CHECKS, parse_table

_FENCE = re.compile(r"```[a-zA-Z]*\n?|```")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_ROWS_KEY = re.compile(r'"(?:rows|records|data)"\s*:\s*\[')
_WHOLE_END = re.compile(r"(?:\n|```)[ \t]*$")  # an answer that ends here did not stop inside a row
#: The reason a cut row is rejected with.
CUT_REASON = "cut: the answer stopped at max_tokens in this row"
#: The repair noted when rows are kept from an answer cut off before its end.
KEPT_BEFORE_CUT = "kept the rows before the cut"


class CutRow(list):
    """The unfinished end of an answer cut off at ``max_tokens``: rejected as ``cut``, never validated as a row."""


@dataclass(frozen=True, slots=True)
class ParsedText:
    """Candidate rows (lists of text cells) found in one answer, with repairs and unusable lines."""

    rows: list[list[str]]
    repairs: list[str] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)
    format: str = "csv"


def parse_text(text: str, card: Card, *, cut: bool = False) -> ParsedText:
    """Find rows in a model answer, trying JSON first, then CSV lines.

    ``cut``: the answer stopped at ``max_tokens`` (see :func:`synllm.generation.records.was_cut`),
    so whatever follows its last complete row is a :class:`CutRow`.
    """
    repairs: list[str] = []
    body = text
    if "```" in body:
        body = _FENCE.sub("", body)
        repairs.append("removed code fences")
    parsed = _parse_json(body, card, repairs, cut)
    if parsed is not None:
        return parsed
    return _parse_csv(body, card, repairs, cut and not _WHOLE_END.search(text))


def _parse_json(body: str, card: Card, repairs: list[str], cut: bool = False) -> ParsedText | None:
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    decoder = json.JSONDecoder()
    try:
        data, end = decoder.raw_decode(body[start:])
    except RecursionError:  # nested deeper than Python's stack: not rows
        return None
    except json.JSONDecodeError:
        return _parse_cut_json(body, start, card, repairs) if cut else None
    if start > 0 and body[:start].strip():
        repairs.append("ignored text before the JSON")
    if body[start + end :].strip():
        repairs.append("ignored text after the JSON")
    if isinstance(data, dict):
        data = data.get("rows", data.get("records", data.get("data")))
    if not isinstance(data, list):
        return None
    rows, junk = _json_rows(data, card.synth_names)
    return ParsedText(rows, repairs, junk, "json")


def _json_rows(items: list, names: list[str]) -> tuple[list[list[str]], list[str]]:
    """(rows, junk) of a JSON list of rows: lists of cells, or objects keyed by column."""
    rows, junk = [], []
    for item in items:
        if isinstance(item, dict):
            rows.append([_cell(item.get(n)) for n in names])
            if set(item) - set(names):
                junk.append(f"unknown keys {sorted(set(item) - set(names))}")
        elif isinstance(item, list):
            rows.append([_cell(v) for v in item])
        else:
            junk.append(repr(item))
    return rows, junk


def _parse_cut_json(body: str, start: int, card: Card, repairs: list[str]) -> ParsedText | None:
    """The whole rows of a JSON answer that stops before its end, then the rest as one CutRow (None: no row list)."""
    if body[start] == "{":
        found = _ROWS_KEY.search(body, start)
        if found is None:
            return None
        at = found.end()
    else:
        at = start + 1
    decoder, items = json.JSONDecoder(), []
    while True:
        at = _after_space(body, at)
        try:
            item, at = decoder.raw_decode(body, at)
        except (json.JSONDecodeError, RecursionError):
            break
        items.append(item)
        at = _after_space(body, at)
        if not body.startswith(",", at):
            break
        at += 1
    rows, junk = _json_rows(items, card.synth_names)
    rest = body[at:].strip()
    if rest and not rest.startswith("]"):
        rows.append(CutRow([rest]))
    return ParsedText(rows, [*repairs, KEPT_BEFORE_CUT], junk, "json")


def _after_space(text: str, at: int) -> int:
    """The position of the first non-space character of ``text`` from ``at``."""
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _parse_csv(body: str, card: Card, repairs: list[str], open_end: bool = False) -> ParsedText:
    """Rows from CSV lines; with ``open_end`` (an answer cut inside its last line) that line is a CutRow."""
    names = card.synth_names
    header = [n.lower() for n in names]
    rows, junk = [], []
    lines = body.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1) if open_end else -1
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        stripped = _NUMBERING.sub("", line)
        if stripped != line:
            repairs.append("removed line numbering")
        try:
            cells = [c.strip() for c in next(csv.reader(io.StringIO(stripped), skipinitialspace=True), [])]
        except csv.Error:  # a field longer than the csv module's limit: not a row
            cells = [stripped.strip()[:80]]
        if number == last:
            rows.append(CutRow(cells or [stripped.strip()]))
            repairs.append(KEPT_BEFORE_CUT)
            continue
        if [c.lower() for c in cells] == header:
            repairs.append("skipped a header line")
            continue
        if len(cells) < 2:
            junk.append(line)
            continue
        rows.append(cells)
    return ParsedText(rows, _dedupe(repairs), junk, "csv")


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class Validation:
    """Typed valid rows, and rejected rows (raw cells) with one reason string each.

    ``valid_positions`` / ``rejected_positions`` give each output row's position in the input list.
    """

    valid: pd.DataFrame
    rejected: pd.DataFrame
    valid_positions: tuple[int, ...] = ()
    rejected_positions: tuple[int, ...] = ()

    @property
    def reasons(self) -> dict[str, int]:
        """How many rejected rows failed for each reason (a row may count under several)."""
        counts: dict[str, int] = {}
        for text in self.rejected.get("_reason", pd.Series(dtype=str)):
            for reason in {r.split(":")[0] for r in text.split("; ")}:
                counts[reason] = counts.get(reason, 0) + 1
        return counts


def validate_rows(rows: list[list[str]], card: Card) -> Validation:
    """Check rows against the card: column count, types, categories and ranges.

    Valid rows come back typed like a loaded real table. Rejected rows keep their raw
    cells plus ``_reason`` (e.g. ``out_of_range: age=140``); a :class:`CutRow` is rejected as ``cut``.
    """
    names = card.synth_names
    k = len(names)
    good_pos = [i for i, r in enumerate(rows) if len(r) == k and not isinstance(r, CutRow)]
    bad_pos = [i for i, r in enumerate(rows) if len(r) != k or isinstance(r, CutRow)]
    good = [rows[i] for i in good_pos]
    bad = [rows[i] for i in bad_pos]
    raw = pd.DataFrame(good, columns=names, dtype="string") if good else pd.DataFrame(columns=names, dtype="string")
    typed, problems = parse_table(raw, card)
    reasons = pd.Series("", index=raw.index, dtype=object)
    for row, group in problems.groupby("row", sort=False):
        order = sorted(group.itertuples(), key=lambda p: CHECKS.index(p.check))
        reasons[row] = "; ".join(f"{p.check}: {p.column}={p.value}" for p in order)
    ok = reasons.eq("")
    rejected = raw.loc[~ok].copy()
    rejected["_reason"] = reasons[~ok]
    if bad:
        wrong = pd.DataFrame({"_raw": [",".join(r) for r in bad]})
        wrong["_reason"] = [
            CUT_REASON if isinstance(r, CutRow) else f"wrong_column_count: {len(r)} fields, expected {k}" for r in bad
        ]
        rejected = pd.concat([rejected, wrong], ignore_index=True)
    ok_mask = ok.to_numpy(dtype=bool)
    return Validation(
        typed.loc[ok].reset_index(drop=True),
        rejected.reset_index(drop=True),
        tuple(p for p, keep in zip(good_pos, ok_mask) if keep),
        tuple([p for p, keep in zip(good_pos, ok_mask) if not keep] + bad_pos),
    )
