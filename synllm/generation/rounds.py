"""Feedback rounds: one run's row budget spread over ``k`` rounds, each later round asked with its gaps corrected.

A run with ``rounds=k`` splits its ``n_rows`` over the rounds by largest remainder (a
condition's rows too, each round's total within one row of the others). Round 1 asks
exactly what a one-shot run asks. Before round ``r >= 2``, the rows kept so far are
measured against **train** only (never a holdout, which scoring needs untouched) by the
feedback functions the caller passes in (``synllm.metrics.feedback``, from a layer above
generation: ``measure_gaps``, ``corrections_paragraph``, ``worst_covered_examples`` and
``feedback_conditions``), and the round's request changes:

- every prompt type gets a corrections paragraph (its wording in ``templates.yaml``);
- P1-P3 show the train rows the kept rows cover worst instead of a random sample;
  P4 shows no row in any round (its corrections are aggregates);
- without a user's conditions or class mix, conditions that fill under-represented
  classes take part of the round's rows (the rest stays free). **A user's conditions or
  class mix win**: their quotas are kept in every round and no feedback condition is added.

Everything here is a pure function of the kept rows, ``train`` and the spec, so a resumed
run measures the same gaps and asks the same prompts (its cache is per round and prompt hash).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.errors import InvalidArgument
from synllm.generation.class_mix import reference_mix
from synllm.generation.conditions import Condition, check_conditions
from synllm.generation.outputs import row_flags
from synllm.generation.plans import RunPart, assemble_parts
from synllm.prompts import Prompt

#: What one round fills: (condition or None for free rows, rows).
Quota = tuple[Condition | None, int]


def split_rows(total: int, rounds: int) -> list[int]:
    """``total`` rows over ``rounds`` rounds by largest remainder (equal shares; earlier rounds take the extra).

    >>> split_rows(10, 3)
    [4, 3, 3]
    """
    base, extra = divmod(total, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def round_quotas(quotas: Sequence[Quota], rounds: int) -> list[list[Quota]]:
    """Each quota's rows spread over ``rounds``: per round, the quotas it fills (none of zero rows).

    A quota's extra rows go to the rounds with the fewest rows so far, so every round's total is
    within one row of the others'.

    >>> [[rows for _, rows in r] for r in round_quotas([(None, 5)], 2)]
    [[3], [2]]
    """
    totals = [0] * rounds
    plan: list[list[Quota]] = [[] for _ in range(rounds)]
    for condition, rows in quotas:
        base, extra = divmod(rows, rounds)
        shares = [base] * rounds
        for r in sorted(range(rounds), key=lambda r: (totals[r], r))[:extra]:
            shares[r] += 1
        for r, share in enumerate(shares):
            totals[r] += share
            if share:
                plan[r].append((condition, share))
    return plan


#: The functions a feedback provides (``synllm.metrics.feedback`` has them all).
FEEDBACK_FUNCTIONS = ("measure_gaps", "corrections_paragraph", "worst_covered_examples", "feedback_conditions")


def check_feedback(feedback: Any, rounds: int) -> Any:
    """``feedback`` when ``rounds`` needs it and it has every function of :data:`FEEDBACK_FUNCTIONS`."""
    if rounds == 1:
        return feedback
    if feedback is None:
        raise InvalidArgument(
            f"rounds={rounds} needs feedback functions: pass feedback=synllm.metrics.feedback "
            "(the command line and the study notebook pass it for you), or leave rounds at 1"
        )
    if missing := [name for name in FEEDBACK_FUNCTIONS if not callable(getattr(feedback, name, None))]:
        raise InvalidArgument(f"feedback {feedback!r} lacks {missing}; pass synllm.metrics.feedback")
    return feedback


@dataclass(frozen=True, slots=True)
class RoundFeedback:
    """What drives one round's request: the gaps measured, the corrections, the rows shown, added conditions."""

    gaps: Mapping[str, Any] | None = None
    corrections: str = ""
    examples: pd.DataFrame | None = None
    conditions: tuple[Condition, ...] = ()


def measure_feedback(
    feedback: Any,
    kept: pd.DataFrame,
    train: pd.DataFrame,
    card: Card,
    *,
    rows: int,
    k_examples: int,
    shows_examples: bool,
    add_conditions: bool,
    random_state: int,
    outcome_mix: Mapping[str, float] | None = None,
) -> RoundFeedback:
    """A round's feedback (``rows`` rows) from the rows ``kept`` so far, by ``feedback``, against ``train`` only.

    ``shows_examples`` False (P4, or ``k_examples`` 0) shows no row; ``add_conditions`` False
    (the user chose conditions or a class mix) adds no condition. ``outcome_mix`` (the class mix a user
    asked for, class -> rows; see :func:`asked_mix`) is the outcome mix the gaps aim at instead of train's.
    """
    mix = {"outcome_mix": outcome_mix} if outcome_mix else {}  # only when asked: any feedback takes the call
    gaps = feedback.measure_gaps(kept, train, card, **mix)
    corrections = feedback.corrections_paragraph(gaps, card)
    examples = None
    if shows_examples and k_examples:
        examples = feedback.worst_covered_examples(train, kept, card, k_examples, random_state=random_state)
    conditions: tuple[Condition, ...] = ()
    if add_conditions:
        conditions = _fitted(check_conditions(feedback.feedback_conditions(gaps, card, rows) or (), card), rows)
    return RoundFeedback(gaps.to_dict(), corrections, examples, conditions)


def asked_mix(spec: Any, train: pd.DataFrame) -> dict[str, float] | None:
    """Rows per target class a run's class mix asks for (None without a mix, or for the real one)."""
    if spec.class_mix is None:
        return None
    counts = [
        {"column_values": {k: list(v) if isinstance(v, tuple) else v for k, v in c.column_values.items()},
         "requested": c.num_rows}
        for c in spec.quotas(train)
    ]  # fmt: skip
    return reference_mix(spec.card, spec.class_mix, counts)


def _fitted(conditions: Sequence[Condition], rows: int) -> tuple[Condition, ...]:
    """The conditions, in order, cut so their rows add up to at most ``rows`` (none of zero rows)."""
    fitted, left = [], rows
    for condition in conditions:
        take = min(condition.num_rows, left)
        if take:
            fitted.append(replace(condition, num_rows=take))
            left -= take
    return tuple(fitted)


def round_parts(
    spec: Any, train: pd.DataFrame, output: str, quotas: Sequence[Quota], feedback: RoundFeedback | None = None
) -> list[RunPart]:
    """The parts of one round: its quotas (free rows first), feedback conditions taking free rows, and feedback."""
    feedback = feedback or RoundFeedback()
    quotas = list(quotas)
    if feedback.conditions:
        free = sum(rows for condition, rows in quotas if condition is None)
        added = _fitted(feedback.conditions, free)
        left = free - sum(c.num_rows for c in added)
        quotas = [q for q in quotas if q[0] is not None] + [(c, c.num_rows) for c in added]
        quotas = ([(None, left)] if left else []) + quotas
    options = spec.options
    return [
        RunPart(
            card=spec.card,
            condition=replace(condition, num_rows=rows) if condition else None,
            quota=rows,
            prompt_type=spec.prompt_type,
            seed=spec.seed,
            k_examples=options.k_examples,
            batch_size=options.batch_size,
            output=output,
            train=train,
            corrections=feedback.corrections,
            shown=feedback.examples,
        )
        for condition, rows in quotas
    ]


def round_entry(
    number: int, parts: Sequence[RunPart], prompt_sha256: str, feedback: RoundFeedback, *, kept: int, first_row: int
) -> dict[str, Any]:
    """What the manifest records of one round: its prompt hashes, the gaps that drove it and the rows it kept."""
    return {
        "round": number,
        "requested": sum(p.quota for p in parts),
        "rows_kept": kept,
        "first_row": first_row,
        "requests": sum(p.requests for p in parts),
        "rows_valid": sum(p.valid_count for p in parts),
        "prompt_sha256": prompt_sha256,
        "part_prompt_sha256": {p.label: p.prompt().sha256 for p in parts},
        "conditions": [{"condition": p.label, "requested": p.quota} for p in parts if p.condition],
        "examples_shown": 0 if feedback.examples is None else len(feedback.examples),
        "corrections": feedback.corrections,
        "gaps": feedback.gaps,
    }


def rows_by_round(rows: pd.DataFrame, counts: Sequence[int]) -> list[pd.DataFrame]:
    """The cumulative rows after each round: ``rows`` (in round order) cut after each round's ``counts``.

    >>> [len(t) for t in rows_by_round(pd.DataFrame({"a": range(5)}), [2, 3])]
    [2, 5]
    """
    ends, total = [], 0
    for count in counts:
        total += int(count)
        ends.append(total)
    return [rows.iloc[:end].reset_index(drop=True) for end in ends]


def merged_condition_counts(per_round: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per condition, its counts summed over the rounds (first round's order; the last round's prompt hash)."""
    summed = ("requested", "delivered", "requests", "rows_valid", "rows_outside_condition")
    merged: dict[str, dict[str, Any]] = {}
    for counts in per_round:
        for count in counts:
            into = merged.setdefault(count["condition"], dict(count, **dict.fromkeys(summed, 0)))
            for key in summed:
                into[key] += count[key]
            into["prompt_sha256"] = count["prompt_sha256"]
    return list(merged.values())


def round_budget(spec: Any, parts: Sequence[RunPart], number: int) -> int:
    """Most requests round ``number`` makes: its share of ``max_requests`` (at least one), or enough for a 25 %
    valid rate on each part's rows plus two."""
    if spec.max_requests:
        return max(1, split_rows(spec.max_requests, spec.rounds)[number - 1])
    return sum(4 * math.ceil(p.quota / spec.options.batch_size) for p in parts) + 2


@dataclass(slots=True)
class FinishedRound:
    """One round once it has ended: its parts, prompt, answers (request order), feedback and rows."""

    number: int
    parts: list[RunPart]
    prompt: Prompt
    records: list[dict[str, Any]]
    feedback: RoundFeedback
    kept: pd.DataFrame
    rejected: pd.DataFrame
    counts: list[dict[str, Any]]
    max_requests: int = 0
    shown: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def requested(self) -> int:
        """Rows the round asked for."""
        return sum(p.quota for p in self.parts)


def finish_round(
    number: int,
    parts: list[RunPart],
    prompt: Prompt,
    records: Mapping[int, dict[str, Any]],
    *,
    feedback: RoundFeedback,
    empty: pd.DataFrame,
) -> FinishedRound:
    """End a round: validate what is queued and keep each part's first ``quota`` valid rows in request order."""
    for part in parts:
        part.validate_queued()
    kept, rejected, counts = assemble_parts(parts, empty)
    shown = pd.concat([p.prompt().examples for p in parts], ignore_index=True).drop_duplicates()
    ordered = [records[i] for i in sorted(records)]
    return FinishedRound(number, parts, prompt, ordered, feedback, kept, rejected, counts, shown=shown)


def combine_rounds(
    done: Sequence[FinishedRound], card: Card, *, with_rounds: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """(kept rows in round order, rejected rows, per-row flags, rows returned) of a run's finished rounds.

    Flags: ``duplicate`` (over the whole run), ``echo`` (copies a row its own round showed), ``request``;
    ``with_rounds`` adds ``round`` (and a ``_round`` column to the rejected rows).
    """
    names = card.synth_names
    returned = sum(p.valid_count for r in done for p in r.parts) + sum(len(r.rejected) for r in done)
    if not with_rounds:
        (only,) = done
        synthetic = only.kept
        flags = row_flags(synthetic[names], only.prompt.examples, card)
        flags["request"] = synthetic.get("_request", pd.Series(dtype="Int64")).to_numpy()
        return synthetic, only.rejected, flags, returned
    synthetic = pd.concat([r.kept for r in done], ignore_index=True)
    flags = row_flags(synthetic[names], synthetic.iloc[0:0][names], card)
    flags["echo"] = np.concatenate(
        [np.zeros(0, dtype=bool)] + [row_flags(r.kept[names], r.shown, card)["echo"].to_numpy() for r in done]
    )
    flags["request"] = pd.array(
        [i for r in done for i in r.kept.get("_request", pd.Series(dtype="Int64"))], dtype="Int64"
    ).to_numpy()
    flags["round"] = np.repeat([r.number for r in done], [len(r.kept) for r in done])
    rejected = [r.rejected.assign(_round=r.number) for r in done if len(r.rejected)]
    return synthetic, pd.concat(rejected, ignore_index=True) if rejected else done[0].rejected, flags, returned


def run_prompt_of(done: Sequence[FinishedRound], *, with_rounds: bool) -> Prompt:
    """The prompt a run reports: round 1's; with rounds, its ``examples`` every real row any round showed."""
    first = done[0].prompt
    if not with_rounds:
        return first
    shown = pd.concat([r.shown for r in done], ignore_index=True).drop_duplicates().reset_index(drop=True)
    return replace(first, examples=shown)


def round_entries(done: Sequence[FinishedRound]) -> list[dict[str, Any]]:
    """The manifest's ``rounds``: one :func:`round_entry` per finished round, with its request budget."""
    entries, first_row = [], 0
    for r in done:
        entry = round_entry(r.number, r.parts, r.prompt.sha256, r.feedback, kept=len(r.kept), first_row=first_row)
        entries.append({**entry, "max_requests": r.max_requests})
        first_row += len(r.kept)
    return entries
