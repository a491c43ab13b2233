"""Load a real dataset against its card: a strict CSV reader and typed parsing, with errors that name lines."""

from __future__ import annotations

import csv
import io
import logging
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synllm.cards import Card, Column, load_card
from synllm.cards.expressions import closest_match, looks_numeric
from synllm.cards.rules import hard_rule_violations
from synllm.dataset.schema import FATAL_CHECKS, parse_table
from synllm.errors import DataError

log = logging.getLogger(__name__)

_HOW_TO_FIX = {
    "missing": "mark the column 'nullable: true' in the card, or fill the cells",
    "not_a_number": "fix the cells or add the token to the card's missing.tokens",
    "not_an_integer": "fix the cells or change the column's kind to 'float' in the card",
    "unknown_category": "add the value to the column's categories in the card, or fix the cells",
}


@dataclass(frozen=True, slots=True)
class Dataset:
    """A loaded table with its card; unpacks as ``table, card = load_dataset(...)``.

    ``issues`` lists non-fatal findings: values outside the plausible range and
    hard-rule violations in the real file.
    """

    table: pd.DataFrame
    card: Card
    issues: tuple[str, ...] = field(default=())

    def __iter__(self):
        return iter((self.table, self.card))


def load_dataset(name_or_card: str | Path | Card, *, path: str | Path | None = None) -> Dataset:
    """Load a dataset by card name or card path, with dtypes and missing values from the card.

    Raises a :class:`DataError` that names the file, the column, up to five offending
    line numbers and values, and what to do. Nothing is silently coerced.
    """
    card = name_or_card if isinstance(name_or_card, Card) else load_card(name_or_card)
    file = Path(path) if path is not None else card.file
    raw = read_text_table(file)
    _check_header(raw, card, file)
    table, problems = parse_table(raw, card)
    fatal = problems[problems["check"].isin(FATAL_CHECKS)]
    if not fatal.empty:
        raise DataError(_describe_problem(fatal, file, card))
    issues = list(_range_issues(problems, file)) + list(_rule_issues(table, card, file))
    for issue in issues:
        log.warning(issue)
    return Dataset(table.reset_index(drop=True), card, tuple(issues))


def read_text_table(file: Path) -> pd.DataFrame:
    """Read a CSV with every cell as text; clear errors for absent, empty or non-UTF-8 files."""
    data = _read_regular_file(file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{file}: not UTF-8 (byte {exc.start}, line {line}); re-save the file as UTF-8, "
            "e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    if not text.strip():
        raise DataError(f"{file}: the file is empty; it needs a header line and data rows")
    header, rows, lines = _csv_records(text, file)
    if not rows:
        raise DataError(f"{file}: the file has a header but no data rows; add the rows or fix 'file' in the card")
    repeated = sorted(name for name, n in Counter(header).items() if n > 1)  # linear: 200k columns in well under 1 s
    if repeated:
        raise DataError(f"{file}: column name(s) {_first(repeated)} appear more than once in the header; rename them")
    wrong = [(line, len(fields)) for line, fields in zip(lines, rows) if len(fields) != len(header)]
    if wrong:
        shown = ", ".join(f"line {line}: {n} fields" for line, n in wrong[:5])
        more = f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else ""
        raise DataError(
            f"{file}: not a well-formed CSV: the header has {len(header)} fields but {len(wrong)} row(s) "
            f"do not ({shown}{more}); check the delimiter and quote values that contain a comma"
        )
    # The index holds file line numbers (the header is line 1), so errors can point at lines. One object
    # block, not a typed array per column: a 200,000-column file is built in well under a second.
    cells = np.array(rows, dtype=object).reshape(len(rows), len(header))
    return pd.DataFrame(cells, columns=header, index=pd.Index(lines, name="line"), dtype=object, copy=False)


def _read_regular_file(file: Path) -> bytes:
    """The bytes of ``file``, which must be a regular file (a folder, pipe or device gets its own message).

    The file is opened without blocking and checked on the open handle, so a named pipe
    never hangs the read and a file swapped after the check is not read.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError(f"{file}: file not found; put the CSV there or fix 'file' in the card") from None
    except IsADirectoryError:
        raise DataError(f"{file}: is a folder, not a file; give the CSV file's name in 'file'") from None
    except OSError as exc:
        raise DataError(f"{file}: cannot be opened ({exc.strerror}); check the path and its permissions") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = (
            "is a folder"
            if stat.S_ISDIR(mode)
            else "is a named pipe (FIFO)"
            if stat.S_ISFIFO(mode)
            else "is a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "is not a regular file"
        )
        raise DataError(f"{file}: {what}, not a CSV file; point 'file' in the card at a regular CSV file")
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _csv_records(text: str, file: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, data rows, first file line of each row); blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields:
                continue
            if header is None:
                header = fields
            else:
                rows.append(fields)
                lines.append(start)
    except csv.Error as exc:
        raise DataError(
            f"{file}: not a well-formed CSV near line {reader.line_num} ({exc}); check the quoting"
        ) from None
    return header or [], rows, lines


def _first(names: list[str], shown: int = 10) -> str:
    """Up to ``shown`` names as a list, then how many more (so a 200,000-column header gives a short message)."""
    more = f" (and {len(names) - shown:,} more)" if len(names) > shown else ""
    return f"{names[:shown]}{more}"


def _check_header(raw: pd.DataFrame, card: Card, file: Path) -> None:
    expected, found = card.column_names, [str(c) for c in raw.columns]
    expected_set, found_set = set(expected), set(found)
    lacking = [c for c in expected if c not in found_set]
    extra = [c for c in found if c not in expected_set]
    if 2 * len(lacking) > len(expected):  # mostly unlike the card: maybe not the data at all, so echo none of it
        raise DataError(
            f"{file}: the header's {len(found):,} field(s) match only {len(expected) - len(lacking)} of the card's "
            f"{len(expected)} columns ({_first(expected)}); is 'file' in card {card.name!r} the right CSV? "
            "(the file's content is not shown)"
        )
    if lacking or extra:
        parts = []
        if lacking:
            parts.append(f"missing column(s) {_first(lacking)}")
        if extra:
            parts.append(f"extra column(s) {_first(extra)}")
        pairs = [(c, closest_match(c, extra)) for c in lacking[:10]]
        renames = "; ".join(f"the card's {c!r} may be the file's {m!r}" for c, m in pairs if m)
        raise DataError(
            f"{file}: {' and '.join(parts)} compared with card {card.name!r}"
            + (f" ({renames})" if renames else "")
            + "; fix the CSV header or describe the columns in the card"
        )


def _describe_problem(problems: pd.DataFrame, file: Path, card: Card) -> str:
    first = problems.iloc[0]
    same = problems[(problems["column"] == first["column"]) & (problems["check"] == first["check"])]
    shown = ", ".join(f"line {r}: {v!r}" for r, v in zip(same["row"][:5], same["value"][:5]))
    more = f" (and {len(same) - 5} more)" if len(same) > 5 else ""
    others = len(problems) - len(same)
    tail = f"; {others} other problem(s) in this file" if others else ""
    return (
        f"{file}: column {first['column']!r}: {first['check'].replace('_', ' ')} in "
        f"{len(same)} row(s): {shown}{more}. "
        f"Fix: {_how_to_fix(first['check'], card.column(first['column']), card, same['value'])}{tail}"
    )


def _how_to_fix(check: str, col: Column, card: Card, values: pd.Series) -> str:
    """The advice for one failed check, fitted to the column: never advice that would damage real values."""
    found = {str(v).strip() for v in values}
    numeric_tokens = {t.strip() for t in card.missing_tokens if looks_numeric(t)}
    if check == "missing" and (shared := sorted(found & numeric_tokens)):
        return (
            f"the card-wide missing token(s) {shared} look like real values (a 0 may be real in other columns); "
            f"remove them from missing.tokens and list them under this column's missing_codes "
            f"(e.g. missing_codes: [{shared[0]}]), which makes the column nullable"
        )
    quoted = [c for c in col.categories or () if isinstance(c, str) and looks_numeric(c)]
    if check == "unknown_category" and quoted and all(looks_numeric(v) for v in found):
        return (
            f"the card lists the categories as quoted text ({', '.join(repr(c) for c in quoted)}), so "
            f"{sorted(found)[0]!r} does not match; write them as numbers without quotes "
            f"(categories: [{', '.join(quoted)}])"
        )
    return _HOW_TO_FIX[check]


def _range_issues(problems: pd.DataFrame, file: Path):
    out = problems[problems["check"] == "out_of_range"]
    for column, group in out.groupby("column", sort=False):
        shown = ", ".join(f"line {r}: {v}" for r, v in zip(group["row"][:5], group["value"][:5]))
        yield f"{file}: column {column!r}: {len(group)} value(s) outside the card's plausible range ({shown})"


def _rule_issues(table: pd.DataFrame, card: Card, file: Path):
    for rule in card.hard_rules:
        _, violated = hard_rule_violations(table, rule, card)
        if violated.any():
            lines = ", ".join(str(i) for i in table.index[violated][:5])
            yield f"{file}: hard rule {rule.id!r} broken by {int(violated.sum())} row(s) (lines {lines})"
