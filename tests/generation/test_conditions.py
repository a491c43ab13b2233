"""Issue 19: conditions and class mixes, checked against the card, compiled into the request, met by quota."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

import synllm
from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.backends.ollama import OllamaBackend
from synllm.backends.openai import OpenAIBackend
from synllm.cards import load_card
from synllm.dataset import split
from synllm.errors import InvalidArgument
from synllm.generation.class_mix import largest_remainder, mix_conditions
from synllm.generation.conditions import (
    Condition,
    check_conditions,
    condition_mask,
    parse_condition,
    restricted_card,
)
from synllm.generation.constraints import to_gbnf
from synllm.generation.loop import GenerationOptions, generate
from synllm.generation.manifest import read_manifest
from synllm.generation.spec import RunSpec
from tests.fake_ollama import FAKE_MODEL, FakeOllama
from tests.fake_openai import FAKE_OPENAI_MODEL, FakeOpenAI
from tests.grammars import gbnf_regex, sample_gbnf

STROKE = load_card("stroke")
CIRRHOSIS = load_card("cirrhosis")


@pytest.fixture(scope="module")
def stroke_train(stroke_data):
    return split(*stroke_data, random_state=0)[0]


class GrammarBackend(BaseBackend):
    """Answers with random text its request's GBNF grammar accepts (what a llama.cpp backend guarantees)."""

    name = "grammar-fake"
    output_format = "csv"
    model = "g"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        text = sample_gbnf(request.grammar, random.Random(request.seed))
        return Generation(text=text, backend=self.name, model=request.model, completion_tokens=10, elapsed_s=0.01)


class FreeTextBackend(GrammarBackend):
    """Ignores constraints: real rows written in the column order the prompt asks for (a plain backend)."""

    name = "free-fake"

    def __init__(self, pool: pd.DataFrame) -> None:
        super().__init__()
        self.pool = pool

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        header = request.prompt.split("column order:\n", 1)[1].splitlines()[0].split(",")
        rows = self.pool.sample(n=4, random_state=request.seed)
        lines = [",".join(synllm_cell(r[name]) for name in header) for r in rows.to_dict("records")]
        return Generation(text="\n".join(lines), backend=self.name, model=request.model, elapsed_s=0.01)


def synllm_cell(value) -> str:
    if pd.isna(value):
        return "N/A"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def test_conditions_are_checked_against_the_card_with_the_fix_named():
    (checked,) = check_conditions([Condition(column_values={"stroke": "1", "age": [65, 90]}, num_rows=3)], STROKE)
    assert checked.column_values == {"stroke": 1, "age": (65, 90)}
    assert checked.label == "stroke=1,age=65..90"
    assert check_conditions(["work_type=Private|Govt_job:10"], STROKE)[0].column_values == {
        "work_type": ["Govt_job", "Private"]
    }
    with pytest.raises(InvalidArgument, match="unknown column 'strok'.*generates gender"):
        check_conditions([Condition(column_values={"strok": 1})], STROKE)
    with pytest.raises(InvalidArgument, match="'Retired' is not one of its categories"):
        check_conditions(["work_type=Retired:3"], STROKE)
    with pytest.raises(InvalidArgument, match=r"age: 65\.\.190 lies outside the card's range 0\.08\.\.100"):
        check_conditions(["age=65..190:3"], STROKE)
    with pytest.raises(InvalidArgument, match="holds no value the card writes .with 2 decimals"):
        check_conditions(["age=65.123:3"], STROKE)
    with pytest.raises(InvalidArgument, match="reversed"):
        check_conditions(["age=90..65:3"], STROKE)
    with pytest.raises(InvalidArgument, match="COLUMN=VALUE:ROWS"):
        parse_condition("stroke=1")
    with pytest.raises(InvalidArgument, match="num_rows"):
        Condition(column_values={"stroke": 1}, num_rows=-1)


def test_a_class_mix_becomes_quotas_by_largest_remainder(stroke_train):
    assert largest_remainder([0.951, 0.049], 100) == [95, 5]
    assert largest_remainder([1, 1, 1], 10) == [4, 3, 3]
    real = mix_conditions(STROKE, "real", 100, stroke_train)
    assert [(c.label, c.num_rows) for c in real] == [("stroke=0", 95), ("stroke=1", 5)]
    assert [c.num_rows for c in mix_conditions(STROKE, "balanced", 7, None)] == [4, 3]
    assert [(c.label, c.num_rows) for c in mix_conditions(STROKE, {1: 0.3, 0: 0.7}, 10, None)] == [
        ("stroke=0", 7),
        ("stroke=1", 3),
    ]
    stages = mix_conditions(CIRRHOSIS, "balanced", 8, None)
    assert [(c.label, c.num_rows) for c in stages] == [("Stage=1", 2), ("Stage=2", 2), ("Stage=3", 2), ("Stage=4", 2)]
    with pytest.raises(InvalidArgument, match="not classes of 'stroke'"):
        mix_conditions(STROKE, {"yes": 1}, 10, None)


def test_a_condition_is_in_the_run_key_only_when_set_and_its_row_count_never():
    plain = RunSpec(card=STROKE, prompt_type="p4", model="m", n_rows=20)
    one = RunSpec(card=STROKE, prompt_type="p4", model="m", conditions=["stroke=1:5"])
    more = RunSpec(card=STROKE, prompt_type="p4", model="m", conditions=["stroke=1:50"])
    assert one.n_rows == 5 and more.n_rows == 50
    assert one.key("b", "h") == more.key("b", "h") != plain.key("b", "h")
    assert hash(one) == hash(RunSpec(card=STROKE, prompt_type="p4", model="m", conditions=["stroke=1:5"]))
    mixed = RunSpec(card=STROKE, prompt_type="p4", model="m", class_mix="real")
    assert mixed.key("b", "h") not in {plain.key("b", "h"), one.key("b", "h")}
    with pytest.raises(InvalidArgument, match="leave n_rows out"):
        RunSpec(card=STROKE, prompt_type="p4", model="m", n_rows=9, conditions=["stroke=1:5"])


def test_the_grammar_writes_conditioned_columns_first_and_only_their_allowed_values():
    condition = check_conditions(["age=65..90,work_type=Private|Govt_job:1"], STROKE)[0]
    card = restricted_card(STROKE, condition)
    assert card.synth_names[:2] == ["age", "work_type"]
    pattern = re.compile(gbnf_regex(to_gbnf(card, 1)))
    rng = random.Random(0)
    for _ in range(200):
        age, work = sample_gbnf(to_gbnf(card, 1), rng).split(",")[:2]
        assert 65 <= float(age) <= 90 and work in {"Private", "Govt_job"}
    assert not pattern.fullmatch("64.99,Private" + ",Male,0,0,Yes,Urban,100.00,20.0,smokes,0\n")
    plain = re.compile(gbnf_regex(to_gbnf(STROKE, 1)))
    assert plain.fullmatch("Male,64.99,0,0,Yes,Private,Urban,100.00,20.0,smokes,0\n")


def test_stroke_real_mix_of_100_rows_gives_exactly_the_quota_with_conditions_met(stroke_train, tmp_path):
    backend = GrammarBackend()
    result = generate(
        STROKE, stroke_train, "p4", backend, n_rows=100, class_mix="real",
        options=GenerationOptions(batch_size=20), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    rows = result.synthetic
    assert result.complete and len(rows) == 100
    assert list(rows.columns) == STROKE.synth_names  # back in card order
    assert (rows["stroke"] == 1).sum() == 5 and (rows["stroke"] == 0).sum() == 95
    counts = {c["condition"]: (c["requested"], c["delivered"]) for c in result.manifest.conditions}
    assert counts == {"stroke=0": (95, 95), "stroke=1": (5, 5)}
    assert result.manifest.class_mix == "real"
    assert read_manifest(result.run_dir).conditions == result.manifest.conditions
    # each request named its class, asked for no more rows than were missing, and wrote stroke first
    stroke_requests = [r for r in backend.requests if "stroke = 1" in r.prompt]
    assert stroke_requests and all(r.grammar.splitlines()[1].startswith("row ::= c0-stroke") for r in stroke_requests)
    assert "Now generate 5 new" in stroke_requests[0].prompt
    # a rerun reads the cache: nothing asked again, same rows
    asked = len(backend.requests)
    again = generate(
        STROKE, stroke_train, "p4", backend, n_rows=100, class_mix="real",
        options=GenerationOptions(batch_size=20), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert len(backend.requests) == asked
    pd.testing.assert_frame_equal(again.synthetic, rows)


def test_a_range_condition_holds_in_every_row(stroke_train, tmp_path):
    result = generate(
        STROKE, stroke_train, "p2", GrammarBackend(),
        conditions=[Condition(column_values={"age": (65, 90)}, num_rows=30)],
        options=GenerationOptions(batch_size=10), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert len(result.synthetic) == 30 and result.synthetic["age"].between(65, 90).all()


def test_a_plain_backend_is_checked_row_by_row_and_the_misses_counted(stroke_train, tmp_path):
    result = generate(
        STROKE, stroke_train, "p1", FreeTextBackend(stroke_train), conditions=["gender=Female:6"],
        options=GenerationOptions(batch_size=4), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert result.complete and (result.synthetic["gender"] == "Female").all()
    diagnostics, (counts,) = result.manifest.diagnostics, result.manifest.conditions
    assert diagnostics.rejected_by_reason.get("condition", 0) == counts["rows_outside_condition"] > 0
    assert diagnostics.valid_rate < 1
    missed = result.rejected[result.rejected["_reason"].str.startswith("condition")]
    assert not condition_mask(missed, check_conditions(["gender=Female:1"], STROKE)[0], STROKE).any()


def test_conditions_reach_the_ollama_schema_as_enums_and_patterns(stroke_train, tmp_path):
    with FakeOllama(models=[FAKE_MODEL]) as fake:
        result = generate(
            STROKE, stroke_train, "p4", OllamaBackend(fake.url, retries=0), FAKE_MODEL,
            conditions=["stroke=1,age=65..90:6"], options=GenerationOptions(batch_size=3), out_dir=tmp_path,
            progress=False,
        )  # fmt: skip
        schemas = [r["format"] for r in fake.chat_requests if isinstance(r.get("format"), dict)]
    items = schemas[-1]["properties"]["rows"]["items"]["prefixItems"]
    assert items[0] == {"enum": [1]} and "pattern" in items[1]
    assert result.complete and (result.synthetic["stroke"] == 1).all()
    assert result.synthetic["age"].between(65, 90).all()


@pytest.mark.parametrize("field", ["grammar", "structured_outputs"])
def test_conditions_reach_llama_cpp_and_vllm_servers_in_the_grammar(stroke_train, tmp_path, field):
    with FakeOpenAI(grammar_fields=(field,)) as fake:
        result = generate(
            STROKE, stroke_train, "p4", OpenAIBackend(fake.base_url, retries=0), FAKE_OPENAI_MODEL,
            class_mix={1: 1, 0: 1}, n_rows=6, options=GenerationOptions(batch_size=3), out_dir=tmp_path,
            progress=False,
        )  # fmt: skip
    assert result.complete and sorted(result.synthetic["stroke"].value_counts().items()) == [(0, 3), (1, 3)]
    assert result.manifest.diagnostics.valid_rate == 1.0


def test_condition_is_public():
    assert synllm.Condition is Condition and "Condition" in synllm.__all__


def test_a_manifest_written_before_conditions_still_reads(stroke_train, tmp_path):
    import json

    result = generate(
        STROKE, stroke_train, "p4", GrammarBackend(), n_rows=4,
        options=GenerationOptions(batch_size=4), out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert result.manifest.conditions == () and result.manifest.class_mix is None  # a plain run
    data = json.loads((result.run_dir / "manifest.json").read_text())
    data.pop("conditions"), data.pop("class_mix")  # as the code before conditions wrote it
    (result.run_dir / "manifest.json").write_text(json.dumps(data))
    old = read_manifest(result.run_dir)
    assert old.conditions == () and old.class_mix is None


def test_a_target_positive_card_gets_its_classes_as_sets_of_target_values(stroke_train):
    from dataclasses import replace

    card = replace(STROKE, target="work_type", target_positive="work_type == 'children'")
    counts = {c.label: c.num_rows for c in mix_conditions(card, "balanced", 10, None)}
    assert counts == {"work_type=children": 5, "work_type=Govt_job|Never_worked|Private|Self-employed": 5}
    rows = mix_conditions(card, "real", 100, stroke_train)
    assert rows[0].column_values == {"work_type": "children"} and 10 <= rows[0].num_rows <= 16
