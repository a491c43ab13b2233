"""Importing synllm has no side effects, and its public names are tidy."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
import types

import pytest

import synllm
from synllm import config

PROBE = textwrap.dedent(
    """
    import json, logging, sys
    before = {name: list(logger.handlers) for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    root_before = list(logging.root.handlers)
    import importlib
    for name in sys.argv[1:]:
        importlib.import_module(name)
    # Libraries may give their own loggers a NullHandler; synllm's loggers must stay bare.
    added = [name for name, logger in logging.root.manager.loggerDict.items()
             if isinstance(logger, logging.Logger) and name.split(".")[0] == "synllm"
             and list(logger.handlers) != before.get(name, [])]
    print(json.dumps({
        "root_handlers_added": len(logging.root.handlers) - len(root_before),
        "root_level": logging.root.level,
        "loggers_with_new_handlers": added,
        "modules": sorted(sys.modules),
    }))
    """
)


def _import_in_fresh_process(tmp_path, *modules: str) -> dict:
    """Import ``modules`` in a new interpreter run from an empty folder with an empty SYNLLM_HOME."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    env = {**os.environ, "SYNLLM_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert list(cwd.iterdir()) == [], "importing synllm wrote into the current directory"
    assert list(home.iterdir()) == [], "importing synllm wrote into SYNLLM_HOME"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _public_modules() -> list[str]:
    names = ["synllm"]
    for info in pkgutil.walk_packages(synllm.__path__, prefix="synllm."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def test_import_synllm_has_no_side_effects(tmp_path):
    report = _import_in_fresh_process(tmp_path, "synllm")
    assert report["root_handlers_added"] == 0
    assert report["root_level"] == 30  # logging.WARNING, Python's default, untouched
    assert report["loggers_with_new_handlers"] == []
    loaded = {name.split(".")[0] for name in report["modules"]}
    for heavy in ("llama_cpp", "ollama", "httpx", "torch", "sklearn", "altair", "papermill"):
        assert heavy not in loaded, f"import synllm imported {heavy}"


def test_importing_every_public_module_has_no_side_effects(tmp_path):
    modules = _public_modules()
    report = _import_in_fresh_process(tmp_path, *modules)
    assert report["root_handlers_added"] == 0
    assert report["loggers_with_new_handlers"] == []
    assert "llama_cpp" not in {name.split(".")[0] for name in report["modules"]}, "load llama_cpp lazily"


@pytest.mark.parametrize("name", _public_modules())
def test_public_module_imports(name):
    module = importlib.import_module(name)
    assert module.__name__ == name


def test_all_is_sorted_and_complete():
    assert synllm.__all__ == sorted(synllm.__all__)
    assert len(synllm.__all__) == len(set(synllm.__all__))
    for name in synllm.__all__:
        assert hasattr(synllm, name), name


#: Public names that are meant to be modules (namespaces of the flat API).
NAMESPACES = {"course", "report"}


def test_every_exported_name_is_what_it_claims_after_all_submodules_are_imported():
    """Importing a submodule must never replace a public function or class of the same name (the old
    ``synllm.generate`` bug): after every submodule is imported, each exported name is still itself."""
    for module in _public_modules():
        importlib.import_module(module)
    for name in synllm.__all__:
        value = getattr(synllm, name)
        if name in NAMESPACES:
            assert isinstance(value, types.ModuleType) and value.__name__ == f"synllm.{name}", name
            continue
        assert not isinstance(value, types.ModuleType), f"synllm.{name} is the module {value.__name__}, not the API"
        if isinstance(value, type | types.FunctionType):
            assert value.__name__ == name, f"synllm.{name} is {value!r}"
            assert value.__module__.startswith("synllm."), f"synllm.{name} comes from {value.__module__}"


def test_no_public_name_is_also_a_submodule_name():
    submodules = {info.name for info in pkgutil.iter_modules(synllm.__path__)}
    assert not (set(synllm.__all__) - NAMESPACES) & submodules


def test_the_documented_example_runs_on_the_flat_api_only():
    readme = (config.PROJ_ROOT / "README.md").read_text(encoding="utf-8")
    imports = set(re.findall(r"^\s*(?:from synllm[.\w]* import .*|import synllm[.\w]*)", readme, re.M))
    assert imports and imports <= {"import synllm", "from synllm import report"}, imports


@pytest.mark.parametrize("name", [m for m in _public_modules() if m != "synllm"])
def test_module_all_names_exist(name):
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ lists missing {exported!r}"


def test_every_error_is_a_synllm_error():
    for name in synllm.__all__:
        obj = getattr(synllm, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, synllm.SynllmError), name


def _type_checking_imports() -> dict[str, str]:
    """Name -> "module:attribute" (or the module) of the imports under ``if TYPE_CHECKING:`` in synllm/__init__.py."""
    import ast

    tree = ast.parse((config.PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    found = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 0, ast.unparse(node)
        for alias in node.names:
            name = alias.asname or alias.name
            is_module = node.module == "synllm"  # `from synllm import course`: the namespace module
            found[name] = f"synllm.{alias.name}" if is_module else f"{node.module}:{alias.name}"
    return found


def test_ides_see_every_public_name_where_it_is_loaded_from():
    """The TYPE_CHECKING imports (what IDEs resolve ``synllm.generate`` by) mirror the lazy ``_EXPORTS``."""
    assert _type_checking_imports() == synllm._EXPORTS


def test_doctests_run_with_the_test_suite():
    import tomllib

    settings = tomllib.loads((config.PROJ_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_options = settings["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in pytest_options["addopts"].split()
    assert "synllm" in pytest_options["testpaths"]


def _imported_modules(path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy and TYPE_CHECKING imports included)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_report_prose_lives_in_one_module_and_metrics_import_nothing_back():
    package = config.PACKAGE_DIR
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*prose*.py")) == ["report/prose.py"]
    assert "synllm.metrics.evaluation" not in _imported_modules(package / "metrics" / "evaluation_text.py")
    for path in (package / "metrics").rglob("*.py"):
        assert not any(m.startswith("synllm.report") for m in _imported_modules(path)), path


def test_module_names_in_report_are_unique_in_the_package():
    names = [p.stem for p in config.PACKAGE_DIR.rglob("*.py") if not p.stem.startswith("_")]
    report = [p.stem for p in (config.PACKAGE_DIR / "report").glob("*.py") if not p.stem.startswith("_")]
    assert [n for n in report if names.count(n) > 1] == []
