"""The outcome mix table of the Findings (issue 19): requested, delivered and real per generator."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pandas as pd

from synllm.report.mix import AS_WRITTEN, mix_frame
from synllm.report.scored import ScoredRun
from tests.report.conftest import fake_manifest


def _run(kind, model, prompt_type, seed, strokes, others, asked=(), data=None):
    train = data.eval_train
    rows = pd.concat([train[train["stroke"] == 1].head(strokes), train[train["stroke"] == 0].head(others)])
    rows = rows[data.card.synth_names].reset_index(drop=True)
    manifest = None
    if kind == "llm":
        manifest = fake_manifest(prompt_type, seed, len(rows), 10.0, 100)
        manifest = replace(manifest, conditions=tuple(asked), n_rows_requested=strokes + others)
    return ScoredRun(
        kind=kind,
        model=model,
        prompt_type=prompt_type,
        seed=seed,
        synthetic=rows,
        evaluation=SimpleNamespace(),
        manifest=manifest,
        requested=() if manifest else tuple(asked),
    )


def _asked(strokes, others):
    return [
        {"condition": "stroke=0", "column_values": {"stroke": 0}, "requested": others},
        {"condition": "stroke=1", "column_values": {"stroke": 1}, "requested": strokes},
    ]


def test_requested_delivered_and_real_per_generator(study_data):
    data = study_data
    scored = [
        _run("llm", "smollm2", "p4", 0, 15, 15, _asked(15, 15), data),
        _run("llm", "smollm2", "p4", 1, 14, 15, _asked(15, 15), data),  # one stroke short
        _run("llm", "smollm2", "p1", 0, 0, 30, (), data),  # asked for no mix
        _run("baseline", "gaussian_copula", "", 0, 15, 15, _asked(15, 15), data),
    ]
    frame = mix_frame(scored, data).set_index(["generator", "rows"])
    assert list(frame.columns) == ["stroke = 0", "stroke = 1", "total"]
    p4 = frame.loc[("smollm2 · p4 (2 runs)", "requested")]
    assert p4.tolist() == ["30 (50%)", "30 (50%)", 60]
    rows = frame.reset_index()
    delivered = rows.iloc[1]
    assert delivered["rows"] == "delivered" and delivered["stroke = 1"] == "29 (49%)" and delivered["total"] == 59
    p1 = frame.loc[("smollm2 · p1", "requested")]
    assert p1["stroke = 1"] == AS_WRITTEN and p1["total"] == 30
    assert rows.iloc[3]["stroke = 1"] == "0 (0%)"
    assert frame.loc[("baseline · gaussian_copula", "requested")]["stroke = 1"] == "15 (50%)"
    real = rows.iloc[-1]
    strokes = int((data.train["stroke"] == 1).sum())
    assert real["generator"] == "real patients (training split)" and real["total"] == len(data.train)
    assert real["stroke = 1"].startswith(f"{strokes:,} (")


def test_a_condition_that_leaves_the_class_open_is_as_written(study_data):
    asked = [{"condition": "age=65..90", "column_values": {"age": [65, 90]}, "requested": 20}]
    frame = mix_frame([_run("llm", "m", "p4", 0, 2, 18, asked, study_data)], study_data)
    assert frame.iloc[0]["stroke = 1"] == AS_WRITTEN and frame.iloc[0]["total"] == 20


def test_the_mix_table_is_html_escaped(study_data):
    from synllm.report import table

    run = replace(_run("llm", "<script>alert(1)</script>", "p4", 0, 3, 3, (), study_data))
    html = table(mix_frame([run], study_data)).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_no_class_target_gives_an_empty_table(study_data):
    data = SimpleNamespace(card=replace(study_data.card, target=""))
    assert mix_frame([], data).empty


def test_the_comparison_overview_reads_each_datasets_mix_csv(study_data, tmp_path):
    from synllm.report import mix_overview, write_tables

    scored = [
        _run("llm", "smollm2", "p4", 0, 15, 15, _asked(15, 15), study_data),
        _run("llm", "smollm2", "p1", 0, 1, 29, (), study_data),
    ]
    write_tables(tmp_path / "stroke", {"mix": mix_frame(scored, study_data)})
    overview = mix_overview(tmp_path)
    assert overview[["generator", "requested", "delivered"]].values.tolist() == [
        ["smollm2 · p4", "0: 50% · 1: 50%", "0: 50% · 1: 50%"],
        ["smollm2 · p1", AS_WRITTEN, "0: 97% · 1: 3%"],
    ]
    assert (overview["dataset"] == "stroke").all() and (overview["outcome"] == "stroke").all()
    assert overview["real"].iloc[0].startswith("0: 95% · 1: ")
    assert mix_overview(tmp_path, ["diabetes"]).empty
