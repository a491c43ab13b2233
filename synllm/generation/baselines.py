"""Non-LLM generators: what an LLM's rows should beat, and real holdout rows as a reference (not a ceiling).

All share one interface: ``fit(train, card) -> self`` then ``sample(n, random_state=0)``,
which returns ``n`` rows with the card's synth columns, typed like ``train``
(float64, Int64, pandas Categorical with the same categories, NaN/NA for missing).

* ``independent``: every column drawn on its own from its train values (marginals,
  missing rates included; every dependence between columns is lost).
* ``gaussian_copula``: empirical marginals tied by a Gaussian copula on normal scores
  (scipy/numpy only). Whether a cell is missing is part of the copula, so missing
  rates are kept and cells that tend to be missing together stay so (cirrhosis).
* ``smoothed_copula``: the same copula drawing no rare train value: common values of
  discrete number columns, a trimmed, interpolated quantile function for continuous ones,
  rare category levels left out. ``independent`` and ``gaussian_copula`` replay train values,
  so rare values and extremes come back and single out the patients who hold them
  (:mod:`synllm.metrics.singling_out`); this one is the classical point private by that measure.
* ``holdout``: real holdout rows: a reference (what real unseen patients get at that size),
  not a ceiling: a generator can score above one real sample by chance, or on a metric a
  real sample does not maximise.

    >>> from synllm.dataset import load_dataset, split
    >>> table, card = load_dataset("stroke")
    >>> train, _ = split(table, card, random_state=0)
    >>> gen = get_baseline("gaussian_copula").fit(train, card)
    >>> rows = gen.sample(1000, random_state=0)
    >>> len(rows), list(rows.columns) == card.synth_names
    (1000, True)

:func:`validated_sample` puts a baseline's rows through the validator LLM answers go
through (written as CSV with the card's decimals, then parsed and checked), so both are
scored on equal terms, and says what share it rejected.
"""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from scipy.stats import norm

from synllm.cards import Card
from synllm.dataset.schema import format_row
from synllm.errors import MetricError
from synllm.generation.conditions import Condition, condition_mask
from synllm.generation.parsing import validate_rows

#: Smallest eigenvalue kept when repairing the copula's correlation matrix.
_MIN_EIGENVALUE = 1e-6


def _typed(values: object, dtype: object) -> pd.Series:
    """A series of ``values`` cast to ``dtype`` (missing stays missing)."""
    return pd.Series(values).astype(dtype)


class _Fitted:
    """Shared bookkeeping: the columns and dtypes to reproduce."""

    card_: Card
    columns_: list[str]
    dtypes_: dict[str, object]

    def _remember(self, train: pd.DataFrame, card: Card) -> None:
        lacking = [c for c in card.synth_names if c not in train.columns]
        if lacking:
            raise MetricError(f"baseline fit: the train table lacks card {card.name!r} column(s) {lacking}")
        if len(train) == 0:
            raise MetricError("baseline fit: the train table has no rows")
        self.card_ = card
        self.columns_ = card.synth_names
        self.dtypes_ = {c: train[c].dtype for c in self.columns_}

    def _check_fitted(self, n: int) -> None:
        if not hasattr(self, "columns_"):
            raise MetricError(f"{type(self).__name__}: call fit(train, card) before sample(n)")
        if n < 0:
            raise MetricError(f"{type(self).__name__}: n must be ≥ 0, got {n}")


class IndependentSampler(_Fitted):
    """Each column resampled on its own from the train values (missing cells included)."""

    def fit(self, train: pd.DataFrame, card: Card) -> IndependentSampler:
        """Keep a copy of every synth column's train values."""
        self._remember(train, card)
        self.values_ = {c: train[c].to_numpy(copy=True) for c in self.columns_}
        return self

    def sample(self, n: int, random_state: int = 0) -> pd.DataFrame:
        """``n`` rows whose columns are independent draws from the train marginals."""
        self._check_fitted(n)
        rng = np.random.default_rng(random_state)
        out = {}
        for name in self.columns_:
            values = self.values_[name]
            out[name] = _typed(values[rng.integers(0, len(values), size=n)], self.dtypes_[name])
        return pd.DataFrame(out)


class GaussianCopulaSampler(_Fitted):
    """Empirical marginals joined by a Gaussian copula fitted on normal scores.

    Each column maps to normal scores: numbers by their (average) rank among present
    values, plus a two-level "is missing" dimension when some are missing; categories
    by the middle of their cumulative share, in card order (numeric categories in
    numeric order, missing first). The pairwise correlation of the scores defines the
    copula (repaired to be positive definite). Sampled numbers come back through the
    empirical quantiles, so only observed values appear.
    """

    def fit(self, train: pd.DataFrame, card: Card) -> GaussianCopulaSampler:
        """Learn marginals, missing rates and the normal-score correlation matrix."""
        self._remember(train, card)
        self.numeric_: dict[str, tuple[np.ndarray, float]] = {}  # sorted values, missing rate
        self.categorical_: dict[str, tuple[list, np.ndarray]] = {}  # levels (None = missing), cumulative shares
        scores = {}
        for name in self.columns_:
            column = train[name]
            if card.column(name).is_numeric:
                values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                present = ~np.isnan(values)
                rate = float(1 - present.mean())
                self.numeric_[name] = (np.sort(values[present]), rate)
                ranks = pd.Series(values).rank(method="average").to_numpy()  # NaN stays NaN
                scores[name] = norm.ppf(ranks / (present.sum() + 1))
                if 0 < rate < 1:  # whether the cell is missing: a two-level column of its own
                    scores[(name, "missing")] = norm.ppf(np.where(present, (1 + rate) / 2, rate / 2))
            else:
                levels, cumulative, codes = self._levels(column, card, name)
                self.categorical_[name] = (levels, cumulative)
                lower = np.r_[0.0, cumulative[:-1]]
                scores[name] = norm.ppf(((lower + cumulative) / 2)[codes])
        frame = pd.DataFrame({str(i): v for i, v in enumerate(scores.values())})
        corr = frame.corr(min_periods=3).fillna(0.0).to_numpy(copy=True)
        np.fill_diagonal(corr, 1.0)
        self.latent_ = list(scores)  # copula dimensions: column names and (name, "missing")
        self.correlation_ = _nearest_correlation(corr)
        return self

    @staticmethod
    def _levels(column: pd.Series, card: Card, name: str) -> tuple[list, np.ndarray, np.ndarray]:
        """Levels in card order (None first for missing), their cumulative shares, and each row's level."""
        col = card.column(name)
        if col.has_numeric_categories:
            keys = pd.to_numeric(column.astype("string"), errors="coerce").astype("float64")
            levels = sorted({float(c) for c in col.categories} | set(keys.dropna().tolist()))
        else:
            keys = column.astype("string")
            known = [str(c) for c in col.categories or ()]
            levels = known + sorted(set(keys.dropna().tolist()) - set(known))
        missing = keys.isna().to_numpy()
        codes = pd.Index(levels).get_indexer(keys.to_numpy(dtype=object, na_value=None))
        if missing.any():  # "missing" comes first, as for numbers
            levels, codes = [None, *levels], np.where(missing, 0, codes + 1)
        counts = np.bincount(codes, minlength=len(levels)).astype(float)
        return levels, np.cumsum(counts) / counts.sum(), codes

    def sample(self, n: int, random_state: int = 0) -> pd.DataFrame:
        """``n`` rows drawn from the fitted copula."""
        self._check_fitted(n)
        rng = np.random.default_rng(random_state)
        chol = np.linalg.cholesky(self.correlation_)
        uniform = dict(zip(self.latent_, norm.cdf(rng.standard_normal((n, len(self.latent_))) @ chol.T).T))
        out = {}
        for name in self.columns_:
            u = uniform[name]
            if name in self.numeric_:
                values, missing_rate = self.numeric_[name]
                if len(values) == 0:
                    drawn = np.full(n, np.nan)
                else:
                    drawn = self._numbers(name, u, rng)
                    if (name, "missing") in uniform:
                        drawn = np.where(uniform[(name, "missing")] < missing_rate, np.nan, drawn)
            else:
                levels, cumulative = self.categorical_[name]
                picks = np.minimum(np.searchsorted(cumulative, u, side="right"), len(levels) - 1)
                drawn = np.array(levels, dtype=object)[picks]
                if self.card_.column(name).has_numeric_categories:
                    drawn = pd.to_numeric(pd.Series(drawn, dtype=object), errors="coerce").to_numpy()
            out[name] = _typed(drawn, self.dtypes_[name])
        return pd.DataFrame(out)

    def _numbers(self, name: str, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values of a number column at copula uniforms ``u``: the empirical quantiles (observed values)."""
        values, _ = self.numeric_[name]
        return values[np.minimum((u * len(values)).astype(int), len(values) - 1)]


class SmoothedCopulaSampler(GaussianCopulaSampler):
    """The Gaussian copula without replaying rare train values: a classical point private by singling out.

    The copula's dependence is unchanged; what it draws differs. A number column whose
    values mostly repeat (at least ``DISCRETE_SHARE`` of rows hold a value seen ``RARE_COUNT``
    times or more: ages, lab levels) is drawn from those common values only; any other number
    column from its empirical quantile function, interpolated linearly between order statistics,
    trimmed to the central ``1 - 2 * TAIL`` of it and jittered by a kernel bandwidth (except where it
    falls on a common value), rounded to the card's decimals: so neither a rare value nor an extreme
    of train comes back, and no drawn value sits on a train value more often than on a fresh patient's.
    A category level fewer than ``RARE_COUNT`` train rows hold is not drawn (its share goes to the others).
    """

    RARE_COUNT = 10
    DISCRETE_SHARE = 0.9
    TAIL = 0.01

    def fit(self, train: pd.DataFrame, card: Card) -> SmoothedCopulaSampler:
        """Fit the copula, then drop rare category levels and prepare the smoothed number marginals."""
        super().fit(train, card)
        for name, (levels, cumulative) in self.categorical_.items():
            counts = np.diff(np.r_[0.0, cumulative]) * len(train)
            keep = counts >= self.RARE_COUNT
            if keep.any():
                counts = np.where(keep, counts, 0.0)
                self.categorical_[name] = (levels, np.cumsum(counts) / counts.sum())
        self.common_: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # discrete columns: values, cumulative shares
        for name, (values, _) in self.numeric_.items():
            levels, counts = np.unique(values, return_counts=True)
            common = counts >= self.RARE_COUNT
            if len(values) and counts[common].sum() >= self.DISCRETE_SHARE * len(values):
                self.common_[name] = (levels[common], np.cumsum(counts[common]) / counts[common].sum())
        return self

    def _numbers(self, name: str, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Common values of a discrete column; for a continuous one, the trimmed, interpolated quantile,
        jittered by a quarter of Silverman's bandwidth unless it falls on a common value."""
        if name in self.common_:
            levels, cumulative = self.common_[name]
            return levels[np.minimum(np.searchsorted(cumulative, u, side="right"), len(levels) - 1)]
        values, _ = self.numeric_[name]
        position = (self.TAIL + u * (1 - 2 * self.TAIL)) * (len(values) - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, len(values) - 1)
        drawn = values[low] + (position - low) * (values[high] - values[low])
        levels, counts = np.unique(values, return_counts=True)
        on_common = (values[low] == values[high]) & np.isin(values[low], levels[counts >= self.RARE_COUNT])
        jitter = rng.normal(0.0, self._bandwidth(values), len(u))
        lo, hi = np.quantile(values, [self.TAIL, 1 - self.TAIL])
        jittered = drawn + jitter
        jittered = np.clip(
            np.where(jittered < lo, 2 * lo - jittered, np.where(jittered > hi, 2 * hi - jittered, jittered)), lo, hi
        )
        drawn = np.where(on_common, drawn, jittered)  # reflected at the trimmed edges, so no mass piles up on them
        decimals = self.card_.column(name).decimals
        if pd.api.types.is_integer_dtype(self.dtypes_[name]):
            decimals = 0
        return drawn if decimals is None else np.round(drawn, decimals)

    @classmethod
    def _bandwidth(cls, values: np.ndarray) -> float:
        """A quarter of Silverman's rule-of-thumb bandwidth (0.9 min(sd, IQR / 1.34) n^-1/5) of sorted ``values``."""
        if len(values) < 2:
            return 0.0
        q1, q3 = np.quantile(values, [0.25, 0.75])
        spread = min(float(np.std(values)), float(q3 - q1) / 1.34) or float(np.std(values))
        return 0.25 * 0.9 * spread * len(values) ** -0.2


def _nearest_correlation(corr: np.ndarray) -> np.ndarray:
    """A positive-definite correlation matrix close to ``corr`` (eigenvalues clipped, unit diagonal)."""
    values, vectors = np.linalg.eigh((corr + corr.T) / 2)
    repaired = vectors @ np.diag(np.clip(values, _MIN_EIGENVALUE, None)) @ vectors.T
    scale = np.sqrt(np.diag(repaired))
    return repaired / np.outer(scale, scale)


class HoldoutSampler(_Fitted):
    """Real holdout rows: the reference. Draws with replacement only when n > len(holdout)."""

    def __init__(self, holdout: pd.DataFrame):
        self.holdout = holdout

    def fit(self, train: pd.DataFrame, card: Card) -> HoldoutSampler:
        """Record the columns and dtypes; the train rows themselves are not used."""
        self._remember(train, card)
        lacking = [c for c in self.columns_ if c not in self.holdout.columns]
        if lacking or len(self.holdout) == 0:
            raise MetricError(f"HoldoutSampler: the holdout table lacks column(s) {lacking} or has no rows")
        return self

    def sample(self, n: int, random_state: int = 0) -> pd.DataFrame:
        """``n`` holdout rows (synth columns only, fresh index)."""
        self._check_fitted(n)
        rows = self.holdout[self.columns_].sample(n=n, replace=n > len(self.holdout), random_state=random_state)
        return rows.reset_index(drop=True).astype(self.dtypes_)


BASELINES: dict[str, type] = {
    "independent": IndependentSampler,
    "gaussian_copula": GaussianCopulaSampler,
    "smoothed_copula": SmoothedCopulaSampler,
    "holdout": HoldoutSampler,
}


def validated_sample(
    generator, n: int, card: Card, *, random_state: int = 0, max_draws: int = 5, condition: Condition | None = None
):
    """(``n`` rows that pass the card's validator, share of drawn rows that passed).

    Rows are drawn from ``generator.sample``, written as CSV lines with the card's decimals,
    and parsed and checked like an LLM's answer; draws repeat (at most ``max_draws`` times)
    until ``n`` rows pass. Fewer than ``n`` come back only when most rows fail. With ``condition``
    a valid row that misses it is rejected too. A conditioned generator
    (:class:`~synllm.generation.baseline_mix.ConditionedSampler`) validates each condition's quota on its own.
    """
    if hasattr(generator, "validated_quotas"):
        return generator.validated_quotas(n, card, random_state=random_state, max_draws=max_draws)
    kept, valid, drawn = validated_draws(generator, n, card, random_state=random_state, max_draws=max_draws,
                                         condition=condition)  # fmt: skip
    return kept, valid / drawn if drawn else float("nan")


def validated_draws(
    generator, n: int, card: Card, *, random_state: int = 0, max_draws: int = 5, condition: Condition | None = None
) -> tuple[pd.DataFrame, int, int]:
    """(the first ``n`` valid rows, valid rows found, rows drawn): the counts behind :func:`validated_sample`."""
    valid, drawn = [], 0
    for attempt in range(max_draws):
        rows = generator.sample(n, random_state=random_state + 7919 * attempt)
        cells = list(csv.reader(format_row(r, card) for r in rows.to_dict("records")))
        checked = validate_rows(cells, card).valid
        if condition is not None:
            checked = checked.loc[condition_mask(checked, condition, card)]
        valid.append(checked)
        drawn += len(rows)
        if sum(len(v) for v in valid) >= n:
            break
    kept = pd.concat(valid, ignore_index=True)
    return kept.iloc[:n].reset_index(drop=True), len(kept), drawn


def baseline_names() -> list[str]:
    """Names accepted by :func:`get_baseline`."""
    return sorted(BASELINES)


def get_baseline(name: str, **kwargs: object):
    """A new, unfitted baseline generator by name; ``holdout`` needs ``holdout=<DataFrame>``."""
    if name not in BASELINES:
        raise MetricError(f"no baseline generator named {name!r}; choose from {baseline_names()}")
    if name == "holdout" and "holdout" not in kwargs:
        raise MetricError("baseline 'holdout' needs the real holdout rows: get_baseline('holdout', holdout=df)")
    return BASELINES[name](**kwargs)


__all__ = [
    "BASELINES",
    "GaussianCopulaSampler",
    "HoldoutSampler",
    "IndependentSampler",
    "SmoothedCopulaSampler",
    "baseline_names",
    "get_baseline",
    "validated_draws",
    "validated_sample",
]
