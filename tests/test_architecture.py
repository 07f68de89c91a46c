"""The boundary: ``supervisor`` is Qt-free, so it runs headless and embedded unchanged."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

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
