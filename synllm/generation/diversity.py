"""How varied a run's rows are, next to what the same number of real rows gives.

A generator that repeats itself wastes tokens and biases every metric, but real data
repeats too (a table of a few categorical columns has many identical patients), so a
rate means something only beside the real one: the distinct-row rate and duplicate
rate of as many training rows, drawn without replacement, averaged over draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_DRAWS = 20  # real samples averaged for the reference rates


@dataclass(frozen=True, slots=True, kw_only=True)
class RowDiversity:
    """Distinct rows of a run and the rates beside the real reference (None when there are no rows)."""

    rows: int
    distinct_rows: int
    distinct_rate: float | None
    duplicate_rate: float | None
    real_distinct_rate: float | None
    real_duplicate_rate: float | None

    def manifest_fields(self) -> dict[str, int | float | None]:
        """The fields a run manifest's diagnostics keep (all but ``rows``)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "rows"}


def duplicate_share(rows: pd.DataFrame) -> float | None:
    """Share of rows that repeat an earlier row exactly (missing values equal); None for no rows.

    >>> duplicate_share(pd.DataFrame({"a": [1, 1, 2, 1]}))
    0.5
    """
    if not len(rows):
        return None
    return float(rows.duplicated().mean())


def row_diversity(synthetic: pd.DataFrame, *, real: pd.DataFrame, random_state: int = 0) -> RowDiversity:
    """Distinct-row and duplicate rates of ``synthetic`` and of as many ``real`` rows (same columns).

    The real rates are the mean over draws of ``len(synthetic)`` rows without replacement
    (all real rows when there are fewer), with ``random_state`` fixing the draws.
    """
    n = len(synthetic)
    if n == 0:
        return RowDiversity(
            rows=0,
            distinct_rows=0,
            distinct_rate=None,
            duplicate_rate=None,
            real_distinct_rate=None,
            real_duplicate_rate=None,
        )
    duplicates = duplicate_share(synthetic)
    real_rate = None
    if len(real):
        rng = np.random.default_rng(random_state)
        size = min(n, len(real))
        draws = 1 if size == len(real) else _DRAWS
        shares = [duplicate_share(real.iloc[rng.choice(len(real), size, replace=False)]) for _ in range(draws)]
        real_rate = float(np.mean(shares))
    return RowDiversity(
        rows=n,
        distinct_rows=n - int(round(duplicates * n)),
        distinct_rate=_rounded(1 - duplicates),
        duplicate_rate=_rounded(duplicates),
        real_distinct_rate=_rounded(1 - real_rate) if real_rate is not None else None,
        real_duplicate_rate=_rounded(real_rate),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
