"""Code-free offline HTML through nbconvert's preprocessors, failed cells kept, and the index page."""

from __future__ import annotations

import altair as alt
import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from synllm.report import display, export, folders


def _notebook(tmp_path, *, fail: bool):
    cells = [
        new_markdown_cell("# A report\nSome prose."),
        new_code_cell(
            "secret_code_line = 1", outputs=[new_output("execute_result", data={"text/plain": "42"}, execution_count=1)]
        ),
        new_code_cell(
            "hidden_setup()",
            metadata={"tags": ["remove-cell"]},
            outputs=[new_output("stream", name="stdout", text="setup noise\n")],
        ),
        new_code_cell("progress()", outputs=[new_output("stream", name="stderr", text="\rrun 50%|\rrun 100%|\n")]),
    ]
    if fail:
        cells.append(
            new_code_cell(
                "failing_cell_code()",
                outputs=[
                    new_output(
                        "error", ename="CardError", evalue="no card named 'nosuch'", traceback=["CardError: no card"]
                    )
                ],
            )
        )
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_export_html_hides_code_keeps_outputs_and_works_offline(tmp_path):
    html = export.export_html(_notebook(tmp_path, fail=False)).read_text(encoding="utf-8")
    assert "secret_code_line" not in html
    assert "42" in html and "Some prose." in html
    assert "setup noise" not in html and "hidden_setup" not in html
    assert "run 100%|" in html and "run 50%" not in html
    assert "<script src=" not in html  # no CDN script: the page works offline
    assert "<title>A report</title>" in html


def test_export_html_shows_the_failing_cell(tmp_path):
    path = _notebook(tmp_path, fail=True)
    html = export.export_html(path, tmp_path / "out.html").read_text(encoding="utf-8")
    assert "failing_cell_code" in html and "CardError: no card" in html
    assert "secret_code_line" not in html
    assert export.failed_cells(path) == ["CardError: no card named 'nosuch'"]


def test_png_outputs_keep_their_alt_text_in_html(tmp_path):
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q").properties(title="Alt here")
    image = display.figure(chart, "c", tmp_path)
    data, meta = image._repr_png_()
    output = new_output("display_data", data={"image/png": data}, metadata={"image/png": meta})
    nbformat.write(new_notebook(cells=[new_code_cell("x", outputs=[output])]), tmp_path / "a.ipynb")
    html = export.export_html(tmp_path / "a.ipynb").read_text(encoding="utf-8")
    assert 'alt="Alt here"' in html and "data:image/png;base64," in html


def test_index_links_reports_and_marks_failures(tmp_path):
    ok = tmp_path / "stroke"
    (ok / "figures").mkdir(parents=True)
    for name in ("report.html", "report.ipynb", "scorecard.csv"):
        (ok / name).write_text("x")
    (ok / "figures" / "dcr.png").write_bytes(b"png")
    folders.write_summary(ok, "On stroke, P4 won.")
    entries = [
        export.ReportEntry(name="stroke", folder=ok, ok=True, seconds=12.0),
        export.ReportEntry(
            name="nosuch", folder=tmp_path / "nosuch", ok=False, seconds=3.0, message="CardError: no card"
        ),
    ]
    html = export.write_index(tmp_path, entries).read_text(encoding="utf-8")
    assert "href='./stroke/report.html'" in html and "href='./stroke/scorecard.csv'" in html
    assert "href='./stroke/figures/dcr.png'" in html
    assert "On stroke, P4 won." in html
    assert "failed" in html and "CardError: no card" in html
    assert "nosuch/report.html" not in html  # not written: not linked


def _stroke_entry(tmp_path, headline, flags):
    folder = tmp_path / "stroke"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.html").write_text("x")
    folders.write_summary(folder, headline, scorecard=[{"generator": "p1", "flags": flags}, {"generator": "real"}])
    return export.ReportEntry(name="stroke", folder=folder, ok=True, seconds=1.0)


def test_index_status_says_what_the_report_concluded_not_just_ok(tmp_path):
    flags = "copying (high, 1 of 1 runs, worst seed 0); missing (warning, 1 of 1 runs, worst seed 0)"
    entry = _stroke_entry(
        tmp_path, "⚠ Red flags: p1: copying. On stroke (smoke test), no prompt type can be judged.", flags
    )
    html = export.write_index(tmp_path, [entry]).read_text(encoding="utf-8")
    assert "<span class='bad'>⚠ 2 red flags (1 high)</span>" in html
    assert ">ok<" not in html
    assert "Smoke test, not evidence" in html  # the banner on the index


def test_index_without_flags_or_smoke_test_has_no_banner(tmp_path):
    entry = _stroke_entry(tmp_path, "On stroke, the prompt types cannot be told apart.", "")
    html = export.write_index(tmp_path, [entry]).read_text(encoding="utf-8")
    assert "<span class='ok'>no red flag</span>" in html and "Smoke test" not in html


def test_report_pages_scroll_wide_tables_and_wrap_text(tmp_path):
    html = export.export_html(_notebook(tmp_path, fail=False)).read_text(encoding="utf-8")
    assert "overflow-x: auto" in html and "overflow-wrap: break-word" in html


def test_page_title_is_the_reports_own_title_when_no_title_is_given(tmp_path):
    title = display.comparison_title(["cirrhosis", "stroke"])
    output = new_output("display_data", data={"text/html": title.data, "text/plain": "title"})
    cells = [new_markdown_cell("# Notebook heading"), new_code_cell("t", outputs=[output])]
    nbformat.write(new_notebook(cells=cells), tmp_path / "c.ipynb")
    html = export.export_html(tmp_path / "c.ipynb").read_text(encoding="utf-8")
    assert "<title>The study across cirrhosis and stroke: which prompt type wins?</title>" in html
