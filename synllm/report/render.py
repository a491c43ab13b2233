"""Showing and saving: charts as PNG, prose as Markdown, notebooks as code-free HTML, the index page.

Charts are shown as PNG images (saved under the report's ``figures/`` with vl-convert,
offline) so the notebook and its HTML look the same in JupyterLab, under papermill and
in a browser with no network.
"""

from __future__ import annotations

import html
import json
import math
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synllm import config
from synllm.metrics.evaluation import jsonable

#: Pixel density of saved PNGs (2 = sharp on high-density screens; shown at natural size).
PNG_SCALE = 2
HIDE_INPUT_TAGS = ("remove-input", "hide-input")
REMOVE_CELL_TAGS = ("remove-cell",)
REMOVE_OUTPUT_TAGS = ("remove-output",)


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where one report writes: ``folder`` (tables, JSON) and ``figures`` (PNG charts)."""

    root: Path
    folder: Path
    figures: Path


def report_paths(output_folder: str | Path | None, name: str) -> ReportPaths:
    """Folders of report ``name`` (a dataset, or 'comparison') under ``output_folder`` or the reports dir."""
    root = Path(output_folder) if output_folder else config.reports_dir()
    folder = root / name
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    return ReportPaths(root=root, folder=folder, figures=figures)


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
    """The chart rendered to PNG bytes by vl-convert (offline)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(chart.to_dict(), scale=scale)


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
    from IPython.display import Image

    data = chart_png(chart, scale)
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    width, _ = png_size(data)
    return Image(data=data, format="png", width=width // scale, alt=_chart_title(chart) or name.replace("_", " "))


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
    shown = f"It shows {examples} real training row{'s' if examples != 1 else ''}." if examples else \
        "It shows no real row."
    return (
        f"<h3>{html.escape(info['title'])}</h3>"
        f"<p><b>{html.escape(info['summary'])}</b> {html.escape(' '.join(info['explain'].split()))} {shown}</p>"
        f"<pre style='white-space: pre-wrap; font-size: 12px; background: #f6f6f6; padding: 8px; "
        f"border-left: 3px solid #888'>"
        f"<b>[system]</b>\n{html.escape(prompt.system)}\n\n<b>[user]</b>\n{html.escape(prompt.text)}</pre>"
        f"<p style='color:#666; font-size: 12px'>sha256 {prompt.sha256[:16]}… · "
        f"{len(prompt.system) + len(prompt.text):,} characters</p>"
    )


def prompt_blocks(prompts: Sequence[Any]):
    """Every prompt in full, one after the other, each with its explanation (see :func:`prompt_html`)."""
    from IPython.display import HTML

    from synllm.prompts import prompt_info

    return HTML("".join(prompt_html(p, prompt_info(p.prompt_type)) for p in prompts))


def write_summary(folder: str | Path, headline: str, **extra: Any) -> Path:
    """Write ``<folder>/summary.json`` with a one-sentence ``headline`` (shown on the index page) and ``extra``."""
    path = Path(folder) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(jsonable({"headline": headline, **extra}), indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def table(frame: pd.DataFrame, *, precision: int = 3):
    """``frame`` styled for reading: text left-aligned (short text kept on one line), numbers rounded,
    NaN as '–', underscores in column names shown as spaces (so headers can wrap)."""
    shown = frame.rename(columns=lambda c: str(c).replace("_", " "))
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    short = [c for c in text if shown[c].astype(str).str.len().max() <= 40] if len(shown) else []
    styler = shown.style.format(precision=precision, na_rep="–", thousands=",")
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_properties(subset=short, **{"white-space": "nowrap"})
    if isinstance(frame.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])


def settings_table(**settings: Any):
    """The notebook's parameters as a two-column table, for the record at the top of a report."""
    rows = [(k, ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)) for k, v in settings.items()]
    return table(pd.DataFrame(rows, columns=["parameter", "value"]).set_index("parameter"))


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


def styled_scorecard(card: pd.DataFrame):
    """The scorecard with score columns shaded (greener = better) and numbers rounded."""
    scores = [c for c in ("fidelity", "consistency", "privacy", "utility", "quality", "harmonic") if c in card]
    shown = card.drop(columns=[c for c in ("kind", "model", "prompt_type") if c in card]).set_index("generator")
    return table(shown).map(score_color, subset=[c.replace("_", " ") for c in scores])


def _mark_hidden_inputs(nb: Any) -> Any:
    """Hide the source of every code cell except those that raised (readers must see what failed)."""
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code":
            continue
        failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if tags & set(REMOVE_OUTPUT_TAGS) and not failed:
            cell.outputs = []
        if not failed:
            cell.metadata["transient"] = {"remove_source": True}
        for output in cell.get("outputs", []):
            _png_with_alt_as_html(output)
        cell.outputs = coalesce_streams(cell.get("outputs", []))
        for output in cell.outputs:  # progress bars are not errors: do not paint them red
            if output.get("output_type") == "stream" and _PROGRESS.search(output.get("text", "")):
                output["name"] = "stdout"
    nb.cells = [c for c in nb.cells
                if not (set(c.get("metadata", {}).get("tags", [])) & set(REMOVE_CELL_TAGS))
                and not (c.cell_type == "code" and c.metadata.get("transient") and not c.get("outputs"))]
    return nb


_PROGRESS = re.compile(r"\d+%\|")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def terminal_text(text: str) -> str:
    """What a terminal would leave on screen, line by line: carriage returns overwrite, escapes vanish.

    >>> terminal_text("bar 10%\\rbar 100%\\nnext\\n")
    'bar 100%\\nnext\\n'
    """
    lines = []
    for line in _ANSI.sub("", text).split("\n"):
        kept = line.rstrip("\r").split("\r")[-1].rstrip()
        if kept:
            lines.append(kept)
    return "\n".join(lines) + ("\n" if lines else "")


def coalesce_streams(outputs: Sequence[Any]) -> list[Any]:
    """Merge consecutive stream outputs of the same name and apply :func:`terminal_text` (progress bars)."""
    merged: list[Any] = []
    for output in outputs:
        if output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1].get("name") == output.get("name"):
            merged[-1]["text"] += output["text"]
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = terminal_text(output["text"])
    return [o for o in merged if o.get("output_type") != "stream" or o["text"]]


def _png_with_alt_as_html(output: Any) -> None:
    """Turn a PNG output carrying alt text into an <img> tag, so the HTML keeps the alt text."""
    data, meta = output.get("data", {}), output.get("metadata", {}).get("image/png", {})
    if "image/png" not in data or "alt" not in meta:
        return
    width = f" width='{int(meta['width'])}'" if meta.get("width") else ""
    src = data["image/png"].replace("\n", "")
    data["text/html"] = f"<img src='data:image/png;base64,{src}' alt='{html.escape(str(meta['alt']), quote=True)}'" \
                        f"{width} style='max-width: 100%; height: auto'>"
    del data["image/png"]


def export_html(notebook: str | Path, html_path: str | Path | None = None) -> Path:
    """Write ``notebook`` as a standalone HTML page with code hidden (outputs, prose and charts kept).

    Cells that raised keep their code and traceback. Images are embedded, so the file
    works offline and alone.
    """
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    html_path = Path(html_path) if html_path else notebook.with_suffix(".html")
    nb = _mark_hidden_inputs(nbformat.read(notebook, as_version=4))
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.mathjax_url = ""
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb) or notebook.stem}})
    # The page needs no JavaScript: drop the template's CDN scripts (require.js, MathJax) so it is fully offline.
    body = re.sub(r"<script src=\"[^\"]*\">\s*</script>", "", body)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def _title(nb: Any) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def failed_cells(notebook: str | Path) -> list[str]:
    """'ename: evalue' of every error output in an executed notebook."""
    import nbformat

    nb = nbformat.read(Path(notebook), as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


# --- index page ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEntry:
    """One report of a batch: its name, folder, outcome and run time."""

    name: str
    folder: Path
    ok: bool
    seconds: float
    message: str = ""


def write_index(root: str | Path, entries: Sequence[ReportEntry], *, title: str = "synllm reports") -> Path:
    """Write ``<root>/index.html`` linking every report's HTML, notebook, scorecard and figures."""
    root = Path(root)
    rows = []
    for e in entries:
        rel = e.folder.relative_to(root) if e.folder.is_relative_to(root) else e.folder
        links = [f"<a href='{rel}/{f}'>{f}</a>" for f in ("report.html", "report.ipynb", "scorecard.csv",
                                                          "leaderboard.csv", "runs.csv")
                 if (e.folder / f).exists()]
        figures = sorted((e.folder / "figures").glob("*.png")) if (e.folder / "figures").exists() else []
        figs = ", ".join(f"<a href='{rel}/figures/{p.name}'>{p.stem}</a>" for p in figures)
        status = "<span class='ok'>ok</span>" if e.ok else "<span class='bad'>failed</span>"
        rows.append(
            f"<tr><td><b>{html.escape(e.name)}</b></td><td>{status}</td><td class='num'>{e.seconds:.0f}&nbsp;s</td>"
            f"<td>{' · '.join(links)}</td><td class='figs'>{figs or '–'}</td>"
            f"<td>{html.escape(_headline(e.folder) if e.ok else e.message)}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: 6px 8px;
vertical-align: top; text-align: left; font-size: 14px; }} .figs {{ font-size: 12px; max-width: 380px; }}
.num {{ white-space: nowrap; }} .ok {{ color: #2a7a2a; font-weight: bold; }} .bad {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One report per dataset (generation, fidelity, clinical consistency, privacy, utility and a scorecard),
then the comparison across datasets. Every page works offline.</p>
<table><tr><th>report</th><th>status</th><th>time</th><th>files</th><th>figures</th><th>headline</th></tr>
{''.join(rows)}
</table></body></html>
"""
    path = root / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _headline(folder: Path) -> str:
    """The first sentence of a report's conclusion, if it wrote one."""
    path = folder / "summary.json"
    if not path.exists():
        return ""
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("headline") or "")
    except (OSError, ValueError):
        return ""
