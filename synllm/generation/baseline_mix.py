"""Baselines at a class mix or under conditions: one sampler per condition, fitted on the train rows that hold it.

An LLM run asked for 15 rows with ``stroke=1`` and 15 with ``stroke=0`` is compared with baselines
drawn the same way: a Gaussian copula fitted on the stroke = 1 train rows gives the 15 stroke rows,
one fitted on the stroke = 0 rows the other 15. Each condition's quota is drawn and validated on
its own (:func:`synllm.generation.baselines.validated_sample`), and a drawn row that misses its
condition counts as rejected, so every kept row holds its condition and the quotas are met exactly
unless most draws fail.

A condition that fewer than :data:`MIN_CONDITION_ROWS` train rows hold cannot be fitted: ``fit``
raises a :class:`~synllm.errors.MetricError` naming the condition, the rows found and the fix (a
sampler fitted on a handful of patients would replay them). A condition with a quota of 0 rows is
not fitted.

    >>> from synllm.dataset import load_dataset, split
    >>> from synllm.generation.class_mix import mix_conditions
    >>> table, card = load_dataset("stroke")
    >>> train, _ = split(table, card, random_state=0)
    >>> quotas = mix_conditions(card, "balanced", 30, train)
    >>> gen = ConditionedSampler("gaussian_copula", quotas).fit(train, card)
    >>> gen.sample(30, random_state=0)["stroke"].value_counts().sort_index().tolist()
    [15, 15]
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from synllm.cards import Card
from synllm.errors import MetricError
from synllm.generation.class_mix import largest_remainder
from synllm.generation.conditions import Condition, condition_mask

#: Fewest train rows a condition must hold for a baseline to be fitted on them.
MIN_CONDITION_ROWS = 5
#: Offset between the random states of a conditioned sampler's parts.
_PART_STRIDE = 104_729


class ConditionedSampler:
    """The baseline ``name`` fitted once per condition of ``quotas`` on the train rows that hold it.

    ``sample(n)`` splits ``n`` over the conditions in proportion to their quotas (largest remainder;
    at ``n`` = the quotas' total, exactly the quotas), in condition order. ``kwargs`` go to each
    part's :func:`~synllm.generation.baselines.get_baseline`.
    """

    def __init__(self, name: str, quotas: Sequence[Condition], *, min_rows: int = MIN_CONDITION_ROWS, **kwargs):
        if not quotas or sum(q.num_rows for q in quotas) <= 0:
            raise MetricError(f"conditioned baseline {name!r}: give at least one condition with rows to draw")
        self.name = name
        self.quotas = tuple(quotas)
        self.min_rows = min_rows
        self.kwargs = kwargs

    def fit(self, train: pd.DataFrame, card: Card) -> ConditionedSampler:
        """Fit one sampler per condition with a quota on the ``train`` rows that satisfy it."""
        from synllm.generation.baselines import get_baseline

        parts: list[tuple[Condition, object]] = []
        used = pd.Series(False, index=train.index)
        for condition in self.quotas:
            if condition.num_rows == 0:
                continue
            mask = condition_mask(train, condition, card)
            if int(mask.sum()) < self.min_rows:
                raise MetricError(
                    f"baseline {self.name!r} at condition {condition.label}: {int(mask.sum())} train row(s) hold it, "
                    f"fewer than the {self.min_rows} a sampler is fitted on; widen the condition, drop it, or "
                    "score on more train rows (eval_max_rows)"
                )
            parts.append((condition, get_baseline(self.name, **self.kwargs).fit(train.loc[mask], card)))
            used |= mask
        self.card_ = card
        self.parts_ = parts
        self.exposed_ = train.loc[used.to_numpy()]
        return self

    def counts(self, n: int) -> list[int]:
        """Rows of each fitted part for a draw of ``n`` rows (largest remainder over the quotas)."""
        self._check_fitted()
        return largest_remainder([c.num_rows for c, _ in self.parts_], n)

    def sample(self, n: int, random_state: int = 0) -> pd.DataFrame:
        """``n`` rows, each part's share drawn from its own sampler (rows of a part hold its condition
        as far as the sampler keeps to its train rows; :meth:`validated_quotas` checks it)."""
        frames = [
            generator.sample(k, random_state=random_state + _PART_STRIDE * i)
            for i, ((_, generator), k) in enumerate(zip(self.parts_, self.counts(n)))
        ]
        return pd.concat(frames, ignore_index=True)

    def validated_quotas(
        self, n: int, card: Card, *, random_state: int = 0, max_draws: int = 5
    ) -> tuple[pd.DataFrame, float]:
        """(each part's share of ``n`` rows that pass the validator and hold its condition, share of drawn
        rows that did), the parts in condition order."""
        from synllm.generation.baselines import validated_draws

        kept, valid, drawn = [], 0, 0
        for i, ((condition, generator), k) in enumerate(zip(self.parts_, self.counts(n))):
            if k == 0:
                continue
            rows, found, tried = validated_draws(
                generator, k, card, random_state=random_state + _PART_STRIDE * i, max_draws=max_draws,
                condition=condition,
            )  # fmt: skip
            kept.append(rows)
            valid, drawn = valid + found, drawn + tried
        frame = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=card.synth_names)
        return frame, valid / drawn if drawn else float("nan")

    def _check_fitted(self) -> None:
        if not hasattr(self, "parts_"):
            raise MetricError(f"conditioned baseline {self.name!r}: call fit(train, card) before sample(n)")


__all__ = ["MIN_CONDITION_ROWS", "ConditionedSampler"]
