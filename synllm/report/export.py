"""Executed notebooks as standalone HTML pages with the code hidden, and the index page of a batch.

The HTML is made by nbconvert with its own preprocessors: ``CoalesceStreamsPreprocessor``
merges progress-bar output, :class:`ReportCellsPreprocessor` tags every code cell's input
for removal except cells that raised (a reader must see what failed), and
``TagRemovePreprocessor`` removes what the ``remove-cell`` / ``remove-input`` /
``remove-output`` tags mark. Images are embedded and CDN scripts dropped, so a page works offline.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nbconvert.preprocessors import CoalesceStreamsPreprocessor, Preprocessor, TagRemovePreprocessor

from synllm import files
from synllm.report import folders
from synllm.report.display import BANNER_STYLE
from synllm.report.escape import md_plain

REMOVE_INPUT_TAGS = ("remove-input", "hide-input")
REMOVE_CELL_TAGS = ("remove-cell",)
REMOVE_OUTPUT_TAGS = ("remove-output",)
#: A tqdm progress bar line (``42%|``) in a stream output.
PROGRESS_BAR = re.compile(r"\d+%\|")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Added to every report page: a wide table scrolls inside its own box (its columns stay reachable), long text
#: wraps between words, and a figure never overflows the page.
REPORT_CSS = (
    ".jp-RenderedHTMLCommon table, .jp-RenderedHTML table { display: block; max-width: 100%; overflow-x: auto; }"
    " .jp-RenderedHTMLCommon td { word-break: normal; overflow-wrap: break-word; }"
    " pre { white-space: pre-wrap; word-break: normal; overflow-wrap: break-word; }"
    " img { max-width: 100%; height: auto; }"
    " details > summary { cursor: pointer; font-weight: bold; margin: 6px 0; }"
)


class ReportCellsPreprocessor(Preprocessor):
    """Tag code cells for a reader: inputs removed unless the cell raised; empty cells removed.

    Also: progress bars written to stderr are shown as plain output (not error red),
    terminal escapes are dropped, and PNG outputs carrying alt text become ``<img>``
    tags so the HTML keeps the alt text.
    """

    def preprocess_cell(self, cell: Any, resources: dict, index: int) -> tuple[Any, dict]:
        if cell.cell_type != "code":
            return cell, resources
        tags = set(cell.metadata.get("tags", []))
        outputs = cell.get("outputs", [])
        if any(o.get("output_type") == "error" for o in outputs):
            tags -= {*REMOVE_INPUT_TAGS, *REMOVE_OUTPUT_TAGS, *REMOVE_CELL_TAGS}
        else:
            tags.add(REMOVE_INPUT_TAGS[0])
            if not outputs or tags & set(REMOVE_OUTPUT_TAGS):
                tags.add(REMOVE_CELL_TAGS[0])
        for output in outputs:
            if output.get("output_type") == "stream":
                output["text"] = _ANSI.sub("", output["text"])
                if PROGRESS_BAR.search(output["text"]):
                    output["name"] = "stdout"
            _png_with_alt_as_html(output)
        cell.metadata["tags"] = sorted(tags)
        return cell, resources


def _png_with_alt_as_html(output: Any) -> None:
    """Turn a PNG output carrying alt text into an <img> tag, so the HTML keeps the alt text."""
    data, meta = output.get("data", {}), output.get("metadata", {}).get("image/png", {})
    if "image/png" not in data or "alt" not in meta:
        return
    width = f" width='{int(meta['width'])}'" if meta.get("width") else ""
    src = data["image/png"].replace("\n", "")
    data["text/html"] = (
        f"<img src='data:image/png;base64,{src}' alt='{html.escape(str(meta['alt']), quote=True)}'"
        f"{width} style='max-width: 100%; height: auto'>"
    )
    del data["image/png"]


def export_html(notebook: str | Path, html_path: str | Path | None = None, *, title: str | None = None) -> Path:
    """Write ``notebook`` as a standalone HTML page with code hidden (outputs, prose and charts kept).

    Cells that raised keep their code and traceback. Images are embedded, so the file
    works offline and alone. The page title is ``title`` (e.g. the dataset card's), else
    the notebook's first heading.
    """
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    html_path = Path(html_path) if html_path else notebook.with_suffix(".html")
    nb = nbformat.read(notebook, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.mathjax_url = ""
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(), enabled=True)
    exporter.register_preprocessor(ReportCellsPreprocessor(), enabled=True)
    exporter.register_preprocessor(
        TagRemovePreprocessor(
            remove_cell_tags=set(REMOVE_CELL_TAGS),
            remove_input_tags=set(REMOVE_INPUT_TAGS),
            remove_all_outputs_tags=set(REMOVE_OUTPUT_TAGS),
        ),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or _title(nb) or notebook.stem}})
    # The page needs no JavaScript: drop the template's CDN scripts (require.js, MathJax) so it is fully offline.
    body = re.sub(r"<script src=\"[^\"]*\">\s*</script>", "", body)
    body = body.replace("</head>", f"<style>{REPORT_CSS}</style>\n</head>", 1)
    files.atomic_write_text(html_path, body)
    return html_path


#: The report's own title, as :func:`synllm.report.display.report_title` writes it.
_REPORT_TITLE = re.compile(r"<h1 id='report-title'>(.*?)</h1>", re.S)


def _title(nb: Any) -> str | None:
    """The title a report shows (its ``report-title`` heading), else the notebook's first Markdown heading."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if found := _REPORT_TITLE.search(str(output.get("data", {}).get("text/html", ""))):
                return html.unescape(found[1])
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
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


INDEX_SMOKE_BANNER = (
    f"<div class='smoke-banner' role='alert' style='{BANNER_STYLE}'><b>⚠ Smoke test, not evidence:</b> "
    "these reports were made with a tiny model, few rows or one seed (each report's banner says which). "
    "They show that the pipeline works; they do not test the study's claim.</div>"
)


def is_smoke_test(summary: dict[str, Any]) -> bool:
    """Whether a report's summary says its runs are a smoke test (the headline is written by the package)."""
    return "(smoke test)" in str(summary.get("headline", ""))


def report_status(summary: dict[str, Any]) -> tuple[str, str]:
    """(css class, text) of a report's status on the index: what it concluded, not only that it ran.

    >>> report_status({"scorecard": [{"flags": "copying (high, 1 of 2 runs); missing (warning, 2 of 2 runs)"}]})
    ('bad', '⚠ 2 red flags (1 high)')
    >>> report_status({"headline": "On stroke (smoke test), no prompt type can be judged."})
    ('warn', 'smoke test: nothing judged')
    >>> report_status({"headline": "The claim that rule-based prompts balance best could not be judged."})
    ('warn', 'not judged')
    >>> report_status({"headline": "On stroke, P4 gave the best balance.", "scorecard": [{"flags": ""}]})
    ('ok', 'no red flag')
    """
    rows = summary.get("scorecard") or []
    flags = [f for r in rows if isinstance(r, dict) for f in str(r.get("flags") or "").split("; ") if f.strip()]
    if flags:
        high = sum("(high" in f for f in flags)
        text = f"⚠ {len(flags)} red flag{'s' if len(flags) != 1 else ''}" + (f" ({high} high)" if high else "")
        return ("bad" if high else "warn"), text
    headline = str(summary.get("headline", ""))
    if "no prompt type can be judged" in headline or "No generator can be judged" in headline:
        return "warn", ("smoke test: " if is_smoke_test(summary) else "") + "nothing judged"
    if is_smoke_test(summary):
        return "warn", "smoke test, no red flag"
    if "could not be judged" in headline:
        return "warn", "not judged"
    return ("ok", "no red flag") if rows else ("ok", "done")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEntry:
    """One report of a batch: its name, folder, outcome and run time."""

    name: str
    folder: Path
    ok: bool
    seconds: float
    message: str = ""


def _href(*parts: str | Path) -> str:
    """A link to a file inside the index's folder: each part URL-quoted, starting with ``./``.

    A relative start means a folder name such as ``javascript:...`` can never become a URL scheme.
    """
    segments = [quote(segment) for part in parts for segment in Path(part).parts]
    return html.escape("./" + "/".join(segments), quote=True)


def write_index(root: str | Path, entries: Sequence[ReportEntry], *, title: str = "synllm reports") -> Path:
    """Write ``<root>/index.html`` linking every report's HTML, notebook, scorecard and figures.

    Names, headlines and messages are HTML-escaped; links are relative and URL-quoted.
    """
    root = Path(root)
    rows = []
    smoke = False
    for e in entries:
        rel = e.folder.relative_to(root) if e.folder.is_relative_to(root) else e.folder
        names = (folders.REPORT_HTML, folders.REPORT_NOTEBOOK, *folders.TABLES)
        links = [f"<a href='{_href(rel, f)}'>{f}</a>" for f in names if (e.folder / f).exists()]
        figures = sorted((e.folder / folders.FIGURES).glob("*.png"))
        figs = ", ".join(f"<a href='{_href(rel, folders.FIGURES, p.name)}'>{html.escape(p.stem)}</a>" for p in figures)
        summary = folders.read_summary(e.folder) if e.ok else {}
        css, text = report_status(summary) if e.ok else ("bad", "failed")
        status = f"<span class='{css}'>{html.escape(text)}</span>"
        said = md_plain(str(summary.get("headline", ""))) if e.ok else e.message
        smoke |= e.ok and is_smoke_test(summary)
        rows.append(
            f"<tr><td><b>{html.escape(e.name)}</b></td><td class='status'>{status}</td>"
            f"<td class='num'>{e.seconds:.0f}&nbsp;s</td>"
            f"<td>{' · '.join(links)}</td><td class='figs'>{figs or '–'}</td><td>{html.escape(said)}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1300px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: 6px 8px;
vertical-align: top; text-align: left; font-size: 14px; }} .figs {{ font-size: 12px; max-width: 380px; }}
.num {{ white-space: nowrap; }} .ok {{ color: #2a7a2a; font-weight: bold; }} .bad {{ color: #b00; font-weight: bold; }}
.status {{ min-width: 11em; }} .warn {{ color: #a05a00; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{INDEX_SMOKE_BANNER if smoke else ""}
<p>One report per dataset (generation, fidelity, clinical consistency, privacy, utility and a scorecard),
then the comparison across datasets. Every page works offline.</p>
<table><tr><th>report</th><th>status</th><th>time</th><th>files</th><th>figures</th><th>headline</th></tr>
{"".join(rows)}
</table></body></html>
"""
    path = root / folders.INDEX
    files.atomic_write_text(path, page)
    return path
