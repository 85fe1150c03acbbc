"""No import circles inside session/, gui/ or spotting/ (issue #14): read from the source with
`ast`, so imports inside functions and under `if TYPE_CHECKING:` count too."""

from __future__ import annotations

import ast
from pathlib import Path

import microau_gui

PACKAGE_DIR = Path(microau_gui.__file__).parent
CHECKED = ("session", "gui", "spotting")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of microau_gui it imports anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.add(base)
                # `from pkg import module` imports that module
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]], within: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module among `within` (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node] & within:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(within):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_lazy_and_type_checking_imports(tmp_path):
    """The check itself: a circle through a TYPE_CHECKING import and a function-level import."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph, set(graph)) == [["a", "b", "c"]]
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from microau_gui.session.session import ProjectSession\n"
              "def f():\n    from microau_gui.session import review\n")
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    assert [n.module for n in nodes] == ["typing", "microau_gui.session.session",
                                         "microau_gui.session"]
    assert "microau_gui.session.review" in import_graph()["microau_gui.session.session"]


def test_no_import_circles_in_session_gui_or_spotting():
    graph = import_graph()
    within = {m for m in graph if any(m == f"microau_gui.{p}" or m.startswith(f"microau_gui.{p}.")
                                      for p in CHECKED)}
    assert len(within) > 40  # the walker found the packages
    assert cycles(graph, within) == []
