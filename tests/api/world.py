"""The API tests' shared cast: :class:`World`, one real supervisor with fixed projects and
runners (started by the ``world`` fixture of ``tests/api/conftest.py``, once per module), and
the checks every refusal must pass: one sentence in the API's error shape, nothing written."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from supervisor.core import paths
from tests.conftest import SLEEP, Daemon


@dataclass
class World:
    """One supervisor with a fixed cast:

    - ``demo``: ``busy`` (running, supervised), ``agent`` and ``other`` (running, registered,
      with their tokens), ``finished`` (stopped) and ``agent_done`` (registered, exited);
    - ``capped`` (max_runners 1): ``capped_runner`` (running) and ``queued`` (queued);
    - ``old``: archived, no runners.
    """

    daemon: Daemon
    root: Path
    folder: Path
    session: requests.Session
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.daemon.api.base_url

    @property
    def admin(self) -> str:
        token = self.daemon.api.token
        assert token is not None
        return token

    def id(self, name: str) -> int:
        return self.runners[name]["id"]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        token: str | None = "admin",
        auth: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One real HTTP request; ``token="admin"`` sends the admin token, ``None`` none,
        ``auth`` a whole Authorization header; ``headers`` are sent as given (after those)."""
        sent: dict[str, str] = {}
        if auth is not None:
            sent["Authorization"] = auth
        elif token is not None:
            sent["Authorization"] = f"Bearer {self.admin if token == 'admin' else token}"
        data = raw
        if raw is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return self.session.request(
            method, self.url + path, data=data, params=params, headers=sent, timeout=10
        )


def sleeping_process(root: Path) -> subprocess.Popen[bytes]:
    """A process of our own for stratavore-agent-style registrations (found by the
    leftover-process sweep through its STRATAVORE_HOME)."""
    env = {**os.environ, "STRATAVORE_HOME": str(root)}
    return subprocess.Popen(SLEEP, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def snapshot(w: World) -> dict[str, Any]:
    """What a rejected request must not change: the DB's rows and the API's listings."""
    db = paths.db_path(w.root)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        counts = {
            table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("project", "profile", "runner", "event", "setting")
        }
        runners = con.execute(
            "SELECT id, state, reason, pid, exit_code, restarts, unresponsive, ended_at, "
            "stop_requested_at FROM runner ORDER BY id"
        ).fetchall()
        projects = con.execute(
            "SELECT id, name, path, archived, max_runners FROM project ORDER BY id"
        ).fetchall()
        profiles = con.execute("SELECT name, command, env FROM profile ORDER BY name").fetchall()
        last_event = con.execute("SELECT MAX(id) FROM event").fetchone()[0]
    keep = ("id", "state", "reason", "pid", "exit_code", "unresponsive", "last_heartbeat")
    api_runners = [{k: r[k] for k in keep} for r in w.daemon.api.get("/api/v1/runners", all=1)]
    return {
        "counts": counts,
        "runners": runners,
        "projects": projects,
        "profiles": profiles,
        "last_event": last_event,
        "api_runners": api_runners,
        "api_projects": w.daemon.api.get("/api/v1/projects", all=1),
        "api_profiles": w.daemon.api.get("/api/v1/profiles"),
        "api_events": w.daemon.api.get("/api/v1/events", since=last_event - 1),
    }


ONE_SENTENCE = re.compile(r"\S[^\n]*\.")


def assert_error(
    response: requests.Response, status: int, code: str, message: str | re.Pattern[str]
) -> str:
    """``response`` is ``{"error": code, "message": ...}`` with ``status``; ``message`` is the
    exact text or a pattern it must match from its start."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code, body
    text = body["message"]
    assert ONE_SENTENCE.fullmatch(text), f"not one sentence: {text!r}"
    if isinstance(message, str):
        assert text == message
    else:
        assert message.match(text), text
    return text


def invalid(field_path: str) -> re.Pattern[str]:
    """msgspec's validation message, as the API wraps it, naming the bad field."""
    return re.compile(rf"Invalid request: .+ - at `{re.escape(field_path)}`\.$")


def invalid_top(what: str) -> re.Pattern[str]:
    return re.compile(rf"Invalid request: .*{re.escape(what)}.*\.$")



def fill(value: Any, names: dict[str, Any]) -> Any:
    """``value`` with ``{placeholders}`` replaced (an exact placeholder keeps its type)."""
    if isinstance(value, str):
        for key, new in names.items():
            if value == "{" + key + "}":
                return new
            value = value.replace("{" + key + "}", str(new))
        return value
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    return value


def placeholders(w: World) -> dict[str, Any]:
    notes = w.folder / "notes.txt"
    if not notes.exists():
        notes.write_text("not a program\n")
    names: dict[str, Any] = {name: w.id(name) for name in w.runners}
    names.update(
        folder=str(w.folder),
        file=str(notes),
        agent_pid=w.runners["agent"]["pid"],
        agent_token=w.tokens["agent"],
    )
    return names

