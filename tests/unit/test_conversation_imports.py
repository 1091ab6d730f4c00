"""The conversation package has no import cycle, counting imports inside functions (issue 9).

The graph is read from the source with `ast`: `from a.b import c` is an import of `a.b.c` when that is a module,
else of `a.b`; `import a.b` is an import of `a.b`. Imports under `if TYPE_CHECKING:` count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "bot.conversation"


#: command-line harnesses that boot the whole system (the app, the simulator) on demand; not part of the bot's path
HARNESSES = frozenset({"bot.conversation.nlu.conversations"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    base = ROOT / Path(*PACKAGE.split("."))
    return {_module_name(p): p for p in base.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    edges.add(full if full in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                found.append([*stack[stack.index(m) :], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert "bot.conversation.dialogue.drafts" in graph["bot.conversation.dialogue.engine"]
    assert "bot.conversation.nlu.normalize" in graph["bot.conversation.nlu.keyword"]


def test_no_import_cycle_in_the_conversation_package() -> None:
    assert _cycles(_graph()) == []


def test_imports_inside_functions_say_why() -> None:
    """An import inside a function has a comment on its line or just above saying why it is there."""
    silent: list[str] = []
    for name, path in _modules().items():
        if name in HARNESSES:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for func in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    here, above = lines[node.lineno - 1], lines[max(0, node.lineno - 4) : node.lineno - 1]
                    if "#" not in here and not any(a.strip().startswith("#") for a in above):
                        silent.append(f"{name}:{node.lineno}")
    assert silent == []
