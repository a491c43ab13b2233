"""A small, private stand-in for ``synllm.generation.feedback`` (same interface), to test the round machinery.

It measures the mean gap of each numeric column against ``train``, writes one plain sentence
per column that is too low or too high, shows the train rows farthest (in age) from every
kept row, and adds no condition unless told to. Every frame it receives is kept in ``calls``
so a test can check what the feedback read. :func:`install` puts it in place of the real
module (and, while ``render_prompt`` does not yet take ``corrections`` and ``examples``, wraps
it to append the corrections and show the given examples).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from dataclasses import dataclass, field, replace

import pandas as pd

from synllm.generation import plans
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
        super().__init__("synllm.generation.feedback")
        self.calls: list[tuple[str, str, pd.DataFrame]] = []
        self.add_conditions = add_conditions
        self.Gaps = Gaps

    def measure_gaps(self, rows: pd.DataFrame, train: pd.DataFrame, card) -> Gaps:
        self.calls += [("measure_gaps", "rows", rows), ("measure_gaps", "train", train)]
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


def _render_with_feedback(real):
    """``render_prompt`` taking ``corrections`` and ``examples``: the stand-in's way, until the real one does."""

    def render(card, train, prompt_type, *, corrections: str = "", examples=None, **kw):
        if examples is not None:
            train, kw = examples, {**kw, "k_examples": len(examples)}
        prompt = real(card, train, prompt_type, **kw)
        if not corrections:
            return prompt
        text = f"{prompt.text}\n\n{corrections}"
        digest = hashlib.sha256(f"{prompt.system}\n\n{text}".encode()).hexdigest()
        return replace(prompt, text=text, sha256=digest)

    return render


def install(monkeypatch, **kw) -> StandIn:
    """Put a fresh stand-in in place of ``synllm.generation.feedback`` for one test; returns it."""
    standin = StandIn(**kw)
    monkeypatch.setitem(sys.modules, "synllm.generation.feedback", standin)
    if "corrections" not in inspect.signature(plans.render_prompt).parameters:
        monkeypatch.setattr(plans, "render_prompt", _render_with_feedback(plans.render_prompt))
    return standin
