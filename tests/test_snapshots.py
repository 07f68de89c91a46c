"""The CLI's help texts and the API's OpenAPI document, byte for byte against stored copies.

They are the user-facing contract: a restructuring must leave them as they were, and a change
to them is made on purpose. After such a change, write the new copies with
``STRATAVORE_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_snapshots.py`` and commit them with
the change, so the diff shows what users will see.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("STRATAVORE_UPDATE_SNAPSHOTS") == "1"
# argparse wraps to the terminal's width: the same width everywhere
ENV = {**os.environ, "COLUMNS": "100", "LC_ALL": "C.UTF-8"}


def run_help(module: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def commands() -> list[str]:
    """Every subcommand of ``stratavore``, read from its top-level help."""
    text = run_help("supervisor.cli")
    listing = text.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in listing.splitlines() if line.startswith("    ")]


def check(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"no stored copy {path}: write it with STRATAVORE_UPDATE_SNAPSHOTS=1"
    assert actual == path.read_text(), f"{name} differs from its stored copy"


def test_cli_help_of_every_command_is_unchanged() -> None:
    names = commands()
    assert "launch" in names and "restore" in names
    check("cli/stratavore.txt", run_help("supervisor.cli"))
    for name in names:
        check(f"cli/stratavore-{name}.txt", run_help("supervisor.cli", name))
    stored = {p.name for p in (SNAPSHOTS / "cli").glob("stratavore-*.txt")} - {
        "stratavore-agent.txt"
    }
    if not UPDATE:
        assert stored == {f"stratavore-{n}.txt" for n in names}, "commands added or removed"


def test_stratavore_agent_help_is_unchanged() -> None:
    check("cli/stratavore-agent.txt", run_help("supervisor.cli.agent"))


def test_openapi_document_is_unchanged() -> None:
    code = (
        "import sys; from supervisor.api import app as api; from supervisor.api import schemas; "
        "sys.stdout.buffer.write(api.ENCODER.encode(schemas.openapi_document(api.ROUTES)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=ENV, timeout=60, check=True
    )
    check("openapi.json", done.stdout.decode())
