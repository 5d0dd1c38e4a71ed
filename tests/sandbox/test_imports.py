"""The sandbox's import graph: ``common`` at the bottom, the emulators above it, no cycles.

The graph is read from the source (every import statement, those under TYPE_CHECKING and
inside functions too, as mypy and a reader see them), so a cycle that only type checking
follows is caught as well as one that breaks at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import syncagent.sandbox

SANDBOX = Path(syncagent.sandbox.__file__).parent
PREFIX = "syncagent.sandbox"


def _module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([PREFIX, *parts])] = path
    return names


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The sandbox modules that importing ``module`` imports, with the packages whose
    ``__init__`` runs on the way (except the module's own ancestors, already running)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets.add(node.module)
            targets.update(f"{node.module}.{alias.name}" for alias in node.names)
    edges = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in known and name != module and not module.startswith(name + "."):
                edges.add(name)
    return edges


def _graph(root: Path) -> dict[str, set[str]]:
    modules = _module_names(root)
    return {name: _imported(name, path, set(modules)) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that ends where it starts), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_sandbox_import_graph_has_no_cycle() -> None:
    graph = _graph(SANDBOX)
    assert f"{PREFIX}.salesforce.org" in graph and f"{PREFIX}.hubspot.api" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_common_and_shipped_are_the_bottom_layer() -> None:
    """common and shipped import no other sandbox module; the emulators import only them
    from outside their own package, and never each other."""
    graph = _graph(SANDBOX)
    bottom = {f"{PREFIX}.common", f"{PREFIX}.shipped"}
    assert all(graph[name] == set() for name in bottom)
    assert f"{PREFIX}.common" in graph[f"{PREFIX}.salesforce.org"]
    assert f"{PREFIX}.common" in graph[f"{PREFIX}.hubspot.portal"]
    for package in (f"{PREFIX}.salesforce", f"{PREFIX}.hubspot"):
        for name, edges in graph.items():
            if name.startswith(package):
                outside = {e for e in edges if not e.startswith(package)} - bottom
                assert outside == set(), f"{name} imports {sorted(outside)}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", [
    "syncagent.sandbox.common", "syncagent.sandbox.salesforce", "syncagent.sandbox.hubspot",
    "syncagent.sandbox.salesforce.org", "syncagent.sandbox.hubspot.portal",
    "syncagent.sandbox.context", "syncagent.sandbox.server"])
def test_each_part_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
