"""The import graph of synllm: no import runs back up the layers, and no circle, dynamic loads included.

Every module's imports are read with ``ast`` (module-level and inside functions, ``TYPE_CHECKING``
blocks too), plus the ``"module:attribute"`` strings the package loads on first use (the backend
registry's ``BUILTIN`` and the public API's ``_EXPORTS``). The layer order is data, below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import synllm

ROOT = Path(synllm.__file__).parent

#: Layers from the bottom up: a module may import its own layer and the ones below, never one above.
#: Within a layer, the graph must still be free of circles.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("synllm.errors", "synllm.config", "synllm.arguments", "synllm.files", "synllm.text", "synllm.yamlsafe"),
    ("synllm.cards",),
    ("synllm.dataset",),
    ("synllm.prompts",),
    ("synllm.backends",),
    ("synllm.generation",),
    ("synllm.metrics",),
    ("synllm.report",),
    ("synllm.study", "synllm.course", "synllm.cli", "synllm.__main__", "synllm"),
)
#: A "module:attribute" string, the form the registry and the public API load lazily.
_DYNAMIC = re.compile(r"^(synllm(?:\.\w+)*):\w+$")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["synllm", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _existing(name: str) -> str | None:
    """``name`` if it is a synllm module, else the closest enclosing one (``synllm.cards.Card`` -> ``synllm.cards``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``: runs only when the file is a script, so it is no import of the module."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def imports_of(module: str, source: str) -> set[str]:
    """The synllm modules ``module`` imports: statically anywhere in its code, or by a "module:attribute" string."""
    package = module if MODULES.get(module, Path()).name == "__init__.py" else module.rpartition(".")[0]
    found: set[str | None] = set()
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if not _is_main_guard(node)]  # script-only lines import nothing
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_existing(alias.name) for alias in node.names if alias.name.split(".")[0] == "synllm")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] == "synllm":
                found.update(
                    f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else _existing(base) for a in node.names
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (match := _DYNAMIC.match(node.value)):
            found.add(_existing(match.group(1)))
    found.discard(None)
    found.discard(module)
    return found  # type: ignore[return-value]


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the most specific entry naming ``module`` (``synllm`` itself only exactly)."""
    best, index = "", -1
    for i, layer in enumerate(LAYERS):
        for entry in layer:
            inside = module == entry or (entry != "synllm" and module.startswith(entry + "."))
            if inside and len(entry) > len(best):
                best, index = entry, i
    if index < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return index


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a module to a module of a higher layer, as ``a -> b``."""
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {name: imports_of(name, path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def test_the_walk_sees_the_whole_package_and_its_dynamic_loads(graph):
    assert len(graph) >= 80 and sum(map(len, graph.values())) >= 250
    assert all(layer_of(module) >= 0 for module in graph)  # every module sits in a declared layer
    from synllm.backends.registry import BUILTIN

    targets = {_existing(target.split(":")[0]) for target in BUILTIN.values()}
    assert targets and targets <= graph["synllm.backends.registry"]  # string-loaded backends are edges
    assert "synllm.generation.loop" in graph["synllm"]  # so are the lazily exported names
    assert {"synllm.files", "synllm.cards"} <= graph["synllm.generation.loop"] | graph["synllm.generation.outputs"]


def test_no_module_imports_a_module_of_a_higher_layer(graph):
    assert upward_imports(graph) == []


def test_the_import_graph_has_no_circles(graph):
    assert circles(graph) == []


def test_files_knows_no_domain_type(graph):
    assert graph["synllm.files"] <= {"synllm.errors"}


def test_the_checks_find_what_they_look_for():
    """The two checks flag an upward import and a circle, a function-level and a string-loaded one included."""
    source = "def f():\n    from synllm.report import tables\nLOADS = {'x': 'synllm.generation.loop:generate'}\n"
    edges = imports_of("synllm.files", source)
    assert edges == {"synllm.report.tables", "synllm.generation.loop"}
    assert upward_imports({"synllm.files": edges}) == [
        "synllm.files -> synllm.generation.loop",
        "synllm.files -> synllm.report.tables",
    ]
    ring = {"synllm.cards": {"synllm.cards.load"}, "synllm.cards.load": {"synllm.cards.model"}}
    assert circles(ring) == []
    ring["synllm.cards.model"] = {"synllm.cards"}
    assert circles(ring) == [["synllm.cards", "synllm.cards.load", "synllm.cards.model"]]
