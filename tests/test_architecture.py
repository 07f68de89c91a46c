"""The boundary: ``supervisor`` is Qt-free, so it runs headless and embedded unchanged."""

from __future__ import annotations

import ast
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import supervisor
from supervisor.storage.models import MODELS


def test_importing_every_supervisor_module_loads_no_qt() -> None:
    modules = [
        m.name
        for m in pkgutil.walk_packages(supervisor.__path__, "supervisor.")
        if not m.name.endswith(".__main__")  # importing one runs its program
    ]
    assert "supervisor.runners.manager" in modules and "supervisor.daemon" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'qasync', 'desktop'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# The team ledger's own queries run on the team's PostgreSQL database (supervisor/team/):
# their SQL text stays there; the local store's models and DB are as forbidden there as anywhere.
TEAM_DATABASE = "supervisor/team/"
QUERY_METHODS = {"select", "get", "get_or_none", "get_by_id", "create", "insert", "insert_many",
                 "replace", "update", "delete", "execute_sql", "connection", "cursor"}  # fmt: skip
SQL_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|PRAGMA)\s")


def inline_queries(path: Path, sql_text: bool = True) -> list[str]:
    """Where ``path`` builds a query itself: a query method called on a model or ``DB``
    (by its name, or as an attribute of a module: ``budgets.Budget.select()``), a row's
    ``save()`` or ``delete_instance()``, or (``sql_text``) SQL text."""
    tree = ast.parse(path.read_text())
    models = {model.__name__ for model in MODELS} | {"DB"}
    models |= {  # imported under another name
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname and alias.name in models
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, method = node.func.value, node.func.attr
            named = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (named in models and method in QUERY_METHODS) or (
                method in ("save", "delete_instance") and not node.args
            ):
                found.append((node.lineno, node.col_offset, f".{method}()"))
        elif (
            sql_text
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_START.match(node.value)
        ):
            found.append((node.lineno, node.col_offset, f"SQL {node.value[:30]!r}"))
    return [f"{path}:{line} {what}" for line, _, what in sorted(found)]


def test_callers_never_build_queries_inline() -> None:
    """Queries are named functions in supervisor/storage/queries/ (and the storage modules
    that open and migrate the database); everything else calls them."""
    root = Path(supervisor.__file__).parent
    found = [
        where
        for path in sorted(root.rglob("*.py"))
        if not path.is_relative_to(root / "storage")
        for where in inline_queries(
            path, sql_text=not str(path.relative_to(root.parent)).startswith(TEAM_DATABASE)
        )
    ]
    assert found == []


def test_the_inline_query_finder_finds_each_kind(tmp_path: Path) -> None:
    module = tmp_path / "caller.py"
    module.write_text(
        "from supervisor.storage.models import DB, Project as P\n"
        "P.select().where(P.name == 'x')\n"
        "budgets.Budget.delete()\n"
        "DB.execute_sql('SELECT 1')\n"
        "row.save()\n"
        "DB.atomic()\n"  # a transaction is the caller's to draw
        "other.select()\n"
    )
    assert [line.split(" ", 1)[1] for line in inline_queries(module)] == [
        ".select()", ".delete()", ".execute_sql()", "SQL 'SELECT 1'", ".save()"
    ]
    # the team's PostgreSQL SQL text is let through; the local store's calls are not
    assert [line.split(" ", 1)[1] for line in inline_queries(module, sql_text=False)] == [
        ".select()", ".delete()", ".execute_sql()", ".save()"
    ]


def test_an_idle_supervisor_has_not_imported_an_http_client_the_keyring_or_metrics(
    tmp_path: Path,
) -> None:
    """What a supervisor with no channel secret, no heartbeat and no scrape has no use for
    is imported when first used, not at start (issue 15: about 10 MB of its memory)."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "import supervisor.cli.main  # `stratavore daemon` starts through the CLI's module\n"
        "from supervisor.daemon import Supervisor\n"
        "async def main():\n"
        "    supervisor = Supervisor(Path(sys.argv[1]), api_port=0)\n"
        "    await supervisor.start()\n"
        "    lazy = ('requests', 'keyring', 'prometheus_client')\n"
        "    loaded = [m for m in lazy if m in sys.modules]\n"
        "    await supervisor.stop()\n"
        "    print(','.join(loaded))\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "STRATAVORE_HOME": str(tmp_path), "STRATAVORE_NO_LOGIN_PATH": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True, text=True, check=True, env=env, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "", out.stderr
