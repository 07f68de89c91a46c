"""The fake ``claude`` and ``codex`` programs behave as specified: real processes, real files,
a real HTTP sink, and our own usage importer reading what they wrote."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.storage.models import Usage
from supervisor.usage.importer import ImportReport, run_import
from supervisor.usage.pricing import PriceTable
from tests.fake_agents import (
    AGENTS,
    claude_transcript,
    codex_rollout,
    gemini_recordings,
    install,
    script,
)
from tests.sink import Reply, Sink

LIMIT_TEXT = "Claude AI usage limit reached|1763812800"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    for agent in AGENTS:
        install(path, agent)
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The agent's cwd; the space and dot test Claude's project directory name."""
    path = tmp_path / "my project.v2"
    path.mkdir()
    return path


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as server:
        yield server


def agent_env(steps: list[list[Any]] | None = None, **extra: str) -> dict[str, str]:
    """This test's environment (agent log dirs included) with a script for the fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
    env.pop("STRATAVORE_RUNNER_TOKEN", None)
    if steps is not None:
        env["FAKE_AGENT_SCRIPT"] = script(*steps)
    return {**env, **extra}


def run(
    bin_dir: Path,
    agent: str,
    *args: str,
    cwd: Path,
    steps: list[list[Any]] | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / agent), *args],
        cwd=cwd,
        env=agent_env(steps, **extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def imported(agent_logs: dict[str, Path]) -> tuple[ImportReport, list[Usage]]:
    env = {
        "CLAUDE_CONFIG_DIR": str(agent_logs["claude"]),
        "CODEX_HOME": str(agent_logs["codex"]),
        "GEMINI_CLI_HOME": str(agent_logs["gemini"]),
    }
    report = run_import(PriceTable.bundled(), env=env)
    return report, list(Usage.select().order_by(Usage.ts, Usage.id))


def totals(rows: list[Usage]) -> tuple[int, int, int, int]:
    return (
        sum(r.input_tokens for r in rows),
        sum(r.output_tokens for r in rows),
        sum(r.cache_creation_tokens for r in rows),
        sum(r.cache_read_tokens for r in rows),
    )


def settings(tmp_path: Path, hooks: dict[str, Any]) -> str:
    """A settings file with these hooks; returns its path."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"hooks": hooks}))
    return str(path)


def http(url: str, **fields: Any) -> dict[str, Any]:
    return {"type": "http", "url": url, "timeout": 5, **fields}


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def events(sink: Sink) -> list[str]:
    return [request.json()["hook_event_name"] for request in sink.requests]


# --- both -----------------------------------------------------------------------------------


def test_version_lines(bin_dir: Path, tmp_path: Path) -> None:
    claude = run(bin_dir, "claude", "--version", cwd=tmp_path)
    codex = run(bin_dir, "codex", "--version", cwd=tmp_path)
    assert (claude.returncode, claude.stdout) == (0, "2.1.999 (Claude Code)\n")
    assert (codex.returncode, codex.stdout) == (0, "codex-cli 0.99.0\n")


def test_every_run_is_logged_with_its_exact_command_line(
    bin_dir: Path, workdir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "agents.jsonl"
    sid = str(uuid.uuid4())
    extra = {"FAKE_AGENT_LOG": str(log), "STRATAVORE_RUNNER_TOKEN": "tok"}
    run(bin_dir, "claude", "--session-id", sid, "-p", "hi", cwd=workdir, **extra)
    done = run(bin_dir, "codex", "exec", "--full-auto", "do it", cwd=workdir, **extra)
    codex_id = done.stdout.splitlines()[0].removeprefix("session id: ")
    del extra["STRATAVORE_RUNNER_TOKEN"]
    run(bin_dir, "claude", "--version", cwd=workdir, **extra)
    assert lines(log) == [
        {
            "agent": "claude",
            "argv": ["--session-id", sid, "-p", "hi"],
            "cwd": str(workdir),
            "session_id": sid,
            "env_token": True,
        },
        {
            "agent": "codex",
            "argv": ["exec", "--full-auto", "do it"],
            "cwd": str(workdir),
            "session_id": codex_id,
            "env_token": True,
        },
        {
            "agent": "claude",
            "argv": ["--version"],
            "cwd": str(workdir),
            "session_id": None,
            "env_token": False,
        },
    ]


# --- claude: sessions and transcripts -------------------------------------------------------


def test_claude_batch_transcript_is_counted_by_the_usage_importer(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    sid = str(uuid.uuid4())
    steps = [
        ["turn", {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 3,
                  "cache_read_input_tokens": 7}],
        ["turn", {"input_tokens": 1, "output_tokens": 2, "model": "claude-opus-4-1-20250805"}],
        ["print", "done"],
    ]  # fmt: skip
    done = run(
        bin_dir, "claude", "-p", "--model", "sonnet", "--session-id", sid, "fix it",
        cwd=workdir, steps=steps,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")
    path = claude_transcript(agent_logs["claude"], str(workdir), sid)
    assert path.parent.name == re.sub(r"[^A-Za-z0-9]", "-", str(workdir))  # "/", " ", ".", "_"
    written = lines(path)
    assert [line["type"] for line in written] == ["user", "assistant", "user", "assistant"]
    assert written[0]["message"] == {"role": "user", "content": "fix it"}
    assert written[0]["parentUuid"] is None
    assert [line["parentUuid"] for line in written[1:]] == [line["uuid"] for line in written[:-1]]
    assert {line["sessionId"] for line in written} == {sid}
    assert {line["cwd"] for line in written} == {str(workdir)}
    assert written[1]["message"]["model"] == "claude-sonnet-4-5-20250929"  # the alias, resolved
    report, rows = imported(agent_logs)
    assert (report.skipped, len(rows)) == (0, 2)
    assert totals(rows) == (11, 7, 3, 7)
    assert [r.model for r in rows] == ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"]
    assert {r.session_id for r in rows} == {sid}


def test_claude_session_id_must_be_a_fresh_uuid(bin_dir: Path, workdir: Path) -> None:
    bad = run(bin_dir, "claude", "-p", "--session-id", "not-a-uuid", "hi", cwd=workdir)
    assert (bad.returncode, bad.stderr) == (1, "Error: Invalid session ID. Must be a valid UUID.\n")
    sid = str(uuid.uuid4())
    assert run(bin_dir, "claude", "-p", "--session-id", sid, "hi", cwd=workdir).returncode == 0
    again = run(bin_dir, "claude", "-p", "--session-id", sid, "hi", cwd=workdir)
    assert (again.returncode, again.stderr) == (1, f"Error: Session ID {sid} is already in use.\n")


def test_claude_resume_appends_to_the_session_and_a_missing_one_fails(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    failed = run(bin_dir, "claude", "-p", "--resume", missing, "hi", cwd=workdir)
    assert (failed.returncode, failed.stderr) == (
        1,
        f"No conversation found with session ID: {missing}\n",
    )
    sid = str(uuid.uuid4())
    run(bin_dir, "claude", "-p", "--session-id", sid, "first", cwd=workdir)
    path = claude_transcript(agent_logs["claude"], str(workdir), sid)
    first = lines(path)
    hooks = {"SessionStart": [{"hooks": [{"type": "command", "command": "cat > start.json"}]}]}
    resumed = run(
        bin_dir, "claude", "-r", sid, "-p", "--settings", json.dumps({"hooks": hooks}), "second",
        cwd=workdir,
    )  # fmt: skip
    assert (resumed.returncode, resumed.stdout) == (0, "ok: second\n")
    after = lines(path)
    assert after[: len(first)] == first and len(after) == 2 * len(first)
    assert after[len(first)]["parentUuid"] == first[-1]["uuid"]
    assert after[len(first)]["message"]["content"] == "second"
    assert {line["sessionId"] for line in after} == {sid}
    assert json.loads((workdir / "start.json").read_text())["source"] == "resume"
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{sid}.jsonl"]


def test_claude_prompt_after_a_variadic_option_is_swallowed_as_in_the_real_cli(
    bin_dir: Path, workdir: Path
) -> None:
    swallowed = run(bin_dir, "claude", "-p", "--allowedTools", "Bash", "hi", cwd=workdir)
    assert swallowed.returncode == 1
    assert swallowed.stderr.startswith("Error: Input must be provided either through stdin")
    fine = run(
        bin_dir, "claude", "-p", "--allowedTools", "Bash", "--verbose", "--frobnicate",
        "--output-format", "text", "--", "hi", cwd=workdir,
    )  # fmt: skip
    assert (fine.returncode, fine.stdout) == (0, "ok: hi\n")


def test_claude_limit_writes_the_api_error_line_and_prints_it(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    sid = str(uuid.uuid4())
    steps = [["limit", LIMIT_TEXT], ["exit", 1]]
    done = run(bin_dir, "claude", "-p", "--session-id", sid, "hi", cwd=workdir, steps=steps)
    assert (done.returncode, done.stdout) == (1, LIMIT_TEXT + "\n")
    line = lines(claude_transcript(agent_logs["claude"], str(workdir), sid))[-1]
    assert (line["type"], line["isApiErrorMessage"], line["error"]) == (
        "assistant",
        True,
        "rate_limit",
    )
    assert line["message"]["model"] == "<synthetic>"
    assert line["message"]["content"] == [{"type": "text", "text": LIMIT_TEXT}]
    assert set(line["message"]["usage"].values()) == {0}
    report, rows = imported(agent_logs)
    assert report.skipped == 0 and totals(rows) == (0, 0, 0, 0)


# --- claude: hooks --------------------------------------------------------------------------


def test_claude_default_script_fires_the_hooks_of_a_normal_turn(
    bin_dir: Path, workdir: Path, tmp_path: Path, sink: Sink
) -> None:
    fired = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"]
    names = [*fired, "Notification"]  # configured, but a normal turn never notifies
    hooks = {name: [{"hooks": [http(sink.url)]}] for name in names}
    done = run(bin_dir, "claude", "-p", "hi", "--settings", settings(tmp_path, hooks), cwd=workdir)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok: hi\n", "")
    assert events(sink) == fired
    start, prompt, pre, post, stop, end = (request.json() for request in sink.requests)
    assert start["source"] == "startup" and prompt["prompt"] == "hi"
    assert pre["tool_name"] == post["tool_name"] == "Bash" and "tool_response" in post
    assert stop["stop_hook_active"] is False and end["reason"] == "other"


def test_claude_http_hooks_send_the_payload_with_allowed_env_vars_in_headers(
    bin_dir: Path, workdir: Path, tmp_path: Path, sink: Sink, agent_logs: dict[str, Path]
) -> None:
    headers = {"Authorization": "Bearer $HOOK_TOKEN", "X-Other": "<${HOOK_SECRET}>"}
    hooks = {
        "SessionStart": [
            {"hooks": [http(f"{sink.url}/start", headers=headers, allowedEnvVars=["HOOK_TOKEN"])]}
        ],
        "Notification": [{"matcher": "permission_prompt", "hooks": [http(f"{sink.url}/ask")]}],
        "PreToolUse": [{"matcher": "Bash|Edit", "hooks": [http(f"{sink.url}/tool")]}],
        "Stop": [{"hooks": [http(dead_url()), http(f"{sink.url}/stop")]}],
    }
    sid = str(uuid.uuid4())
    steps = [
        ["hook", "SessionStart", {"source": "startup"}],
        ["hook", "Notification", {"notification_type": "idle_prompt", "message": "waiting"}],
        ["hook", "Notification", {"notification_type": "permission_prompt", "message": "Bash?"}],
        ["hook", "PreToolUse", {"tool_name": "Read", "tool_input": {}}],
        ["hook", "PreToolUse", {"tool_name": "Edit", "tool_input": {}}],
        ["hook", "PreToolUse", {"tool_name": "Bash2", "tool_input": {}}],  # no partial match
        ["hook", "Stop", {"stop_hook_active": False}],
        ["exit", 0],
    ]
    done = run(
        bin_dir, "claude", "-p", "--session-id", sid, "--settings", settings(tmp_path, hooks),
        "hi", cwd=workdir, steps=steps, HOOK_TOKEN="t0k", HOOK_SECRET="s3cret",
    )  # fmt: skip
    assert done.returncode == 0
    assert [r.path for r in sink.requests] == ["/start", "/ask", "/tool", "/stop"]
    start = sink.requests[0]
    assert start.method == "POST" and start.headers["Content-Type"] == "application/json"
    assert start.headers["Authorization"] == "Bearer t0k"
    assert start.headers["X-Other"] == "<>"  # not in allowedEnvVars: empty, as Claude Code
    assert start.json() == {
        "session_id": sid,
        "transcript_path": str(claude_transcript(agent_logs["claude"], str(workdir), sid)),
        "cwd": str(workdir),
        "permission_mode": "default",
        "hook_event_name": "SessionStart",
        "source": "startup",
    }
    assert sink.requests[1].json()["notification_type"] == "permission_prompt"
    assert sink.requests[2].json()["tool_name"] == "Edit"
    [failure] = done.stderr.splitlines()  # the dead hook: one line, and the run went on
    assert "Stop hook" in failure and "failed" in failure


def test_claude_command_hook_gets_the_payload_on_stdin(
    bin_dir: Path, workdir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "payloads.jsonl"
    command = {"type": "command", "command": f"cat >> '{out}'; echo >> '{out}'", "timeout": 5}
    hooks = {"Notification": [{"hooks": [command]}], "SessionEnd": [{"hooks": [command]}]}
    message = "Claude needs your permission to use Bash"
    steps = [
        ["hook", "Notification", {"notification_type": "permission_prompt", "message": message}]
    ]
    settings_json = json.dumps({"hooks": hooks})
    done = run(bin_dir, "claude", "--settings", settings_json, "go", cwd=workdir, steps=steps)
    assert done.returncode == 0
    notification, end = lines(out)
    assert notification["hook_event_name"] == "Notification"
    assert notification["message"] == message
    assert notification["cwd"] == str(workdir) and notification["session_id"] == end["session_id"]
    assert end["reason"] == "prompt_input_exit"  # interactive (no -p): the user quit


def test_wait_file_holds_the_agent_until_the_file_appears(
    bin_dir: Path, workdir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    steps = [["print", "ready"], ["wait_file", str(gate)], ["print", "after"], ["exit", 4]]
    with subprocess.Popen(
        [str(bin_dir / "claude"), "-p", "hi"],
        cwd=workdir,
        env=agent_env(steps),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
        assert proc.poll() is None
        gate.touch()
        rest, _ = proc.communicate(timeout=5)
    assert (proc.returncode, rest) == (4, "after\n")


def test_sigterm_fires_session_end_quickly_and_exits_143(
    bin_dir: Path, workdir: Path, tmp_path: Path, sink: Sink
) -> None:
    sink.script(Reply(200, delay=10))  # a hook that hangs must not hold the exit up
    hooks = {"SessionEnd": [{"hooks": [http(f"{sink.url}/slow", timeout=30), http(sink.url)]}]}
    steps = [["print", "ready"], ["wait_file", str(tmp_path / "never")]]
    argv = [str(bin_dir / "claude"), "-p", "--settings", settings(tmp_path, hooks), "hi"]
    with subprocess.Popen(
        argv, cwd=workdir, env=agent_env(steps), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=5)
        took = time.monotonic() - began
    assert proc.returncode == 143
    assert took < 1.5
    assert sink.requests[0].path == "/slow"
    assert sink.requests[0].json()["hook_event_name"] == "SessionEnd"
    assert sink.requests[0].json()["reason"] == "other"


# --- codex ----------------------------------------------------------------------------------


def test_codex_exec_and_resume_write_one_rollout_the_usage_importer_counts(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    steps = [
        ["turn", {"input_tokens": 100, "cached_input_tokens": 40, "output_tokens": 20,
                  "reasoning_output_tokens": 5}],
        ["print", "done"],
    ]  # fmt: skip
    first = run(
        bin_dir, "codex", "exec", "--json", "-m", "gpt-5", "--skip-git-repo-check", "task",
        cwd=workdir, steps=steps,
    )  # fmt: skip
    assert first.returncode == 0
    head, done = first.stdout.splitlines()
    assert head.startswith("session id: ") and done == "done"
    sid = head.removeprefix("session id: ")
    assert uuid.UUID(sid).version == 7
    path = codex_rollout(agent_logs["codex"], sid)
    assert (
        path is not None
        and path.name.startswith("rollout-")
        and path.name.endswith(f"-{sid}.jsonl")
    )
    assert path.relative_to(agent_logs["codex"] / "sessions").parts[0].isdigit()  # YYYY/MM/DD
    meta, context = lines(path)[:2]
    assert meta["type"] == "session_meta"
    assert (meta["payload"]["id"], meta["payload"]["cwd"]) == (sid, str(workdir))
    assert meta["payload"]["cli_version"] == "0.99.0"
    assert context["type"] == "turn_context" and context["payload"]["model"] == "gpt-5"

    again = run(bin_dir, "codex", "exec", "resume", sid, "more", cwd=workdir,
                steps=[["turn", {"input_tokens": 10, "output_tokens": 1}]])  # fmt: skip
    assert (again.returncode, again.stdout) == (0, f"session id: {sid}\n")
    assert sorted(p.name for p in (agent_logs["codex"] / "sessions").rglob("*.jsonl")) == [
        path.name
    ]
    counts = [
        line["payload"]["info"]["total_token_usage"]
        for line in lines(path)
        if line["payload"].get("type") == "token_count"
    ]
    assert [c["total_tokens"] for c in counts] == [120, 131]  # cumulative across the resume
    report, rows = imported(agent_logs)
    assert (report.skipped, len(rows)) == (0, 2)
    assert totals(rows) == (60 + 10, 21, 0, 40)  # cached input split out as cache reads
    assert {r.session_id for r in rows} == {sid}

    missing = run(bin_dir, "codex", "resume", "0199", "hi", cwd=workdir)
    assert (missing.returncode, missing.stderr) == (
        1,
        "Error: No saved session found with ID 0199\n",
    )


def test_codex_limit_writes_rate_limits_and_an_error_event(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path]
) -> None:
    text = "You've hit your usage limit. Try again in 5 hours."
    steps = [["limit", text], ["exit", 1]]
    done = run(bin_dir, "codex", "exec", "go", cwd=workdir, steps=steps,
               FAKE_LIMIT_RESETS_AT="1763812800")  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.splitlines()[1:] == [text]
    sid = done.stdout.splitlines()[0].removeprefix("session id: ")
    path = codex_rollout(agent_logs["codex"], sid)
    assert path is not None
    update, error = (line["payload"] for line in lines(path)[-2:])
    assert update == {
        "type": "token_count",
        "info": None,
        "rate_limits": {
            "primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": 1763812800}
        },
    }
    assert error == {"type": "error", "message": text}


def test_codex_interactive_runs_in_its_cd_with_its_config_model_without_a_tty(
    bin_dir: Path, tmp_path: Path, workdir: Path, agent_logs: dict[str, Path]
) -> None:
    args = ["-C", str(workdir), "-c", 'model="o3"', "--full-auto", "hello"]
    done = run(bin_dir, "codex", *args, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "ok: hello\n")  # no banner: not exec
    [path] = (agent_logs["codex"] / "sessions").rglob("rollout-*.jsonl")
    meta, context = (line["payload"] for line in lines(path)[:2])
    assert meta["cwd"] == str(workdir) and codex_rollout(agent_logs["codex"], meta["id"]) == path
    assert context["model"] == "o3"


def test_once_runs_its_steps_on_the_first_run_only(bin_dir: Path, workdir: Path) -> None:
    """What lets a test hit a limit the first time and not when the run is resumed."""
    marker = workdir / "marker"
    steps = script(["once", str(marker), [["print", "first"], ["exit", 7]]], ["print", "later"])
    env = {**os.environ, "FAKE_AGENT_SCRIPT": steps}
    first = subprocess.run([bin_dir / "codex", "exec", "x"], cwd=workdir, env=env,
                           capture_output=True, text=True)  # fmt: skip
    again = subprocess.run([bin_dir / "codex", "exec", "x"], cwd=workdir, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert (first.returncode, first.stdout.splitlines()[-1]) == (7, "first")
    assert (again.returncode, again.stdout.splitlines()[-1]) == (0, "later")


# --- gemini and aider: what the importers read --------------------------------------------------


def test_gemini_recordings_are_counted_by_the_usage_importer_and_resumed_by_id(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    steps = [["turn", {"input": 15000, "output": 23, "cached": 11000, "thoughts": 900,
                       "tool": 7}]]  # fmt: skip
    log = workdir.parent / "agents.jsonl"
    first = run(bin_dir, "gemini", "-m", "gemini-2.5-flash", "--prompt=fix it", cwd=workdir,
                steps=steps, FAKE_AGENT_LOG=str(log))  # fmt: skip
    assert (first.returncode, first.stderr) == (0, "")
    (recording,) = gemini_recordings(agent_logs["gemini"])
    assert recording.suffix == ".jsonl" and recording.parent.parent.name == "my-project-v2"
    registry = json.loads((agent_logs["gemini"] / ".gemini" / "projects.json").read_text())
    assert registry == {"projects": {str(workdir): "my-project-v2"}}
    sid = lines(log)[0]["session_id"]
    again = run(bin_dir, "gemini", "--resume", sid, "-p", "more", cwd=workdir, steps=steps[:1])
    assert again.returncode == 0 and gemini_recordings(agent_logs["gemini"]) == [recording]
    latest = run(bin_dir, "gemini", "--resume", "1", "-p", "more", cwd=workdir, steps=[])
    assert latest.returncode == 0
    missing = run(bin_dir, "gemini", "--resume", "nope", "-p", "x", cwd=workdir)
    assert (missing.returncode, missing.stderr) == (1, 'Invalid session identifier "nope".\n')
    report, rows = imported(agent_logs)
    assert (report.files, report.skipped) == (1, 0)
    got = [(r.model, r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in rows]
    # input - cached + tool, cached, output + thoughts; the resumed run's own (default) model
    assert got == [("gemini-2.5-flash", 4007, 11000, 923), ("gemini-2.5-pro", 4007, 11000, 923)]
    assert {r.session_id for r in rows} == {sid}


def test_gemini_legacy_recordings_are_whole_json_in_a_hash_directory(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    steps = [["turn", {"input": 100, "output": 10}], ["turn", {"input": 200, "output": 20}]]
    done = run(bin_dir, "gemini", "-p", "x", cwd=workdir, steps=steps, FAKE_GEMINI_LEGACY="1")
    assert done.returncode == 0
    (recording,) = gemini_recordings(agent_logs["gemini"])
    document = json.loads(recording.read_text())
    assert recording.parent.parent.name == hashlib.sha256(str(workdir).encode()).hexdigest()
    assert [m["type"] for m in document["messages"]] == ["user", "gemini", "user", "gemini"]
    _, rows = imported(agent_logs)
    assert [(r.input_tokens, r.output_tokens) for r in rows] == [(100, 10), (200, 20)]


def test_aider_history_is_counted_with_aiders_own_cost(
    bin_dir: Path, workdir: Path, agent_logs: dict[str, Path], db: None
) -> None:
    from supervisor.storage.models import Project

    Project.create(name="demo", path=str(workdir), created_at=0)
    steps = [["turn", {"input_tokens": 3000, "cache_creation_input_tokens": 9000,
                       "cache_read_input_tokens": 3100, "output_tokens": 640}],
             ["turn", {"input_tokens": 12400, "output_tokens": 1180}]]  # fmt: skip
    done = run(bin_dir, "aider", "--model", "sonnet", "--yes-always", "--message=add a flag",
               cwd=workdir, steps=steps)  # fmt: skip
    assert done.returncode == 0
    history = (workdir / ".aider.chat.history.md").read_text()
    assert "> Main model" not in history and "> Model: anthropic/claude-sonnet-4-5" in history
    assert "> Tokens: 15k sent, 9.0k cache write, 3.1k cache hit, 640 received.\nCost: $" in history
    report, rows = imported(agent_logs)
    assert (report.files, report.skipped) == (1, 0)
    got = [(r.input_tokens, r.cache_creation_tokens, r.cache_read_tokens, r.output_tokens)
           for r in rows]  # fmt: skip
    assert got == [(15000 - 9000 - 3100, 9000, 3100, 640), (12000, 0, 0, 1200)]
    exact = (3000 + 1.25 * 9000 + 0.1 * 3100 + 12400) * 3e-06 + (640 + 1180) * 1.5e-05
    assert sum(r.logged_cost for r in rows) == pytest.approx(exact, abs=0.005)
    assert sum(r.cost_usd for r in rows) == sum(r.logged_cost for r in rows)
