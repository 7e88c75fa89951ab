"""The package's layers: no module-level import cycles, and lower layers never reach up."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "musicark"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports() -> dict[str, set[str]]:
    """Each module's musicark imports outside functions (those under `if TYPE_CHECKING:`
    too: a type-only import loop still ties two modules together)."""
    graph: dict[str, set[str]] = {}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        found: set[str] = set()
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for node in body + [n for top in body if isinstance(top, ast.If) for n in top.body]:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in names if n in modules and n.startswith("musicark.")}
        graph[module_name(path)] = found - {module_name(path)}
    return graph


def test_no_import_cycles() -> None:
    graph = top_level_imports()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ importing its own submodules is how packages work.
            if node == nxt.rpartition(".")[0]:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_core_never_imports_a_user_interface() -> None:
    for module, imports in top_level_imports().items():
        if module.startswith(("musicark.cli", "musicark.serve", "musicark.demo",
                              "musicark.__main__")):
            continue
        assert not {i for i in imports if i.startswith(("musicark.cli", "musicark.serve"))}, (
            module)


def test_the_catalog_never_reaches_up_into_plan_or_release() -> None:
    """The catalog is the ground the other stages stand on (the listens curve, sizes and
    the like live below it, not in `plan`)."""
    for module, imports in top_level_imports().items():
        if module.startswith("musicark.catalog"):
            assert not {i for i in imports if i.startswith(
                ("musicark.plan", "musicark.release", "musicark.ingest", "musicark.derive",
                 "musicark.listens", "musicark.verify", "musicark.mirror"))}, module
