"""A mixed-type (Gower-like) row distance, SDMetrics' DCR convention, and fast nearest-neighbour search.

The distance between two rows is the mean over columns of a per-column distance, as in
SDMetrics' ``calculate_dcr`` (``sdmetrics.single_table.privacy.dcr_utils``):

* numbers: ``min(1, |a - b| / range)``, the range taken from the train column; a column
  with no range (one value) gives 1 for any difference and 0 for none;
* categories: 0 when equal, 1 when different. Every distinct value is its own category,
  values the card does not know included (an unknown label is not "missing");
* a missing cell against a value: 1; two missing cells: 0.

(Documented difference: SDMetrics takes the range from whichever table is searched; here
it always comes from train, so the same pair of rows is always the same distance apart.)

:class:`MixedEncoder` maps rows to vectors whose L1 (manhattan) distance is that distance
before the cap at 1; each column is a block of features divided by the number of columns:

* a number scaled by the train range is one feature ``v``; when the column can be missing
  it is two, ``(v/2, (1-v)/2)``, and a missing cell ``(-1/4, -1/4)``, which is exactly 1
  away from every value inside the range;
* a category is a one-hot vector of halves (any two values are 1 apart), with one more slot
  for "missing" when the column can be missing; two levels never missing: one 0/1 feature.

Only values outside the train range can make a block's L1 exceed 1, so :func:`nearest`
finds candidates with a KD-tree on the L1 encoding and, for a query that could be affected,
re-ranks them with the capped distance, widening the search by the most the cap can remove
(exact, not approximate: see :func:`nearest`). Each distinct query row is searched once and
answers are memoised on the bytes of the arrays, so the privacy metrics that need the same
neighbours (DCR, NNDR, ...) share one search.
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
    """Encodes typed rows so that L1 distance is the mean per-column distance before the cap at 1."""

    columns: tuple[str, ...]
    numeric: tuple[tuple[str, float, float, bool], ...]  # (name, low, high, can be missing); high > low
    categorical: tuple[tuple[str, tuple, bool], ...]  # (name, categories in a fixed order, can be missing)

    @property
    def width(self) -> int:
        """Number of features of an encoded row."""
        return sum(2 if missing else 1 for *_, missing in self.numeric) + sum(
            _category_width(cats, missing) for _, cats, missing in self.categorical
        )

    @property
    def numeric_blocks(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) feature positions of each numeric column: the only blocks the cap at 1 can change."""
        blocks, pos = [], 0
        for *_, can_miss in self.numeric:
            blocks.append((pos, pos + (2 if can_miss else 1)))
            pos += 2 if can_miss else 1
        return tuple(blocks)

    @property
    def column_share(self) -> float:
        """What one column contributes at most (1 / number of columns)."""
        return 1.0 / max(len(self.columns), 1)

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """Rows of ``table`` as float64 vectors (n_rows × width); ``table`` is not modified."""
        lacking = [c for c in self.columns if c not in table.columns]
        if lacking:
            raise MetricError(f"table lacks column(s) {lacking} needed for distances; give the card's synth columns")
        n = len(table)
        out = np.zeros((n, self.width), dtype=np.float64)
        pos = 0
        for name, low, high, can_miss in self.numeric:
            values = numeric_values(table[name])
            scaled = (values - low) / (high - low)
            missing = np.isnan(values)
            if can_miss:
                out[:, pos] = np.where(missing, -0.25, scaled / 2)
                out[:, pos + 1] = np.where(missing, -0.25, (1 - scaled) / 2)
                pos += 2
                continue
            _refuse(missing, name, "missing")
            out[:, pos] = scaled
            pos += 1
        for name, cats, can_miss in self.categorical:
            codes = _category_codes(table[name], cats)  # -1 = missing, -2 = a value the encoder never saw
            _refuse(codes == -2, name, "unseen")
            if not can_miss:
                _refuse(codes == -1, name, "missing")
            if not can_miss and len(cats) == 2:
                out[:, pos] = codes
            else:
                out[np.arange(n), pos + np.where(codes < 0, len(cats), codes)] = 0.5
            pos += _category_width(cats, can_miss)
        return out * self.column_share


def _category_width(cats: tuple, can_miss: bool) -> int:
    if can_miss:
        return len(cats) + 1
    return 1 if len(cats) == 2 else len(cats)


def _refuse(bad: np.ndarray, name: str, what: str) -> None:
    if bad.any():
        raise MetricError(
            f"column {name!r} has {what} values the encoder was not fitted for; "
            "pass every table to be encoded to fit_encoder(..., others=[...])"
        )


def _numeric_categories(cats: tuple) -> bool:
    return all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool) for c in cats)


def _category_codes(values: pd.Series, cats: tuple) -> np.ndarray:
    """Position of each value in ``cats``; -1 for missing, -2 for a value not in ``cats`` (vectorised)."""
    if _numeric_categories(cats):
        index = pd.Index([float(c) for c in cats], dtype="float64")
        numbers = numeric_values(values)
        return np.where(np.isnan(numbers), -1, _unseen(index.get_indexer(numbers))).astype(np.int64)
    index = pd.Index([str(c) for c in cats], dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype):  # map the few categories, then the codes
        own = _unseen(index.get_indexer(values.cat.categories.astype(str).to_numpy(dtype=object)))
        codes = values.cat.codes.to_numpy()
        return np.where(codes < 0, -1, np.append(own, -1)[codes]).astype(np.int64)
    text = values.astype("string")
    codes = _unseen(index.get_indexer(text.to_numpy(dtype=object, na_value=None)))
    return np.where(text.isna().to_numpy(), -1, codes).astype(np.int64)


def _unseen(codes: np.ndarray) -> np.ndarray:
    return np.where(codes < 0, -2, codes)


def _labels(values: pd.Series, numeric: bool) -> list:
    """Distinct present values of a column (floats for numeric categories, else strings), in order seen."""
    if numeric:
        x = numeric_values(values)
        return [float(v) for v in pd.unique(x[~np.isnan(x)])]
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = values.cat.categories[np.unique(values.cat.codes[values.cat.codes >= 0])]
        return [str(v) for v in present]
    return list(dict.fromkeys(str(v) for v in pd.unique(values.dropna())))


def fit_encoder(
    train: pd.DataFrame, card: Card, columns: list[str] | None = None, others: Iterable[pd.DataFrame | None] = ()
) -> MixedEncoder:
    """An encoder for ``columns`` (default: the card's synth columns) with ranges from ``train``.

    ``others`` are the further tables that will be encoded. A categorical column's
    categories are the card's plus every other value found in these tables (or ``train``);
    a number column whose train values are all equal is compared like a category (equal or
    not, as SDMetrics does for a zero range); a column gets a "missing" feature when the
    card marks it nullable or any table has a missing value in it.
    """
    names = list(columns) if columns is not None else card.synth_names
    tables = [train, *(t for t in others if t is not None)]
    numeric, categorical = [], []
    for name in names:
        col = card.column(name)
        present = [t[name] for t in tables if name in t]
        can_miss = bool(col.nullable or any(s.isna().any() for s in present))
        if col.is_numeric:
            values = numeric_values(train[name])
            values = values[~np.isnan(values)]
            if len(values) and values.max() > values.min():
                numeric.append((name, float(values.min()), float(values.max()), can_miss))
                continue
            cats = tuple(dict.fromkeys(v for s in present for v in _labels(s, True)))
        else:
            known = tuple(col.categories or ())
            as_numbers = bool(known) and _numeric_categories(known)
            seen = [v for s in present for v in _labels(s, as_numbers)]
            own = [float(c) for c in known] if as_numbers else [str(c) for c in known]
            cats = tuple(dict.fromkeys([*own, *seen]))
        if not cats:  # a column with no value anywhere: one dummy category keeps the block well formed
            cats = (0.0,)
        categorical.append((name, cats, can_miss))
    return MixedEncoder(columns=tuple(names), numeric=tuple(numeric), categorical=tuple(categorical))


def capped_distances(query: np.ndarray, reference: np.ndarray, encoder: MixedEncoder) -> np.ndarray:
    """SDMetrics' distance between each query row and each reference row (len(query) × len(reference)).

    Brute force on encoded rows; :func:`nearest` uses it only on the few candidates it must check.
    """
    return _capped_sum(np.abs(query[:, None, :] - reference[None, :, :]), encoder)


def _capped_sum(gaps: np.ndarray, encoder: MixedEncoder) -> np.ndarray:
    """Sum of per-feature gaps over the last axis, each number column's block capped at one column share."""
    total = gaps.sum(axis=-1)
    for start, stop in encoder.numeric_blocks:
        total -= np.maximum(gaps[..., start:stop].sum(axis=-1) - encoder.column_share, 0.0)
    return total


def gower_distance(a: pd.DataFrame, b: pd.DataFrame, encoder: MixedEncoder) -> np.ndarray:
    """Row-by-row distance between equally long tables ``a`` and ``b`` (a vector)."""
    if len(a) != len(b):
        raise MetricError(f"gower_distance compares rows pairwise; got {len(a)} and {len(b)} rows")
    return _capped_sum(np.abs(encoder.encode(a) - encoder.encode(b)), encoder)


def nearest(
    reference: np.ndarray, query: np.ndarray, k: int = 1, *, encoder: MixedEncoder | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the ``k`` nearest ``reference`` rows of each ``query`` row.

    Both arrays come from ``encoder.encode``. Without ``encoder`` the distance is the plain
    L1 of the encodings. With it, each column's share is capped at 1 (SDMetrics), exactly:
    a KD-tree (``sklearn.neighbors.NearestNeighbors``, manhattan metric) gives ``k`` L1
    candidates; where the cap could matter (a value outside the train range, in the query or
    in the reference), every reference row whose L1 distance is within the most the cap can
    remove of the k-th capped candidate is checked too. Results are read-only and memoised.
    """
    if len(reference) < k:
        raise MetricError(f"nearest neighbours: need at least {k} reference row(s), got {len(reference)}")
    if len(query) == 0:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    ref_key = _digest(reference)
    key = (ref_key, _digest(query), k, encoder)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    distances, indices = _search(reference, ref_key, query, k, encoder)
    distances.flags.writeable = False
    indices.flags.writeable = False
    _cache[key] = (distances, indices)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return distances, indices


def _tree(reference: np.ndarray, ref_key: bytes):
    from sklearn.neighbors import NearestNeighbors

    if ref_key in _trees:
        _trees.move_to_end(ref_key)
        return _trees[ref_key]
    model = NearestNeighbors(metric="manhattan", algorithm="kd_tree", leaf_size=20, n_jobs=-1).fit(reference)
    _trees[ref_key] = model
    while len(_trees) > _TREE_CACHE_SIZE:
        _trees.popitem(last=False)
    return model


def _search(
    reference: np.ndarray, ref_key: bytes, query: np.ndarray, k: int, encoder: MixedEncoder | None
) -> tuple[np.ndarray, np.ndarray]:
    model = _tree(reference, ref_key)
    distinct, inverse = np.unique(query, axis=0, return_inverse=True)
    distances, indices = model.kneighbors(distinct, n_neighbors=k)
    if encoder is not None and encoder.numeric_blocks:
        slack = _cap_slack(distinct, reference, encoder)
        if (need := np.flatnonzero(slack > 0)).size:
            distances[need], indices[need] = _capped_search(model, distinct[need], reference, k, slack[need], encoder)
    inverse = inverse.reshape(-1)
    # Rounding removes float noise so that identical rows are exactly 0 apart.
    return np.round(distances[inverse], 12), indices[inverse].astype(np.int64)


#: Extra L1 candidates checked under the cap before a query falls back to a radius search.
_CANDIDATES = 16


def _capped_search(model, rows: np.ndarray, reference: np.ndarray, k: int, slack: np.ndarray, encoder):
    """k nearest reference rows of each of ``rows`` under the capped distance (exact).

    The ``k + 16`` nearest by L1 are re-ranked by the capped distance. A row no farther than the
    k-th of them can be missed only if its L1 distance is within ``slack`` of it; when the last
    candidate's L1 distance leaves that margin the answer is certain, else a radius search settles it.
    """
    wide = min(len(reference), k + _CANDIDATES)
    l1, candidates = model.kneighbors(rows, n_neighbors=wide)
    capped = _capped_sum(np.abs(rows[:, None, :] - reference[candidates]), encoder)
    order = np.argsort(capped, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(capped, order, axis=1)
    found = np.take_along_axis(candidates, order, axis=1)
    unsure = np.flatnonzero((best[:, -1] > l1[:, -1] - slack) & (wide < len(reference)))
    for i in unsure:
        best[i], found[i] = _capped_neighbours(model, rows[i], reference, found[i], slack[i], encoder)
    return best, found


def _cap_slack(query: np.ndarray, reference: np.ndarray, encoder: MixedEncoder) -> np.ndarray:
    """Per query row, the most the cap at 1 can take off its L1 distance to any reference row.

    A number block's reference points lie on a segment (plus the missing point), so the
    farthest is one of its ends; only blocks farther than one column share can be capped.
    """
    cap = encoder.column_share
    slack = np.zeros(len(query))
    for start, stop in encoder.numeric_blocks:
        ref = reference[:, start:stop]
        ends = [ref[ref[:, 0].argmin()], ref[ref[:, 0].argmax()]]
        if stop - start == 2:  # nullable: the segment runs along the first feature; missing is (-c/4, -c/4)
            present = ref[ref.sum(axis=1) > 0]
            ends = [present[present[:, 0].argmin()], present[present[:, 0].argmax()]] if len(present) else []
            ends += [np.array([-0.25, -0.25]) * cap] if len(present) < len(ref) else []
        farthest = np.max([np.abs(query[:, start:stop] - end).sum(axis=1) for end in ends], axis=0)
        slack += np.maximum(farthest - cap, 0.0)
    return slack


def _capped_neighbours(model, row: np.ndarray, reference: np.ndarray, candidates: np.ndarray, slack: float, encoder):
    """The k nearest reference rows of ``row`` under the capped distance (exact)."""
    k = len(candidates)
    capped = capped_distances(row[None, :], reference[candidates], encoder)[0]
    radius = np.sort(capped)[k - 1] + slack + 1e-12
    wider = model.radius_neighbors(row[None, :], radius=radius, return_distance=False)[0]
    wider = np.union1d(wider, candidates)
    capped = capped_distances(row[None, :], reference[wider], encoder)[0]
    order = np.lexsort((wider, capped))[:k]
    return capped[order], wider[order]


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


__all__ = [
    "MixedEncoder",
    "capped_distances",
    "clear_cache",
    "fit_encoder",
    "gower_distance",
    "nearest",
    "sample_rows",
]
