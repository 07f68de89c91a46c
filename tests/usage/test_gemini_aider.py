"""The Gemini CLI and Aider importers on fixture trees written in the agents' own formats
(gemini-cli's chatRecordingService, projectRegistry and storage; Aider's io.py and
base_coder.py): which files, which project, which tokens and cost, counted once, read
incrementally."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from supervisor.storage.models import Project, Usage, UsageSession
from supervisor.usage import aider, gemini, periods, reports
from supervisor.usage.importer import run_import
from supervisor.usage.pricing import PriceTable

PRICES = PriceTable.bundled()
M = 1_000_000


def do_import() -> Any:
    return run_import(PRICES, env=os.environ)  # the test's own agent dirs (conftest)


def rows() -> list[Usage]:
    return list(Usage.select().order_by(Usage.ts, Usage.id))


# --- Gemini CLI ---------------------------------------------------------------------------------
SESSION = "8b1f2d7e-3c4a-4e5f-9a0b-1c2d3e4f5a6b"


def message(message_id: str, ts: str, tokens: dict[str, int] | None, **extra: Any) -> dict:
    """A ``gemini`` message record as ChatRecordingService writes it."""
    record: dict[str, Any] = {
        "id": message_id,
        "timestamp": ts,
        "type": "gemini",
        "content": [{"text": "Done."}],
        "thoughts": [],
        "model": "gemini-2.5-pro",
        **extra,
    }
    if tokens is not None:
        record["tokens"] = tokens
    return record


def tokens(input: int, output: int, cached: int = 0, thoughts: int = 0, tool: int = 0) -> dict:
    """``TokensSummary``: input is promptTokenCount (cached included); total is Gemini's."""
    total = input + output + thoughts + tool
    return {"input": input, "output": output, "cached": cached, "thoughts": thoughts,
            "tool": tool, "total": total}  # fmt: skip


def gemini_tmp(agent_logs: dict[str, Path]) -> Path:
    return agent_logs["gemini"] / ".gemini" / "tmp"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Records appended one JSON line each (``appendRecord``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_legacy(path: Path, session: str, folder: str, messages: list[dict]) -> Path:
    """The pre-2026-04 recording: one document, ``JSON.stringify(conversation, null, 2)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"sessionId": session, "projectHash": gemini.path_hash(folder),
                "startTime": "2026-03-02T09:00:00.000Z", "lastUpdated": "2026-03-02T09:05:00.000Z",
                "messages": messages}  # fmt: skip
    path.write_text(json.dumps(document, indent=2))
    return path


def slug_project(agent_logs: dict[str, Path], folder: Path, slug: str) -> Path:
    """A project's directory as the ProjectRegistry makes it: ``projects.json`` and
    ``tmp/<slug>/.project_root``."""
    root = agent_logs["gemini"] / ".gemini"
    (root / "tmp" / slug).mkdir(parents=True, exist_ok=True)
    (root / "tmp" / slug / ".project_root").write_text(str(folder))
    registry = root / "projects.json"
    known = json.loads(registry.read_text())["projects"] if registry.exists() else {}
    registry.write_text(json.dumps({"projects": {**known, str(folder): slug}}, indent=2))
    return root / "tmp" / slug / "chats"


def test_gemini_dir_honours_gemini_cli_home(tmp_path: Path) -> None:
    assert gemini.gemini_dir({"GEMINI_CLI_HOME": "/opt/g"}) == Path("/opt/g/.gemini")
    assert gemini.gemini_dir({"HOME": str(tmp_path)}) == tmp_path / ".gemini"


def test_gemini_jsonl_recording_counts_each_response_once_in_its_project(
    db, agent_logs, tmp_path
) -> None:
    folder = tmp_path / "webapp"
    Project.create(name="webapp", path=str(folder), created_at=0)
    chats = slug_project(agent_logs, folder, "webapp")
    meta = {"sessionId": SESSION, "projectHash": gemini.path_hash(str(folder)),
            "startTime": "2026-05-02T10:00:00.000Z",
            "lastUpdated": "2026-05-02T10:00:00.000Z"}  # fmt: skip
    user = {"id": "u1", "timestamp": "2026-05-02T10:00:01.000Z", "type": "user", "content": "hi"}
    first = message("g1", "2026-05-02T10:00:05.000Z", None, toolCalls=[])  # tokens come later
    with_tokens = message("g1", "2026-05-02T10:00:05.000Z", tokens(15327, 23, 11526, 919, 7))
    second = message("g2", "2026-05-02T10:01:00.000Z", tokens(20000, 500, 0, 100))
    records = [meta, user, first, {"$set": {"lastUpdated": "2026-05-02T10:00:06.000Z"}},
               with_tokens, second, {"$rewindTo": "g2"}]  # fmt: skip
    write_jsonl(chats / "session-2026-05-02T10-00-8b1f2d7e.jsonl", records)
    report = do_import()
    assert (report.files, report.skipped, report.written) == (1, 0, 2)
    got = [(r.model, r.input_tokens, r.cache_read_tokens, r.output_tokens) for r in rows()]
    # input - cached + tool, cached, output + thoughts; the rewound response was billed
    assert got == [("gemini-2.5-pro", 15327 - 11526 + 7, 11526, 23 + 919),
                   ("gemini-2.5-pro", 20000, 0, 600)]  # fmt: skip
    assert {r.project_id for r in rows()} == {Project.get(Project.name == "webapp").id}
    assert {r.session_id for r in rows()} == {SESSION}
    assert UsageSession.get_by_id(SESSION).cwd == str(folder)


def test_gemini_legacy_json_in_a_hash_directory_is_attributed_by_the_path_hash(
    db, agent_logs, tmp_path
) -> None:
    folder = tmp_path / "old-project"
    Project.create(name="old", path=str(folder), created_at=0)
    chats = gemini_tmp(agent_logs) / gemini.path_hash(str(folder)) / "chats"
    messages = [
        {"id": "u1", "timestamp": "2026-03-02T09:00:01.000Z", "type": "user", "content": "go"},
        message("g1", "2026-03-02T09:00:09.000Z", tokens(1000, 200, 400)),
    ]
    path = write_legacy(chats / "session-2026-03-02T09-00-8b1f2d7e.json", SESSION, str(folder),
                        messages)  # fmt: skip
    assert do_import().written == 1
    (row,) = rows()
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (600, 400, 200)
    assert row.project_id == Project.get(Project.name == "old").id
    # rewritten whole with one more response: read again, each response still once
    messages.append(message("g2", "2026-03-02T09:04:00.000Z", tokens(3000, 10)))
    write_legacy(path, SESSION, str(folder), messages)
    report = do_import()
    assert (report.written, report.files_read) == (1, 1)
    assert [r.input_tokens for r in rows()] == [600, 3000]
    assert do_import().bytes_read == 0  # unchanged: not even opened


def test_gemini_copies_from_the_slug_migration_and_a_resumed_json_count_once(
    db, agent_logs, tmp_path
) -> None:
    folder = tmp_path / "proj"
    legacy = [message("g1", "2026-03-02T09:00:09.000Z", tokens(1000, 200))]
    old = gemini_tmp(agent_logs) / gemini.path_hash(str(folder)) / "chats"
    write_legacy(old / "session-2026-03-02T09-00-8b1f2d7e.json", SESSION, str(folder), legacy)
    chats = slug_project(agent_logs, folder, "proj")  # Storage copies the hash directory here
    write_legacy(chats / "session-2026-03-02T09-00-8b1f2d7e.json", SESSION, str(folder), legacy)
    resumed = [{"sessionId": SESSION, "projectHash": gemini.path_hash(str(folder))}, *legacy,
               message("g2", "2026-05-01T08:00:00.000Z", tokens(50, 5))]  # fmt: skip
    write_jsonl(chats / "session-2026-03-02T09-00-8b1f2d7e.jsonl", resumed)
    report = do_import()
    assert report.files == 3
    assert [(r.input_tokens, r.output_tokens) for r in rows()] == [(1000, 200), (50, 5)]
    # no project registered: the folder comes from projects.json, for a later project to claim
    assert {s.cwd for s in UsageSession.select()} == {str(folder)}


def test_gemini_subagent_usage_belongs_to_its_parent_session(db, agent_logs, tmp_path) -> None:
    chats = slug_project(agent_logs, tmp_path / "chats", "chats")  # a project named "chats"
    write_jsonl(chats / "session-2026-05-02T10-00-8b1f2d7e.jsonl", [
        {"sessionId": SESSION, "projectHash": "h"},
        message("g1", "2026-05-02T10:00:05.000Z", tokens(100, 10)),
    ])  # fmt: skip
    write_jsonl(chats / SESSION / "5d6e7f80-aaaa-bbbb-cccc-0123456789ab.jsonl", [
        {"sessionId": "5d6e7f80-aaaa-bbbb-cccc-0123456789ab", "projectHash": "h",
         "kind": "subagent"},
        message("s1", "2026-05-02T10:00:07.000Z", tokens(300, 30)),
    ])  # fmt: skip
    do_import()
    assert [(r.session_id, r.input_tokens) for r in rows()] == [(SESSION, 100), (SESSION, 300)]


def test_gemini_jsonl_is_read_incrementally(db, agent_logs, tmp_path) -> None:
    chats = slug_project(agent_logs, tmp_path / "p", "p")
    path = write_jsonl(chats / "session-2026-05-02T10-00-8b1f2d7e.jsonl", [
        {"sessionId": SESSION, "projectHash": "h"},
        message("g1", "2026-05-02T10:00:05.000Z", tokens(100, 10)),
    ])  # fmt: skip
    do_import()
    size = path.stat().st_size
    write_jsonl(path, [message("g2", "2026-05-02T10:03:05.000Z", tokens(200, 20))])
    report = do_import()
    assert (report.written, report.bytes_read) == (1, path.stat().st_size - size)
    assert rows()[-1].session_id == SESSION  # the session id carried across refreshes


def test_gemini_long_prompts_cost_the_tier_for_the_whole_request(db, agent_logs, tmp_path):
    chats = slug_project(agent_logs, tmp_path / "p", "p")
    write_jsonl(chats / "session-2026-05-02T10-00-8b1f2d7e.jsonl", [
        {"sessionId": SESSION, "projectHash": "h"},
        message("g1", "2026-05-02T10:00:05.000Z", tokens(210_000, 4000, 150_000)),
    ])  # fmt: skip
    do_import()
    (row,) = rows()
    whole = (60_000 * 2.5 + 150_000 * 0.25 + 4000 * 15) / M  # as Google bills, and ccusage
    assert (row.cost_usd, row.ccusage_cost_usd) == pytest.approx((whole, whole))


# --- Aider --------------------------------------------------------------------------------------
HISTORY = """
# aider chat started at 2026-05-04 09:15:02

> /home/dev/.local/bin/aider --model sonnet  
> Aider v0.86.1  
> Main model: anthropic/claude-sonnet-4-5-20250929 with diff edit format, prompt cache, infinite output  
> Weak model: anthropic/claude-3-5-haiku-20241022  
> Git repo: .git with 42 files  
> Repo-map: using 4096 tokens, auto refresh  

#### add a --verbose flag  

Here is the change.

> Tokens: 12k sent, 1.2k received. Cost: $0.05 message, $0.05 session.  
> Applied edit to cli.py  

#### now test it  

> Tokens: 15k sent, 9.8k cache write, 3.1k cache hit, 640 received.
Cost: $0.06 message, $0.11 session.  

# aider chat started at 2026-05-04 14:40:11

> Aider v0.86.1  
> Model: ollama/qwen2.5-coder with whole edit format  
> Git repo: none  

#### hello  

> Tokens: 2.3k sent, 87 received.  
"""  # noqa: W291, E501 (Aider ends its lines with two spaces: a Markdown line break)


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def test_aider_tokens_are_read_as_aider_rounds_them() -> None:
    assert [aider.tokens(t) for t in ("999", "1.2k", "9.9k", "12k", "1234k")] == [
        999, 1200, 9900, 12000, 1_234_000,
    ]  # fmt: skip


def test_aider_history_rows_carry_aiders_own_cost_model_and_run(tmp_path: Path) -> None:
    path = tmp_path / aider.HISTORY
    path.write_text(HISTORY)
    parsed = aider.parse(path.read_bytes(), 0, str(path), {})
    assert parsed.skipped == 0
    got = [(r.model, r.input_tokens, r.cache_creation_tokens, r.cache_read_tokens,
            r.output_tokens, r.logged_cost) for r in parsed.rows]  # fmt: skip
    assert got == [
        ("anthropic/claude-sonnet-4-5-20250929", 12_000, 0, 0, 1200, 0.05),
        ("anthropic/claude-sonnet-4-5-20250929", 15_000 - 9800 - 3100, 9800, 3100, 640,
         pytest.approx(0.06)),  # the growth of the session total: 0.11 - 0.05
        ("ollama/qwen2.5-coder", 2300, 0, 0, 87, None),  # no price in Aider: no cost line
    ]  # fmt: skip
    first, second, last = parsed.rows
    assert first.ts == second.ts == local("2026-05-04 09:15:02")  # a later run followed
    assert last.ts == path.stat().st_mtime  # the file's last run: when the file was written
    assert first.session_id == f"aider:{tmp_path}:2026-05-04 09:15:02" == second.session_id
    assert len({r.key for r in parsed.rows}) == 3 and first.cwd == str(tmp_path)


def test_aider_sums_of_rounded_costs_stay_within_half_a_cent_of_the_session(tmp_path) -> None:
    # Twelve replies of $0.004 each: shown as "$0.0040 message" and a growing session total;
    # per-message figures would add up to 0.048 as well, but per-session ones never drift.
    lines = ["# aider chat started at 2026-05-04 09:00:00", "> Model: gpt-4o with diff edit format"]
    for i in range(1, 13):
        total = 0.004 * i
        shown = f"{total:.2f}" if total >= 0.01 else f"{total:.4f}"
        lines.append(f"> Tokens: 1.1k sent, 40 received. Cost: $0.0040 message, ${shown} session.")
    path = tmp_path / aider.HISTORY
    path.write_text("\n".join(lines) + "\n")
    parsed = aider.parse(path.read_bytes(), 0, str(path), {})
    assert sum(r.logged_cost for r in parsed.rows) == pytest.approx(0.05)  # shown: $0.05


def test_aider_model_from_the_runs_arguments_when_the_history_names_none(tmp_path) -> None:
    path = tmp_path / aider.HISTORY
    path.write_text(
        "# aider chat started at 2026-05-04 09:00:00\n> Tokens: 500 sent, 20 received.\n"
    )
    places = aider.Places([], [(str(tmp_path), ["aider", "--model", "gpt-4.1", "--yes-always"])])
    assert places.files() == [path]
    parsed = aider.parse(path.read_bytes(), 0, str(path), dict(places.hint(path) or {}))
    assert [r.model for r in parsed.rows] == ["gpt-4.1"]


def test_aider_files_are_in_the_git_root_or_where_the_run_says(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / aider.HISTORY).write_text("")
    custom = tmp_path / "notes" / "chat.md"
    custom.parent.mkdir()
    custom.write_text("")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / aider.HISTORY).write_text("")
    places = aider.Places(
        [str(plain)],
        [(str(repo / "src"), ["aider", "--model=o3"]),
         (str(tmp_path), ["aider", "--chat-history-file", "notes/chat.md"])],
    )  # fmt: skip
    assert places.files() == sorted([repo / aider.HISTORY, custom, plain / aider.HISTORY])
    assert places.hint(repo / aider.HISTORY) == {"runner_model": "o3"}
    assert places.hint(plain / aider.HISTORY) is None


def test_aider_history_of_a_project_is_imported_incrementally_into_it(
    db, agent_logs, tmp_path
) -> None:
    folder = tmp_path / "cli-tool"
    folder.mkdir()
    project = Project.create(name="cli-tool", path=str(folder), created_at=0)
    path = folder / aider.HISTORY
    path.write_text(HISTORY)
    report = do_import()
    assert (report.files, report.written, report.skipped) == (1, 3, 0)
    assert {r.project_id for r in rows()} == {project.id}
    query = reports.Query(zone=periods.resolve_zone("UTC"), agent="aider")
    for mode in ("vendor", "ccusage"):  # Aider's own figures in both modes, and $0 unpriced
        got = reports.report("daily", dataclasses.replace(query, mode=mode), 0.0)
        assert got["totals"]["cost_usd"] == pytest.approx(0.11), mode
    size = path.stat().st_size
    with path.open("a") as handle:
        handle.write("#### more  \n\n> Tokens: 3.0k sent, 120 received.  \n")
    time.sleep(0.01)
    report = do_import()
    assert (report.written, report.bytes_read) == (1, path.stat().st_size - size)
    assert rows()[-1].model == "ollama/qwen2.5-coder"  # the run's model carried over
