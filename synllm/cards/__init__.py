"""Dataset cards: the domain knowledge of one dataset, kept as YAML data (the shipped ones sit beside this file).

- :mod:`~synllm.cards.model`: the frozen ``Card``, ``Column``, ``Rule`` values;
- :mod:`~synllm.cards.schema`: the card file's pydantic schema (every field's type and range);
- :mod:`~synllm.cards.load`: YAML in, a checked ``Card`` out;
- :mod:`~synllm.cards.rules`: hard rules checked row by row, soft rules measured as effects;
- :mod:`~synllm.cards.expressions`: the small, safe language rule expressions are written in.
"""

from synllm.cards.load import add_rules, available_cards, card_from_dict, card_path, load_card
from synllm.cards.model import Card, Column, Kind, Rule

__all__ = [
    "Card",
    "Column",
    "Kind",
    "Rule",
    "add_rules",
    "available_cards",
    "card_from_dict",
    "card_path",
    "load_card",
]
