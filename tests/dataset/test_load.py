"""Loading real files against their cards, refusing bad files clearly, and splitting without leaks."""

from __future__ import annotations

import hashlib
import re
import textwrap

import pandas as pd
import pytest

from synllm import config
from synllm.cards import load_card
from synllm.dataset import drop_identifiers, load_dataset, read_text_table, split
from synllm.errors import DataError, InvalidArgument

# --- the stored raw files ------------------------------------------------------------------


def _stored_hashes() -> dict[str, str]:
    """file name -> 'stored sha256' from the table in data/raw/SOURCES.md."""
    text = (config.RAW_DIR / "SOURCES.md").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = next(ln for ln in lines if "stored sha256" in ln)
    names = [c.strip() for c in header.strip("|").split("|")]
    col = names.index("stored sha256")
    hashes = {}
    for line in lines[lines.index(header) + 1 :]:
        if set(line) <= set("|-: "):
            continue  # the |---|---| separator
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(names) or not cells[0].endswith(".csv"):
            break
        hashes[cells[0]] = cells[col].strip("`")
    return hashes


def test_sources_lists_every_raw_csv():
    assert set(_stored_hashes()) == {p.name for p in config.RAW_DIR.glob("*.csv")}


@pytest.mark.parametrize("name", sorted(_stored_hashes()))
def test_raw_file_matches_stored_sha256(name):
    stored = _stored_hashes()[name]
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert hashlib.sha256((config.RAW_DIR / name).read_bytes()).hexdigest() == stored


# --- dtypes from the card --------------------------------------------------------------------


def _plain_read(name: str) -> pd.DataFrame:
    """pandas' default reading, as an independent reference."""
    return pd.read_csv(config.RAW_DIR / f"{name}.csv")


def test_stroke_dtypes(stroke_data):
    table, _ = stroke_data
    plain = _plain_read("stroke")
    assert table["bmi"].dtype == "float64"
    assert table["bmi"].isna().sum() == plain["bmi"].isna().sum() == 201
    assert table["hypertension"].dtype == "Int64"
    assert isinstance(table["gender"].dtype, pd.CategoricalDtype)
    assert list(table["gender"].cat.categories) == ["Female", "Male", "Other"]
    assert (table["smoking_status"] == "Unknown").sum() == (plain["smoking_status"] == "Unknown").sum()
    assert len(table) == len(plain)


def test_diabetes_dtypes_keep_no_info_as_a_category(diabetes_data):
    table, _ = diabetes_data
    plain = _plain_read("diabetes")
    smoking = table["smoking_history"]
    assert isinstance(smoking.dtype, pd.CategoricalDtype)
    assert "No Info" in smoking.cat.categories
    assert smoking.isna().sum() == 0
    assert (smoking == "No Info").sum() == (plain["smoking_history"] == "No Info").sum() > 0
    assert table["blood_glucose_level"].dtype == "Int64"
    assert table["diabetes"].dtype == "Int64"
    assert table["bmi"].dtype == "float64"
    assert table.isna().sum().sum() == 0
    pd.testing.assert_series_equal(table["HbA1c_level"], plain["HbA1c_level"])
    assert (table["bmi"] == plain["bmi"]).all()


def test_cirrhosis_dtypes_and_structural_missingness(cirrhosis_data):
    table, card = cirrhosis_data
    plain = _plain_read("cirrhosis")
    non_trial = plain["ID"] > 312
    assert table["Drug"].isna().sum() == 106
    assert (table["Drug"].isna() == non_trial).all()
    for name in ("Ascites", "Hepatomegaly", "Spiders", "Alk_Phos", "SGOT"):
        assert (table[name].isna() == non_trial).all(), name
    assert table["Stage"].dtype == "Int64"
    assert table["Stage"].isna().sum() == 6
    assert table["Age"].dtype == "Int64"
    assert table["Bilirubin"].dtype == "float64"
    for name in card.numeric_names:
        assert (table[name].isna() == plain[name].isna()).all(), name
        assert (table[name].dropna().astype(float) == plain[name].dropna()).all(), name


# --- loader error paths on hand-made files ---------------------------------------------------

MINI_CARD = """
name: mini
file: mini.csv
missing:
  tokens: ["NA"]
roles:
  target: sick
  identifiers: [pid]
columns:
  - name: pid
    kind: identifier
    description: record number
  - name: age
    kind: integer
    range: [0, 120]
    description: age in years
  - name: bmi
    kind: float
    range: [10, 100]
    nullable: true
    missing: not measured
    description: body mass index
  - name: sex
    kind: categorical
    categories: [F, M]
    description: sex
  - name: sick
    kind: binary
    description: 1 = sick
rules:
  - id: adult_bmi
    kind: hard
    statement: An adult has a BMI of at least 15.
    when: "age >= 18"
    require: "bmi >= 15"
  - id: sick_with_age
    kind: soft
    statement: Sickness is more frequent after 60.
    measure: rate
    outcome: "sick == 1"
    group: "age > 60"
    versus: "age <= 60"
"""

GOOD_CSV = """\
pid,age,bmi,sex,sick
1,40,22.5,F,0
2,65,NA,M,1
3,30,31.0,F,0
4,12,16.2,M,0
"""


def _write(tmp_path, csv_text: str | bytes | None):
    card = tmp_path / "mini.yaml"
    card.write_text(textwrap.dedent(MINI_CARD), encoding="utf-8")
    csv = tmp_path / "mini.csv"
    if isinstance(csv_text, bytes):
        csv.write_bytes(csv_text)
    elif csv_text is not None:
        csv.write_text(csv_text, encoding="utf-8")
    return card, csv


def _load_error(tmp_path, csv_text) -> str:
    card, csv = _write(tmp_path, csv_text)
    with pytest.raises(DataError) as info:
        load_dataset(card)
    message = str(info.value)
    assert str(csv) in message, "the message must name the file"
    return message


def test_good_hand_made_file_loads(tmp_path):
    card, csv = _write(tmp_path, GOOD_CSV)
    table, loaded = load_dataset(card)
    assert loaded.file == csv
    assert list(table.columns) == ["pid", "age", "bmi", "sex", "sick"]
    assert table["bmi"].isna().tolist() == [False, True, False, False]
    assert table["age"].tolist() == [40, 65, 30, 12]
    assert list(table.index) == [0, 1, 2, 3]


def test_missing_column(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace(",sex", "").replace(",F", "").replace(",M", ""))
    assert "missing column(s) ['sex']" in message
    assert "'mini'" in message and "header" in message


def test_extra_column(tmp_path):
    lines = GOOD_CSV.splitlines()
    extra = "\n".join([lines[0] + ",colour"] + [ln + ",red" for ln in lines[1:]]) + "\n"
    message = _load_error(tmp_path, extra)
    assert "extra column(s) ['colour']" in message
    assert "fix the CSV header" in message


def test_value_outside_the_categories(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("3,30,31.0,F", "3,30,31.0,X"))
    assert "column 'sex'" in message
    assert "unknown category" in message
    assert "line 4: 'X'" in message
    assert "Fix: add the value to the column's categories" in message


def test_unparseable_number(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("22.5", "twenty"))
    assert "column 'bmi'" in message
    assert "not a number" in message
    assert "line 2: 'twenty'" in message
    assert "Fix:" in message and "missing.tokens" in message


def test_non_integer_in_integer_column(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("1,40,", "1,40.5,"))
    assert "column 'age'" in message
    assert "not an integer" in message
    assert "line 2: '40.5'" in message
    assert "kind to 'float'" in message


def test_missing_value_in_non_nullable_column(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("3,30,", "3,NA,").replace("4,12,", "4,,"))
    assert "column 'age'" in message
    assert "missing in 2 row(s)" in message
    assert "line 4: 'NA'" in message and "line 5: ''" in message
    assert "nullable: true" in message


def test_only_five_offending_lines_are_shown(tmp_path):
    rows = "".join(f"{i},30,20.0,Q,0\n" for i in range(1, 9))
    message = _load_error(tmp_path, "pid,age,bmi,sex,sick\n" + rows)
    assert "unknown category in 8 row(s)" in message
    for line in range(2, 7):
        assert f"line {line}: 'Q'" in message
    assert "line 7" not in message
    assert "(and 3 more)" in message


def test_empty_file(tmp_path):
    assert "empty" in _load_error(tmp_path, "")
    assert "empty" in _load_error(tmp_path, "\n\n")


def test_header_only_file(tmp_path):
    message = _load_error(tmp_path, "pid,age,bmi,sex,sick\n")
    assert "header but no data rows" in message


def test_latin1_file(tmp_path):
    text = GOOD_CSV.replace("pid,age,bmi,sex,sick", "pid,âge,bmi,sex,sick")
    message = _load_error(tmp_path, text.encode("latin-1"))
    assert "not UTF-8" in message
    assert "line 1" in message
    assert "iconv" in message


def test_latin1_byte_in_a_data_row_names_its_line(tmp_path):
    text = GOOD_CSV.replace("3,30,31.0,F", "3,30,31.0,é")
    message = _load_error(tmp_path, text.encode("latin-1"))
    assert "line 4" in message and "\\xe9" not in message  # the place, never the file's bytes (issue 22)


def test_missing_file(tmp_path):
    message = _load_error(tmp_path, None)
    assert "file not found" in message
    assert "'file' in the card" in message


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("1,40,22.5,F,0", "1,40,22.5,F,0,9", 2),  # a long first row must not become an index
        ("3,30,31.0,F,0", "3,30,31.0,F", 4),  # a short row is not silently padded
    ],
    ids=["too-many-fields", "too-few-fields"],
)
def test_rows_with_the_wrong_number_of_fields(tmp_path, old, new, line):
    message = _load_error(tmp_path, GOOD_CSV.replace(old, new))
    assert "well-formed CSV" in message
    assert f"line {line}:" in message
    assert "quote" in message


def test_duplicate_header_names(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("pid,age,bmi,sex,sick", "pid,age,age,sex,sick"))
    assert "['age']" in message and "more than once" in message


def test_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    text = 'pid,age,bmi,sex,sick\n\n"1\nA",40,22.5,F,0\n\n2,65,NA,Q,1\n'
    message = _load_error(tmp_path, text)
    assert "line 6: 'Q'" in message


def test_quoted_values_and_a_bom_are_read(tmp_path):
    card, csv = _write(tmp_path, None)
    csv.write_bytes(("\ufeff" + GOOD_CSV.replace("1,40,22.5,F,0", '"1,a",40," 22.5 ",F,0')).encode("utf-8"))
    table, _ = load_dataset(card)
    assert table["pid"].tolist()[0] == "1,a"
    assert table["bmi"].tolist()[0] == 22.5


def test_explicit_path_overrides_card_file(tmp_path):
    card, _ = _write(tmp_path, None)
    other = tmp_path / "other.csv"
    other.write_text(GOOD_CSV, encoding="utf-8")
    assert len(load_dataset(card, path=other).table) == 4
    with pytest.raises(DataError, match="other-missing.csv.*file not found"):
        load_dataset(card, path=tmp_path / "other-missing.csv")


def test_rule_violations_and_odd_values_are_issues_not_errors(tmp_path, caplog):
    text = GOOD_CSV.replace("1,40,22.5", "1,40,12.0").replace("3,30,31.0", "3,30,140.0")
    card, csv = _write(tmp_path, text)
    with caplog.at_level("WARNING", logger="synllm.dataset"):
        data = load_dataset(card)
    assert len(data.table) == 4
    assert len(data.issues) == 2
    rule_issue = next(i for i in data.issues if "adult_bmi" in i)
    assert str(csv) in rule_issue and "1 row(s)" in rule_issue and "lines 2" in rule_issue
    range_issue = next(i for i in data.issues if "plausible range" in i)
    assert "'bmi'" in range_issue and "line 4: 140.0" in range_issue
    assert len(caplog.records) == 2


def test_broken_rule_in_a_real_file_is_an_issue_with_its_line(tmp_path, stroke_data):
    lines = (config.RAW_DIR / "stroke.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    child = next(i for i, line in enumerate(lines) if ",children," in line)
    fields = lines[child].split(",")
    fields[2] = "45"  # age of a patient whose work_type is 'children'
    lines[child] = ",".join(fields)
    edited = tmp_path / "stroke.csv"
    edited.write_text("".join(lines), encoding="utf-8")
    data = load_dataset("stroke", path=edited)
    assert len(data.table) == len(stroke_data.table)
    assert data.issues == (f"{edited}: hard rule 'children_are_minors' broken by 1 row(s) (lines {child + 1})",)


def test_real_datasets_have_no_issues(stroke_data, cirrhosis_data):
    assert stroke_data.issues == ()
    assert cirrhosis_data.issues == ()


# --- split ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes_split(diabetes_data):
    table, card = diabetes_data
    return split(table, card, holdout=0.2, random_state=0)


def _distinct_rows(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return table[names].drop_duplicates()


def test_split_is_deterministic_for_a_random_state(stroke_data):
    table, card = stroke_data
    train_a, hold_a = split(table, card, random_state=7)
    train_b, hold_b = split(table, card, random_state=7)
    pd.testing.assert_frame_equal(train_a, train_b)
    pd.testing.assert_frame_equal(hold_a, hold_b)
    _, hold_c = split(table, card, random_state=8)
    assert set(hold_a["id"]) != set(hold_c["id"])


def test_split_keeps_every_row_once(stroke_data):
    table, card = stroke_data
    train, held = split(table, card)
    assert len(train) + len(held) == len(table)
    assert not set(train["id"]) & set(held["id"])
    assert set(train["id"]) | set(held["id"]) == set(table["id"])


def test_split_does_not_mutate_its_input(cirrhosis_data):
    table, card = cirrhosis_data
    before = table.copy()
    split(table, card, random_state=3)
    pd.testing.assert_frame_equal(table, before)


@pytest.mark.parametrize("name", ["stroke", "diabetes"])
def test_split_is_stratified_on_the_target(name, request):
    table, card = request.getfixturevalue(f"{name}_data")
    train, held = request.getfixturevalue("diabetes_split") if name == "diabetes" else split(table, card)
    full = table[card.target].mean()
    assert abs(train[card.target].mean() - full) < 0.01
    assert abs(held[card.target].mean() - full) < 0.01
    assert abs(len(held) / len(table) - 0.2) < 0.01


def test_duplicate_rows_never_straddle_the_split(diabetes_data, diabetes_split):
    table, card = diabetes_data
    train, held = diabetes_split
    names = card.synth_names
    assert table.duplicated(subset=names).sum() > 0, "the check needs duplicated rows to mean anything"
    assert len(train) + len(held) == len(table)
    both = _distinct_rows(train, names).merge(_distinct_rows(held, names), on=names, how="inner")
    assert both.empty


def test_duplicates_differing_only_in_identifier_stay_together(stroke_data):
    table, card = stroke_data
    copies = table.head(200).copy()
    copies["id"] = copies["id"] + "-copy"
    doubled = pd.concat([table, copies], ignore_index=True)
    train, held = split(doubled, card, random_state=1)
    names = card.synth_names
    both = _distinct_rows(train, names).merge(_distinct_rows(held, names), on=names, how="inner")
    assert both.empty
    assert len(train) + len(held) == len(doubled)


def test_cirrhosis_splits_with_missing_targets(cirrhosis_data):
    table, card = cirrhosis_data
    train, held = split(table, card, holdout=0.2, random_state=0)
    assert len(train) + len(held) == len(table)
    assert train["Stage"].isna().sum() + held["Stage"].isna().sum() == table["Stage"].isna().sum()
    assert not set(train["ID"]) & set(held["ID"])


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_rejects_a_bad_holdout_fraction(stroke_data, fraction):
    table, card = stroke_data
    with pytest.raises(InvalidArgument, match="holdout"):
        split(table, card, holdout=fraction)


def test_drop_identifiers_returns_a_copy(cirrhosis_data):
    table, card = cirrhosis_data
    out = drop_identifiers(table, card)
    assert "ID" not in out.columns
    assert "ID" in table.columns
    assert list(out.columns) == card.synth_names


def test_load_dataset_accepts_a_card_object():
    card = load_card("cirrhosis")
    table, same = load_dataset(card)
    assert same is card
    assert len(table) == 418


WIDE = 200_000  # columns: a quadratic header check never finishes at this width (46 s at 40k before the fix)


def test_a_very_wide_header_with_repeated_names_is_refused_naming_them(tmp_path):
    names = [f"c{i}" for i in range(WIDE)] + ["c5", "c7", "c5"]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_text_table(path)
    message = str(info.value)
    assert "['c5', 'c7'] appear more than once" in message and len(message) < 500


def test_a_very_wide_file_against_a_small_card_names_a_few_extra_columns(tmp_path):
    header = "pid,age,bmi,sex,sick," + ",".join(f"x{i}" for i in range(WIDE))
    row = "1,40,22.5,F,0," + ",".join("0" for _ in range(WIDE))
    message = _load_error(tmp_path, f"{header}\n{row}\n")
    assert "extra column(s) ['x0', 'x1'" in message and f"and {WIDE - 10:,} more" in message
    assert len(message) < 1000


def _edited_card(tmp_path, edit, csv_text: str):
    """MINI_CARD with ``edit`` applied to its parsed YAML, beside ``csv_text`` as mini.csv."""
    import yaml

    raw = yaml.safe_load(textwrap.dedent(MINI_CARD))
    edit(raw)
    card = tmp_path / "mini.yaml"
    card.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    (tmp_path / "mini.csv").write_text(csv_text, encoding="utf-8")
    return card


def test_a_column_missing_code_makes_only_that_column_missing(tmp_path):
    def zero_bmi_is_missing(raw):
        raw["columns"][2].update(missing_codes=[0], range=[10, 100])
        raw["columns"][1]["range"] = [0, 120]

    text = "pid,age,bmi,sex,sick\n1,0,0,F,0\n2,65,0.0,M,1\n3,30,31.0,F,0\n4,0,16.2,M,0\n"
    table, card = load_dataset(_edited_card(tmp_path, zero_bmi_is_missing, text))
    assert card.column("bmi").nullable and card.column("bmi").missing_codes == (0,)
    assert table["bmi"].isna().tolist() == [True, True, False, False]
    assert table["age"].tolist() == [0, 65, 30, 0]  # a real zero elsewhere stays a zero


def test_a_zero_in_the_card_wide_tokens_gets_advice_to_use_the_columns_codes(tmp_path):
    def zero_token(raw):
        raw["missing"]["tokens"] = ["NA", "0"]

    text = "pid,age,bmi,sex,sick\n1,0,0,F,0\n2,65,22.0,M,1\n"
    with pytest.raises(DataError) as info:
        load_dataset(_edited_card(tmp_path, zero_token, text))
    message = str(info.value)
    assert "column 'age': missing in 1 row(s)" in message
    assert "missing_codes: [0]" in message and "nullable: true" not in message


def test_numeric_categories_written_as_quoted_text_get_advice_to_unquote(tmp_path):
    def quoted(raw):
        raw["columns"][4].update(kind="categorical", categories=["0", "1"])
        raw["rules"][1]["outcome"] = "sick == '1'"

    text = "pid,age,bmi,sex,sick\n1,40,22.0,F,0.0\n2,65,22.0,M,1.0\n"
    with pytest.raises(DataError) as info:
        load_dataset(_edited_card(tmp_path, quoted, text))
    message = str(info.value)
    assert "column 'sick'" in message and "quoted text ('0', '1')" in message and "categories: [0, 1]" in message
    assert "add the value" not in message


def test_a_misspelt_column_names_the_files_spelling(tmp_path):
    message = _load_error(tmp_path, GOOD_CSV.replace("pid,age,bmi", "pid,Age,bmi"))
    assert "missing column(s) ['age']" in message and "the card's 'age' may be the file's 'Age'" in message
