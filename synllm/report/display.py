"""Showing results inside a notebook: charts as PNG images, tables styled for reading, prompts in full.

Charts are shown as PNG images (saved under the report's ``figures/`` with vl-convert,
offline) so the notebook and its HTML look the same in JupyterLab, under papermill and
in a browser with no network.
"""

from __future__ import annotations

import html
import io
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synllm.report import folders

#: Pixel density of saved PNGs (2 = sharp on high-density screens; shown at natural size).
PNG_SCALE = 2
#: Colours kept when a figure's PNG is quantised (charts use a few flat colours: 128 keeps them and their
#: anti-aliased edges readable, and makes the file about 5-10 times smaller than vl-convert's truecolour PNG).
PNG_COLORS = 128


def notebook_setup() -> None:
    """Quiet known-harmless warnings and set table display options for the study notebooks.

    Call it once at the top of a notebook; the library itself never does this.
    """
    try:
        from tqdm import TqdmExperimentalWarning, TqdmWarning

        warnings.filterwarnings("ignore", category=TqdmWarning)
        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        pass
    warnings.filterwarnings("ignore", message=".*Falling back to prediction using DMatrix.*")
    pd.set_option("display.precision", 3)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 60)
    pd.set_option("display.max_columns", 30)


def chart_png(chart: Any, scale: int = PNG_SCALE) -> bytes:
    """The chart rendered to PNG bytes by vl-convert (offline), quantised by :func:`compact_png`."""
    import vl_convert as vlc

    return compact_png(vlc.vegalite_to_png(chart.to_dict(), scale=scale))


def compact_png(data: bytes, colors: int = PNG_COLORS) -> bytes:
    """``data`` (a PNG) quantised to a palette of ``colors`` and re-saved optimised: same pixels wide and high,
    usually 5-10 times fewer bytes. The original is returned when that is not smaller."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rgba = img.convert("RGBA")
    palette = rgba.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    small = out.getvalue()
    return small if len(small) < len(data) else data


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG header.

    >>> png_size(b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00\\x00\\x00\\rIHDR" + struct.pack(">II", 640, 480))
    (640, 480)
    """
    return struct.unpack(">II", data[16:24])


def figure(chart: Any, name: str, folder: str | Path, *, scale: int = PNG_SCALE):
    """Save ``chart`` as ``<folder>/<name>.png`` and return it as an image to display at natural size.

    The image's alt text is the chart's title (or ``name``).
    """
    data = chart_png(chart, scale)
    folders.write_figure(folder, name, data)
    return _png_image(data, scale, _chart_title(chart) or name.replace("_", " "))


def image(chart: Any, *, scale: int = PNG_SCALE):
    """``chart`` as a PNG image to display at natural size, saved nowhere (labs and quick looks)."""
    return _png_image(chart_png(chart, scale), scale, _chart_title(chart) or "chart")


def _png_image(data: bytes, scale: int, alt: str):
    from IPython.display import Image

    width, _ = png_size(data)
    return Image(data=data, format="png", width=width // scale, alt=alt)


def _chart_title(chart: Any) -> str:
    title = chart.to_dict().get("title")
    if isinstance(title, dict):
        title = title.get("text")
    if isinstance(title, list):
        title = " ".join(map(str, title))
    return str(title) if title else ""


def prompt_html(prompt: Any, info: dict[str, str]) -> str:
    """HTML of one prompt in full: title, what it adds and why it matters, then system and user text."""
    examples = len(prompt.examples)
    shown = (
        f"It shows {examples} real training row{'s' if examples != 1 else ''}." if examples else "It shows no real row."
    )
    return (
        f"<h3>{html.escape(info['title'])}</h3>"
        f"<p><b>{html.escape(info['summary'])}</b> {html.escape(' '.join(info['explain'].split()))} {shown}</p>"
        f"<pre style='white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; font-size: 12px; "
        f"background: #f6f6f6; padding: 8px; border-left: 3px solid #888'>"
        f"<b>[system]</b>\n{_wrappable(prompt.system)}\n\n<b>[user]</b>\n{_wrappable(prompt.text)}</pre>"
        f"<p style='color:#666; font-size: 12px'>sha256 {prompt.sha256[:16]}… · "
        f"{len(prompt.system) + len(prompt.text):,} characters</p>"
    )


def _wrappable(text: str) -> str:
    """``text`` HTML-escaped, with a line-break opportunity after each comma.

    A prompt's column list and CSV rows have no spaces: they wrap after a comma, and only a token
    longer than the line breaks inside (the page's own ``word-break: break-all`` is overridden).
    """
    return html.escape(text).replace(",", ",<wbr>")


def prompt_blocks(prompts: Sequence[Any]):
    """Every prompt in full, one after the other, each with its explanation (see :func:`prompt_html`)."""
    from IPython.display import HTML

    from synllm.prompts import prompt_info

    return HTML("".join(prompt_html(p, prompt_info(p.prompt_type)) for p in prompts))


def table(frame: pd.DataFrame, *, precision: int = 3):
    """``frame`` styled for reading: text left-aligned (short text kept on one line), numbers rounded,
    NaN as '–', underscores in column names shown as spaces (so headers can wrap).

    Every cell, label and axis name is HTML-escaped: tables show text from cards, runs and
    servers, which must never become markup in a report."""
    shown = frame.rename(columns=lambda c: str(c).replace("_", " "))
    shown = shown.rename_axis(index=_escaped_names(shown.index), columns=_escaped_names(shown.columns))
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    short = [c for c in text if shown[c].astype(str).str.len().max() <= 40] if len(shown) else []
    styler = shown.style.format(precision=precision, na_rep="–", thousands=",", escape="html")
    styler = styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_properties(subset=short, **{"white-space": "nowrap"})
    if isinstance(frame.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])


def _escaped_names(axis: pd.Index) -> list[str | None]:
    return [None if n is None else html.escape(str(n)) for n in axis.names]


def settings_table(relative_to: str | Path | None = None, **settings: Any):
    """The notebook's parameters as a two-column table, for the record of a report.

    An absolute path among the values is shown relative to ``relative_to`` (the report's folder), so the
    table names no temporary folder of the machine that ran it."""
    rows = [(k, ", ".join(_setting(x, relative_to) for x in v) if isinstance(v, (list, tuple)) else
             _setting(v, relative_to)) for k, v in settings.items()]  # fmt: skip
    return table(pd.DataFrame(rows, columns=["parameter", "value"]).set_index("parameter"))


def _setting(value: Any, folder: str | Path | None) -> str:
    """``value`` as text; an absolute path relative to ``folder`` ('.' = the report's own folder)."""
    text = str(value)
    if folder is None or not isinstance(value, (str, Path)) or not text or not Path(text).is_absolute():
        return text
    return Path(os.path.relpath(text, folder)).as_posix()


def report_title(dataset: str, title: str = "") -> Any:
    """The report's title as a heading that names the dataset ("Stroke prediction (stroke): ...")."""
    from IPython.display import HTML

    name = f"{title} ({dataset})" if title and title != dataset else dataset
    return HTML(
        f"<h1 id='report-title'>{html.escape(name)}: synthetic patients from a local LLM, four prompts</h1>"
        "<p style='color:#555'>One step of the SynLLM study (arXiv 2508.08529): each prompt type's records scored "
        "for fidelity, clinical consistency, privacy and utility against real patients.</p>"
    )


def comparison_title(datasets: Sequence[str]) -> Any:
    """The comparison report's title, naming the datasets it compares."""
    from IPython.display import HTML

    names = [html.escape(str(d)) for d in datasets]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else "no dataset"
    return HTML(
        f"<h1 id='report-title'>The study across {listed}: which prompt type wins?</h1>"
        "<p style='color:#555'>Every finished per-dataset report side by side, and a verdict on the study's claim.</p>"
    )


#: The smoke-test banner's style (also used on the index page).
BANNER_STYLE = (
    "background:#fff4cc; border:1px solid #e0b000; border-left:6px solid #e0b000; padding:8px 12px; margin:8px 0"
)


def smoke_banner(runs: pd.DataFrame) -> Any:
    """A warning banner when the runs are a smoke test (tiny model, few rows or one seed), else nothing shown."""
    from IPython.display import HTML

    from synllm.report.verdicts import smoke_test_reasons

    return HTML(banner_html(smoke_test_reasons(runs)))


def banner_html(reasons: Sequence[str]) -> str:
    """The smoke-test banner as HTML ('' when there is no reason); every reason HTML-escaped."""
    if not reasons:
        return ""
    why = "; ".join(html.escape(r) for r in reasons)
    return (
        f"<div class='smoke-banner' role='alert' style='{BANNER_STYLE}'><b>⚠ Smoke test, not evidence:</b> "
        f"{why}. The numbers show that the pipeline works; they do not test the study's claim (rerun with "
        "<code>make run PROFILE=paper</code> on a model server to test it).</div>"
    )


def collapsible(summary: str, *parts: Any, open_: bool = False) -> Any:
    """``parts`` (styled tables, HTML outputs or HTML text) inside a ``<details>`` section titled ``summary``,
    closed until a reader opens it."""
    from IPython.display import HTML

    inner = "".join(_html_of(p) for p in parts)
    return HTML(
        f"<details{' open' if open_ else ''} style='margin:6px 0'><summary style='cursor:pointer; font-weight:bold'>"
        f"{html.escape(summary)}</summary>{inner}</details>"
    )


def flags_details(runs: pd.DataFrame) -> Any:
    """Every red flag of the runs (per generator and kind, worst first, with the worst run's full evidence) in a
    closed :func:`collapsible` block; None when no run was flagged (Findings shows each generator's worst)."""
    from synllm.metrics.flags import generator_flags

    if "flags" not in runs or not runs["flags"].fillna("").ne("").any():
        return None
    flags = generator_flags(runs)
    n = len(flags)
    return collapsible(f"All {n} red flag{'s' if n != 1 else ''}, with their evidence", table(flags))


def _html_of(part: Any) -> str:
    if isinstance(part, str):
        return part
    if hasattr(part, "to_html"):  # a pandas Styler (already escaped by table())
        return part.to_html()
    if hasattr(part, "_repr_html_"):
        return part._repr_html_() or ""
    return html.escape(str(part))


def score_color(value: Any) -> str:
    """CSS shading a score cell: white at 0 to green at 1 (no matplotlib needed); blank for non-numbers.

    >>> score_color(1.0)
    'background-color: rgb(120, 198, 121); color: black'
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if v != v:
        return "color: #999"
    v = min(max(v, 0.0), 1.0)
    low, high = (255, 255, 255), (120, 198, 121)
    r, g, b = (round(lo + (hi - lo) * v) for lo, hi in zip(low, high))
    return f"background-color: rgb({r}, {g}, {b}); color: black"


def _interval_cell(low: Any, high: Any) -> str:
    low, high = float(low), float(high)
    return "–" if low != low or high != high else f"{low:.2f}–{high:.2f}"


def styled_scorecard(card: pd.DataFrame):
    """The scorecard with score columns shaded (greener = better), each headline score's interval as text."""
    scores = [c for c in ("fidelity", "consistency", "privacy", "utility", "quality", "harmonic") if c in card]
    shown = card.set_index("generator")[["runs", "judged", "valid_rate", *scores]].copy()
    for measure in ("quality", "privacy", "harmonic"):
        if f"{measure}_low" in card:
            cells = [_interval_cell(lo, hi) for lo, hi in zip(card[f"{measure}_low"], card[f"{measure}_high"])]
            shown[f"{measure} 95 % interval"] = cells
    for column in ("interval", "not_judged_because"):
        if column in card:
            shown[column] = card[column].fillna("").to_numpy()
    return table(shown).map(score_color, subset=[c.replace("_", " ") for c in scores])
