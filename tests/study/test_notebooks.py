"""The study notebooks: committed clean, parameters matching the batch profiles, and executed end to end.

The execution test runs the batch driver (what ``make run`` runs) with the ``quick`` profile
shrunk to one real dataset and one that does not exist: the first must give a full report,
the second a failed one that still has its HTML, and the batch must go on, then exit 1.
"""

from __future__ import annotations

import ast
import json
import re
import types

import nbformat
import pandas as pd
import pytest

from synllm import cli, config, report
from synllm.study import batch

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
PROFILES = sorted(config.PROFILES_DIR.glob("*.yaml"))
#: Parameters a profile leaves out: set by the batch per run, or (comparison datasets) left at "all found".
NOT_IN_PROFILES = {"study": {"dataset", "output_folder"}, "comparison": {"output_folder", "datasets"}}
STUDY_SECTIONS = [
    "Findings",
    "1. Generation",
    "2. Scoring",
    "3. Fidelity",
    "4. Clinical consistency",
    "5. Privacy",
    "6. Utility",
    "7. Scorecard",
    "8. Conclusion",
    "Appendix A. The data and its card",
    "Appendix B. The four prompts",
    "Appendix C. Parameters",
]


def tiny_batch_args(datasets, output, *, baselines):
    """`make run` arguments for the quick profile cut down to 5 rows of P1 and P4, one seed."""
    settings = ["prompt_types=[p1, p4]", "n_rows=5", "batch_size=5", "seeds=[0]", "eval_max_rows=500"]
    settings.append(f"baselines={baselines}")
    return ["--profile", "quick", "--datasets", *datasets, "--output", str(output)] + [
        item for setting in settings for item in ("-p", setting)
    ]


def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01-dataset-study.ipynb", "02-comparison.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_stripped_and_has_one_tagged_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "strip outputs before committing"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in tagged[0].source.splitlines():  # typed literals with a help comment each
        assert re.match(r"^\w+: [\w\[\]]+ = .+  # \S", line), line
        ast.literal_eval(line.split(" = ", 1)[1].split("  # ")[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_are_thin(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))], (
            f"move logic into synllm: {cell.source[:60]!r}"
        )
        if "parameters" not in cell.metadata.get("tags", []):  # the parameters cell: one typed literal a line
            assert len(cell.source.splitlines()) <= 15
    prose = [c for c in nb.cells if "remove-input" in c.metadata.get("tags", [])]
    called = [re.fullmatch(r"Markdown\(report\.(\w+)\(.*\)\)", c.source, re.S) for c in prose]
    assert prose and all(called), "a prose cell is one call: Markdown(report.<prose function>(...))"
    assert all(getattr(report, m[1]).__module__.startswith("synllm.report.prose.") for m in called)


COURSE_NOTEBOOKS = sorted((config.NOTEBOOKS_DIR / "course").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + COURSE_NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_only_the_public_report_names(path):
    """Cells call ``report.<name>`` for names in ``synllm.report.__all__``, never a submodule's internals."""
    nb = nbformat.read(path, as_version=4)
    used = {m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"\breport\.(\w+)", c.source)}
    assert used, "the notebook shows its results with synllm.report"
    assert used <= set(report.__all__), sorted(used - set(report.__all__))
    assert not [name for name in used if isinstance(getattr(report, name), types.ModuleType)]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_keys_match_notebook_parameters(profile):
    loaded = batch.load_profile(profile)
    assert set(loaded.datasets) <= {"diabetes", "cirrhosis", "stroke"}
    for section, notebook in (("study", batch.STUDY_NOTEBOOK), ("comparison", batch.COMPARISON_NOTEBOOK)):
        names = set(batch.notebook_parameters(notebook))
        given = set(getattr(loaded, section))
        assert given | NOT_IN_PROFILES[section] == names


def test_profiles_are_the_three_named_in_the_makefile():
    assert {"course", "paper", "quick"} <= {p.stem for p in PROFILES}
    quick, paper = batch.load_profile("quick"), batch.load_profile("paper")
    assert quick.study["backend"] == "embedded" and paper.study["backend"] == "ollama"
    assert paper.study["n_rows"] >= 100 and len(paper.study["seeds"]) == 3 and paper.study["models"] == ["paper"]


def test_unknown_profile_or_parameter_is_a_clear_error(tmp_path):
    with pytest.raises(batch.ProfileError, match="no batch profile 'nope'; choose one of"):
        batch.load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [stroke]\nstudy:\n  n_rowz: 3\n")
    with pytest.raises(batch.ProfileError, match=r"study parameter\(s\) \['n_rowz'\] are not in 01-dataset-study"):
        batch.load_profile(bad)
    with pytest.raises(batch.ProfileError, match="unknown study parameter"):
        batch.plan(batch.load_profile("quick"), overrides={"n_rowz": 3})


def test_plan_merges_command_line_choices(tmp_path):
    quick = batch.load_profile("quick")
    plan = batch.plan(quick, backend="ollama", output=tmp_path)
    assert plan.study["backend"] == "ollama" and plan.study["models"] == []  # the backend's own default
    plan = batch.plan(
        quick,
        backend="ollama",
        models=["llama3.1:8b", "qwen2.5:7b"],
        datasets=["stroke"],
        output=tmp_path,
        overrides={"n_rows": 5},
    )
    assert plan.study["models"] == ["llama3.1:8b", "qwen2.5:7b"] and plan.study["n_rows"] == 5
    assert [(s.name, s.dataset) for s in plan.studies] == [("stroke", "stroke")]
    assert plan.study["output_folder"] == plan.comparison["output_folder"] == str(tmp_path.resolve())
    assert batch.plan(quick, output=tmp_path).study["backend"] == "embedded"


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory):
    """`make run` shrunk: stroke (2 prompt types, 5 rows, 1 seed) and a dataset that does not exist."""
    home = tmp_path_factory.mktemp("home")
    out = home / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNLLM_HOME", str(home))
        code = cli.main(["run", *tiny_batch_args(["stroke", "nosuch"], out, baselines="[independent]")])
    return code, out, home


@pytest.mark.notebook
@pytest.mark.embedded
def test_batch_writes_a_full_report_for_a_dataset(tiny_batch):
    code, out, _ = tiny_batch
    folder = out / "stroke"
    html = (folder / "report.html").read_text(encoding="utf-8")
    for section in STUDY_SECTIONS:
        assert f">{section}<" in html, section
    assert html.count("data:image/png;base64,") >= 11  # every chart embedded
    assert "jp-OutputArea-output" in html and 'data-mime-type="application/vnd.jupyter.stderr"' not in html
    assert "run_grid(" not in html and "from synllm" not in html  # code hidden
    assert "<script src=" not in html
    figures = sorted(p.stem for p in (folder / "figures").glob("*.png"))
    families = {"fidelity_metrics", "consistency_metrics", "privacy_metrics"}
    assert {"distributions", "correlations", "dcr", "odds_ratios", "scorecard", "utility", *families} <= set(figures)
    card = pd.read_csv(folder / "scorecard.csv")
    assert card["kind"].tolist() == ["llm", "llm", "baseline", "reference"]
    assert card.loc[card["kind"] == "llm", "prompt_type"].tolist() == ["p1", "p4"]
    # 5 rows per run: too few to judge, said at the top, and no winner anywhere
    assert card["harmonic"].isna().all() and card["not_judged_because"].str.startswith("not enough rows").sum() == 3
    top = html.index(">Findings<")
    assert html.index("Stroke Prediction (stroke): synthetic patients") < html.index("Smoke test, not evidence") < top
    assert top < html.index(">1. Generation<") < html.index(">Appendix A. The data and its card<")
    assert "<details" in html[html.index(">Appendix A. The data and its card<") :]
    assert html.count("Smoke test") == 1, "a smoke test is said once, by the banner"
    assert "No generator can be judged on stroke" in html[top:]
    findings = html[top : html.index(">1. Generation<")]
    assert "The outcome mix." in findings and "stroke = 1" in findings and "real patients (training split)" in findings
    mix = pd.read_csv(folder / "mix.csv", dtype=str)  # the profile's balanced mix: 5 rows as 3 + 2, all delivered
    assert mix[mix["rows"] == "requested"].iloc[0][["stroke = 0", "stroke = 1"]].tolist() == ["3 (60%)", "2 (40%)"]
    assert mix[mix["rows"] == "delivered"].iloc[0][["stroke = 0", "stroke = 1"]].tolist() == ["3 (60%)", "2 (40%)"]
    assert "clearly ahead" not in html
    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    headline = json.loads((folder / "summary.json").read_text())["headline"]
    assert "On stroke (smoke test), no prompt type can be judged" in headline  # after the red flags, if any


@pytest.mark.notebook
@pytest.mark.embedded
def test_batch_keeps_going_after_a_failed_notebook_and_exits_nonzero(tiny_batch):
    code, out, _ = tiny_batch
    assert code == 1
    html = (out / "nosuch" / "report.html").read_text(encoding="utf-8")
    assert "CardError" in html and "load_study_data" in html  # the failing cell, code and error
    comparison = (out / "comparison" / "report.html").read_text(encoding="utf-8")
    assert "Verdict" in comparison and comparison.count("data:image/png;base64,") >= 4
    assert "cannot be judged: not enough rows" in comparison and "Smoke test" in comparison
    assert "stroke" in pd.read_csv(out / "comparison" / "leaderboard.csv")["dataset"].tolist()
    index = (out / "index.html").read_text(encoding="utf-8")
    for link in ("stroke/report.html", "stroke/scorecard.csv", "comparison/report.html", "stroke/figures/dcr.png"):
        assert f"href='./{link}'" in index
    assert index.count("class='bad'>failed<") == 1 and "nosuch" in index  # red flags are 'bad' too


@pytest.mark.notebook
@pytest.mark.embedded
def test_rerun_reuses_cached_generations(tiny_batch, tmp_path):
    _, _, home = tiny_batch
    manifests = sorted((home / "data" / "interim" / "runs" / "stroke").rglob("manifest.json"))
    assert len(manifests) == 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNLLM_HOME", str(home))
        code = cli.main(["run", *tiny_batch_args(["stroke"], tmp_path, baselines="[]")])
    assert code == 0
    reused = [json.loads(m.read_text())["timings"]["answers_reused_from_cache"] for m in manifests]
    assert all(n >= 1 for n in reused)
