"""The house rules, read from the source with ``ast`` (docs/testing.md, docs/architecture.md):

- no import cycle between the modules of bot/, reference/, matching/, webhooks/ and wechat_sim/, counting imports
  inside functions (a lazy import still ties the modules together);
- reference/, matching/ and webhooks/ import nothing from bot/;
- no source module over 700 lines (the generated migrations in bot/migrations/versions/ aside);
- every import inside a function says why on the same line or the line above (a comment);
- no test module imports another test module (shared code lives in tests/helpers.py and tests/factories.py);
- the application reads the time only from the app's clock (passed down as ``now``): no call of the wall clock
  outside the command-line tools, the clock's own definition and the few places that talk to the real world's time.

Imports under ``if TYPE_CHECKING:`` are never executed, so they do not count for cycles (an annotation may name a
type from a module that imports this one); they do count for the layering rule: the neutral packages may not even
name a type from bot/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "reference", "matching", "webhooks", "wechat_sim")
NEUTRAL = ("reference", "matching", "webhooks")
MAX_LINES = 700
GENERATED = ("bot/migrations/versions/",)
SHARED_TEST_MODULES = {"tests.helpers", "tests.factories"}


@dataclass(frozen=True)
class Import:
    target: str  # the module imported (resolved; for `from a import b`, a.b when that is a module, else a)
    line: int
    in_function: bool
    type_checking: bool


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _source_modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


MODULES = _source_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, package: str, level: int) -> str:
    if level == 0:
        return module
    base = package.split(".")
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, known: set[str] | None = None, name: str | None = None) -> list[Import]:
    """Every import statement of the file, resolved to module names, with where it sits."""
    known = known if known is not None else set(MODULES)
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit_stmt(stmt: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                found.append(Import(alias.name, stmt.lineno, in_function, type_checking))
        elif isinstance(stmt, ast.ImportFrom):
            base = _resolve(stmt.module or "", package, stmt.level)
            for alias in stmt.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in known else base, stmt.lineno, in_function, type_checking))
        else:
            in_func = in_function or isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
                for s in stmt.body:
                    visit_stmt(s, in_func, True)
                for s in stmt.orelse:
                    visit_stmt(s, in_func, type_checking)
                return
            for child in ast.iter_child_nodes(stmt):
                visit_stmt(child, in_func, type_checking)

    visit_stmt(tree, False, False)
    return found


def _project_target(target: str) -> str | None:
    """The project module an import names (the longest known prefix), or None for third-party and stdlib."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in MODULES:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for imp in imports_of(path):
            if imp.type_checking:
                continue
            target = _project_target(imp.target)
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line or on the line above it."""
    here = lines[lineno - 1]
    above = lines[lineno - 2].strip() if lineno >= 2 else ""
    return "#" in here or above.startswith("#")


# ---------------------------------------------------------------------------------------------- the rules
def test_no_import_cycle_counting_lazy_imports() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (lazy imports counted):\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_neutral_packages_import_nothing_from_bot() -> None:
    offenders = [
        f"{name}:{imp.line} imports {imp.target}"
        for name, path in MODULES.items()
        if name.split(".")[0] in NEUTRAL
        for imp in imports_of(path)
        if imp.target == "bot" or imp.target.startswith("bot.")
    ]
    assert not offenders, "\n".join(offenders)


def test_no_source_module_over_700_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if not str(path.relative_to(ROOT)).startswith(GENERATED)
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_every_import_inside_a_function_says_why() -> None:
    silent: list[str] = []
    for path in MODULES.values():
        if str(path.relative_to(ROOT)).startswith(GENERATED):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for imp in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{imp.line}"
            if imp.in_function and not _has_reason(lines, imp.line) and where not in silent:
                silent.append(where)
    assert not silent, f"{len(silent)} imports inside functions without a comment saying why:\n" + "\n".join(
        silent
    )


def _test_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name.startswith("test_") or path.name == "conftest.py"
    }


def test_no_test_module_imports_another() -> None:
    tests = _test_modules()
    stems = {path.stem for path in tests.values()}
    offenders: list[str] = []
    shared = [ROOT / "tests" / "helpers.py", ROOT / "tests" / "factories.py"]
    for path in [*tests.values(), *shared]:
        for imp in imports_of(path, known=set(tests) | SHARED_TEST_MODULES):
            target = imp.target
            if target in SHARED_TEST_MODULES:
                continue
            if (
                target in tests
                or target.split(".")[0] in stems
                or (target.startswith("tests.") and target not in SHARED_TEST_MODULES)
            ):
                offender = f"{path.relative_to(ROOT)}:{imp.line} imports {target}"
                if offender not in offenders:
                    offenders.append(offender)
    assert not offenders, "\n".join(offenders)


#: where the wall clock is the right one: the command-line tools (bot/ops/, they are the clock), the clock's own
#: definition, WeChat's token expiry and an SMS provider's signed timestamp (the real world's time), the date printed on
#: an NLU report
WALL_CLOCK_ALLOWED = (
    "bot/ops/",
    "bot/migrations/",
    "bot/coltypes.py",
    "bot/delivery/wechat_api.py",
    "bot/delivery/sms.py",
    "bot/conversation/nlu/conversations.py",
)
_WALL_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"), ("date", "today")}


def _wall_clock_calls(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "utcnow":
            lines.append(node.lineno)
        elif (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and (f.value.id, f.attr) in _WALL_CALLS
        ):
            lines.append(node.lineno)
    return lines


def test_the_application_reads_the_time_only_from_the_apps_clock() -> None:
    """A row due at the wall's time, compared with the app's clock by the dispatcher, waited as long as the two
    differed (seen as a CI failure once a test's pinned night became the past); a fallback to the wall clock inside
    the domain is how that happens, so ``now`` is a required argument and the wall is read only where it is the
    right clock."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in MODULES.values()
        if str(path.relative_to(ROOT)).startswith("bot/")
        and not str(path.relative_to(ROOT)).startswith(WALL_CLOCK_ALLOWED)
        for line in _wall_clock_calls(path)
    ]
    assert not found, "the wall clock read outside the app's clock:\n" + "\n".join(found)


def test_the_wall_clock_reader_finds_each_form(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import time\nfrom datetime import datetime, date\n"
        "a = utcnow()\nb = datetime.now(UTC)\nc = time.time()\nd = date.today()\ne = clock()\nf = utcnow\n"
    )
    assert _wall_clock_calls(source) == [3, 4, 5, 6]


# ---------------------------------------------------------------------------------------------- the reader itself
def test_the_reader_sees_lazy_type_checking_and_relative_imports(tmp_path: Path) -> None:
    """The checks above are only as good as the reader: a known file, every kind of import."""
    (tmp_path / "pkg").mkdir()
    sample = tmp_path / "pkg" / "mod.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from bot.models import Case\n"
        "def f():\n"
        "    # heavy: only when asked\n"
        "    import json\n"
        "    from .deep import thing\n"
        "    return json\n"
        "class C:\n"
        "    def m(self):\n"
        "        import csv  # stdlib, only here\n",
        encoding="utf-8",
    )
    got = {
        (i.target, i.in_function, i.type_checking)
        for i in imports_of(sample, known={"pkg.sibling"}, name="pkg.mod")
    }
    assert got == {
        ("typing", False, False),
        ("os", False, False),
        ("pkg.sibling", False, False),
        ("bot.models", False, True),
        ("json", True, False),
        ("pkg.deep", True, False),
        ("csv", True, False),
    }
    lines = sample.read_text(encoding="utf-8").splitlines()
    assert _has_reason(lines, 8) and not _has_reason(lines, 9) and _has_reason(lines, 13)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
