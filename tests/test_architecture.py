"""The boundary: ``supervisor`` is Qt-free, so it runs headless and embedded unchanged."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import supervisor


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
