"""Batch driver behind ``make run``: the per-dataset notebook for each dataset, then the comparison.

    synllm run --profile quick [--backend ollama | --endpoints vllm] [--models llama3.1:8b ...]
               [--datasets stroke path/to/card.yaml] [--output DIR] [-p n_rows=5]

(``python -m synllm.study.batch ...`` is an alias; the arguments are parsed in :mod:`synllm.cli`.)

A dataset is a built-in card name or the path of a card file, relative to the folder the
command runs in. Each notebook is executed with papermill into
``<output>/<card name>/report.ipynb`` and rendered to ``report.html`` (titled with the
card's title) with the code hidden. A failing notebook still gets its HTML
(showing the cell that failed); the batch goes on with the other datasets, writes
``<output>/index.html`` and exits with status 1 and a summary. Rerunning resumes: finished
generations come from the cache.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synllm import config, yamlsafe
from synllm.arguments import check_values
from synllm.errors import CardError, ProfileError
from synllm.generation.class_mix import check_class_mix
from synllm.report.export import ReportEntry, export_html, failed_cells, write_index

STUDY_NOTEBOOK = config.NOTEBOOKS_DIR / "01-dataset-study.ipynb"
COMPARISON_NOTEBOOK = config.NOTEBOOKS_DIR / "02-comparison.ipynb"
PROFILE_SECTIONS = {"description", "datasets", "study", "comparison"}
#: Study parameters checked by the rules of synllm.arguments (parameter -> rule); 0 means 'default'
#: for max_requests and timeout.
CHECKED_PARAMETERS = {
    "n_rows": "n_rows",
    "batch_size": "batch_size",
    "seeds": "seed",
    "split_seed": "seed",
    "temperature": "temperature",
    "max_requests": "max_requests",
    "rounds": "rounds",
    "timeout": "timeout_s",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A batch profile: datasets, the study notebook's parameters and the comparison notebook's."""

    name: str
    description: str = ""
    datasets: tuple[str, ...] = ()
    study: Mapping[str, Any] = field(default_factory=dict)
    comparison: Mapping[str, Any] = field(default_factory=dict)


def profile_path(name_or_path: str | Path) -> Path:
    """``synllm/study/profiles/<name>.yaml``, or the given path if it is a file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = config.PROFILES_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        names = sorted(p.stem for p in config.PROFILES_DIR.glob("*.yaml"))
        raise ProfileError(f"no batch profile {name_or_path!r}; choose one of {names} or give a .yaml path")
    return candidate


def load_profile(name_or_path: str | Path) -> Profile:
    """Read and check a profile: only known sections; parameters must exist in the notebooks."""
    path = profile_path(name_or_path)
    try:
        raw = yamlsafe.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ProfileError(f"{path}: not a readable UTF-8 YAML profile ({problem}); fix it or give another") from None
    kinds = {"study": dict, "comparison": dict, "datasets": list}
    if not isinstance(raw, dict) or any(raw.get(k) is not None and not isinstance(raw[k], t) for k, t in kinds.items()):
        raise ProfileError(f"{path}: a profile is a mapping whose study and comparison are mappings, datasets a list")
    if unknown := set(raw) - PROFILE_SECTIONS:
        raise ProfileError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: {sorted(PROFILE_SECTIONS)}")
    profile = Profile(
        name=path.stem,
        description=str(raw.get("description", "")),
        datasets=tuple(raw.get("datasets") or ()),
        study=dict(raw.get("study") or {}),
        comparison=dict(raw.get("comparison") or {}),
    )
    for section, notebook in (("study", STUDY_NOTEBOOK), ("comparison", COMPARISON_NOTEBOOK)):
        known = notebook_parameters(notebook)
        if unknown := set(getattr(profile, section)) - set(known):
            raise ProfileError(
                f"{path}: {section} parameter(s) {sorted(unknown)} are not in {notebook.name}; "
                f"its parameters are {sorted(known)}"
            )
    return profile


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    """Name -> papermill's description (type, default, help) of a notebook's parameters cell."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(notebook)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Study:
    """One dataset of a batch: its report folder name (the card's name), page title, and the notebook's ``dataset``.

    ``dataset`` is a built-in card name or an absolute card path: the notebook runs in
    ``notebooks/``, so a path relative to the user's folder would not be found there.
    """

    name: str
    title: str
    dataset: str


def resolve_study(dataset: str) -> Study:
    """The study of one ``--datasets`` entry, its card read from where the user stands.

    A card that cannot be read still gets a study (named after the file), so its notebook
    fails with the card's own error in a report while the batch goes on.
    """
    from synllm.cards import available_cards, load_card

    try:
        card = load_card(dataset)
    except CardError:
        path = Path(dataset).expanduser()
        looks_like_path = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
        given = str(path if path.is_absolute() or not looks_like_path else Path.cwd() / path)
        return Study(name=re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem) or "dataset", title=path.stem, dataset=given)
    shipped = card.name in available_cards() and card.path == config.CARDS_DIR / f"{card.name}.yaml"
    return Study(name=card.name, title=f"{card.title} ({card.name})", dataset=card.name if shipped else str(card.path))


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What a batch will run: one study per dataset, study parameters, comparison parameters, output folder."""

    studies: tuple[Study, ...]
    study: dict[str, Any]
    comparison: dict[str, Any]
    output: Path


def plan(
    profile: Profile,
    *,
    backend: str | None = None,
    endpoints: str | None = None,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    output: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Plan:
    """Merge command-line choices into a profile.

    A new ``backend`` without ``models`` clears the profile's models, so the notebook uses
    that backend's default (the bundled SmolLM2, or Ollama's 'course' grid).
    """
    study = dict(profile.study)
    if backend:
        if backend != study.get("backend") and not models:
            study["models"] = []
        study["backend"] = backend
    if endpoints:
        study["endpoints"] = str(endpoints)
    if models:
        study["models"] = list(models)
    study.update(overrides or {})
    check_values(
        {k: v for k, v in study.items() if not (k in ("max_requests", "timeout") and v == 0)}, CHECKED_PARAMETERS
    )
    check_class_mix(study.get("class_mix"))  # conditions are checked against each dataset's card by its run
    known = notebook_parameters(STUDY_NOTEBOOK)
    if unknown := set(study) - set(known):
        raise ProfileError(f"unknown study parameter(s) {sorted(unknown)}; the notebook takes {sorted(known)}")
    out = Path(output) if output else config.reports_dir()
    study["output_folder"] = str(out.resolve())
    comparison = {**profile.comparison, "output_folder": str(out.resolve())}
    chosen = tuple(datasets) if datasets else profile.datasets
    if not chosen:
        raise ProfileError(f"profile {profile.name!r} lists no datasets; add 'datasets:' or pass --datasets")
    studies = tuple(resolve_study(str(d)) for d in chosen)
    names = [s.name for s in studies]
    if clash := sorted({n for n in names if names.count(n) > 1} | ({"comparison"} & set(names))):
        raise ProfileError(
            f"dataset name(s) {clash} would share a report folder ('comparison' is the comparison's); "
            "give each card its own 'name'"
        )
    return Plan(studies=studies, study=study, comparison=comparison, output=out.resolve())


def execute(
    notebook: Path,
    folder: Path,
    parameters: Mapping[str, Any],
    *,
    kernel: str = "python3",
    timeout: int | None = None,
    title: str | None = None,
) -> ReportEntry:
    """Run ``notebook`` with papermill into ``<folder>/report.ipynb``, then write ``report.html`` (always)."""
    import papermill as pm

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "report.ipynb"
    started = time.perf_counter()
    message = ""
    try:
        pm.execute_notebook(
            str(notebook),
            str(out),
            parameters=dict(parameters),
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
        ok = True
    except pm.PapermillExecutionError as exc:
        ok, message = False, f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, bad notebook: report it and go on
        ok, message = False, f"{type(exc).__name__}: {exc}"
    if out.exists():
        try:
            export_html(out, folder / "report.html", title=title)
            if ok and (errors := failed_cells(out)):
                ok, message = False, errors[0]
        except Exception as exc:  # an unreadable half-written notebook must not stop the batch
            ok, message = False, message or f"HTML export failed: {type(exc).__name__}: {exc}"
    return ReportEntry(
        name=folder.name,
        folder=folder,
        ok=ok,
        seconds=time.perf_counter() - started,
        message=message.splitlines()[0][:300] if message else "",
    )


def run_batch(batch: Plan, *, kernel: str = "python3", timeout: int | None = None, echo=print) -> list[ReportEntry]:
    """Every dataset's study notebook, then the comparison; the index page is rewritten after each.

    The comparison is not run, and counts as failed, when no dataset report succeeded (see
    :func:`comparison_skip_reason`).
    """
    outcomes: list[ReportEntry] = []

    steps = [(s.name, STUDY_NOTEBOOK, {**batch.study, "dataset": s.dataset}, s.title) for s in batch.studies]
    steps.append(("comparison", COMPARISON_NOTEBOOK, batch.comparison, None))
    for i, (name, notebook, params, title) in enumerate(steps, 1):
        skip = comparison_skip_reason(outcomes) if notebook == COMPARISON_NOTEBOOK else None
        echo(f"[{i}/{len(steps)}] {name}: {'skipped' if skip else f'running {notebook.name} ...'}", flush=True)
        if skip:
            outcome = ReportEntry(name=name, folder=batch.output / name, ok=False, seconds=0.0, message=skip)
        else:
            outcome = execute(notebook, batch.output / name, params, kernel=kernel, timeout=timeout, title=title)
        outcomes.append(outcome)
        echo(
            f"[{i}/{len(steps)}] {name}: {'ok' if outcome.ok else 'FAILED'} in {outcome.seconds:.0f} s"
            + (f" ({outcome.message})" if outcome.message else ""),
            flush=True,
        )
        write_index(batch.output, outcomes)
    return outcomes


def comparison_skip_reason(studies: Sequence[ReportEntry]) -> str | None:
    """Why the comparison is not run: no dataset report of this batch succeeded (else None).

    Older reports in the folder would otherwise be compared as if they were this batch's.
    When it runs and finds no LLM run, the notebook fails (``require_compared_runs``).
    """
    if studies and not any(o.ok for o in studies):
        return "skipped: no dataset report succeeded, so there are no runs to compare"
    return None


def summary(outcomes: Sequence[ReportEntry], output: Path) -> str:
    """A plain-text summary table of a batch."""
    lines = [f"{'report':<12} {'status':<7} {'time':>7}  details"]
    for o in outcomes:
        lines.append(
            f"{o.name:<12} {'ok' if o.ok else 'FAILED':<7} {o.seconds:>6.0f}s  "
            + (o.message or str(o.folder / "report.html"))
        )
    lines.append(f"index: {output / 'index.html'}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - ``python -m synllm.study.batch``: an alias of ``synllm run``
    from synllm.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
