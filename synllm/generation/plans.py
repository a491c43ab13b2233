"""One part of a run's rows: what its requests ask (prompt, grammar, schema), and how its answers are checked.

A plain run has one part, the free one. A conditioned run has one per condition, each
with its quota: its requests are written with the conditioned columns first and a
grammar (or schema) that allows only the condition's values; its answers are parsed in
that order, put back in card order, and every row that misses the condition is rejected
with reason ``condition`` (the safety net where no constraint reached the model).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from synllm.backends.base import GenerationRequest
from synllm.cards import Card
from synllm.generation.conditions import Condition, condition_mask, conditioned_card, restricted_card
from synllm.generation.constraints import to_gbnf, to_json_gbnf, to_json_schema
from synllm.generation.outputs import assemble_rows
from synllm.generation.parsing import ParsedText, Validation, parse_text, validate_rows
from synllm.generation.records import max_tokens_for, was_cut
from synllm.prompts import Prompt, render_prompt


@dataclass(slots=True)
class RunPart:
    """The rows of one condition (or of none): quota, cards, prompts and constraints per batch size."""

    card: Card
    condition: Condition | None
    quota: int
    prompt_type: str
    seed: int
    k_examples: int
    batch_size: int
    output: str
    train: pd.DataFrame = field(repr=False)
    #: Feedback of a later round: a corrections paragraph, and the real rows to show instead of a sample.
    corrections: str = ""
    shown: pd.DataFrame | None = field(default=None, repr=False)
    order_card: Card = field(init=False, repr=False)
    grammar_card: Card = field(init=False, repr=False)
    _prompts: dict[int, Prompt] = field(init=False, default_factory=dict, repr=False)
    _constraints: dict[int, tuple[str, Any, Any]] = field(init=False, default_factory=dict, repr=False)
    # progress while the run executes
    queued_rows: list[list[str]] = field(init=False, default_factory=list, repr=False)
    queued_origin: list[tuple[int, int]] = field(init=False, default_factory=list, repr=False)
    checked: list[tuple[list[tuple[int, int]], Validation]] = field(init=False, default_factory=list, repr=False)
    valid_count: int = field(init=False, default=0)
    rows_checked: int = field(init=False, default=0)
    requests: int = field(init=False, default=0)
    in_flight: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.order_card = conditioned_card(self.card, self.condition)
        self.grammar_card = restricted_card(self.card, self.condition)

    @property
    def label(self) -> str:
        """The condition's label (``stroke=1``), or ``""`` for free rows."""
        return self.condition.label if self.condition else ""

    def prompt(self, n_rows: int | None = None) -> Prompt:
        """The prompt asking for ``n_rows`` rows (default: the batch size) of this part."""
        n_rows = n_rows or self.batch_size
        if n_rows not in self._prompts:
            feedback: dict[str, Any] = {}  # only when given: a round without feedback renders as a one-shot run
            if self.corrections:
                feedback["corrections"] = self.corrections
            if self.shown is not None:
                feedback["examples"] = self.shown
            self._prompts[n_rows] = render_prompt(
                self.order_card,
                self.train,
                self.prompt_type,
                n_rows=n_rows,
                k_examples=self.k_examples,
                seed=self.seed,
                output=self.output,
                focus=self.condition.describe() if self.condition else None,
                class_column=self.card.target if self.condition else None,
                **feedback,
            )
        return self._prompts[n_rows]

    def constraints(self, n_rows: int) -> tuple[str, Any, Any]:
        """(GBNF grammar, patterned JSON schema, plain JSON schema) for an answer of ``n_rows`` rows."""
        if n_rows not in self._constraints:
            card, json_answer = self.grammar_card, self.output == "json"
            grammar = to_json_gbnf(card, n_rows) if json_answer else to_gbnf(card, n_rows)
            schema = to_json_schema(card, n_rows) if json_answer else None
            plain = to_json_schema(card, n_rows, patterns=False) if json_answer else None
            self._constraints[n_rows] = (grammar, schema, plain)
        return self._constraints[n_rows]

    def request(self, model: str, seed: int, options: Any) -> GenerationRequest:
        """The next request of this part: its prompt and constraints for :meth:`request_rows` rows.

        A JSON backend gets every form of the constraint and uses the strongest its server honours.
        """
        n = self.request_rows()
        prompt = self.prompt(n)
        grammar, schema, plain_schema = self.constraints(n)
        return GenerationRequest(
            model=model,
            prompt=prompt.text,
            system=prompt.system,
            grammar=grammar,
            json_schema=schema,
            plain_schema=plain_schema,
            seed=seed,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=options.max_tokens or max_tokens_for(self.card, n, self.output),
            num_ctx=options.num_ctx,
            timeout_s=options.timeout_s,
        )

    def parse(self, text: str, *, cut: bool = False) -> ParsedText:
        """Candidate rows of one answer, cells in the order this part asked for (``cut``: see ``parse_text``)."""
        return parse_text(text, self.order_card, cut=cut)

    def queue(self, record: dict[str, Any]) -> ParsedText:
        """Parse one cached answer and queue its rows for validation."""
        parsed = self.parse(record["text"], cut=was_cut(record))
        self.requests += 1
        self.queued_rows.extend(parsed.rows)
        self.queued_origin.extend((record["index"], i) for i in range(len(parsed.rows)))
        return parsed

    def validate_queued(self) -> None:
        """Validate every queued row in one call (pandas cost is per call, not per row)."""
        if self.queued_rows:
            checked = self.validate(self.queued_rows)
            self.checked.append((self.queued_origin, checked))
            self.valid_count += len(checked.valid)
            self.rows_checked += len(self.queued_rows)
            self.queued_rows, self.queued_origin = [], []

    @property
    def optimistic(self) -> int:
        """Valid rows so far, counting unchecked rows as valid."""
        return self.valid_count + len(self.queued_rows)

    def request_rows(self) -> int:
        """Rows one more request asks for: the batch size; for a condition, no more than it still needs."""
        if self.condition is None:
            return self.batch_size
        return max(1, min(self.batch_size, self.quota - self.optimistic))

    def expected_valid_per_request(self) -> float:
        """Valid rows one more request should bring, from this part's valid rate so far (at least 10 %)."""
        rate = self.valid_count / self.rows_checked if self.rows_checked else 1.0
        return self.request_rows() * max(rate, 0.1)

    def wants_request(self) -> bool:
        """True while the rows in flight (twice what is still needed, at the valid rate) fall short."""
        wanted = self.quota - self.optimistic
        return wanted > 0 and self.in_flight * self.expected_valid_per_request() < wanted * 2

    def counts(self, kept: int, rejected: pd.DataFrame) -> dict[str, Any]:
        """What the manifest records for this condition: requested and delivered rows, and how answers fared."""
        reasons = rejected.get("_reason", pd.Series(dtype=str)).astype(str)
        return {
            "condition": self.label,
            "column_values": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.condition.column_values.items()
            }
            if self.condition
            else {},
            "requested": self.quota,
            "delivered": kept,
            "requests": self.requests,
            "rows_valid": self.valid_count,
            "rows_outside_condition": int(reasons.str.startswith("condition:").sum()),
            "prompt_sha256": self.prompt().sha256,
        }

    def validate(self, rows: list[list[str]]) -> Validation:
        """Rows checked against the card and the condition; valid ones typed, in card column order.

        A row valid for the card but outside the condition is rejected with reason ``condition``.
        """
        checked = validate_rows(rows, self.order_card)
        names = self.card.synth_names
        valid = checked.valid[names]
        if self.condition is None:
            return Validation(valid, checked.rejected, checked.valid_positions, checked.rejected_positions)
        keep = condition_mask(valid, self.condition, self.card)
        if keep.all():
            return Validation(valid, checked.rejected, checked.valid_positions, checked.rejected_positions)
        missed = valid.loc[~keep].astype("string").copy()
        missed["_reason"] = f"condition: {self.label}"
        rejected = pd.concat([checked.rejected, missed], ignore_index=True)
        positions = checked.valid_positions
        return Validation(
            valid.loc[keep].reset_index(drop=True),
            rejected,
            tuple(p for p, k in zip(positions, keep) if k),
            checked.rejected_positions + tuple(p for p, k in zip(positions, keep) if not k),
        )


def run_parts(spec: Any, train: pd.DataFrame, output: str) -> list[RunPart]:
    """The parts of a :class:`~synllm.generation.spec.RunSpec`: one per condition (mix applied), or one free part."""
    conditions = spec.quotas(train) or (None,)
    options = spec.options
    return [
        RunPart(
            card=spec.card,
            condition=condition,
            quota=condition.num_rows if condition else spec.n_rows,
            prompt_type=spec.prompt_type,
            seed=spec.seed,
            k_examples=options.k_examples,
            batch_size=options.batch_size,
            output=output,
            train=train,
        )
        for condition in conditions
    ]


def assemble_parts(parts: list[RunPart], empty: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """(kept rows: each part's first ``quota`` valid rows in request order, part after part; rejected rows; counts)."""
    kept, rejected_parts, counts = [], [], []
    for part in parts:
        valid = assemble_rows([(o, c.valid, c.valid_positions) for o, c in part.checked], empty)
        rejected = assemble_rows([(o, c.rejected, c.rejected_positions) for o, c in part.checked], pd.DataFrame())
        kept.append(valid.iloc[: part.quota])
        rejected_parts.append(rejected)
        counts.append(part.counts(len(kept[-1]), rejected))
    rejected = pd.concat(rejected_parts, ignore_index=True) if len(rejected_parts) > 1 else rejected_parts[0]
    return pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True), rejected, counts


def run_prompt(parts: list[RunPart]) -> Prompt:
    """The prompt a run reports: a plain run's own; for conditions, the first part's with one hash over all parts.

    The hash covers every part's prompt text (and so the conditions and the class each names).
    """
    first = parts[0].prompt()
    if len(parts) == 1 and parts[0].condition is None:
        return first
    digest = hashlib.sha256("\n".join(f"{p.label}\n{p.prompt().sha256}" for p in parts).encode()).hexdigest()
    text = "\n\n".join(f"### rows with {p.condition.describe()}\n{p.prompt().text}" for p in parts if p.condition)
    return Prompt(first.prompt_type, first.title, first.system, text, first.examples, digest, first.template_version)
