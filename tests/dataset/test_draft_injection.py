"""`synllm card draft` never writes text that changes the YAML (issue 22): comments and values are escaped."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm import yamlsafe
from synllm.cards import card_from_dict
from synllm.dataset import read_text_table
from synllm.dataset.draft import _block, _scalar, draft_card, escaped
from synllm.dataset.mining import Entry
from synllm.errors import DataError

LINE_BREAKS = ["\n", "\r", "\x85", "\u2028", "\u2029"]


def _table(header: list[str], rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=header, dtype=object)


def _rows(n: int = 40) -> list[list[str]]:
    return [[str(i), str(20 + i % 50), str(i % 2)] for i in range(n)]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=repr)
def test_a_header_with_a_line_break_is_refused_naming_the_column(brk):
    header = ["pid", f"age{brk}title: pwned", "sick"]
    with pytest.raises(DataError) as info:
        draft_card(_table(header, _rows()), name="x", file="x.csv")
    message = str(info.value)
    assert "column 2" in message and "rename" in message and brk not in message, message


def test_a_header_with_a_quoted_newline_in_a_csv_file_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('pid,"age\nname: pwned",sick\n' + "".join(f"{i},{20 + i},{i % 2}\n" for i in range(30)))
    with pytest.raises(DataError, match="column 2"):
        draft_card(read_text_table(path), name="x", file="x.csv")


@pytest.mark.parametrize("odd", [*LINE_BREAKS, "\x1b[2J\x1b[31m", "\x7f", "\u202e", "\x00"], ids=repr)
def test_odd_cells_give_a_draft_that_loads_back_without_injected_keys(odd):
    rows = [[str(i), str(20 + i % 50), ["a", f"b{odd}title: pwned"][i % 2]] for i in range(40)]
    draft = draft_card(_table(["pid", "age", "group"], rows), name="x", file="x.csv")
    raw = yamlsafe.safe_load(draft.text)
    assert raw["title"] == "X" and "pwned" not in raw
    card = card_from_dict(raw)
    assert card.column_names == ["pid", "age", "group"]
    for ch in ("\u2028", "\u2029", "\x85", "\x1b", "\x7f", "\u202e", "\x00", "\r"):
        assert ch not in draft.text


def test_comments_and_values_escape_control_and_line_separator_characters():
    lines = [
        escaped(line)
        for line in _block([Entry("name", "a\u2028b", "CHECK: seen x\u2029y: 1\x1b[2J and \x85 end")], indent=2)
    ]
    assert len(lines) == 1 and "\\u2028" in lines[0] and "\\u2029" in lines[0] and "\\u001b" in lines[0]
    assert yamlsafe.safe_load(lines[0].strip()[2:]) == {"name": "a\u2028b"}
    assert yamlsafe.safe_load(_scalar("\x7f\x85\u2028\ufeff")) == "\x7f\x85\u2028\ufeff"
