"""The course labs: well-formed, student versions without solutions, and every lab runs with its solutions."""

from __future__ import annotations

import ast
import json
import re

import nbformat
import pytest

from synllm.course import build, checks

LABS = build.lab_paths()


def test_there_are_four_or_five_labs_in_order():
    assert 4 <= len(LABS) <= 5
    assert [p.name[:3] for p in LABS] == [f"{i:02d}-" for i in range(1, len(LABS) + 1)]


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_opens_with_goals_and_closes_with_what_to_explain(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    title, goals = build.lab_summary(path)
    assert title.startswith("Lab ") and len(goals) >= 3
    assert nb.cells[-1].cell_type == "markdown"
    assert nb.cells[-1].source.startswith("## What you should now be able to explain")


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_is_committed_stripped_with_thin_cells_and_one_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "strip outputs before committing"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    for cell in code:
        tree = ast.parse(cell.source)
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda)]
        assert len(cell.source.splitlines()) <= 15, cell.source[:60]
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
        for node in imports:  # the flat API, and IPython's display helpers
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all(n == "synllm" or n.startswith("IPython") for n in names), names


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution_and_a_self_check_after_it(path):
    nb = nbformat.read(path, as_version=4)
    tags = [tuple(c.metadata.get("tags", [])) for c in nb.cells]
    exercises = [i for i, t in enumerate(tags) if build.EXERCISE_TAG in t]
    assert exercises, "a lab teaches by exercises"
    for i in exercises:
        assert build.SOLUTION_TAG in tags[i + 1], f"cell {i}: the solution follows its exercise"
        assert build.CHECK_TAG in tags[i + 2], f"cell {i}: a self-check follows the solution"
        stubs = re.findall(r"^(\w+) = None\b", nb.cells[i].source, re.M)
        assert stubs, "an exercise leaves its answers as None stubs"
        for name in stubs:  # the solution fills every stub
            assert re.search(rf"^{name} = ", nb.cells[i + 1].source, re.M), name


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_student_version_has_no_solution_code(path):
    original = nbformat.read(path, as_version=4)
    student = build.student_notebook(path)
    solutions = [c.source for c in original.cells if build.SOLUTION_TAG in c.metadata.get("tags", [])]
    assert solutions
    assert not [c for c in student.cells if build.SOLUTION_TAG in c.metadata.get("tags", [])]
    text = json.dumps(nbformat.writes(student))
    for source in solutions:
        for line in source.splitlines():
            if line.strip() and not line.strip().startswith("#") and len(line.strip()) > 12:
                assert json.dumps(line)[1:-1] not in text, f"solution line leaked: {line!r}"
    assert len(student.cells) == len(original.cells) - len(solutions)


def test_checks_say_not_answered_pass_and_fail():
    assert checks.TODO_MARK in checks.expect_between(None, 0, 1, what="x").data
    assert build.PASS_MARK in checks.expect_between(0.5, 0, 1, what="x").data
    failed = checks.expect_between(3, 0, 1, what="x", hint="use a share").data
    assert build.FAIL_MARK in failed and "expected between 0 and 1" in failed and "use a share" in failed
    assert build.FAIL_MARK in checks.expect_between("abc", 0, 1, what="x").data
    assert (
        build.PASS_MARK
        in checks.expect_words(
            "The intervals overlap so we cannot tell P4 from P1 apart here at this sample size with two seeds.",
            ["interval"],
            what="c",
        ).data
    )
    assert build.FAIL_MARK in checks.expect_words("P4 wins.", ["interval"], what="c").data
    assert "&lt;script&gt;" in checks.expect_in("<script>", {"a"}, what="x").data


def test_expect_close_matches_numbers_and_a_missing_value_only_with_a_missing_one():
    nan = float("nan")
    assert checks.TODO_MARK in checks.expect_close(None, 0.2, what="w").data
    assert build.PASS_MARK in checks.expect_close(0.2 + 1e-12, 0.2, what="w").data
    assert build.PASS_MARK in checks.expect_close(nan, nan, what="w").data  # no interval, rightly
    assert build.FAIL_MARK in checks.expect_close(nan, 0.2, what="w").data
    assert build.FAIL_MARK in checks.expect_close(0.2, nan, what="w").data
    assert build.FAIL_MARK in checks.expect_close(0.3, 0.2, what="w", hint="high minus low").data
    assert build.FAIL_MARK in checks.expect_close("abc", 0.2, what="w").data


def test_course_build_writes_student_notebooks_and_an_index_without_running(tmp_path):
    outcomes = build.build_course(tmp_path, execute=False, echo=lambda *a, **k: None)
    assert [o.name for o in outcomes] == [p.stem for p in LABS]
    for path in LABS:
        assert (tmp_path / "student" / path.name).is_file()
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f"student/{p.name}" in index for p in LABS)


@pytest.mark.notebook
@pytest.mark.embedded
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_runs_with_its_solutions_and_every_self_check_passes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNLLM_HOME", str(tmp_path / "home"))
    [outcome] = build.build_course(tmp_path / "course", labs=[path], echo=lambda *a, **k: None)
    assert outcome.ok, outcome.message
    assert outcome.checks_passed >= 1 and outcome.checks_failed == 0
    page = outcome.instructor_html.read_text(encoding="utf-8")
    assert "celltag_solution" in page and "celltag_exercise" in page
    print(f"{path.stem}: {outcome.seconds:.0f} s")
