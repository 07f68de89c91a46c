"""The ``windows``-marked tests (tests/e2e/test_windows_native.py), run by the Windows build's own
embeddable CPython under Wine, in a fresh prefix: the Windows code paths of this checkout on
a Windows Python, from Linux CI."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from tests.windows.conftest import REPO, wine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def windows_python() -> Path:
    """The build's embeddable CPython with the pinned wheels (pytest among them), from the
    build cache, made by installer/build.py's own functions."""
    spec = importlib.util.spec_from_file_location(
        "stratavore_build", REPO / "installer" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    with open(build.WINDOWS_LOCK, "rb") as file:
        lock = tomllib.load(file)
    return build.windows_python(lock, build.fetch_windows(lock))


def test_windows_marked_tests_pass_under_wine(prefix: wine.Prefix) -> None:
    python = windows_python()
    done = prefix.run(
        [str(python), "-m", "pytest", "-m", "windows", "-p", "no:cacheprovider", "-q", "-rs",
         "tests/e2e/test_windows_native.py"],
        timeout=600, env={"PYTHONPATH": wine.windows_path(REPO)}, cwd=REPO,
    )  # fmt: skip
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 10, summary
    # the one skip allowed: the toast, which Wine cannot show (its fallback was checked)
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("Wine has no toast service" in line for line in skips), skips
    assert "1 skipped" in summary or not skips, summary
