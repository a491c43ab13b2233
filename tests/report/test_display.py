"""Figures at natural size and tables styled for reading."""

from __future__ import annotations

import altair as alt
import pandas as pd

from synllm.report import display


def test_figure_saves_png_and_shows_it_at_natural_size(tmp_path):
    chart = (
        alt.Chart(pd.DataFrame({"x": [1, 2]}))
        .mark_bar()
        .encode(x="x:Q")
        .properties(width=300, height=100, title="Two bars")
    )
    image = display.figure(chart, "bars", tmp_path / "figures")
    data = (tmp_path / "figures" / "bars.png").read_bytes()
    width, _ = display.png_size(data)
    assert image.data == data
    assert image.width == width // display.PNG_SCALE
    assert image.alt == "Two bars"


def test_table_styles_text_left_and_hides_a_plain_index():
    html = display.table(pd.DataFrame({"model_name": ["a"], "score": [0.12345]})).to_html()
    assert "model name" in html and "0.123" in html and "text-align: left" in html
    assert "row0_col0" in html and ">0</th>" not in html


def test_score_color_shades_from_white_to_green():
    assert display.score_color(0.0) == "background-color: rgb(255, 255, 255); color: black"
    assert display.score_color("x") == ""
    assert display.score_color(float("nan")) == "color: #999"
