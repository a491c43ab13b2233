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
from synllm.cards.rules import target_values
from synllm.dataset.schema import format_row, format_value, row_format
from synllm.errors import InvalidArgument, TemplateError
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
    focus: str | None = None,
    class_column: str | None = None,
    corrections: str = "",
    examples: pd.DataFrame | None = None,
) -> Prompt:
    """Render one prompt type. P1–P3 show ``k_examples`` train rows sampled with ``seed``; P4 none.

    ``output`` is how the model is asked to answer: ``"csv"`` lines (grammar-constrained
    backends) or ``"json"`` arrays (JSON-schema backends such as Ollama). ``focus`` names the
    patients the request asks for (``stroke = 1``). With ``class_column`` (the card's target),
    the examples are balanced over its classes and shown grouped by class (EPIC,
    arXiv 2404.12404); P4 still shows none.

    Feedback between rounds (:mod:`synllm.metrics.feedback`): ``corrections`` is a paragraph placed
    where the type's blocks say (``corrections``); ``examples`` are train rows shown instead of the
    sampled ones (P1–P3; P4 shows no row, so passing any is an error). With neither, the prompt is
    exactly the one-shot prompt.
    """
    if output not in ("csv", "json"):
        raise TemplateError(f"output must be 'csv' or 'json', got {output!r}")
    templates = load_templates()
    spec = _type_spec(prompt_type)
    blocks = ["format_json" if b == "format" and output == "json" else b for b in spec["blocks"]]
    if examples is not None and "examples" not in blocks:
        raise InvalidArgument(
            f"prompt type {prompt_type!r} shows no real rows, so it takes no examples; pass examples=None"
        )
    corrections = str(corrections or "").strip()
    if not corrections:
        blocks = [b for b in blocks if b != "corrections"]
    if focus:
        blocks = [f"{b}_for" if b in ("request", "request_no_copy") else b for b in blocks]
    groups: list[tuple[str, pd.DataFrame]] = []
    if "examples" in blocks and class_column:
        if examples is None:
            groups = balanced_examples(train, card, k_examples, seed)
        else:
            groups = grouped_examples(examples[card.synth_names], card)
        blocks = ["examples_by_class" if b == "examples" else b for b in blocks]
        examples = pd.concat([g for _, g in groups]) if groups else train.iloc[0:0][card.synth_names]
    elif "examples" in blocks:
        examples = sample_examples(train, card, k_examples, seed) if examples is None else examples[card.synth_names]
    else:
        examples = train.iloc[0:0]
    values = {
        "domain": card.domain,
        "header": row_format(card),
        "missing_token": card.missing_token,
        "missing_notes": " ".join(card.missing_notes.split()),
        "n_rows": str(n_rows),
        "focus": focus or "",
        "corrections": corrections,
    }
    render = format_row if output == "csv" else json_row
    if "examples" in blocks:
        values["example_rows"] = "\n".join(render(r, card) for r in examples.to_dict("records"))
    if "examples_by_class" in blocks:
        heading = templates["blocks"]["example_group"]
        values["example_groups"] = "\n".join(
            _substitute(heading, {"group": label}, "example_group")
            + "\n"
            + "\n".join(render(r, card) for r in rows.to_dict("records"))
            for label, rows in groups
        )
    if "definitions" in blocks:
        values["definition_lines"] = "\n".join(definition_line(c) for c in card.synth_columns)
    if "statistics" in blocks:
        stats, hints = training_summary(train, card)
        values["statistic_lines"] = "\n".join(stats)
        values["association_lines"] = "\n".join(f"- {h}" for h in hints)
    if "rules" in blocks:
        values["rule_lines"] = "\n".join(f"{i}. {r.statement}" for i, r in enumerate(card.rules, 1))
    text = "\n\n".join(_substitute(_block(templates, b), values, b) for b in blocks)
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


def balanced_examples(train: pd.DataFrame, card: Card, k: int, seed: int) -> list[tuple[str, pd.DataFrame]]:
    """``k`` train rows split evenly over the target's classes (as ``target_values`` gives them), drawn with ``seed``.

    Returns ``(class label, rows)`` per class present, in class order; a class with fewer rows
    than its share shows all it has. The label reads ``stroke = 1`` (or the card's
    ``target_positive`` expression, negated for the other class).
    """
    labels = target_values(train, card)
    classes = sorted(labels.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    if not classes or k <= 0:
        return []
    if card.target_positive:
        classes = sorted(classes, reverse=True)
    shares = [k // len(classes) + (1 if i < k % len(classes) else 0) for i in range(len(classes))]
    groups = []
    for cls, share in zip(classes, shares):
        rows = train.loc[labels.eq(cls).fillna(False).to_numpy(dtype=bool)]
        take = min(share, len(rows))
        if take:
            groups.append((_class_words(card, cls), rows.sample(n=take, random_state=seed)[card.synth_names]))
    return groups


def grouped_examples(examples: pd.DataFrame, card: Card) -> list[tuple[str, pd.DataFrame]]:
    """Given example rows grouped by the target's class, in the order :func:`balanced_examples` shows them."""
    labels = target_values(examples, card)
    classes = sorted(labels.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    if card.target_positive:
        classes = sorted(classes, reverse=True)
    masks = [(cls, labels.eq(cls).fillna(False).to_numpy(dtype=bool)) for cls in classes]
    return [(_class_words(card, cls), examples.loc[mask]) for cls, mask in masks]


def _class_words(card: Card, cls: Any) -> str:
    if card.target_positive:
        expression = " ".join(card.target_positive.split())
        return expression if cls == 1 else f"not ({expression})"
    column = card.column(card.target)
    return f"{card.target} = {format_value(cls, column, card)}"


def _block(templates: dict[str, Any], name: str) -> str:
    if name not in templates["blocks"]:
        raise TemplateError(f"{TEMPLATES_FILE}: missing prompt block {name!r}")
    return templates["blocks"][name]


def json_row(row: dict[str, Any], card: Card) -> str:
    """A row as a compact JSON array, in the form JSON-schema backends are asked to answer.

    Numbers are strings written as the card formats them (``"67.00"``), as the range-exact
    schema asks (see :func:`synllm.generation.constraints.to_json_schema`); a missing value is null.
    """
    cells: list[Any] = []
    for col in card.synth_columns:
        value = row.get(col.name)
        if value is None or pd.isna(value):
            cells.append(None)
        elif col.is_numeric:
            cells.append(format_value(value, col, card))
        elif col.has_numeric_categories:
            cells.append(int(format_value(value, col, card)))
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
