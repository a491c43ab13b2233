"""A mixed-type (Gower-like) row distance and fast nearest-neighbour search.

The distance between two rows is the mean over columns of a per-column distance:

* numbers: ``|a - b|`` after scaling by the train range (values clipped to it);
* categories: 0 when equal, 1 when different;
* a missing cell against a value: 1; two missing cells: 0.

:class:`MixedEncoder` maps rows to vectors whose L1 (manhattan) distance *is* that
Gower-like distance, so a tree-based nearest-neighbour search gives it exactly, with
no O(n²) Python loop. Every block is divided by the number of columns:

* a number ``v`` scaled to [0, 1] is one feature ``v``; when the column can be
  missing it is two, ``(v/2, (1-v)/2)``, and a missing cell ``(-1/4, -1/4)``, which
  is exactly 1 away from every present value;
* a category is a one-hot vector of halves (any two different values are 1 apart),
  with one more slot for "missing" when the column can be missing; a two-level
  column that is never missing is a single 0/1 feature.

Which columns "can be missing" is decided once, at fit time, from the card and from
every table that will be encoded, so fewer features are searched.

:func:`nearest` memoises its answers on the bytes of the encoded arrays (a few recent
queries), so the privacy metrics that need the same neighbours (DCR, NNDR, ...) share
one search.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synllm.cards import Card
from synllm.errors import MetricError
from synllm.metrics.columns import numeric_values

#: Nearest-neighbour answers kept in memory (distances and indices per query).
_CACHE_SIZE = 12
_cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
#: Fitted search trees kept in memory, by reference array.
_TREE_CACHE_SIZE = 3
_trees: OrderedDict[bytes, object] = OrderedDict()


@dataclass(frozen=True, slots=True)
class MixedEncoder:
    """Encodes typed rows so that L1 distance equals the mean per-column Gower distance."""

    columns: tuple[str, ...]
    numeric: tuple[tuple[str, float, float, bool], ...]  # (name, low, high, can be missing)
    categorical: tuple[tuple[str, tuple, bool], ...]  # (name, categories in a fixed order, can be missing)

    @property
    def width(self) -> int:
        """Number of features of an encoded row."""
        return sum(2 if missing else 1 for *_, missing in self.numeric) + sum(
            _category_width(cats, missing) for _, cats, missing in self.categorical
        )

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """Rows of ``table`` as float64 vectors (n_rows × width); ``table`` is not modified."""
        lacking = [c for c in self.columns if c not in table.columns]
        if lacking:
            raise MetricError(f"table lacks column(s) {lacking} needed for distances; give the card's synth columns")
        n, k = len(table), max(len(self.columns), 1)
        out = np.zeros((n, self.width), dtype=np.float64)
        pos = 0
        for name, low, high, can_miss in self.numeric:
            values = numeric_values(table[name])
            span = high - low
            scaled = np.clip((values - low) / span, 0.0, 1.0) if span > 0 else np.zeros(n)
            missing = np.isnan(values)
            if can_miss:
                out[:, pos] = np.where(missing, -0.25, scaled / 2)
                out[:, pos + 1] = np.where(missing, -0.25, (1 - scaled) / 2)
                pos += 2
                continue
            _refuse_missing(missing, name)
            out[:, pos] = scaled
            pos += 1
        for name, cats, can_miss in self.categorical:
            codes = _category_codes(table[name], cats)  # -1 = missing or unknown
            if not can_miss:
                _refuse_missing(codes < 0, name)
            if not can_miss and len(cats) == 2:
                out[:, pos] = codes
            else:
                out[np.arange(n), pos + np.where(codes < 0, len(cats), codes)] = 0.5
            pos += _category_width(cats, can_miss)
        return out / k


def _category_width(cats: tuple, can_miss: bool) -> int:
    if can_miss:
        return len(cats) + 1
    return 1 if len(cats) == 2 else len(cats)


def _refuse_missing(missing: np.ndarray, name: str) -> None:
    if missing.any():
        raise MetricError(
            f"column {name!r} has missing or unknown values but the encoder was fitted as if it had none; "
            "pass every table to be encoded to fit_encoder(..., others=[...])"
        )


def _category_codes(values: pd.Series, cats: tuple) -> np.ndarray:
    """Position of each value in ``cats``; -1 for missing or unseen values (vectorised)."""
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cats):
        index = pd.Index([float(c) for c in cats], dtype="float64")
        numbers = numeric_values(values)
        return np.where(np.isnan(numbers), -1, index.get_indexer(numbers)).astype(np.int64)
    index = pd.Index([str(c) for c in cats], dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype):  # map the few categories, then the codes
        own = index.get_indexer(values.cat.categories.astype(str).to_numpy(dtype=object))
        codes = values.cat.codes.to_numpy()
        return np.where(codes < 0, -1, np.append(own, -1)[codes]).astype(np.int64)
    text = values.astype("string")
    codes = index.get_indexer(text.to_numpy(dtype=object, na_value=None))
    return np.where(text.isna().to_numpy(), -1, codes).astype(np.int64)


def fit_encoder(
    train: pd.DataFrame, card: Card, columns: list[str] | None = None, others: Iterable[pd.DataFrame | None] = ()
) -> MixedEncoder:
    """An encoder for ``columns`` (default: the card's synth columns) with ranges from ``train``.

    ``others`` are the further tables that will be encoded: a column gets a "missing"
    feature when the card marks it nullable or any of these tables (or ``train``) has a
    missing or unknown value in it.
    """
    names = list(columns) if columns is not None else card.synth_names
    tables = [train, *(t for t in others if t is not None)]
    numeric, categorical = [], []
    for name in names:
        col = card.column(name)
        if col.is_numeric:
            values = numeric_values(train[name])
            present = values[~np.isnan(values)]
            low, high = (float(present.min()), float(present.max())) if len(present) else (0.0, 0.0)
            can_miss = col.nullable or any(np.isnan(numeric_values(t[name])).any() for t in tables if name in t)
            numeric.append((name, low, high, bool(can_miss)))
        else:
            cats = tuple(col.categories) if col.categories else tuple(pd.unique(train[name].dropna()))
            can_miss = col.nullable or any((_category_codes(t[name], cats) < 0).any() for t in tables if name in t)
            categorical.append((name, cats, bool(can_miss)))
    return MixedEncoder(columns=tuple(names), numeric=tuple(numeric), categorical=tuple(categorical))


def gower_distance(a: pd.DataFrame, b: pd.DataFrame, encoder: MixedEncoder) -> np.ndarray:
    """Row-by-row distance between equally long tables ``a`` and ``b`` (a vector)."""
    if len(a) != len(b):
        raise MetricError(f"gower_distance compares rows pairwise; got {len(a)} and {len(b)} rows")
    return np.abs(encoder.encode(a) - encoder.encode(b)).sum(axis=1)


def nearest(reference: np.ndarray, query: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest ``reference`` rows of each ``query`` row (L1).

    Both arrays come from :meth:`MixedEncoder.encode`. Uses a KD-tree
    (``sklearn.neighbors.NearestNeighbors``, manhattan metric) and searches each
    distinct query row once; results are read-only and memoised.
    """
    if len(reference) < k:
        raise MetricError(f"nearest neighbours: need at least {k} reference row(s), got {len(reference)}")
    if len(query) == 0:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    ref_key = _digest(reference)
    key = (ref_key, _digest(query), k)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    distances, indices = _search(reference, ref_key, query, k)
    distances.flags.writeable = False
    indices.flags.writeable = False
    _cache[key] = (distances, indices)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return distances, indices


def _search(reference: np.ndarray, ref_key: bytes, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    if ref_key in _trees:
        _trees.move_to_end(ref_key)
        model = _trees[ref_key]
    else:
        model = NearestNeighbors(metric="manhattan", algorithm="kd_tree", leaf_size=20, n_jobs=-1).fit(reference)
        _trees[ref_key] = model
        while len(_trees) > _TREE_CACHE_SIZE:
            _trees.popitem(last=False)
    distinct, inverse = np.unique(query, axis=0, return_inverse=True)
    distances, indices = model.kneighbors(distinct, n_neighbors=k)
    inverse = inverse.reshape(-1)
    # Rounding removes float noise so that identical rows are exactly 0 apart.
    return np.round(distances[inverse], 12), indices[inverse].astype(np.int64)


def _digest(array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array)
    return hashlib.blake2b(data.tobytes(), digest_size=16, person=str(data.shape).encode()[:16]).digest()


def clear_cache() -> None:
    """Forget memoised nearest-neighbour answers and search trees (frees memory)."""
    _cache.clear()
    _trees.clear()


def sample_rows(table: pd.DataFrame, n: int, random_state: int) -> pd.DataFrame:
    """At most ``n`` rows of ``table`` drawn without replacement (all rows when it has fewer)."""
    if len(table) <= n:
        return table
    return table.sample(n=n, random_state=random_state)


__all__ = ["MixedEncoder", "clear_cache", "fit_encoder", "gower_distance", "nearest", "sample_rows"]
