"""Every malformed card field is a CardError naming the field path and the fix (issue 22), never a traceback."""

from __future__ import annotations

import copy

import pytest

from synllm.cards import card_from_dict
from synllm.errors import CardError
from tests.cards.test_load import GOOD


def _edited(path: tuple, value) -> dict:
    """GOOD with the value at ``path`` (keys and list indexes) set to ``value``."""
    raw = copy.deepcopy(GOOD)
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return raw


MALFORMED = [
    # (path, value, what the message must contain)
    (("columns", 1, "range"), ["0", "120"], ["columns[1].range[0]", "'age'", "a number", "without quotes"]),
    (("columns", 1, "range"), 120, ["columns[1].range", "must be a list", "exactly 2 numbers"]),
    (("columns", 1, "range"), [0, 1, 2], ["columns[1].range", "exactly 2 numbers"]),
    (("columns", 1, "range"), [0, float("inf")], ["columns[1].range[1]", "finite"]),
    (("columns", 1, "range"), [0, 10**400], ["columns[1].range[1]", "finite"]),
    (("columns", 1, "range"), [120, 0], ["columns[1].range", "low <= high"]),
    (("columns", 1, "decimals"), 100000000, ["columns[1].decimals", "0 to 10"]),
    (("columns", 1, "decimals"), -1, ["columns[1].decimals", "0 to 10"]),
    (("columns", 1, "decimals"), "two", ["columns[1].decimals", "whole number"]),
    (("columns", 1, "decimals"), 2.5, ["columns[1].decimals", "whole number"]),
    (("columns", 1, "decimals"), True, ["columns[1].decimals", "whole number"]),
    (("columns", 1, "nullable"), "no", ["columns[1].nullable", "true or false", "'no'"]),
    (("columns", 1, "nullable"), 1, ["columns[1].nullable", "true or false"]),
    (("columns", 1, "name"), 7, ["columns[1].name", "text"]),
    (("columns", 1, "name"), "a\u2028b", ["columns[1].name", "line-separator"]),
    (("columns", 1, "description"), ["x"], ["columns[1].description", "text"]),
    (("columns", 2, "categories"), "0,1", ["columns[2].categories", "must be a list", "'sick'"]),
    (("columns", 2, "categories"), [True, False], ["columns[2].categories[0]", "true/false", "quotes"]),
    (("columns", 2, "categories"), [0, {"a": 1}], ["columns[2].categories[1]", "a number or text"]),
    (("columns",), "age", ["columns", "must be a list"]),
    (("columns",), [], ["columns", "must be a list"]),
    (("columns", 0), "pid", ["columns[0]", "mapping"]),
    (("file",), 3, ["file", "text"]),
    (("file",), None, ["file", "text"]),
    (("file",), ["a.csv"], ["file", "text"]),
    (("file",), "", ["file", "must not be empty"]),
    (("name",), 12, ["name", "text"]),
    (("missing",), {"tokens": "N/A"}, ["missing.tokens", "must be a list", "'N/A'"]),
    (("missing",), {"tokens": [None]}, ["missing.tokens[0]", "number"]),
    (("missing",), ["NA"], ["missing", "mapping"]),
    (("roles",), "sick", ["roles", "mapping"]),
    (("roles", "predictors"), "age", ["roles.predictors", "must be a list"]),
    (("roles", "target"), 3, ["roles.target", "text"]),
    (("roles", "linkability"), [["age"]], ["roles.linkability", "must be a list"]),
    (("roles", "linkability"), [["age"], ["age"]], ["roles.linkability", "disjoint"]),
    (("roles", "linkability"), [["age"], ["nope"]], ["roles.linkability", "'nope'"]),
    (("rules", 0, "require"), 18, ["rules[0].require", "'adult'", "text"]),
    (("rules", 0, "kind"), "firm", ["rules[0].kind", "'firm'", "'hard' or 'soft'"]),
    (("rules", 0, "statement"), None, ["rules[0].statement", "text"]),
    (("rules", 0), "adult", ["rules[0]", "mapping"]),
    (("rules",), {"id": "x"}, ["rules", "must be a list"]),
    (("title",), {"a": 1}, ["title", "text"]),
    (("title",), "Tiny\u202etxt.exe", ["title", "control character"]),
    (("description",), "Fine.\x1b[2J\x1b]0;pwned\x07", ["description", "control character"]),
    (("columns", 1, "unit"), "years\x1b[8m", ["columns[1].unit", "control character"]),
    (("file",), "tiny\x1b[2J.csv", ["file", "control character"]),
    (("rules", 0, "statement"), "Adults.\r\x1b[1A", ["rules[0].statement", "control character"]),
]


@pytest.mark.parametrize(("path", "value", "expected"), MALFORMED, ids=[f"{p}={v!r}"[:60] for p, v, _ in MALFORMED])
def test_a_malformed_field_is_a_card_error_naming_its_path(path, value, expected):
    with pytest.raises(CardError) as info:
        card_from_dict(_edited(path, value))
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "pydantic" not in message.lower() and "validation error" not in message.lower()


def test_a_missing_file_key_is_named():
    raw = copy.deepcopy(GOOD)
    del raw["file"]
    with pytest.raises(CardError, match="missing required key 'file'"):
        card_from_dict(raw)


def test_free_text_keeps_newlines_tabs_and_any_script():
    raw = copy.deepcopy(GOOD)
    raw["description"] = "Line one.\n\tLine two: ≥ 18 ans, 日本, ﬁbre."
    assert card_from_dict(raw).description == raw["description"].strip()


def test_real_booleans_numbers_and_lists_still_load():
    raw = _edited(("columns", 1, "nullable"), True)
    raw["columns"][1].update(decimals=10, range=[0.5, 120])
    raw["missing"] = {"tokens": ["N/A", "?", -9]}
    raw["roles"]["linkability"] = [["age"], ["sick"]]
    card = card_from_dict(raw)
    age = card.column("age")
    assert age.nullable is True and age.decimals == 10 and age.range == (0.5, 120.0)
    assert card.missing_tokens == ("N/A", "?", "-9")
    assert card.linkability_columns == (("age",), ("sick",))
    assert card_from_dict(GOOD).linkability_columns is None
