"""The augmentation study in the reports: pooled generators, the table, chart, sentences and comparison row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synllm import report
from synllm.cards.rules import target_values
from synllm.metrics.augmentation import METRICS, SCORE_COLUMNS, AugmentationStudy
from synllm.report import comparison


@pytest.fixture(scope="module")
def study(scored, study_data):
    return report.augmentation_results(scored, study_data, random_state=0)


def _fabricated(values: dict[tuple[str, str, float], list[float]], *, dataset: str = "stroke") -> AugmentationStudy:
    """A study whose scores are given: {(comparator, kind, level): five values}, the same for every metric."""
    rows = [
        (name, kind, level, int(level * 15), repeat, metric, value, "")
        for (name, kind, level), series in values.items()
        for repeat, value in enumerate(series)
        for metric in METRICS
    ]
    details = {"target": "stroke", "minority_rows": 15, "majority_rows": 293, "prevalence": 0.049}
    details |= {"holdout_rows": 1022, "holdout_minority": 50, "repeats": 5, "one_vs_rest": False}
    return AugmentationStudy(
        dataset=dataset, scores=pd.DataFrame(rows, columns=SCORE_COLUMNS), minority="1", details=details
    )


FLAT = [0.20, 0.21, 0.19, 0.20, 0.22]
HIGH = [0.50, 0.52, 0.49, 0.51, 0.50]


def _values(generator: list[float]) -> dict:
    return {
        ("real only", "reference", 0.0): FLAT,
        ("class weights", "reference", 0.0): FLAT,
        ("random oversampling", "rebalancing", 1.0): FLAT,
        ("<b>gen</b> · p4", "generator", 1.0): generator,
    }


def test_each_generator_gives_its_rows_pooled_over_seeds(study, scored, study_data):
    expected = {}
    for run in scored:
        strokes = int((target_values(run.synthetic, study_data.card) == 1).sum())
        expected[run.label] = expected.get(run.label, 0) + strokes
    assert study.skipped is None
    assert study.details["synthetic_minority_rows"] == expected
    assert study.details["holdout_rows"] == len(study_data.eval_holdout)


def test_the_frame_shows_every_comparator_and_level_with_intervals_or_why_not(study):
    frame = report.augmentation_frame(study)
    table = report.augmentation_table(study)
    assert len(frame) == len(table) // len(METRICS)
    for cell in frame["AUPRC"]:
        assert cell == "not run" or ("[" in cell and "]" in cell)
    short = table[table["mean"].isna()]
    assert (short["skipped"].str.startswith("not enough synthetic minority rows (have ")).all()


def test_the_chart_draws_every_measure_and_names_levels_not_run(study):
    spec = report.augmentation_chart(study).to_dict()
    text = str(spec)
    for name in ("minority recall", "AUPRC", "balanced accuracy", "random oversampling", "SMOTE-NC"):
        assert name in text
    table = report.augmentation_table(study)
    if table["mean"].isna().any():
        assert "not enough synthetic minority rows" in text


def test_a_skipped_study_says_why_everywhere():
    skipped = AugmentationStudy(
        dataset="cirrhosis", scores=pd.DataFrame(columns=SCORE_COLUMNS), skipped="the holdout holds 4 row(s)"
    )
    assert "could not run" in report.augmentation_summary(skipped) and "holds 4" in report.augmentation_summary(skipped)
    assert report.augmentation_frame(skipped).iloc[0, 0] == "the holdout holds 4 row(s)"
    assert "could not run" in str(report.augmentation_chart(skipped).to_dict())


def test_the_summary_says_plainly_when_nothing_beats_real_only():
    text = report.augmentation_summary(_fabricated(_values(FLAT)))
    assert "**Nothing beats real only** on any of the four measures" in text
    assert "**On AUPRC nothing beats real only**" in text
    assert "**No generator beats random oversampling**" in text
    assert "<b>" not in text  # generator names are escaped


def test_the_summary_names_a_gain_only_when_intervals_separate():
    text = report.augmentation_summary(_fabricated(_values(HIGH)))
    assert "Nothing beats real only" not in text
    assert "On AUPRC, beating real only: &lt;b&gt;gen&lt;/b&gt; · p4 at 1× on AUPRC (0.504" in text
    assert "Beating random oversampling at the same level: &lt;b&gt;gen&lt;/b&gt;" in text
    overlapping = [v + 0.01 for v in FLAT]  # higher mean, overlapping intervals: no gain
    assert "Nothing beats real only" in report.augmentation_summary(_fabricated(_values(overlapping)))


def test_the_comparison_row_reads_each_dataset_table(tmp_path):
    for dataset, generator in (("stroke", HIGH), ("diabetes", FLAT)):
        (tmp_path / dataset).mkdir()
        table = report.augmentation_table(_fabricated(_values(generator), dataset=dataset))
        report.write_tables(tmp_path / dataset, {"augmentation": table})
    rows = report.augmentation_comparison(tmp_path)
    generator = rows[rows["comparator"] == "<b>gen</b> · p4"].set_index("dataset")
    assert generator.loc["stroke", "vs_real_only"] == "gain" and generator.loc["diabetes", "vs_real_only"] == (
        "no measurable gain"
    )
    assert generator.loc["stroke", "best_level"] == "1×"
    assert np.isclose(generator.loc["stroke", "real_only_auprc"], np.mean(FLAT))
    assert "minority recall at 1×" in generator.loc["stroke", "gains_elsewhere"]
    assert set(rows["comparator"]) == {
        "random oversampling",
        "<b>gen</b> · p4",
    }  # level-0 comparators are the yardstick
    only = report.augmentation_comparison(tmp_path, ["diabetes"])
    assert set(only["dataset"]) == {"diabetes"}


def test_the_comparison_says_so_when_no_study_ran(tmp_path):
    rows = comparison.augmentation_comparison(tmp_path)
    assert list(rows.columns) == ["not judged"] and "no augmentation study ran" in rows.iloc[0, 0]


def test_each_comparator_has_its_own_colour():
    from synllm.report.augmentation_report import comparator_scale

    names = ["random oversampling", "SMOTE-NC", "gaussian copula (minority)", "tiny", "baseline · independent"]
    names += ["m · p4", "other · p4", "m · p1"]
    scale = comparator_scale(names).to_dict()
    assert scale["domain"] == names and len(set(scale["range"])) == len(names)
