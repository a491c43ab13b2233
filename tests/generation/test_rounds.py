"""Feedback rounds (issue 23): budget, train-only feedback, row-free P4, per-round records, resume, the loop closing.

The round machinery is tested with a private stand-in of ``synllm.generation.feedback``
(:mod:`tests.generation.feedback_standin`) and scripted backends: deterministic, so a
resumed run must give exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import random

import pandas as pd
import pytest

from synllm.backends.base import GenerationRequest
from synllm.dataset.schema import format_row, format_value
from synllm.errors import GenerationError, InvalidArgument
from synllm.files import read_records
from synllm.generation.loop import generate, load_run
from synllm.generation.manifest import read_manifest
from synllm.generation.rounds import round_quotas, rows_by_round, split_rows
from synllm.generation.spec import RunSpec
from synllm.metrics import feedback as metrics_feedback
from tests.generation import feedback_standin
from tests.generation.scripted import OPTS, ScriptedBackend, scripted_run, stroke_split


@pytest.fixture(scope="module")
def split_data():
    return stroke_split()


class LowAgeBackend(ScriptedBackend):
    """Rows of ``pool`` by request seed with ages cut to a third, unless the prompt says age is too low.

    Writes the columns in the order the prompt asks, and only rows of the stroke class a request focuses on.
    """

    name = "lowage"

    def rows_text(self, request: GenerationRequest) -> str:
        rng = random.Random(request.seed)
        pool = self.pool
        for value in (0, 1):
            if f"stroke = {value}, one per line" in request.prompt:
                pool = pool[pool["stroke"] == value]
        rows = pool.iloc[rng.sample(range(len(pool)), 4)].copy()
        if "age is too low" not in request.prompt:
            rows["age"] = (rows["age"].astype(float) / 3).round(2).clip(lower=0.08)
        header = request.prompt.split("column order:\n", 1)[1].splitlines()[0].split(",")
        columns = {c.name: c for c in self.card.synth_columns}
        return "\n".join(
            ",".join(format_value(r[name], columns[name], self.card) for name in header)
            for r in rows.to_dict("records")
        )


def _rounds_run(feedback, split_data, backend, out_dir, *, n_rows=12, rounds=3, prompt_type="p2", **kw):
    train, _, card = split_data
    return generate(
        card, train, prompt_type, backend, "m", n_rows=n_rows, options=OPTS, out_dir=out_dir, progress=False,
        rounds=rounds, feedback=feedback, **kw,
    )  # fmt: skip


def test_the_row_budget_is_split_by_largest_remainder():
    assert split_rows(60, 3) == [20, 20, 20] and split_rows(10, 3) == [4, 3, 3] and split_rows(2, 2) == [1, 1]
    assert [[n for _, n in r] for r in round_quotas([(None, 10)], 3)] == [[4], [3], [3]]
    plan = round_quotas([("a", 1), ("b", 1), ("c", 2)], 2)  # a's extra row goes to round 1, b's to round 2
    assert plan == [[("a", 1), ("c", 1)], [("b", 1), ("c", 1)]]


def test_more_rounds_than_rows_is_a_clear_error_before_anything_is_written(split_data, tmp_path):
    train, holdout, card = split_data
    with pytest.raises(InvalidArgument, match="rounds=3 but n_rows=2: every round needs at least one row"):
        _rounds_run(
            feedback_standin.StandIn(), split_data, ScriptedBackend(holdout, card), tmp_path, n_rows=2, rounds=3
        )
    with pytest.raises(InvalidArgument, match="rounds=2 needs feedback functions: pass feedback=synllm.metrics"):
        _rounds_run(None, split_data, ScriptedBackend(holdout, card), tmp_path, n_rows=4, rounds=2)
    with pytest.raises(InvalidArgument, match="lacks"):
        _rounds_run(object(), split_data, ScriptedBackend(holdout, card), tmp_path, n_rows=4, rounds=2)
    assert not any(tmp_path.iterdir())


def test_rounds_record_every_round_in_manifest_raw_and_rows(split_data, tmp_path):
    train, holdout, card = split_data
    standin = feedback_standin.StandIn()
    result = _rounds_run(standin, split_data, ScriptedBackend(holdout, card), tmp_path, n_rows=10, rounds=3)
    assert result.complete and result.rounds == (4, 3, 3) and len(result.synthetic) == 10
    rounds = result.manifest.rounds
    assert [r["round"] for r in rounds] == [1, 2, 3] and [r["first_row"] for r in rounds] == [0, 4, 7]
    assert rounds[0]["gaps"] is None and rounds[0]["corrections"] == ""
    assert rounds[0]["prompt_sha256"] == result.manifest.prompt_sha256 == result.prompt.sha256
    assert all(isinstance(r["gaps"], dict) and "mean_gap" in r["gaps"] for r in rounds[1:])
    assert len({r["prompt_sha256"] for r in rounds}) == 3  # the corrections and examples change each request
    assert [p.sha256 for p in result.round_prompts] == [r["prompt_sha256"] for r in rounds]
    # raw.jsonl: every answer names its round and the prompt it answered
    records = list(read_records(result.run_dir / "raw.jsonl"))
    by_round = {r["round"]: r["prompt_sha256"] for r in rounds}
    assert records and all(rec["prompt_sha256"] == by_round[rec["round"]] for rec in records)
    assert sorted({rec["round"] for rec in records}) == [1, 2, 3]
    # synthetic.csv keeps rows in round order; load_run gives the per-round counts back
    table, manifest = load_run(result.run_dir, card)
    assert manifest.round_rows == (4, 3, 3) and manifest == read_manifest(result.run_dir)
    flags = pd.read_csv(result.run_dir / "synthetic.csv")["_round"].tolist()
    assert flags == [1] * 4 + [2] * 3 + [3] * 3
    assert [len(t) for t in rows_by_round(table, manifest.round_rows)] == [4, 7, 10]
    # round r's feedback read exactly the rows kept before it
    seen = [frame for name, arg, frame in standin.calls if name == "measure_gaps" and arg == "rows"]
    pd.testing.assert_frame_equal(seen[0].reset_index(drop=True), result.synthetic.iloc[:4])
    pd.testing.assert_frame_equal(seen[1].reset_index(drop=True), result.synthetic.iloc[:7])
    assert "Corrections:" in str(result.round_prompts[1]) or rounds[1]["corrections"] == ""


def _feedbacks():
    """The stand-in, and the real feedback behind a spy."""
    return [feedback_standin.StandIn(), feedback_standin.Spy(metrics_feedback)]


@pytest.mark.parametrize("which", [0, 1], ids=["stand-in", "real"])
def test_feedback_reads_train_only(split_data, tmp_path, which):
    """Every frame the feedback reads as reference is the train passed in; no holdout row reaches any prompt."""
    train, holdout, card = split_data
    standin = _feedbacks()[which]
    backend = ScriptedBackend(train, card)
    _rounds_run(standin, split_data, backend, tmp_path, n_rows=12, rounds=3, prompt_type="p1")
    references = [frame for _, arg, frame in standin.calls if arg == "train"]
    assert len(references) == 4  # measure_gaps and worst_covered_examples, before rounds 2 and 3
    assert all(frame is train for frame in references)
    holdout_only = set(map(tuple, holdout.astype(str).values)) - set(map(tuple, train.astype(str).values))
    assert holdout_only  # the check below could fail
    shown = {format_row(r, card) for r in holdout.to_dict("records")} - {
        format_row(r, card) for r in train.to_dict("records")
    }
    assert not any(line in request.prompt for request in backend.requests for line in shown)


@pytest.mark.parametrize("which", [0, 1], ids=["stand-in", "real"])
def test_p4_prompts_show_no_real_row_in_any_round(split_data, tmp_path, which):
    train, holdout, card = split_data
    standin = _feedbacks()[which]
    backend = LowAgeBackend(holdout, card)
    result = _rounds_run(standin, split_data, backend, tmp_path, n_rows=12, rounds=3, prompt_type="p4")
    assert result.rounds[:2] == (4, 4) and len(result.manifest.rounds) == 3  # (real: round 3 may ask a condition)
    corrections = [r["corrections"] for r in result.manifest.rounds]
    assert corrections[0] == "" and all(c and c in backend.requests[-1].prompt for c in corrections[2:])
    assert all(len(p.examples) == 0 for p in result.round_prompts) and len(result.prompt.examples) == 0
    real_rows = {format_row(r, card) for r in pd.concat([train, holdout]).to_dict("records")}
    asked = [request.prompt + request.system for request in backend.requests]
    assert len({r["round"] for r in read_records(result.run_dir / "raw.jsonl")}) == 3
    assert not any(row in text for text in asked for row in real_rows)
    # the same check sees a row where one is shown: P2's later rounds show the worst-covered train rows
    backend = LowAgeBackend(holdout, card)
    shown = _rounds_run(standin, split_data, backend, tmp_path, n_rows=12, rounds=3, prompt_type="p2")
    worst = shown.round_prompts[1].examples
    assert len(worst) and all(format_row(r, card) in backend.requests[1].prompt for r in worst.to_dict("records"))
    assert len(shown.prompt.examples) > len(shown.round_prompts[0].examples)  # every row shown counts as exposed


@pytest.mark.parametrize("fail_at", [1, 3])  # after round 1; in the middle of round 2
def test_a_resumed_run_with_rounds_gives_the_rows_of_an_uninterrupted_one(split_data, tmp_path, fail_at):
    train, holdout, card = split_data
    standin = feedback_standin.StandIn()
    whole = _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path / "whole", n_rows=24)
    assert whole.rounds == (8, 8, 8) and whole.manifest.diagnostics.requests == 6
    with pytest.raises(KeyboardInterrupt):
        _rounds_run(standin, split_data, LowAgeBackend(holdout, card, fail_at=fail_at), tmp_path / "cut", n_rows=24)
    stopped = read_manifest(next((tmp_path / "cut").rglob("manifest.json")).parent)
    assert stopped.status == "failed" and sum(stopped.round_rows) < 24
    again = LowAgeBackend(holdout, card)
    resumed = _rounds_run(standin, split_data, again, tmp_path / "cut", n_rows=24)
    assert len(again.seeds) == 6 - fail_at  # only what was missing was asked
    pd.testing.assert_frame_equal(resumed.synthetic, whole.synthetic)
    assert resumed.rounds == whole.rounds
    assert [r["prompt_sha256"] for r in resumed.manifest.rounds] == [r["prompt_sha256"] for r in whole.manifest.rounds]
    assert [r["gaps"] for r in resumed.manifest.rounds] == [r["gaps"] for r in whole.manifest.rounds]
    rerun = LowAgeBackend(holdout, card)  # and once complete, the cache answers everything
    pd.testing.assert_frame_equal(
        _rounds_run(standin, split_data, rerun, tmp_path / "cut", n_rows=24).synthetic, whole.synthetic
    )
    assert rerun.seeds == []


def test_the_loop_closes_a_gap_on_a_generator_that_follows_its_corrections(split_data, tmp_path):
    """The stand-in generator writes ages a third too low until told; rounds=3 ends far closer to train."""
    train, holdout, card = split_data
    standin = feedback_standin.StandIn()
    one_shot = _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path, n_rows=24, rounds=1)
    rounds = _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path, n_rows=24, rounds=3)
    want = train["age"].astype(float).mean()
    gap_one_shot = abs(one_shot.synthetic["age"].astype(float).mean() - want)
    cumulative = [abs(t["age"].astype(float).mean() - want) for t in rows_by_round(rounds.synthetic, rounds.rounds)]
    assert cumulative[0] > 0.5 * gap_one_shot  # round 1 is as bad as one shot
    assert cumulative[2] < cumulative[1] < cumulative[0]  # each round closes more of the gap
    assert cumulative[2] < 0.5 * gap_one_shot  # and the run ends with less than half the one-shot gap
    assert rounds.manifest.rounds[1]["gaps"]["mean_gap"]["age"][0] < want


def test_feedback_conditions_take_free_rows_but_a_users_class_mix_wins(split_data, tmp_path):
    train, holdout, card = split_data
    standin = feedback_standin.StandIn(add_conditions=True)
    no_stroke = holdout[holdout["stroke"] == 0]
    result = _rounds_run(
        standin, split_data, ScriptedBackend(no_stroke, card), tmp_path, n_rows=12, rounds=2, max_requests=8
    )
    second = result.manifest.rounds[1]
    assert second["conditions"] == [{"condition": "stroke=1", "requested": 3}]  # half of round 2's 6 rows
    assert second["requested"] == 6 and result.manifest.conditions == ()  # the run itself was not conditioned
    mixed = _rounds_run(
        standin, split_data, LowAgeBackend(holdout, card), tmp_path, n_rows=12, rounds=2, class_mix="balanced"
    )
    assert mixed.complete and (mixed.synthetic["stroke"] == 1).sum() == 6
    assert [r["conditions"] for r in mixed.manifest.rounds] == [
        [{"condition": "stroke=0", "requested": 3}, {"condition": "stroke=1", "requested": 3}]
    ] * 2
    assert {c["condition"]: c["requested"] for c in mixed.manifest.conditions} == {"stroke=0": 6, "stroke=1": 6}
    assert standin.outcome_mixes == [None, {"0": 6.0, "1": 6.0}]  # round 2 of the mixed run aims at the asked mix


# A one-shot scripted run made by the code before rounds existed (main at 9e719e8): its folder, its rows and
# its manifest without the fields that vary by machine or time (re-pin only for an intended prompt change).
ONE_SHOT_DIR = "seed0-654221c712"
ONE_SHOT_ROWS_SHA256 = "d00b132479a0a1d49a327dc0ba0c78c3aced035a5636e61a3f8ffd53a52efcbe"
ONE_SHOT_MANIFEST_SHA256 = "234a3bbd4d4b621e4adbbbda7fe12fb88013c249e97ff2b1fc013b80ca0fa1f1"


def test_rounds_1_is_the_one_shot_run_of_before(split_data, tmp_path):
    train, holdout, card = split_data
    result = scripted_run(split_data, ScriptedBackend(holdout, card), tmp_path, n_rows=10, rounds=1)
    assert result.run_dir.name == ONE_SHOT_DIR
    rows = (result.run_dir / "synthetic.csv").read_bytes()
    assert hashlib.sha256(rows).hexdigest() == ONE_SHOT_ROWS_SHA256
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest.pop("rounds") == [] and result.rounds == (10,)  # the one new field
    for varying in ("timings", "updated_at", "versions", "card"):
        manifest.pop(varying)
    assert hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest() == ONE_SHOT_MANIFEST_SHA256
    assert "round" not in next(iter(read_records(result.run_dir / "raw.jsonl")))
    spec = RunSpec(card=card, prompt_type="p2", model="m", n_rows=10, options=OPTS)
    assert spec.request_seed(3) == spec.request_seed(3, 1) != spec.request_seed(3, 2)


def test_a_run_asked_for_more_rows_gives_the_rows_of_a_fresh_run(split_data, tmp_path):
    """Round 2's prompt changes with round 1's rows: its old answers (another prompt hash) are kept but not used."""
    train, holdout, card = split_data
    standin = feedback_standin.StandIn()
    _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path / "grown", n_rows=8, rounds=2)
    grown = _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path / "grown", n_rows=12, rounds=2)
    fresh = _rounds_run(standin, split_data, LowAgeBackend(holdout, card), tmp_path / "fresh", n_rows=12, rounds=2)
    pd.testing.assert_frame_equal(grown.synthetic, fresh.synthetic)
    assert grown.rounds == fresh.rounds == (6, 6) and grown.run_dir.name == fresh.run_dir.name
    hashes = {(r["round"], r["prompt_sha256"]) for r in read_records(grown.run_dir / "raw.jsonl")}
    assert len(hashes) == 3  # round 1, the old round 2 and the new round 2


def test_a_round_that_falls_short_ends_the_run_and_a_feedback_fault_is_a_synllm_error(split_data, tmp_path):
    train, holdout, card = split_data
    standin = feedback_standin.StandIn()
    short = _rounds_run(
        standin, split_data, ScriptedBackend(holdout, card), tmp_path / "short", n_rows=15, rounds=3, max_requests=3,
    )  # fmt: skip
    # one request (4 rows) per round of 5: round 1 falls short, and no later round builds on missing rows
    assert short.rounds == (4,) and short.manifest.status == "incomplete" and not standin.calls

    class Broken(feedback_standin.StandIn):
        def corrections_paragraph(self, gaps, card, *, max_items=5):
            raise ZeroDivisionError("a bug")

    with pytest.raises(GenerationError, match="the feedback for round 2 .* failed \\(ZeroDivisionError: a bug\\)"):
        _rounds_run(Broken(), split_data, ScriptedBackend(holdout, card), tmp_path / "broken", n_rows=8, rounds=2)
    stopped = read_manifest(next((tmp_path / "broken").rglob("manifest.json")).parent)
    assert stopped.status == "failed" and stopped.round_rows == (4,)  # round 1's rows were written
