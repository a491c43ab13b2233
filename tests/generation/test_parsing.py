"""Parsing model answers and validating hand-made bad rows."""

from __future__ import annotations

import json

import pytest

from synllm.cards import load_card
from synllm.generation.parsing import parse_text, validate_rows


@pytest.fixture(scope="module")
def card():
    return load_card("stroke")


GOOD = "Male,67.00,0,1,Yes,Private,Urban,228.69,36.6,formerly smoked,1"
GOOD2 = "Female,20.50,0,0,No,Private,Rural,80.00,N/A,Unknown,0"


def test_plain_csv_lines(card):
    parsed = parse_text(f"{GOOD}\n{GOOD2}\n", card)
    assert parsed.format == "csv"
    assert parsed.rows == [GOOD.split(","), GOOD2.split(",")]
    assert parsed.repairs == []


def test_fences_prose_numbering_and_header_are_repaired(card):
    header = ",".join(card.synth_names)
    text = f"Sure! Here are the rows:\n```csv\n{header}\n1. {GOOD}\n2) {GOOD2}\n```\nHope this helps."
    parsed = parse_text(text, card)
    assert parsed.rows == [GOOD.split(","), GOOD2.split(",")]
    assert "removed code fences" in parsed.repairs
    assert "removed line numbering" in parsed.repairs
    assert "skipped a header line" in parsed.repairs
    assert any("Hope" in j for j in parsed.junk)


def test_json_arrays_objects_and_surrounding_prose(card):
    rows = [["Male", 67, 0, 1, "Yes", "Private", "Urban", 228.69, None, "smokes", 1]]
    text = "Here you go: " + json.dumps({"rows": rows}) + " -- done"
    parsed = parse_text(text, card)
    assert parsed.format == "json"
    assert parsed.rows[0][0] == "Male" and parsed.rows[0][8] == ""
    assert "ignored text before the JSON" in parsed.repairs and "ignored text after the JSON" in parsed.repairs
    objects = [dict(zip(card.synth_names, rows[0]))]
    parsed = parse_text(json.dumps(objects), card)
    assert parsed.rows[0][1] == "67"


def test_range_exact_json_reads_numbers_back_from_strings(card):
    """The schema with patterns has numbers as strings ("67.00") and a missing number as null or the token."""
    rows = [
        ["Male", "67.00", 0, 1, "Yes", "Private", "Urban", "228.69", "36.6", "formerly smoked", 1],
        ["Female", "20.50", 0, 0, "No", "Private", "Rural", "80.00", None, "Unknown", 0],
        ["Female", "0.08", 0, 0, "No", "children", "Rural", "50.00", "N/A", "Unknown", 0],
        ["Male", "45.00", 0, 0, "Yes", "Private", "Urban", "48.50", "30.0", "smokes", 0],
    ]
    checked = validate_rows(parse_text(json.dumps({"rows": rows}), card).rows, card)
    assert len(checked.valid) == 3 and checked.rejected["_reason"].tolist() == ["out_of_range: avg_glucose_level=48.50"]
    typed = checked.valid
    assert typed["age"].tolist() == [67.0, 20.5, 0.08] and typed["age"].dtype == "float64"
    assert typed["avg_glucose_level"].tolist() == [228.69, 80.0, 50.0]
    assert typed["bmi"].isna().tolist() == [False, True, True] and typed["bmi"].iloc[0] == 36.6
    assert typed["stroke"].tolist() == [1, 0, 0]


def test_truncated_json_falls_back_to_lines(card):
    parsed = parse_text('{"rows": [["Male", 67, 0', card)
    assert parsed.format == "csv"
    assert validate_rows(parsed.rows, card).valid.empty


def test_validation_keeps_good_rows_typed(card):
    result = validate_rows([GOOD.split(","), GOOD2.split(",")], card)
    assert len(result.valid) == 2 and result.rejected.empty
    assert str(result.valid["age"].dtype) == "float64"
    assert str(result.valid["stroke"].dtype) == "Int64"
    assert result.valid["bmi"].isna().tolist() == [False, True]
    assert list(result.valid.columns) == card.synth_names


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({1: "140"}, "out_of_range: age=140"),
        ({1: "old"}, "not_a_number: age=old"),
        ({0: "Robot"}, "unknown_category: gender=Robot"),
        ({2: "2"}, "unknown_category: hypertension=2"),
        ({2: "0.5"}, "not_an_integer: hypertension=0.5; unknown_category: hypertension=0.5"),
        ({1: ""}, "missing: age="),
        ({9: "N/A"}, "missing: smoking_status=N/A"),
    ],
)
def test_bad_rows_are_rejected_with_a_reason(card, cells, reason):
    row = GOOD.split(",")
    for i, value in cells.items():
        row[i] = value
    result = validate_rows([row, GOOD2.split(",")], card)
    assert len(result.valid) == 1
    assert result.rejected["_reason"].tolist() == [reason]
    assert result.reasons == {part.split(":")[0]: 1 for part in reason.split("; ")}


def test_wrong_column_count_is_a_reason(card):
    result = validate_rows([["Male", "67"], GOOD.split(",") + ["extra"]], card)
    assert result.valid.empty
    assert result.rejected["_reason"].str.startswith("wrong_column_count").all()
    assert result.rejected["_reason"].tolist()[0] == "wrong_column_count: 2 fields, expected 11"


def test_several_failures_in_one_row_are_all_listed(card):
    row = GOOD.split(",")
    row[1], row[0] = "500", "X"
    reason = validate_rows([row], card).rejected["_reason"].item()
    assert reason == "unknown_category: gender=X; out_of_range: age=500"


# An answer cut off at max_tokens (issue 22): the complete rows before the cut are kept, the rest is `cut`.
ROW = ["Male", "67.00", "0", "1", "Yes", "Private", "Urban", "228.69", "36.6", "formerly smoked", "1"]
ROW2 = ["Female", "20.50", "0", "0", "No", "Private", "Rural", "80.00", "N/A", "Unknown", "0"]


def _json_rows(card, shape: str) -> str:
    """Two whole rows and a third cut mid-row, in one of the JSON shapes the parser reads."""
    rows = [ROW, ROW2, ROW]
    if shape == "objects":
        text = json.dumps([dict(zip(card.synth_names, r)) for r in rows])
    elif shape == "bare":
        text = json.dumps(rows)
    else:
        text = json.dumps({shape: rows}, indent=1)
    return text[: text.rindex('"Urban"')]  # cut inside the third row


def _cut_reasons(checked) -> list[str]:
    return [r for r in checked.rejected["_reason"] if r.startswith("cut")]


@pytest.mark.parametrize("shape", ["rows", "records", "data", "bare", "objects"])
def test_a_json_answer_cut_at_max_tokens_keeps_its_complete_rows(card, shape):
    text = _json_rows(card, shape)
    old = validate_rows(parse_text(text, card).rows, card)  # not known to be cut: the JSON is just broken
    assert old.valid.empty
    parsed = parse_text(text, card, cut=True)
    assert parsed.format == "json"
    assert "kept the rows before the cut" in parsed.repairs
    checked = validate_rows(parsed.rows, card)
    assert len(checked.valid) == 2 and checked.valid["gender"].tolist() == ["Male", "Female"]
    assert len(checked.rejected) == 1 and checked.reasons == {"cut": 1}
    assert _cut_reasons(checked)[0].startswith("cut: the answer stopped at max_tokens")
    assert '"Male"' in checked.rejected["_raw"].item()


def test_a_csv_answer_cut_at_max_tokens_keeps_its_complete_lines(card):
    text = f"{GOOD}\n{GOOD2}\nMale,67.00,0,1,Yes,Private,Urban,22"  # the last value would have been 228.69
    uncut = validate_rows(parse_text(text, card).rows, card)
    assert uncut.reasons == {"wrong_column_count": 1}  # not known to be cut
    checked = validate_rows(parse_text(text, card, cut=True).rows, card)
    assert len(checked.valid) == 2 and checked.reasons == {"cut": 1}
    assert checked.rejected["_raw"].item() == "Male,67.00,0,1,Yes,Private,Urban,22"


@pytest.mark.parametrize(
    "text",
    [f"{GOOD}\n{GOOD2}\n", f"```csv\n{GOOD}\n{GOOD2}\n```", json.dumps({"rows": [ROW, ROW2]}), json.dumps([ROW, ROW2])],
)
def test_a_whole_answer_that_reached_max_tokens_loses_nothing(card, text):
    checked = validate_rows(parse_text(text, card, cut=True).rows, card)
    assert len(checked.valid) == 2 and checked.rejected.empty


def test_a_cut_answer_with_no_complete_row_is_one_cut_reject(card):
    for text in ['{"rows": [["Male", 67', "Male,67.0"]:
        checked = validate_rows(parse_text(text, card, cut=True).rows, card)
        assert checked.valid.empty and checked.reasons == {"cut": 1}
