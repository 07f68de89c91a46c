"""The tray app's layout, read from its source: the bridge is the one way to the supervisor's
API, no import circle, and no module or function too long to read. Headless: nothing runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

DESKTOP = REPO / "desktop"
# The bridge talks HTTP to the supervisor for the windows; the selftest checks a frozen build's
# own API without any window (``stratavore-desktop --selftest``).
SPEAKS_HTTP = {"desktop.bridge", "desktop.selftest"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(DESKTOP.rglob("*.py"))}


def imported(name: str, tree: ast.Module) -> set[str]:
    """The desktop modules ``name`` imports, at its top or inside a function (which runs
    later, but closes a circle all the same); not those only imported for type checking."""
    found: set[str] = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # its imports are never run
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:  # `from desktop import autostart` imports a module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def circles() -> list[list[str]]:
    """Every import circle among the desktop modules (Tarjan's strongly connected
    components of more than one module)."""
    graph = {name: imported(name, ast.parse(path.read_text())) for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_the_desktop_app():
    assert circles() == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - SPEAKS_HTTP))
def test_only_the_bridge_speaks_to_the_api(name: str):
    """A window asks the bridge's typed methods: it neither spells an API URL nor handles
    the HTTP client's errors (a BridgeError carries them)."""
    source = MODULES[name].read_text()
    tree = ast.parse(source)
    assert "/api/v1" not in source
    assert not {n.split(".")[0] for n in imported_names(tree)} & {"aiohttp", "requests"}


def imported_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_short_enough_to_read(name: str):
    source = MODULES[name].read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
