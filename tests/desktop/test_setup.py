"""``python3 dev.py run`` installs the app and its desktop extra only; the test extra (pytest,
ruff, PyInstaller, schemathesis) is for ``dev.py test``."""

from __future__ import annotations

import re
import tomllib

import dev
from tests.conftest import REPO

TEST_TOOLS = {"pytest", "pytest-qt", "pytest-timeout", "ruff", "pyinstaller", "schemathesis"}


def requirements(extra: str) -> set[str]:
    """The distribution names ``pip install -e .[extra]`` brings beyond the core, following
    the extras that name ``stratavore[...]`` itself."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names: set[str] = set()
    for line in project["optional-dependencies"][extra]:
        own = re.fullmatch(r"stratavore\[([^\]]+)\].*", line)
        if own:
            for inner in own.group(1).split(","):
                names |= requirements(inner.strip())
        else:
            names.add(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_dev_run_installs_the_desktop_extra_without_test_tools() -> None:
    run = requirements(dev.EXTRAS["run"])
    assert {"pyside6-essentials", "qasync", "desktop-notifier"} <= run
    assert not run & TEST_TOOLS, f"dev.py run would install {sorted(run & TEST_TOOLS)}"


def test_dev_test_installs_the_test_tools_and_the_app() -> None:
    assert requirements(dev.EXTRAS["test"]) >= TEST_TOOLS | requirements(dev.EXTRAS["run"])
