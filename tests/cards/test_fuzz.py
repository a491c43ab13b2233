"""Fuzzing (issue 22): thousands of random cards, card texts, rule strings and drafts end in a card or a SynllmError.

Random mutations of the shipped cards (wrong types, nulls, huge numbers, odd strings, unknown
and missing keys), random damage to card YAML text, random rule expressions evaluated on a
table, and random CSV headers and cells drafted into cards. Nothing may raise anything but a
:class:`~synllm.errors.SynllmError`, and a draft that is written always loads back.
Deterministic (``derandomize``), about 30-60 s in all.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synllm import config, yamlsafe
from synllm.cards import Card, card_from_dict
from synllm.cards.expressions import card_scope, compile_expression, evaluate
from synllm.dataset.draft import draft_card
from synllm.errors import SynllmError
from tests.cards.test_load import GOOD

FUZZ = settings(
    deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
SHIPPED = {p.stem: p.read_text(encoding="utf-8") for p in sorted(config.CARDS_DIR.glob("*.yaml"))}
RAW_CARDS = [yaml.safe_load(text) for text in SHIPPED.values()] + [GOOD]

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "no",
        "yes",
        "N/A",
        "1e400",
        "-0",
        "\u2028x: 1",
        "\x1b[2J",
        "ﬁbrosis",
        "a" * 5000,
        "../../etc/passwd",
        "/dev/zero",
        "`",
        "'",
        "{",
        "*a",
        "&a",
        "\x00",
        "_column_0",
        "nan",
        "inf",
        "日本語",
        "\ud800",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 100000000, -1, 11]),
    st.floats(allow_nan=True, allow_infinity=True),
    ODD_TEXT,
    st.text(max_size=30),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def _paths(node, prefix=()):
    """Every (container, key) place in a parsed card."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


@st.composite
def mutated_cards(draw):
    raw = copy.deepcopy(draw(st.sampled_from(RAW_CARDS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(raw))
        path = draw(st.sampled_from(paths))
        parent = raw
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "range", "nullable", "tokens", "linkability", "decimals"]))] = draw(
                VALUES
            )
        else:
            parent[path[-1]] = draw(VALUES)
    return raw


def _only_synllm_errors(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call(*args, **kwargs)
        except SynllmError:
            return None


@settings(FUZZ, max_examples=2000)
@given(mutated_cards())
def test_mutated_cards_load_or_raise_a_card_error(raw):
    card = _only_synllm_errors(card_from_dict, raw)
    if card is not None:
        assert isinstance(card, Card)
        for col in card.columns:
            assert col.decimals is None or 0 <= col.decimals <= 10
            assert col.range is None or (math.isfinite(col.range[0]) and col.range[0] <= col.range[1])
            assert isinstance(col.nullable, bool)


@st.composite
def damaged_texts(draw):
    text = draw(st.sampled_from(list(SHIPPED.values())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        piece = draw(
            st.one_of(
                st.sampled_from(
                    ["&a ", "*a", "<<: ", "\n  - ", ": ", "{", "[", "\t", "\u2028", "---\n", "!!python/object "]
                ),
                st.text(max_size=10),
            )
        )
        cut = draw(st.integers(0, 5))
        text = text[:at] + piece + text[at + cut :]
    return text


@settings(FUZZ, max_examples=700)
@given(damaged_texts())
def test_damaged_card_yaml_gives_a_card_or_a_synllm_error(text):
    def load():
        try:
            raw = yamlsafe.safe_load(text)
        except yaml.YAMLError:
            return None
        return card_from_dict(raw) if isinstance(raw, dict) else None

    _only_synllm_errors(load)


SCOPE_CARD = card_from_dict(yaml.safe_load(SHIPPED["cirrhosis"]))
TABLE = pd.DataFrame(
    {
        c.name: (np.linspace(c.range[0], c.range[1], 6) if c.is_numeric else list((c.categories or ("a", "b")) * 6)[:6])
        for c in SCOPE_CARD.columns
    }
)
TOKENS = [
    *SCOPE_CARD.column_names[:8],
    "`Age`",
    "`N_Days`",
    "1",
    "0",
    "-",
    "+",
    "*",
    "/",
    "**",
    "(",
    ")",
    "[",
    "]",
    ",",
    "<",
    ">=",
    "==",
    "!=",
    "and",
    "or",
    "not",
    "in",
    "not in",
    "'D'",
    "'F'",
    "abs(",
    "log(",
    "min(",
    "max(",
    "isna(",
    "1e400",
    "9" * 40,
    "_column_0",
    "ﬁbrosis",
    "@x",
    ".x",
    "__class__",
    "lambda",
    "if",
    "else",
    "~",
    "&",
    "|",
]


@settings(FUZZ, max_examples=2000)
@given(
    st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join),
        st.text(max_size=60),
        st.builds(  # deep nesting: the old checker overflowed the stack from about 330 levels
            lambda op, n, tail: op * n + tail,
            st.sampled_from(["not ", "-", "(", "~", "abs("]),
            st.integers(0, 1200),
            st.sampled_from(["Age > 1", "Age", "1", ")" * 50]),
        ),
        st.integers(1, 700).map(lambda n: "Age > " + "9" * n),  # huge literals: OverflowError in the old evaluator
    )
)
def test_random_rule_strings_compile_and_evaluate_or_raise_a_card_error(text):
    scope = card_scope(SCOPE_CARD)
    for want in ("condition", "number"):
        expr = _only_synllm_errors(compile_expression, text, scope, want=want)
        if expr is not None:
            values = _only_synllm_errors(evaluate, expr, TABLE)
            assert values is None or len(values) == len(TABLE)


HEADER = st.one_of(
    st.sampled_from(["age", "sex", "id", "x y", "ﬁ", "=HYPERLINK(1)", "a\u2028b", "", " ", "日本"]), st.text(max_size=8)
)
CELL = st.one_of(
    st.sampled_from(["", "NA", "?", "0", "1", "2.5", "-3", "1e400", "\u2028", "\x1b[2J", "F", "M"]), st.text(max_size=5)
)


@st.composite
def tables(draw):
    names = draw(st.lists(HEADER, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(1, 12))
    rows = [[draw(CELL) for _ in names] for _ in range(n)]
    return pd.DataFrame(rows, columns=names, dtype=object)


@settings(FUZZ, max_examples=120)
@given(tables())
def test_a_draft_is_refused_with_a_synllm_error_or_loads_back(table):
    draft = _only_synllm_errors(draft_card, table, name="fuzz", file="fuzz.csv")
    if draft is not None:
        card = card_from_dict(yamlsafe.safe_load(draft.text))
        assert card.column_names == [str(c) for c in table.columns]
