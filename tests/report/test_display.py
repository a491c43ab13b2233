"""Figures at natural size and tables styled for reading."""

from __future__ import annotations

import io

import altair as alt
import numpy as np
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


def _scatter_chart():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400), "g": rng.choice(list("abcd"), 400)})
    return (
        alt.Chart(frame, title="Four groups")
        .mark_circle(opacity=0.6)
        .encode(x="x:Q", y="y:Q", color="g:N")
        .properties(width=400, height=300)
    )


def test_compact_png_shrinks_a_chart_and_keeps_its_pixels_readable():
    import vl_convert as vlc
    from PIL import Image

    raw = vlc.vegalite_to_png(_scatter_chart().to_dict(), scale=display.PNG_SCALE)
    small = display.compact_png(raw)
    assert len(small) * 3 < len(raw)  # at least three times smaller (issue 20: reports of 8 MB, 95 % PNG)
    assert display.png_size(small) == display.png_size(raw)
    with Image.open(io.BytesIO(raw)) as a, Image.open(io.BytesIO(small)) as b:
        before, after = (np.asarray(i.convert("RGBA"), dtype=float) for i in (a, b))
    assert np.abs(before - after).mean() < 2.0  # on a 0-255 scale: the same picture to the eye


def test_figure_saves_the_compact_png(tmp_path):
    import vl_convert as vlc

    raw = vlc.vegalite_to_png(_scatter_chart().to_dict(), scale=display.PNG_SCALE)
    display.figure(_scatter_chart(), "scatter", tmp_path)
    assert len((tmp_path / "scatter.png").read_bytes()) * 3 < len(raw)


def test_settings_table_shows_paths_relative_to_the_report_folder(tmp_path):
    folder = tmp_path / "reports" / "stroke"
    html = display.settings_table(
        relative_to=folder, dataset=str(tmp_path / "cards" / "mine.yaml"), output=str(folder), seeds=[0, 1]
    ).to_html()
    assert str(tmp_path) not in html
    assert "../../cards/mine.yaml" in html and "0, 1" in html


def test_title_names_the_dataset_and_the_smoke_banner_escapes_its_reasons():
    assert "Stroke Prediction (stroke): synthetic patients" in display.report_title("stroke", "Stroke Prediction").data
    banner = display.banner_html(["the only model is <tiny>", "5 rows per run"])
    assert "Smoke test, not evidence" in banner and "&lt;tiny&gt;" in banner and "<tiny>" not in banner
    assert display.banner_html([]) == ""


def test_collapsible_wraps_a_table_in_a_closed_details_section():
    html = display.collapsible("The card", display.table(pd.DataFrame({"a": ["<b>x</b>"]}))).data
    assert html.startswith("<details ") and "<summary" in html and "The card</summary>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and " open" not in html.split(">")[0]


def test_flags_details_hold_every_flag_with_its_evidence_in_a_closed_block():
    from tests.report.test_prose import _many_flags

    runs = _many_flags()
    runs.loc[0, "flags"] = runs.loc[0, "flags"].replace("one row", "<script>x</script> one row")
    html = display.flags_details(runs).data
    assert html.startswith("<details") and " open" not in html.split(">")[0]
    assert "All 10 red flags" in html and html.count("<tr") == 11  # a header and every generator's kind
    assert "53% of rows repeat an earlier one" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert display.flags_details(runs.assign(flags="")) is None


def test_long_prompt_lines_wrap_after_commas_and_never_mid_word():
    """The JupyterLab page styles output <pre> with word-break: break-all ('Reply wi|th'): a prompt overrides it."""
    import html
    import re
    from types import SimpleNamespace

    header = "N_Days,Status,Drug,Age,Sex,Ascites,Hepatomegaly,Spiders,Edema,Bilirubin,Cholesterol,<Albumin>"
    prompt = SimpleNamespace(
        examples=[1], system="Reply with data rows only.", text=f"Columns:\n{header}\nDone.", sha256="ab" * 32
    )
    out = display.prompt_html(prompt, {"title": "P1", "summary": "s", "explain": "e"})
    pre = out[out.index("<pre") : out.index("</pre>")]
    style = pre[: pre.index(">")]
    assert "word-break: normal" in style and "overflow-wrap: anywhere" in style
    assert "N_Days,<wbr>Status,<wbr>Drug" in pre and "&lt;Albumin&gt;" in pre  # a break after each comma
    shown = html.unescape(re.sub(r"<[^>]+>", "", pre))
    assert shown == f"[system]\n{prompt.system}\n\n[user]\n{prompt.text}"  # the text reads (and copies) unchanged
