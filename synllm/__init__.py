"""synllm: synthetic medical tables from local LLMs, scored against a real holdout.

The whole public API is here, flat: ``import synllm`` then ``synllm.load_dataset(...)``,
``synllm.generate(...)``, ``synllm.evaluate(...)``; rendering helpers for notebooks live
in the ``synllm.report`` namespace. The flow, one way::

    cards -> dataset (load, split) -> prompts -> backends -> generation -> metrics -> report
                                      study (what `make run` and the notebooks drive) sits on top

Importing synllm is cheap and has no side effects: every name is imported on first use (the
``TYPE_CHECKING`` imports below, which mirror ``_EXPORTS``, are for IDEs and type checkers only).
No submodule shares a name with a public function, so ``synllm.generate`` is always the function.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> "module:attribute" that defines it (the module itself when no attribute is given).
_EXPORTS = {
    # errors
    "BackendError": "synllm.errors:BackendError",
    "BackendUnavailable": "synllm.errors:BackendUnavailable",
    "CardError": "synllm.errors:CardError",
    "ConfigError": "synllm.errors:ConfigError",
    "DataError": "synllm.errors:DataError",
    "EndpointConfigError": "synllm.errors:EndpointConfigError",
    "GenerationError": "synllm.errors:GenerationError",
    "InvalidArgument": "synllm.errors:InvalidArgument",
    "MetricError": "synllm.errors:MetricError",
    "ModelNotFound": "synllm.errors:ModelNotFound",
    "ProfileError": "synllm.errors:ProfileError",
    "StorageError": "synllm.errors:StorageError",
    "SynllmError": "synllm.errors:SynllmError",
    "TemplateError": "synllm.errors:TemplateError",
    # cards and data
    "Card": "synllm.cards:Card",
    "Column": "synllm.cards:Column",
    "Kind": "synllm.cards:Kind",
    "Rule": "synllm.cards:Rule",
    "available_cards": "synllm.cards:available_cards",
    "add_rules": "synllm.cards:add_rules",
    "load_card": "synllm.cards:load_card",
    "Dataset": "synllm.dataset:Dataset",
    "load_dataset": "synllm.dataset:load_dataset",
    "split": "synllm.dataset:split",
    "draft_card": "synllm.dataset.draft:draft_card",
    "check_card": "synllm.dataset.check:check_card",
    # prompts
    "PROMPT_TYPES": "synllm.prompts:PROMPT_TYPES",
    "Prompt": "synllm.prompts:Prompt",
    "render_prompt": "synllm.prompts:render_prompt",
    # backends
    "Backend": "synllm.backends.base:Backend",
    "BaseBackend": "synllm.backends.base:BaseBackend",
    "EndpointPool": "synllm.backends.pool:EndpointPool",
    "Generation": "synllm.backends.base:Generation",
    "GenerationRequest": "synllm.backends.base:GenerationRequest",
    "backend_names": "synllm.backends.registry:backend_names",
    "get_backend": "synllm.backends.registry:get_backend",
    "load_endpoints": "synllm.backends.endpoints:load_endpoints",
    "model_grid": "synllm.backends.model_catalog:model_grid",
    "register_backend": "synllm.backends.registry:register_backend",
    "resolve_backend": "synllm.backends.registry:resolve_backend",
    "Scheduler": "synllm.backends.scheduler:Scheduler",
    "schedule": "synllm.backends.scheduler:schedule",
    # generation
    "Condition": "synllm.generation.conditions:Condition",
    "Failure": "synllm.generation.grid:Failure",
    "GenerationOptions": "synllm.generation.spec:GenerationOptions",
    "GridResult": "synllm.generation.grid:GridResult",
    "RunManifest": "synllm.generation.manifest:RunManifest",
    "RunResult": "synllm.generation.outputs:RunResult",
    "RunSpec": "synllm.generation.spec:RunSpec",
    "baseline_names": "synllm.generation.baselines:baseline_names",
    "generate": "synllm.generation.loop:generate",
    "generate_run": "synllm.generation.loop:generate_run",
    "get_baseline": "synllm.generation.baselines:get_baseline",
    "load_run": "synllm.generation.outputs:load_run",
    "run_grid": "synllm.generation.grid:run_grid",
    "to_gbnf": "synllm.generation.constraints:to_gbnf",
    "to_json_schema": "synllm.generation.constraints:to_json_schema",
    # metrics
    "Evaluation": "synllm.metrics:Evaluation",
    "MetricResult": "synllm.metrics:MetricResult",
    "evaluate": "synllm.metrics:evaluate",
    "evaluate_repeats": "synllm.metrics:evaluate_repeats",
    "metric_names": "synllm.metrics:metric_names",
    "relative_scores": "synllm.metrics:relative_scores",
    "summarize_repeats": "synllm.metrics:summarize_repeats",
    # study
    "ScoredRun": "synllm.report.scored:ScoredRun",
    "StudyData": "synllm.report.scored:StudyData",
    "load_study_data": "synllm.study.data:load_study_data",
    "preview_prompts": "synllm.study.data:preview_prompts",
    "require_backend": "synllm.study.data:require_backend",
    "require_compared_runs": "synllm.study.data:require_compared_runs",
    "require_runs": "synllm.study.data:require_runs",
    "resolve_models": "synllm.study.data:resolve_models",
    "score_baselines": "synllm.study.scoring:score_baselines",
    "score_runs": "synllm.study.scoring:score_runs",
    "write_study_outputs": "synllm.study.scoring:write_study_outputs",
    # namespaces
    "course": "synllm.course",
    "report": "synllm.report",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time each name is imported on first use
    from synllm import course, report
    from synllm.backends.base import Backend, BaseBackend, Generation, GenerationRequest
    from synllm.backends.endpoints import load_endpoints
    from synllm.backends.model_catalog import model_grid
    from synllm.backends.pool import EndpointPool
    from synllm.backends.registry import backend_names, get_backend, register_backend, resolve_backend
    from synllm.backends.scheduler import Scheduler, schedule
    from synllm.cards import Card, Column, Kind, Rule, add_rules, available_cards, load_card
    from synllm.dataset import Dataset, load_dataset, split
    from synllm.dataset.check import check_card
    from synllm.dataset.draft import draft_card
    from synllm.errors import (
        BackendError,
        BackendUnavailable,
        CardError,
        ConfigError,
        DataError,
        EndpointConfigError,
        GenerationError,
        InvalidArgument,
        MetricError,
        ModelNotFound,
        ProfileError,
        StorageError,
        SynllmError,
        TemplateError,
    )
    from synllm.generation.baselines import baseline_names, get_baseline
    from synllm.generation.conditions import Condition
    from synllm.generation.constraints import to_gbnf, to_json_schema
    from synllm.generation.grid import Failure, GridResult, run_grid
    from synllm.generation.loop import generate, generate_run
    from synllm.generation.manifest import RunManifest
    from synllm.generation.outputs import RunResult, load_run
    from synllm.generation.spec import GenerationOptions, RunSpec
    from synllm.metrics import (
        Evaluation,
        MetricResult,
        evaluate,
        evaluate_repeats,
        metric_names,
        relative_scores,
        summarize_repeats,
    )
    from synllm.prompts import PROMPT_TYPES, Prompt, render_prompt
    from synllm.report.scored import ScoredRun, StudyData
    from synllm.study.data import (
        load_study_data,
        preview_prompts,
        require_backend,
        require_compared_runs,
        require_runs,
        resolve_models,
    )
    from synllm.study.scoring import score_baselines, score_runs, write_study_outputs


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'synllm' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = import_module(module)
    if attribute:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
