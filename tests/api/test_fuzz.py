"""Every operation of the served OpenAPI document, fed generated valid and invalid input with
the admin token by schemathesis, never answers a server error (issue 11: "where the issue is
silent"; issue 19: bad input is a 4xx with one sentence, never a 500).

schemathesis runs as its own CLI (``schemathesis run``): its pytest plugin does not work with
pytest 9. The daemon is a real one of its own, and what it is fed must not reach outside it:

- Launching and registering get invalid input only. Valid input would run generated commands,
  or adopt a random live process (a first run adopted pid 1) whose whole tree a generated stop
  would then kill.
- Its notification channels can reach nothing but a closed local port (every HTTP(S) request
  of its goes through a proxy on 127.0.0.1:9): generated webhook, Telegram or ntfy channels
  send nothing anywhere.

Bounded to a couple of minutes on two cores by the examples per operation and time budgets.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Daemon
from tests.keyring_backend import keyring_env

EXAMPLES = 20  # per operation and mode
BUDGETS_S = (75, 30)  # schemathesis's own time budget for each run
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens
ACTING = r"^/api/v1/runners(/register)?$"  # list, launch and register runners


def schemathesis(daemon: Daemon, budget: int, *options: str) -> subprocess.CompletedProcess[str]:
    url = daemon.api.base_url
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/v1/openapi.json",
        "--url", url, "--header", f"Authorization: Bearer {daemon.api.token}",
        "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES), "--max-time", str(budget), "--seed", "1",
        "--generation-database", "none", "--workers", "1", "--request-timeout", "30",
        "--no-color", "--output-truncate", "false", *options,
    ]  # fmt: skip
    return subprocess.run(
        command,
        env={**os.environ, "NO_PROXY": "*"},
        cwd=daemon.root,  # its report directory
        capture_output=True,
        text=True,
        timeout=budget + 90,
    )


@pytest.mark.timeout(sum(BUDGETS_S) + 240)
def test_no_operation_answers_a_server_error(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    env = {
        **os.environ,
        **keyring_env(tmp_path / "keyring.json"),
        "STRATAVORE_HOME": str(root),
        "PYTHONPATH": str(REPO),
        "HTTP_PROXY": CLOSED,
        "HTTPS_PROXY": CLOSED,
        "NO_PROXY": "",
    }
    daemon = Daemon(root, [], env).start()
    try:
        daemon.project("demo", tmp_path)
        runs = [
            schemathesis(daemon, BUDGETS_S[0], "--mode", "all", "--exclude-path-regex", ACTING),
            schemathesis(
                daemon, BUDGETS_S[1], "--mode", "negative", "--include-path-regex", ACTING
            ),
        ]
        runners = daemon.api.get("/api/v1/runners", all=1)
    finally:
        daemon.close()
    for run in runs:
        assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
        summary = run.stdout.rstrip().splitlines()[-1]
        assert re.search(r"\b\d+ passed\b", run.stdout), run.stdout[-5000:]
        assert not re.search(r"\b\d+ (unique failures?|errors?)\b", summary), run.stdout[-5000:]
    (tmp_path / "schemathesis.txt").write_text(runs[0].stdout + runs[1].stdout)
    assert runners == []  # nothing was launched or adopted
