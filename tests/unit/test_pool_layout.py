"""The pool package and the matching engine keep their shape (issue 9): no import cycle (imports inside functions
counted), no module over 700 lines, no import inside a function without a comment saying why, and ``matching/``
imports nothing from the application, the web or the database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot/pool", "matching")


def _modules(folder: str) -> dict[str, Path]:
    out = {}
    for path in (ROOT / folder).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module or name, node, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, ast.stmt, bool]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((a.name, child, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.extend((f"{child.module}.{a.name}", child, in_function) for a in child.names)
            walk(child, inside)

    walk(tree, False)
    return found


def _graph(folder: str) -> dict[str, set[str]]:
    modules = _modules(folder)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target, _, _ in _imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_graph_is_read() -> None:
    graph = _graph("bot/pool")
    assert "bot.pool.snapshot" in graph["bot.pool.offers"]
    assert "bot.pool.offers" in graph["bot.pool.volunteers"]


@pytest.mark.parametrize("folder", PACKAGES)
def test_no_import_cycle(folder: str) -> None:
    assert _cycle(_graph(folder)) is None


@pytest.mark.parametrize("folder", PACKAGES)
def test_no_module_over_700_lines(folder: str) -> None:
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in _modules(folder).items()}
    assert {n: s for n, s in sizes.items() if s > 700} == {}


@pytest.mark.parametrize("folder", PACKAGES)
def test_imports_inside_functions_say_why(folder: str) -> None:
    silent = []
    for name, path in _modules(folder).items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for target, node, inside in _imports(path):
            here, above = lines[node.lineno - 1], lines[node.lineno - 2]
            if inside and "#" not in here and not above.strip().startswith("#"):
                silent.append(f"{name}:{node.lineno} {target}")
    assert silent == []


def test_matching_imports_nothing_from_the_application() -> None:
    banned = ("bot", "aiohttp", "sqlalchemy", "sqlmodel", "webhooks", "wechat_sim")
    bad = [
        f"{name}: {target}"
        for name, path in _modules("matching").items()
        for target, _, _ in _imports(path)
        if target.split(".")[0] in banned
    ]
    assert bad == []
