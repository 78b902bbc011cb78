"""The import graph keeps the layers apart: no cycle; the domain knows no HTTP; queries know no
domain; the voice agent knows the backend only through its HTTP API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.config import BACKEND_DIR

APP = BACKEND_DIR / "app"


def _module(path: Path) -> str:
    parts = path.relative_to(BACKEND_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST, package: str) -> set[str]:
    """Every app module imported, wherever in the file, except under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in APP.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        imported = _runtime_imports(ast.parse(path.read_text(encoding="utf-8")), package)
        edges[name] = {m for m in imported if m in modules and m != name}
    return edges


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    edges = {m: {n for n in targets if not m.startswith(n + ".")} for m, targets in graph.items()}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("app.services", "app.api"),
        ("app.services", "fastapi"),
        ("app.repository", "app.services"),
        ("app.agent", "app.services"),
        ("app.agent", "app.repository"),
        ("app.livekit_worker", "app.services"),
        ("app.livekit_worker", "app.repository"),
    ],
)
def test_layers(importer: str, forbidden: str) -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        name = _module(path)
        if name != importer and not name.startswith(importer + "."):
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for imported in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")), package):
            if imported == forbidden or imported.startswith(forbidden + "."):
                offenders.append(f"{name} imports {imported}")
    assert not offenders, offenders
