"""A small, private stand-in for ``synllm.metrics.feedback`` (same interface), to test the round machinery.

It measures the mean gap of each numeric column against ``train``, writes one plain sentence
per column that is too low or too high, shows the train rows farthest (in age) from every
kept row, and adds no condition unless told to. Every frame it receives is kept in ``calls``
so a test can check what the feedback read; a run gets it as ``feedback=``.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import pandas as pd

from synllm.generation.conditions import Condition

#: The sentence :func:`corrections_paragraph` writes for a column whose mean is too low.
TOO_LOW = "{name} is too low: mean {got:.1f} against {want:.1f}"


@dataclass(frozen=True)
class Gaps:
    mean_gap: dict = field(default_factory=dict)  # column -> (synthetic mean, train mean)
    under: dict = field(default_factory=dict)  # target class -> share missing

    def to_dict(self) -> dict:
        return {"mean_gap": {k: list(v) for k, v in self.mean_gap.items()}, "under": dict(self.under)}


class StandIn(types.ModuleType):
    """The stand-in module; ``calls`` records (function, argument name, frame) for every frame it read."""

    def __init__(self, *, add_conditions: bool = False) -> None:
        super().__init__("feedback_standin")
        self.calls: list[tuple[str, str, pd.DataFrame]] = []
        self.outcome_mixes: list = []  # the outcome_mix each measure_gaps call was given (None: train's)
        self.add_conditions = add_conditions
        self.Gaps = Gaps

    def measure_gaps(self, rows: pd.DataFrame, train: pd.DataFrame, card, **kw) -> Gaps:
        self.calls += [("measure_gaps", "rows", rows), ("measure_gaps", "train", train)]
        self.outcome_mixes.append(kw.get("outcome_mix"))
        gaps = {}
        for column in card.synth_columns:
            if column.is_numeric and column.name in rows:
                got, want = (
                    float(rows[column.name].astype(float).mean()),
                    float(train[column.name].astype(float).mean()),
                )
                if abs(got - want) > 0.1 * max(abs(want), 1e-9):
                    gaps[column.name] = (round(got, 3), round(want, 3))
        under = {}
        if card.target:
            share = rows[card.target].astype(float).mean() if len(rows) else 0.0
            real = train[card.target].astype(float).mean()
            if share < real:
                under["1"] = round(real - share, 4)
        return Gaps(gaps, under)

    def corrections_paragraph(self, gaps: Gaps, card, *, max_items: int = 5) -> str:
        lines = []
        for name, (got, want) in list(gaps.mean_gap.items())[:max_items]:
            template = TOO_LOW if got < want else "{name} is too high: mean {got:.1f} against {want:.1f}"
            lines.append(template.format(name=name, got=got, want=want))
        return "Corrections: " + "; ".join(lines) + "." if lines else ""

    def worst_covered_examples(self, train, rows, card, k, *, random_state):
        self.calls += [("worst_covered_examples", "train", train), ("worst_covered_examples", "rows", rows)]
        ages = rows["age"].astype(float).to_numpy()
        distance = train["age"].astype(float).map(lambda a: min(abs(a - ages)) if len(ages) else 0.0)
        order = distance.sort_values(ascending=False, kind="stable").index[:k]
        return train.loc[order, card.synth_names]

    def feedback_conditions(self, gaps: Gaps, card, n_rows: int) -> list[Condition]:
        if not self.add_conditions or not gaps.under:
            return []
        return [Condition(column_values={card.target: 1}, num_rows=max(1, n_rows // 2))]


class Spy:
    """Wraps a feedback (the real ``synllm.metrics.feedback``): the same answers, every frame read kept in ``calls``."""

    def __init__(self, feedback) -> None:
        self.feedback, self.calls = feedback, []

    def measure_gaps(self, rows, train, card):
        self.calls += [("measure_gaps", "rows", rows), ("measure_gaps", "train", train)]
        return self.feedback.measure_gaps(rows, train, card)

    def corrections_paragraph(self, gaps, card, **kw):
        return self.feedback.corrections_paragraph(gaps, card, **kw)

    def worst_covered_examples(self, train, rows, card, k, *, random_state):
        self.calls += [("worst_covered_examples", "train", train), ("worst_covered_examples", "rows", rows)]
        return self.feedback.worst_covered_examples(train, rows, card, k, random_state=random_state)

    def feedback_conditions(self, gaps, card, n_rows):
        return self.feedback.feedback_conditions(gaps, card, n_rows)
