"""Metrics for synthetic tables: fidelity, clinical consistency, privacy and utility.

Every metric is ``(train, synthetic, ctx) -> MetricResult`` and registers itself on import;
importing this package imports all four families, so :data:`REGISTRY` is complete.
:func:`evaluate` runs them next to a real-sample reference.
"""

from synllm.metrics import (  # noqa: F401  (register metrics)
    attacks,
    consistency,
    fidelity,
    linkability,
    privacy,
    singling_out,
    utility,
)
from synllm.metrics.aggregate import evaluate_repeats, mean_interval, relative_scores, scores_frame, summarize_repeats
from synllm.metrics.base import (
    FAMILIES,
    REGISTRY,
    EvalContext,
    Goal,
    MetricResult,
    MetricSpec,
    get_metric,
    metric_names,
    register,
)
from synllm.metrics.evaluation import Evaluation, evaluate, harmonic_score

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "EvalContext",
    "Evaluation",
    "Goal",
    "MetricResult",
    "MetricSpec",
    "evaluate",
    "evaluate_repeats",
    "get_metric",
    "harmonic_score",
    "mean_interval",
    "metric_names",
    "register",
    "relative_scores",
    "scores_frame",
    "summarize_repeats",
]
