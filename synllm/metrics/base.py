"""The metric contract: every metric is ``(train, synthetic, ctx) -> MetricResult``.

As in SDMetrics, a metric carries its goal and bounds, reports a raw value in natural
units and a score normalised to [0, 1] where 1 is best, with a breakdown per column,
rule or pair. A metric that cannot run returns NaN with the reason in ``skipped``,
never 1.0: with ``rows_failed=True`` when the synthetic rows lack what real rows have
(:meth:`MetricSpec.fail`), with ``applicable=False`` when the metric does not apply to this
table at all (no example rows to echo, no exposed record to attack), otherwise because the
data are too few or too thin for it. No metric mutates its inputs.

A spec also says how many synthetic rows the metric needs to mean anything
(``min_rows``; :func:`synllm.metrics.evaluate` skips it below that), whether it enters
its family's score (``headline``) and how it differs from SDMetrics' metric of the same
idea (``sdmetrics``), so reports can say so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import pandas as pd

from synllm.cards import Card
from synllm.errors import MetricError


class Goal(StrEnum):
    """Which direction of the raw value is better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


FAMILIES = ("fidelity", "consistency", "privacy", "utility")


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalContext:
    """What a metric may know beyond train and synthetic rows."""

    card: Card
    holdout: pd.DataFrame
    examples: pd.DataFrame | None = None  # rows shown in the prompt, if any
    exposed: pd.DataFrame | None = None  # real rows the generator saw; None = unknown (all of train)
    random_state: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricResult:
    """One metric's outcome. ``score`` is in [0, 1] (1 best) or NaN with ``skipped`` set."""

    name: str
    family: str
    score: float
    raw: float
    goal: Goal
    breakdown: Mapping[str, float] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    applicable: bool = True
    rows_failed: bool = False  # skipped because the rows lack what real rows have (a second class, a value)

    @property
    def ok(self) -> bool:
        """True when the metric ran."""
        return self.skipped is None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    """A metric's identity: name, family, goal and the bounds of its raw value."""

    name: str
    family: str
    goal: Goal
    bounds: tuple[float, float] = (0.0, 1.0)
    description: str = ""
    min_rows: int = 1
    headline: bool = True
    sdmetrics: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise MetricError(f"metric {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.min_rows < 1:
            raise MetricError(f"metric {self.name!r}: min_rows must be at least 1, got {self.min_rows}")

    def normalize(self, raw: float) -> float:
        """Map a raw value into [0, 1] with 1 best (SDMetrics' rule); unbounded sides use exp decay."""
        lo, hi = self.bounds
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return math.nan
        if math.isinf(lo) or math.isinf(hi):
            # Only [0, inf) is used: distances. Larger is better for MAXIMIZE.
            value = 1.0 - math.exp(-max(raw - (0 if math.isinf(hi) else lo), 0.0))
        else:
            value = (min(max(raw, lo), hi) - lo) / (hi - lo)
        return value if self.goal is Goal.MAXIMIZE else 1.0 - value

    def result(
        self,
        raw: float,
        *,
        score: float | None = None,
        breakdown: Mapping[str, float] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> MetricResult:
        """A result; the score is ``normalize(raw)`` unless given (e.g. relative to a reference)."""
        raw = float(raw)
        value = self.normalize(raw) if score is None else float(score)
        if math.isnan(value):
            return self.skip("the metric produced no value", details=details)
        return MetricResult(
            name=self.name,
            family=self.family,
            score=min(max(value, 0.0), 1.0),
            raw=raw,
            goal=self.goal,
            breakdown=dict(breakdown or {}),
            details=dict(details or {}),
        )

    def skip(self, reason: str, *, details: Mapping[str, Any] | None = None) -> MetricResult:
        """A NaN result with the reason it could not run."""
        return MetricResult(
            name=self.name,
            family=self.family,
            score=math.nan,
            raw=math.nan,
            goal=self.goal,
            details=dict(details or {}),
            skipped=reason,
        )

    def fail(self, reason: str, *, details: Mapping[str, Any] | None = None) -> MetricResult:
        """A NaN result because the synthetic rows lack what real rows of any size have (a second target
        class, any value in a column, a group a rule compares): judged against a real sample, it counts 0."""
        return replace(self.skip(reason, details=details), rows_failed=True)

    def not_applicable(self, reason: str, *, details: Mapping[str, Any] | None = None) -> MetricResult:
        """A NaN result for a metric that does not apply to this table (it neither counts nor lacks data)."""
        return replace(self.skip(reason, details=details), applicable=False)

    def too_few_rows(self, n_rows: int) -> MetricResult | None:
        """The skip result when ``n_rows`` synthetic rows are fewer than the metric needs, else None."""
        if n_rows >= self.min_rows:
            return None
        return self.skip(f"not enough rows: needs at least {self.min_rows} synthetic rows, got {n_rows}")


MetricFn = Callable[[pd.DataFrame, pd.DataFrame, EvalContext], MetricResult]
REGISTRY: dict[str, tuple[MetricSpec, MetricFn]] = {}


def register(
    spec: MetricSpec, *, requires: Callable[[pd.DataFrame, pd.DataFrame, EvalContext], str | None] | None = None
) -> Callable[[MetricFn], MetricFn]:
    """Decorator adding a metric function to the registry under ``spec.name``.

    The registered function first skips tables with fewer than ``spec.min_rows`` rows;
    then ``requires(train, synthetic, ctx)`` names what is missing for the metric to run
    (or returns None), and when it names something the metric is skipped with that reason
    before its own code runs.
    """

    def add(fn: MetricFn) -> MetricFn:
        @functools.wraps(fn)
        def checked(train: pd.DataFrame, synthetic: pd.DataFrame, ctx: EvalContext) -> MetricResult:
            if (short := spec.too_few_rows(len(synthetic))) is not None:
                return short
            reason = requires(train, synthetic, ctx) if requires is not None else None
            return spec.skip(reason) if reason else fn(train, synthetic, ctx)

        REGISTRY[spec.name] = (spec, checked)
        return checked

    return add


def metric_names(family: str | None = None) -> list[str]:
    """Registered metric names, optionally of one family."""
    return sorted(n for n, (s, _) in REGISTRY.items() if family is None or s.family == family)


def get_metric(name: str) -> tuple[MetricSpec, MetricFn]:
    """A registered metric; unknown names list the valid ones."""
    if name not in REGISTRY:
        raise MetricError(f"no metric named {name!r}; choose from {metric_names()}")
    return REGISTRY[name]
