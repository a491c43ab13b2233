"""Text from cards, CSVs, models and servers is shown, never run: escaped in HTML, formulas neutralised in CSV."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from synllm import files, report
from synllm.generation.grid import Failure
from synllm.generation.loop import load_run
from synllm.report import comparison, display, export, folders, tables
from tests.generation.scripted import ScriptedBackend, scripted_run
from tests.generation.scripted import stroke_split as load_stroke_split

#: Markers planted in each untrusted source; each must reach the page as text, none as markup.
SOURCES = {
    "title": 1,
    "description": 2,
    "category": 3,
    "rule": 4,
    "server": 5,
    "model": 6,
    "reason": 7,
    "column": 8,
}


def script(source: str) -> str:
    return f"<script>alert({SOURCES[source]})</script>"


def hostile_card(card):
    """``card`` with markup in its title, description, a category and a rule statement."""
    columns = tuple(
        replace(c, categories=(*c.categories, script("category"))) if c.name == "work_type" else c for c in card.columns
    )
    rules = (
        replace(card.rules[0], statement=f"Children {script('rule')} <img src=x onerror=alert(0)>"),
        *card.rules[1:],
    )
    return replace(
        card,
        title=f"Stroke {script('title')}",
        description=f"About {script('description')} [click](javascript:alert(0)) `{script('description')}`",
        columns=columns,
        rules=rules,
    )


def _outputs_page(tmp_path, outputs) -> str:
    """The HTML export of a one-cell-per-output notebook."""
    cells = [new_code_cell("x", outputs=[new_output("display_data", data=data)]) for data in outputs]
    path = tmp_path / "hostile.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return export.export_html(path).read_text(encoding="utf-8")


def _assert_shown_not_run(page: str, sources) -> None:
    assert not re.search(r"<script>\s*alert", page), "live script in the page"
    assert "<img src=x" not in page and "<img src='x" not in page
    assert not re.search(r"""href=["']?javascript:""", page), "javascript: link in the page"
    for source in sources:
        assert f"alert({SOURCES[source]})" in page, f"the {source} text is missing from the page"


def test_card_text_server_errors_and_model_names_are_escaped_in_the_html(study_data, scored, tmp_path):
    data = replace(study_data, card=hostile_card(study_data.card))
    failures = tables.failures_table([Failure(script("model"), "p1", 0, f"HTTP 500: {script('server')}")])
    manifest = replace(
        scored[0].manifest,
        model=script("model"),
        diagnostics=replace(scored[0].manifest.diagnostics, rejected_by_reason={script("reason"): 3}),
    )
    diagnostics = tables.diagnostics_table([replace(scored[0], manifest=manifest)])
    odd_columns = pd.DataFrame({script("column"): [1.0], "value": [script("server")]})
    page = _outputs_page(
        tmp_path,
        [
            {"text/markdown": report.dataset_intro(data)},
            {"text/html": display.table(tables.card_table(data.card, data.table))._repr_html_()},
            {"text/html": display.table(tables.rules_table(data.card, data.train))._repr_html_()},
            {"text/markdown": report.generation_summary(diagnostics, failures)},
            {"text/html": display.table(diagnostics)._repr_html_()},
            {"text/html": display.table(failures)._repr_html_()},
            {"text/html": display.table(odd_columns)._repr_html_()},
            {"text/html": display.settings_table(dataset=script("title"))._repr_html_()},
        ],
    )
    _assert_shown_not_run(page, SOURCES)


def test_narratives_escape_names_from_runs(scored, tmp_path):
    runs = tables.runs_frame(scored, script("title"))
    runs["model"] = runs["model"].where(runs["kind"] != "baseline", script("model"))
    page = _outputs_page(
        tmp_path,
        [
            {"text/markdown": report.headline(runs)},
            {"text/markdown": report.family_summary(runs, "fidelity")},
            {"text/markdown": report.dataset_conclusion(runs)},
        ],
    )
    _assert_shown_not_run(page, ["title", "model"])


def test_the_study_verdict_escapes_dataset_names(scored, tmp_path):
    runs = tables.runs_frame(scored, script("column"))
    differences = comparison.paired_differences(runs, n_boot=20)
    page = _outputs_page(
        tmp_path,
        [{"text/markdown": report.study_verdict(differences, comparison.prompt_ranking(runs, n_boot=20), runs)}],
    )
    _assert_shown_not_run(page, ["column"])


def test_the_index_page_escapes_names_messages_headlines_and_links(tmp_path):
    good = tmp_path / "javascript:alert(0)"
    good.mkdir()
    (good / folders.REPORT_HTML).write_text("<p>report</p>")
    folders.write_summary(good, f"Headline {script('title')}")
    entries = [
        export.ReportEntry(name=script("model"), folder=good, ok=True, seconds=1.0),
        export.ReportEntry(name="bad", folder=tmp_path / "bad", ok=False, seconds=1.0, message=script("server")),
    ]
    page = export.write_index(tmp_path, entries).read_text(encoding="utf-8")
    _assert_shown_not_run(page, ["title", "model", "server"])
    assert "href='./javascript%3Aalert%280%29/report.html'" in page


# -- CSV files -------------------------------------------------------------------------------------

CMD = "=cmd|' /C calc'!A0"
LINK = '=HYPERLINK("http://evil.example","click")'


def _cells(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def stroke_split():
    return load_stroke_split()


def test_model_cells_that_are_formulas_are_neutralised_in_rejected_csv(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    lines = [
        f'"{CMD}",80.00,0,1,Yes,Private,Rural,105.92,32.5,never smoked,1',
        'Male,80.00,0,1,Yes,Private,Rural,105.92,32.5,"=HYPERLINK(""http://evil.example"",""click"")",1',
        "Male,-5,0,1,Yes,Private,Rural,-105.92,32.5,never smoked,1",
    ]
    result = scripted_run(stroke_split, ScriptedBackend(holdout, card, extra_lines=lines), tmp_path, n_rows=4)
    cells = [cell for row in _cells(result.run_dir / files.REJECTED) for cell in row]
    assert "'" + CMD in cells and "'" + LINK in cells
    assert CMD not in cells and LINK not in cells
    assert "-5" in cells and "-105.92" in cells  # numbers stay numbers


def test_card_categories_that_are_formulas_are_neutralised_and_read_back(stroke_split, tmp_path):
    train, holdout, card = stroke_split
    columns = tuple(
        replace(c, categories=tuple(LINK if v == "Male" else v for v in c.categories)) if c.name == "gender" else c
        for c in card.columns
    )
    evil = replace(card, columns=columns)

    def relabel(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(gender=frame["gender"].cat.rename_categories({"Male": LINK}))

    result = scripted_run((relabel(train), relabel(holdout), evil), ScriptedBackend(relabel(holdout), evil), tmp_path)
    assert (result.synthetic["gender"] == LINK).any()
    genders = [row[0] for row in _cells(result.run_dir / files.SYNTHETIC)[1:]]
    assert "'" + LINK in genders and LINK not in genders
    table, _ = load_run(result.run_dir, evil)
    pd.testing.assert_frame_equal(table, result.synthetic)
