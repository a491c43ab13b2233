"""Split a table into train and holdout so that no record is both a member and a non-member."""

from __future__ import annotations

import pandas as pd

from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.dataset.schema import MISSING_LABEL
from synllm.errors import DataError


def split(
    table: pd.DataFrame, card: Card, holdout: float = 0.2, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, holdout), stratified on the card's target.

    Identical rows (identifiers ignored) always go to the same side, so no record
    is both a member and a non-member: the split is drawn over distinct rows and
    every copy follows its row. A missing target is its own stratum; a target defined by
    ``target_positive`` is stratified on its positive class.
    """
    if not 0 < holdout < 1:
        raise DataError(f"holdout must be a fraction between 0 and 1, got {holdout}")
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    cols = card.synth_names
    keys = pd.util.hash_pandas_object(table[cols], index=False)
    distinct = keys.drop_duplicates()
    strata = None
    if card.target:
        target = target_values(table.loc[distinct.index], card).astype("string").fillna(MISSING_LABEL)
        counts = target.value_counts()
        if (counts >= 2).all():
            strata = target.to_numpy()
    _, hold_keys = train_test_split(distinct.to_numpy(), test_size=holdout, random_state=random_state, stratify=strata)
    in_holdout = keys.isin(set(hold_keys.tolist())).to_numpy()
    train = table.loc[~in_holdout].reset_index(drop=True)
    held = table.loc[in_holdout].reset_index(drop=True)
    return train, held


def drop_identifiers(table: pd.DataFrame, card: Card) -> pd.DataFrame:
    """The table without the card's identifier columns (a copy)."""
    return table.drop(columns=[c for c in card.identifiers if c in table.columns])
