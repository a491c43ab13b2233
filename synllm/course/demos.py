"""What the labs demonstrate that the study itself does not need: leaky generators and sample-size spread.

- :class:`CopySampler` is a deliberately leaky generator: it returns copies of the rows it was given
  (all of train, a few hundred train rows, or a prompt's example rows), so a lab can show which privacy
  metric catches which leak.
- :func:`side_by_side` puts several evaluations in one table, a column per source.
- :func:`sample_size_spread` scores many real holdout samples of each size as if they were synthetic, next
  to samples of a generator, so a lab can show why a few dozen rows cannot tell generators apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.errors import InvalidArgument
from synllm.metrics import evaluate


class CopySampler:
    """A leaky generator: ``sample(n)`` returns rows copied from ``rows`` (drawn again when n is larger)."""

    def __init__(self, rows: pd.DataFrame, card: Card) -> None:
        if len(rows) == 0:
            raise InvalidArgument("CopySampler needs at least one row to copy")
        self.rows = rows[card.synth_names].reset_index(drop=True)

    def sample(self, n: int, random_state: int = 0) -> pd.DataFrame:
        """``n`` copied rows (without replacement while there are enough)."""
        if n < 1:
            raise InvalidArgument(f"n must be at least 1, got {n}")
        picked = self.rows.sample(n=n, replace=n > len(self.rows), random_state=random_state)
        return picked.reset_index(drop=True)


def sample_size_spread(
    *,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    card: Card,
    generators: Mapping[str, object],
    sizes: Sequence[int] = (20, 50, 200),
    repeats: int = 10,
    metrics: Sequence[str] = ("ks_complement", "tv_complement", "correlation_similarity"),
    random_state: int = 0,
) -> pd.DataFrame:
    """Scores of ``repeats`` samples of each size from real holdout rows and from each generator.

    Each sample is scored against ``train`` with ``metrics`` (no reference). Returns one row per
    (source, n, repeat, metric) with the score; the source ``"real holdout"`` is real patients.
    """
    rng = np.random.default_rng(random_state)
    rows = []
    sources: dict[str, object] = {"real holdout": None, **generators}
    for n in sizes:
        if n > len(holdout):
            raise InvalidArgument(f"sample size {n} is larger than the holdout ({len(holdout)} rows)")
        for repeat in range(repeats):
            seed = int(rng.integers(0, 2**31 - 1))
            for source, generator in sources.items():
                if generator is None:
                    sample = holdout[card.synth_names].sample(n=n, random_state=seed).reset_index(drop=True)
                else:
                    sample = generator.sample(n, random_state=seed)
                scored = evaluate(
                    sample,
                    train=train,
                    holdout=holdout,
                    card=card,
                    metrics=list(metrics),
                    reference=False,
                    random_state=seed,
                )
                for result in scored.results:
                    rows.append((source, n, repeat, result.name, result.score))
    return pd.DataFrame(rows, columns=["source", "n", "repeat", "metric", "score"])


def spread_chart(spread: pd.DataFrame) -> alt.FacetChart:
    """Each sample's score as a dot, per sample size (columns) and metric (rows), coloured by source."""
    return (
        alt.Chart(spread)
        .mark_circle(size=40, opacity=0.6)
        .encode(
            x=alt.X("score:Q", title="score (1 = same as the real training rows)", scale=alt.Scale(zero=False)),
            y=alt.Y("source:N", title=None),
            color=alt.Color("source:N", legend=None),
            tooltip=["source", "n", "metric", alt.Tooltip("score:Q", format=".3f")],
        )
        .properties(width=210, height=70)
        .facet(column=alt.Column("n:O", title="rows per sample"), row=alt.Row("metric:N", title=None))
        .resolve_scale(x="independent")
        .properties(title="The same generators, scored on samples of different sizes")
    )


def side_by_side(
    evaluations: Mapping[str, object],
    *,
    value: str = "score",
    metrics: Sequence[str] | None = None,
    breakdown: str | None = None,
) -> pd.DataFrame:
    """One column per evaluation (source), one row per metric: ``value`` (score, raw, relative, ...).

    ``evaluations`` maps a source name to what :func:`synllm.evaluate` returned. With ``breakdown``
    (a metric name), the rows are that metric's breakdown instead (per column, pair or rule).
    """
    if breakdown is not None:
        frames = {name: ev.breakdown_frame() for name, ev in evaluations.items()}
        columns = {name: f.loc[f["metric"] == breakdown].set_index("key")["value"] for name, f in frames.items()}
    else:
        columns = {name: ev.to_frame().set_index("name")[value] for name, ev in evaluations.items()}
    frame = pd.DataFrame(columns)
    if metrics is not None:
        unknown = [m for m in metrics if m not in frame.index]
        if unknown:
            raise InvalidArgument(f"metric(s) {unknown} were not evaluated; evaluated: {list(frame.index)}")
        frame = frame.loc[list(metrics)]
    frame.index.name = breakdown or "metric"
    return frame
