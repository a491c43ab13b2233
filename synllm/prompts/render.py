"""Render the four SynLLM prompt types from a card and a training split.

Wording lives in ``templates.yaml`` beside this file; this module only assembles blocks:
column definitions, statistics, association hints, rules and example rows.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from synllm.cards import Card, Column
from synllm.dataset.schema import format_row, format_value, row_format
from synllm.errors import TemplateError
from synllm.prompts.summary import number_text, training_summary

PROMPT_TYPES = ("p1", "p2", "p3", "p4")
TEMPLATES_FILE = Path(__file__).with_name("templates.yaml")


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered prompt: exact text, the real rows it shows, and its stable hash."""

    prompt_type: str
    title: str
    system: str
    text: str
    examples: pd.DataFrame
    sha256: str
    template_version: int

    def __str__(self) -> str:
        return f"[system]\n{self.system}\n\n[user]\n{self.text}"


@lru_cache(maxsize=1)
def load_templates() -> dict[str, Any]:
    """The prompt wording (parsed YAML); checked for required keys."""
    path = TEMPLATES_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "system", "blocks", "types"):
        if key not in data:
            raise TemplateError(f"{path}: missing key {key!r}")
    for ptype, spec in data["types"].items():
        unknown = [b for b in spec["blocks"] if b not in data["blocks"]]
        if unknown:
            raise TemplateError(f"{path}: prompt type {ptype!r} uses unknown block(s) {unknown}")
    return data


def prompt_info(prompt_type: str) -> dict[str, str]:
    """Title, one-line summary and a student-level explanation of a prompt type."""
    spec = _type_spec(prompt_type)
    return {"type": prompt_type, "title": spec["title"], "summary": spec["summary"], "explain": spec["explain"]}


def render_prompt(
    card: Card,
    train: pd.DataFrame,
    prompt_type: str,
    *,
    n_rows: int = 20,
    k_examples: int = 5,
    seed: int = 0,
    output: str = "csv",
) -> Prompt:
    """Render one prompt type. P1–P3 show ``k_examples`` train rows sampled with ``seed``; P4 none.

    ``output`` is how the model is asked to answer: ``"csv"`` lines (grammar-constrained
    backends) or ``"json"`` arrays (JSON-schema backends such as Ollama).
    """
    if output not in ("csv", "json"):
        raise TemplateError(f"output must be 'csv' or 'json', got {output!r}")
    templates = load_templates()
    spec = _type_spec(prompt_type)
    blocks = ["format_json" if b == "format" and output == "json" else b for b in spec["blocks"]]
    examples = sample_examples(train, card, k_examples, seed) if "examples" in blocks else train.iloc[0:0]
    values = {
        "domain": card.domain,
        "header": row_format(card),
        "missing_token": card.missing_token,
        "missing_notes": " ".join(card.missing_notes.split()),
        "n_rows": str(n_rows),
    }
    if "examples" in blocks:
        render = format_row if output == "csv" else json_row
        values["example_rows"] = "\n".join(render(r, card) for r in examples.to_dict("records"))
    if "definitions" in blocks:
        values["definition_lines"] = "\n".join(definition_line(c) for c in card.synth_columns)
    if "statistics" in blocks:
        stats, hints = training_summary(train, card)
        values["statistic_lines"] = "\n".join(stats)
        values["association_lines"] = "\n".join(f"- {h}" for h in hints)
    if "rules" in blocks:
        values["rule_lines"] = "\n".join(f"{i}. {r.statement}" for i, r in enumerate(card.rules, 1))
    text = "\n\n".join(_substitute(templates["blocks"][b], values, b) for b in blocks)
    system = _substitute(templates["system"], values, "system")
    digest = hashlib.sha256(f"{system}\n\n{text}".encode()).hexdigest()
    return Prompt(
        prompt_type, spec["title"], system, text, examples.reset_index(drop=True), digest, templates["version"]
    )


def sample_examples(train: pd.DataFrame, card: Card, k: int, seed: int) -> pd.DataFrame:
    """``k`` train rows (card columns, identifiers dropped) drawn with ``seed``."""
    k = min(k, len(train))
    rows = train.sample(n=k, random_state=seed) if k else train.iloc[0:0]
    return rows[card.synth_names]


def json_row(row: dict[str, Any], card: Card) -> str:
    """A row as a compact JSON array, as JSON-schema backends are asked to answer."""
    cells: list[Any] = []
    for col in card.synth_columns:
        value = row.get(col.name)
        if value is None or pd.isna(value):
            cells.append(None)
        elif col.is_numeric or col.has_numeric_categories:
            text = format_value(value, col, card)
            cells.append(int(text) if col.decimals == 0 or col.has_numeric_categories else float(text))
        else:
            cells.append(str(value))
    return json.dumps(cells, ensure_ascii=False)


def definition_line(col: Column) -> str:
    """One line describing a column for P2–P4, with what a missing value means when the card says."""
    parts = [col.kind.value]
    if col.unit:
        parts.append(col.unit)
    if col.is_numeric and col.range:
        lo, hi = col.range
        parts.append(f"range {number_text(lo)} to {number_text(hi)}")
    if col.is_categorical:
        parts.append("one of " + ", ".join(str(c) for c in col.categories))
    if col.nullable:
        parts.append(f"may be missing: {' '.join(col.missing.split())}" if col.missing else "may be missing")
    return f"- {col.name}: {col.description} ({'; '.join(parts)})"


def _type_spec(prompt_type: str) -> dict[str, Any]:
    types = load_templates()["types"]
    if prompt_type not in types:
        raise TemplateError(f"unknown prompt type {prompt_type!r}; choose one of {sorted(types)}")
    return types[prompt_type]


def _substitute(template: str, values: dict[str, str], where: str) -> str:
    try:
        return string.Template(template).substitute(values).strip()
    except KeyError as exc:
        raise TemplateError(f"prompt block {where!r} needs variable ${exc.args[0]}, which was not provided") from None
