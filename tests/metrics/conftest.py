"""Fixtures shared by the metric tests."""

from __future__ import annotations

import pytest

from synllm.dataset import drop_identifiers, split


@pytest.fixture(scope="module")
def stroke(stroke_data):
    """(train, holdout, synthetic, card): 1,000 train rows, 400 holdout, 150 other real rows as synthetic."""
    table, card = stroke_data
    train, held = split(table, card, holdout=0.2, random_state=0)
    held = held.sample(550, random_state=0).reset_index(drop=True)
    synthetic = drop_identifiers(held.iloc[400:], card).reset_index(drop=True)
    return train.sample(1000, random_state=0).reset_index(drop=True), held.iloc[:400], synthetic, card
