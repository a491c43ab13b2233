"""``make course``: the labs of ``notebooks/course/`` as student notebooks and executed instructor pages.

For each lab:

* the **instructor** version is executed with papermill, solutions in, and written as
  ``instructor/<lab>.ipynb`` and ``instructor/<lab>.html`` (code shown: in a lab the code is the lesson;
  solution cells are marked, exercise cells boxed);
* the **student** version is the lab with every cell tagged ``solution`` removed by nbconvert's
  ``TagRemovePreprocessor`` and outputs cleared by ``ClearOutputPreprocessor``: ``student/<lab>.ipynb``.

``index.html`` lists the labs with their learning goals, how long each took to run here, and links.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synllm import config, files
from synllm.report.folders import INDEX

COURSE_DIR = config.NOTEBOOKS_DIR / "course"
SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
CHECK_TAG = "check"
#: Marks a self-check that passed / did not pass (what :mod:`synllm.course.checks` prints).
PASS_MARK, FAIL_MARK = "✔", "✘"
_STYLE = """
<style>
.celltag_exercise { border: 2px solid #e0a800; border-radius: 6px; background: #fff8e1; margin: 8px 0; }
.celltag_exercise::before { content: "Exercise"; font-weight: bold; color: #8a6d00; padding: 4px 8px; display: block; }
.celltag_solution { border: 2px solid #2a7a2a; border-radius: 6px; background: #eef8ee; margin: 8px 0; }
.celltag_solution::before { content: "Solution (instructor version only)"; font-weight: bold; color: #2a7a2a;
  padding: 4px 8px; display: block; }
.celltag_check { border-left: 4px solid #4c78a8; }
</style>
"""


def lab_paths(folder: str | Path | None = None) -> list[Path]:
    """The lab notebooks, in order (``NN-slug.ipynb``)."""
    return sorted(Path(folder or COURSE_DIR).glob("[0-9][0-9]-*.ipynb"))


@dataclass(frozen=True, slots=True, kw_only=True)
class LabOutcome:
    """One built lab: where its versions are, whether it ran, how long it took, what it teaches."""

    name: str
    title: str
    goals: tuple[str, ...]
    student: Path
    instructor_html: Path | None
    ok: bool
    seconds: float
    message: str = ""
    checks_passed: int = 0
    checks_failed: int = 0


def student_notebook(lab: str | Path) -> Any:
    """The lab without its solution cells and with no outputs (an ``nbformat`` notebook)."""
    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    nb = nbformat.read(Path(lab), as_version=4)
    nb, _ = TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}).preprocess(nb, {})
    nb, _ = ClearOutputPreprocessor().preprocess(nb, {})
    return nb


def lab_summary(lab: str | Path) -> tuple[str, tuple[str, ...]]:
    """(title, learning goals) from the lab's first markdown cell: its ``# `` heading and its bullet list."""
    import nbformat

    nb = nbformat.read(Path(lab), as_version=4)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title = next((line[2:].strip() for line in first.splitlines() if line.startswith("# ")), Path(lab).stem)
    goals = tuple(m.group(1).strip() for m in re.finditer(r"^\s*[-*] (.+)$", first, re.M))
    return title, goals


def check_marks(notebook: str | Path) -> tuple[int, int]:
    """(passed, failed) self-checks in an executed lab, counted from the marks their outputs carry."""
    import nbformat

    nb = nbformat.read(Path(notebook), as_version=4)
    passed = failed = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or CHECK_TAG not in cell.metadata.get("tags", []):
            continue
        text = " ".join(
            str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in cell.get("outputs", [])
        )
        passed += text.count(PASS_MARK)
        failed += text.count(FAIL_MARK)
    return passed, failed


def build_course(
    output: str | Path | None = None,
    *,
    labs: Sequence[str | Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
    execute: bool = True,
    kernel: str = "python3",
    timeout: int | None = None,
    echo=print,
) -> list[LabOutcome]:
    """Write the student and instructor versions of every lab under ``output`` (default ``reports/course``)."""
    import nbformat

    root = Path(output) if output else config.reports_dir() / "course"
    outcomes = []
    chosen = [Path(p) for p in labs] if labs else lab_paths()
    for i, lab in enumerate(chosen, 1):
        title, goals = lab_summary(lab)
        student = root / "student" / lab.name
        files.atomic_write_text(student, nbformat.writes(student_notebook(lab)))
        ok, message, seconds, page, marks = True, "", 0.0, None, (0, 0)
        if execute:
            echo(f"[{i}/{len(chosen)}] {lab.stem}: running with solutions ...", flush=True)
            ok, message, seconds, page = _execute(lab, root / "instructor", parameters, kernel, timeout)
            executed = root / "instructor" / lab.name
            if executed.exists():
                marks = check_marks(executed)
            if ok and marks[1]:
                ok, message = False, f"{marks[1]} self-check(s) did not pass with the solutions in"
            echo(
                f"[{i}/{len(chosen)}] {lab.stem}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s"
                + (f" ({message})" if message else ""),
                flush=True,
            )
        outcomes.append(
            LabOutcome(
                name=lab.stem,
                title=title,
                goals=goals,
                student=student,
                instructor_html=page,
                ok=ok,
                seconds=seconds,
                message=message,
                checks_passed=marks[0],
                checks_failed=marks[1],
            )
        )
        write_course_index(root, outcomes)
    return outcomes


def _execute(
    lab: Path, folder: Path, parameters: Mapping[str, Any] | None, kernel: str, timeout: int | None
) -> tuple[bool, str, float, Path | None]:
    import papermill as pm

    from synllm.report.export import failed_cells

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / lab.name
    started = time.perf_counter()
    ok, message = True, ""
    try:
        pm.execute_notebook(
            str(lab),
            str(out),
            parameters=dict(parameters or {}),
            kernel_name=kernel,
            cwd=str(lab.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as exc:
        ok, message = False, f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # a dead kernel or a bad notebook: report it, go on with the next lab
        ok, message = False, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    page = None
    if out.exists():
        page = instructor_html(out, folder / f"{lab.stem}.html")
        if ok and (errors := failed_cells(out)):
            ok, message = False, errors[0]
    return ok, message.splitlines()[0][:300] if message else "", seconds, page


def instructor_html(notebook: str | Path, html_path: str | Path) -> Path:
    """An executed lab as one offline HTML page with its code, exercises boxed and solutions marked."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(Path(notebook), as_version=4)
    for cell in nb.cells:  # progress bars help while a lab runs, not on the page
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _progress_output(o)]
    exporter = HTMLExporter(template_name="lab")
    exporter.mathjax_url = ""
    title, _ = lab_summary(notebook)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = re.sub(r"<script src=\"[^\"]*\">\s*</script>", "", body)
    body = body.replace("</head>", _STYLE + "</head>", 1)
    files.atomic_write_text(Path(html_path), body)
    return Path(html_path)


def _progress_output(output: Any) -> bool:
    """A progress bar, or the blank line a finished bar leaves on stderr."""
    from synllm.report.export import PROGRESS_BAR

    if output.output_type != "stream":
        return False
    return bool(PROGRESS_BAR.search(output.text)) or (output.name == "stderr" and not output.text.strip())


def write_course_index(root: str | Path, outcomes: Sequence[LabOutcome]) -> Path:
    """``<root>/index.html``: every lab with its goals, run time and links to both versions."""
    root = Path(root)
    rows = []
    for o in outcomes:
        goals = "".join(f"<li>{html.escape(g)}</li>" for g in o.goals)
        links = [f"<a href='student/{html.escape(o.student.name)}'>student notebook</a>"]
        if o.instructor_html is not None:
            links.append(f"<a href='instructor/{html.escape(o.instructor_html.name)}'>instructor page</a>")
        status = "<span class='ok'>ran</span>" if o.ok else f"<span class='bad'>failed: {html.escape(o.message)}</span>"
        timing = f"{o.seconds / 60:.1f} min" if o.seconds else "–"
        rows.append(
            f"<tr><td><b>{html.escape(o.title)}</b><ul>{goals}</ul></td><td>{' · '.join(links)}</td>"
            f"<td class='num'>{timing}</td><td>{status}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>synllm course labs</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: 8px;
vertical-align: top; text-align: left; font-size: 14px; }} ul {{ margin: 4px 0 0 0; padding-left: 18px; }}
.num {{ white-space: nowrap; }} .ok {{ color: #2a7a2a; font-weight: bold; }} .bad {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>Synthetic medical data with local LLMs: course labs</h1>
<p>Each lab is one idea and fits a 90-minute session on a laptop (no GPU, no server). Students open the
<em>student notebook</em> in JupyterLab and work through the exercises; the <em>instructor page</em> shows the
same lab executed with the solutions. Run times are those measured when this page was built.</p>
<table><tr><th>lab and learning goals</th><th>files</th><th>run time</th><th>status</th></tr>
{"".join(rows)}
</table></body></html>
"""
    path = root / INDEX
    files.atomic_write_text(path, page)
    return path
