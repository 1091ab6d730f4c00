"""The case, deadline and delivery packages import downwards only, with no cycle, counting imports inside
functions: cases → deadlines / delivery → models / db (ARCHITECTURE.md). Read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot.cases", "bot.deadlines", "bot.delivery")
#: what each package may import from bot/ (besides itself)
#: (bot.refcache, the per-process cache of reference tables, sits with models and db: it imports only bot.models;
#: bot.driver, statements on the driver's own API, is part of the database layer: it imports nothing of bot/)
ALLOWED = {
    "bot.cases": (
        "bot.deadlines",
        "bot.delivery",
        "bot.models",
        "bot.db",
        "bot.driver",
        "bot.refcache",
        "bot.states",
    ),
    "bot.deadlines": ("bot.models", "bot.db", "bot.driver", "bot.refcache", "bot.states"),
    "bot.delivery": ("bot.models", "bot.db", "bot.driver", "bot.refcache", "bot.states"),
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg.replace(".", "/")).glob("*.py"):
            name = pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"
            out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every ``bot``/``matching``/``webhooks`` module named by an import anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("bot", "matching", "webhooks")}


def _owner(module: str) -> str | None:
    return next((p for p in PACKAGES if module == p or module.startswith(p + ".")), None)


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    pkg = _owner(module)
    assert pkg is not None
    bad = []
    for target in _imports(MODULES[module]):
        if _owner(target) == pkg:
            continue
        if target == "bot" or any(target == a or target.startswith(a + ".") for a in ALLOWED[pkg]):
            continue
        bad.append(target)
    assert not bad, f"{module} imports upwards or sideways: {sorted(bad)}"


def test_no_cycle_inside_the_packages() -> None:
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    seen: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module)


def test_a_case_bind_code_always_holds_a_digit_so_it_reads_as_a_code_in_any_case() -> None:
    import re

    from bot.cases.numbering import new_bind_code
    from bot.conversation.dialogue.cases import BARE_CODE

    codes = [new_bind_code() for _ in range(2000)]  # without the rule about 350 of these are all letters
    assert all(re.fullmatch(r"[2-9A-HJ-NP-Z]{6}", c) and any(ch.isdigit() for ch in c) for c in codes)
    assert all(BARE_CODE.match(c.lower()) for c in codes)
