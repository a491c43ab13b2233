"""Split a table into train and holdout so that no record is both a member and a non-member."""

from __future__ import annotations

import pandas as pd

from synllm.arguments import check, check_holdout
from synllm.cards import Card
from synllm.cards.rules import target_values
from synllm.dataset.schema import MISSING_LABEL


def split(
    table: pd.DataFrame, card: Card, holdout: float = 0.2, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, holdout), stratified on the card's target.

    Identical rows (identifiers ignored) always go to the same side, so no record
    is both a member and a non-member: the split is drawn over distinct rows and
    every copy follows its row. A missing target is its own stratum; a target defined by
    ``target_positive`` is stratified on its positive class.

    ``holdout`` must leave every stratum at least one distinct row on each side, and
    ``random_state`` be a seed numpy takes (:mod:`synllm.arguments`); else InvalidArgument.
    """
    check("holdout", holdout)
    random_state = check("seed", random_state, name="random_state")
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    cols = card.synth_names
    keys = pd.util.hash_pandas_object(table[cols], index=False)
    distinct = keys.drop_duplicates()
    strata, sizes = None, {"the table": len(distinct)}
    if card.target:
        target = target_values(table.loc[distinct.index], card).astype("string").fillna(MISSING_LABEL)
        counts = target.value_counts()
        if (counts >= 2).all():
            strata = target.to_numpy()
            sizes = {f"stratum {card.target}={label}": int(n) for label, n in counts.items()}
    check_holdout(holdout, sizes, what="distinct rows")
    _, hold_keys = train_test_split(distinct.to_numpy(), test_size=holdout, random_state=random_state, stratify=strata)
    in_holdout = keys.isin(set(hold_keys.tolist())).to_numpy()
    train = table.loc[~in_holdout].reset_index(drop=True)
    held = table.loc[in_holdout].reset_index(drop=True)
    return train, held


def drop_identifiers(table: pd.DataFrame, card: Card) -> pd.DataFrame:
    """The table without the card's identifier columns (a copy)."""
    return table.drop(columns=[c for c in card.identifiers if c in table.columns])
