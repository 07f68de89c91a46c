"""``usage daily --json --mode ccusage`` equals ccusage 20.0.24 on generated trees, day by day:
the four token kinds exactly, the cost to a millionth.

The oracle is ccusage's native binary, installed by ``bench/_ccusage.py`` into
``bench/.ccusage`` (``npm install``; the bench does it on first use). Without it the test is
skipped: CI has neither npm access nor the binary, a developer's machine usually has both.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.cli.test_e2e import Cli
from tests.conftest import REPO


def bench_module(name: str) -> ModuleType:
    """A module of bench/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ccusage = bench_module("_ccusage")
usage_gen = bench_module("usage_gen")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not os.access(ccusage.native_binary(), os.X_OK):
        pytest.skip("ccusage is not installed in bench/.ccusage (bench/_ccusage.py installs it)")
    out = tmp_path_factory.mktemp("tree")
    usage_gen.generate(out, 20_000, seed=3, roots=2, codex_lines=5_000)
    return out


def ours(home: Path, env: dict[str, str], agent: str) -> dict[str, dict[str, Any]]:
    """Our daily report of ``agent`` in ccusage mode, after a first import with ``env``."""
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "usage", "import"],
        env={**os.environ, "STRATAVORE_HOME": str(home), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("imported ")
    report = Cli(home).json("usage", "daily", "--mode", "ccusage", "--timezone", "UTC",
                            "--agent", agent)  # fmt: skip
    return {row["date"]: row for row in report["rows"]}


def assert_same_days(mine: dict[str, dict[str, Any]], theirs: dict[str, Any]) -> None:
    assert sorted(mine) == sorted(theirs)
    for day, want in theirs.items():
        got = mine[day]
        tokens = (got["input_tokens"], got["output_tokens"], got["cache_creation_tokens"],
                  got["cache_read_tokens"])  # fmt: skip
        assert tokens == (want.input, want.output, want.cache_creation, want.cache_read), day
        assert got["cost_usd"] == pytest.approx(want.cost_usd, rel=1e-6, abs=1e-6), day


def test_claude_daily_in_ccusage_mode_equals_ccusage(tree, tmp_path) -> None:
    roots = [tree / "claude", tree / "claude2"]
    env = {"CLAUDE_CONFIG_DIR": ",".join(map(str, roots)), "CODEX_HOME": str(tmp_path / "none")}
    assert_same_days(ours(tmp_path / "home", env, "claude"), ccusage.claude_daily(roots).days)


def test_codex_daily_in_ccusage_mode_equals_ccusage(tree, tmp_path) -> None:
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "none"), "CODEX_HOME": str(tree / "codex")}
    theirs = ccusage.codex_daily(tree / "codex").days
    assert_same_days(ours(tmp_path / "home", env, "codex"), theirs)
