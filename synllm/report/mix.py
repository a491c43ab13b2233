"""The outcome mix per generator: rows requested, rows delivered, and the real patients' mix (issue 19).

A run asked for a class mix or for conditions on the target records the rows it requested per
condition (an LLM run in its manifest, a baseline in :attr:`ScoredRun.requested`); what it delivered is
counted in its rows. A run that asked for nothing is "as written": the model chose the mix. The
table sums a generator's seeds and ends with the real training split, so a reader sees at once
whether a generator wrote the outcomes it was asked for, and how far that is from real patients.

    >>> frame = mix_frame([], None)
    >>> list(frame.columns)
    ['generator', 'rows']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synllm.report.scored import ScoredRun, StudyData

#: What the requested cells say for a generator that asked for no mix.
AS_WRITTEN = "as written"
#: Most classes the table lists (a target with more values is not a class outcome).
MAX_CLASSES = 10


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(count: float, total: float) -> str:
    share = count / total if total else 0.0
    pct = f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"
    return f"{count:,.0f} ({pct})"


def requested_counts(run: ScoredRun, card: Any, classes: Sequence[tuple[Any, Any]]) -> tuple[dict[str, int], int]:
    """({class: rows requested}, total rows requested) of one run; ``({}, 0)`` when it asked for no mix.

    ``{}`` with a total when its conditions leave the class of some rows open (e.g. only ``age=65..90``).
    """
    counts: Sequence[Mapping[str, Any]] = run.manifest.conditions if run.manifest is not None else run.requested
    if not counts:
        return {}, 0
    total = sum(int(c.get("requested", 0)) for c in counts)
    found: dict[str, int] = {}
    for cls, held in classes:
        wanted = list(held) if isinstance(held, tuple) else held
        rows = sum(int(c.get("requested", 0)) for c in counts if c.get("column_values", {}).get(card.target) == wanted)
        found[_key(cls)] = rows
    return (found if sum(found.values()) == total else {}), total


def delivered_counts(table: pd.DataFrame, card: Any) -> pd.Series:
    """Rows per target class (class as text) of a typed table."""
    from synllm.cards.rules import target_values

    if card.target not in table.columns:
        return pd.Series(dtype=int)
    return target_values(table, card).dropna().map(_key).value_counts()


def mix_frame(scored: Sequence[ScoredRun], data: StudyData | None) -> pd.DataFrame:
    """Per generator, its rows requested and delivered per target class (count and share, summed over seeds),
    then the real training split's; requested is "as written" for a generator that asked for no mix.

    Columns: generator, rows (requested / delivered / real), one per class ("stroke = 1"), and the total.
    Empty (just the first columns) when the card has no class target.
    """
    columns = ["generator", "rows"]
    if data is None or not data.card.target:
        return pd.DataFrame(columns=columns)
    from synllm.errors import InvalidArgument
    from synllm.generation.class_mix import target_classes

    card = data.card
    try:
        classes = [(cls, held) for cls, held, _ in target_classes(card, data.train)]
    except InvalidArgument:  # a continuous target has no classes to list
        return pd.DataFrame(columns=columns)
    real = delivered_counts(data.train, card)
    keys = [_key(cls) for cls, _ in classes] + sorted(set(real.index) - {_key(c) for c, _ in classes})
    if len(keys) > MAX_CLASSES:
        return pd.DataFrame(columns=columns)
    what = card.target_positive or card.target
    headers = {k: f"{what} = {k}" for k in keys}
    rows = []
    for label in dict.fromkeys(s.label for s in scored):
        runs = [s for s in scored if s.label == label]
        asked, asked_total, free = dict.fromkeys(keys, 0), 0, False
        delivered = dict.fromkeys(keys, 0)
        for run in runs:
            per_class, total = requested_counts(run, card, classes)
            free = free or not per_class
            if not total and run.manifest is not None:
                total = int(run.manifest.n_rows_requested)  # a plain run: the rows it asked for, mix as written
            asked_total += total
            for k, v in per_class.items():
                asked[k] = asked.get(k, 0) + v
            for k, v in delivered_counts(run.synthetic, card).items():
                delivered[k] = delivered.get(k, 0) + int(v)
        seeds = f" ({len(runs)} runs)" if len(runs) > 1 else ""
        if free:
            wanted = {headers[k]: AS_WRITTEN for k in keys}
            rows.append({"generator": label + seeds, "rows": "requested", **wanted, "total": asked_total or None})
        else:
            wanted = {headers[k]: _cell(asked[k], asked_total) for k in keys}
            rows.append({"generator": label + seeds, "rows": "requested", **wanted, "total": asked_total})
        got = sum(delivered.values())
        rows.append(
            {"generator": "", "rows": "delivered", **{headers[k]: _cell(delivered[k], got) for k in keys}, "total": got}
        )
    total = int(real.sum())
    rows.append(
        {
            "generator": "real patients (training split)",
            "rows": "real",
            **{headers[k]: _cell(int(real.get(k, 0)), total) for k in keys},
            "total": total,
        }
    )
    frame = pd.DataFrame(rows, columns=[*columns, *headers.values(), "total"])
    frame["total"] = frame["total"].astype("Int64")
    return frame


def _shares(row: pd.Series, classes: Sequence[str]) -> str:
    """'0: 50% · 1: 50%' from a mix row's cells '30 (50%)'; 'as written' when it asked for no mix."""
    cells = [str(row[c]) for c in classes]
    if any(cell == AS_WRITTEN for cell in cells):
        return AS_WRITTEN
    shares = [(m.group(1) if (m := re.search(r"\(([^)]*)\)", cell)) else cell) for cell in cells]
    return " · ".join(f"{c.rpartition(' = ')[2]}: {share}" for c, share in zip(classes, shares))


def mix_overview(output_folder: str | Path, datasets: Sequence[str] = ()) -> pd.DataFrame:
    """One row per dataset x generator from every ``<output>/<dataset>/mix.csv`` (:func:`mix_frame` as written by
    the dataset report): the outcome, and the requested, delivered and real shares per class."""
    columns = ["dataset", "generator", "outcome", "requested", "delivered", "real"]
    rows = []
    for path in sorted(Path(output_folder).glob("*/mix.csv")):
        if datasets and path.parent.name not in datasets:
            continue
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        classes = [c for c in frame.columns if " = " in c]
        if frame.empty or not classes or "rows" not in frame:
            continue
        real = frame[frame["rows"] == "real"]
        real_text = _shares(real.iloc[0], classes) if len(real) else ""
        outcome = classes[0].rpartition(" = ")[0]
        asked = frame[frame["rows"] == "requested"]
        for i, row in asked.iterrows():
            got = frame.loc[i + 1] if i + 1 in frame.index and frame.at[i + 1, "rows"] == "delivered" else None
            rows.append(
                {
                    "dataset": path.parent.name,
                    "generator": row["generator"],
                    "outcome": outcome,
                    "requested": _shares(row, classes),
                    "delivered": _shares(got, classes) if got is not None else "",
                    "real": real_text,
                }
            )
    return pd.DataFrame(rows, columns=columns)


__all__ = ["AS_WRITTEN", "delivered_counts", "mix_frame", "mix_overview", "requested_counts"]
