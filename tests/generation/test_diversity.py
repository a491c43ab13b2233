"""Row diversity: a run's distinct and duplicate rates beside those of as many real rows, in manifest and report."""

from __future__ import annotations

import pandas as pd
import pytest

from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.dataset import split
from synllm.dataset.schema import format_row
from synllm.generation.diversity import duplicate_share, row_diversity
from synllm.generation.loop import GenerationOptions, generate
from synllm.generation.manifest import read_manifest
from synllm.report import tables


def test_rates_count_rows_that_repeat_an_earlier_one():
    synthetic = pd.DataFrame({"a": [1, 1, 2, 1, None, None], "b": ["x", "x", "y", "x", "z", "z"]})
    real = pd.DataFrame({"a": range(100), "b": ["r"] * 100})
    d = row_diversity(synthetic, real=real, random_state=0)
    assert d.rows == 6 and d.distinct_rows == 3
    assert d.duplicate_rate == 0.5 and d.distinct_rate == 0.5
    assert d.real_duplicate_rate == 0.0 and d.real_distinct_rate == 1.0


def test_the_real_reference_repeats_when_real_rows_do():
    real = pd.DataFrame({"sex": ["F", "M"] * 50, "smoker": [0, 0, 1, 1] * 25})  # 4 distinct patients
    synthetic = pd.DataFrame({"sex": list("FMFMFMFM"), "smoker": [0, 1, 0, 1, 1, 0, 1, 0]})
    d = row_diversity(synthetic, real=real, random_state=3)
    assert d.duplicate_rate == 0.5
    assert 0.4 < d.real_duplicate_rate < 0.6, "8 draws from 4 kinds of patient repeat about half the time"
    assert d == row_diversity(synthetic, real=real, random_state=3), "the draws are fixed by random_state"
    assert d.real_distinct_rate == pytest.approx(1 - d.real_duplicate_rate)


def test_no_rows_means_no_rates():
    d = row_diversity(pd.DataFrame({"a": []}), real=pd.DataFrame({"a": [1, 2]}))
    assert d.distinct_rate is None and d.duplicate_rate is None and d.real_distinct_rate is None
    assert duplicate_share(pd.DataFrame()) is None
    few_real = row_diversity(pd.DataFrame({"a": [1, 2, 3]}), real=pd.DataFrame({"a": [5, 5]}))
    assert few_real.real_duplicate_rate == 0.5, "fewer real rows than synthetic: all of them, once"


class RepeatingBackend(BaseBackend):
    """Answers every request with the same two real rows, each twice."""

    name = "repeating"
    output_format = "csv"

    def __init__(self, rows: pd.DataFrame, card) -> None:
        self.lines = [format_row(r, card) for r in rows.to_dict("records")][:2] * 2

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation(text="\n".join(self.lines), backend=self.name, model=request.model, elapsed_s=0.01)


def test_run_manifest_and_diagnostics_table_show_diversity_beside_real_rows(stroke_data, tmp_path):
    table, card = stroke_data
    train, holdout = split(table, card, random_state=0)
    result = generate(
        card,
        train,
        "p4",
        RepeatingBackend(holdout, card),
        "m",
        n_rows=8,
        seed=1,
        options=GenerationOptions(batch_size=4),
        out_dir=tmp_path,
        progress=False,
    )
    d = result.manifest.diagnostics
    assert d.rows_kept == 8 and d.distinct_rows == 2 and d.duplicates == 6
    assert d.distinct_rate == 0.25 and d.duplicate_rate == 0.75
    assert d.real_duplicate_rate == 0.0 and d.real_distinct_rate == 1.0, "8 real stroke patients are all different"
    assert read_manifest(result.run_dir).diagnostics == d, "written to manifest.json and read back"
    row = tables.diagnostics_table([result]).iloc[0]
    assert (row["distinct_rate"], row["real_distinct_rate"]) == (0.25, 1.0)
    assert (row["duplicate_rate"], row["real_duplicate_rate"]) == (0.75, 0.0)
