"""No import circle among the backend modules, counting the ones the registry hides in strings.

The graph is read from the source with ``ast`` (every ``import``, at module level or inside a
function), plus an edge from the registry to each ``"module:factory"`` target it loads by name.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import synllm
from synllm.backends import registry

ROOT = Path(synllm.__file__).resolve().parent


def module_name(path: Path) -> str:
    """``synllm.backends.pool`` for ``<root>/backends/pool.py`` (a package is its ``__init__``)."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The synllm modules ``path`` imports: ``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    """Module -> synllm modules it imports, the registry's string targets included."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: imported_modules(path, set(paths)) for name, path in paths.items()}
    graph[registry.__name__] |= {target.split(":")[0] for target in registry.BUILTIN.values()}
    return graph


def test_the_graph_sees_imports_and_the_registrys_string_targets():
    graph = import_graph()
    assert "synllm.backends.base" in graph["synllm.backends.registry"]
    assert {"synllm.backends.auto", "synllm.backends.pool", "synllm.backends.embedded"} <= graph[
        "synllm.backends.registry"
    ]
    assert "synllm.backends.endpoints" in graph["synllm.backends.pool"]


def test_no_import_circle_among_the_backend_modules():
    graph = import_graph()
    backends = {
        name: {m for m in imports if m.startswith("synllm.backends")}
        for name, imports in graph.items()
        if name.startswith("synllm.backends")
    }
    try:
        tuple(TopologicalSorter(backends).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
