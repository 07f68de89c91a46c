"""Agents that talk back, end to end: built-in profiles run fake ``claude`` and ``codex``
programs (tests/fake_agents.py) under a real daemon. Sessions chosen up front and resumed
exactly, Claude Code's HTTP hooks turned into attention states (one event per transition),
provider limits pausing a run until its reset, git worktrees, the terminal wrapper.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from tests import fake_agents
from tests.agents.conftest import PERMISSION
from tests.conftest import REPO, api_error, wait_for
from tests.fake_agents import script
from tests.sink import Sink


def test_claude_batch_run_has_its_session_chosen_up_front_and_reports_attention(world, tmp_path):
    go = tmp_path / "go"
    runner = world.launch(
        "claude",
        [
            ["hook", "SessionStart", {"source": "startup"}],
            ["hook", "UserPromptSubmit", {"prompt": "fix the bug"}],
            ["hook", "PreToolUse", {"tool_name": "Bash"}],
            ["hook", "Notification", PERMISSION],
            ["wait_file", str(go)],
            ["hook", "PostToolUse", {"tool_name": "Bash"}],
            ["turn", {"input_tokens": 1200, "output_tokens": 300}],
            ["hook", "Stop", {"stop_hook_active": False}],
        ],
        prompt="fix the bug; don't touch $HOME",
    )
    sid = runner["session_id"]
    assert uuid.UUID(sid) and runner["mode"] == "batch"
    hooks = str(world.daemon.root / "claude-hooks.json")
    assert runner["command"][1:] == [
        "-p", "--session-id", sid, "--settings", hooks, "--", "fix the bug; don't touch $HOME"
    ]  # fmt: skip
    waiting = wait_for(
        lambda: (r := world.daemon.runner(runner["id"]))["attention"] == "needs_input" and r,
        what="needs input",
    )
    assert waiting["state"] in ("starting", "running")
    go.touch()
    done = world.daemon.wait_state(runner["id"], "exited")
    assert done["attention"] is None  # only a running agent has one
    assert world.attention(runner["id"]) == ["idle", "working", "needs_input", "working",
                                             "finished_turn"]  # fmt: skip
    needs = world.events(runner["id"], {"runner.needs_input"})[0]
    assert needs["title"] == f"runner {runner['id']} (demo) needs input"
    assert (needs["severity"], needs["body"]) == ("warning", PERMISSION["message"])
    finished = world.events(runner["id"], {"runner.finished_turn"})[0]
    assert finished["severity"] == "debug"  # a batch run's end is its exit event
    (run,) = world.runs()
    assert (run["session_id"], run["env_token"], run["cwd"]) == (sid, True, str(world.folder))
    settings = json.loads(Path(hooks).read_text())
    http = settings["hooks"]["Notification"][0]["hooks"][0]
    assert http["url"] == f"{world.daemon.api.base_url}/api/v1/hooks"
    assert "STRATAVORE_RUNNER_TOKEN" in http["allowedEnvVars"]
    # usage, transcript and runner match exactly: the session is listed against this runner
    world.api.post("/api/v1/usage/import")
    (session,) = world.api.get("/api/v1/sessions", project="demo")
    assert (session["session_id"], session["runner_id"], session["agent"]) == (
        sid, runner["id"], "claude"
    )  # fmt: skip
    assert (session["tokens"], session["resumable"], session["why_not"]) == (1500, True, None)


def test_one_event_and_one_notification_per_transition_however_many_hooks(world, tmp_path):
    """A burst of hooks (tool calls, a sub-agent's own hooks, a repeated permission prompt)
    makes one event per change of attention, and the channel gets one message per
    transition worth telling."""
    go = tmp_path / "go"
    sub = {"agent_id": "a1", "agent_type": "general-purpose", "tool_name": "Read"}
    with Sink() as sink:
        world.api.request("PUT", "/api/v1/notify/channels/phone", body={
            "kind": "ntfy", "config": {"topic": "agents", "server": sink.url},
        })  # fmt: skip
        runner = world.launch(
            "claude",
            [
                ["hook", "UserPromptSubmit", {"prompt": "go"}],
                *[["hook", "PreToolUse", sub]] * 15,
                *[["hook", "PostToolUse", sub]] * 15,
                *[["hook", "SubagentStop", {"agent_id": "a1"}]] * 3,
                ["hook", "Stop", {"agent_id": "a1"}],  # a sub-agent's: not the turn's end
                ["hook", "Notification", PERMISSION],
                ["hook", "Notification", PERMISSION],  # the same prompt, told twice
                ["hook", "PermissionRequest", {"tool_name": "Bash"}],
                ["wait_file", str(go)],
            ],
            prompt="go",
            mode="interactive",
        )
        wait_for(lambda: world.daemon.runner(runner["id"])["attention"] == "needs_input")
        go.touch()
        world.daemon.wait_state(runner["id"], "exited")
        assert world.attention(runner["id"]) == ["working", "needs_input"]
        sent = wait_for(
            lambda: [r for r in sink.requests if "needs input" in r.headers.get("Title", "")],
            timeout=15,
            what="the needs-input notification",
        )
        time.sleep(4)  # longer than the channel's settle time: a duplicate would be out now
        titles = [r.headers.get("Title", "") for r in sink.requests]
        assert [t for t in titles if "needs input" in t] == [sent[0].headers["Title"]]
        assert not [t for t in titles if "working" in t]


def test_limit_pauses_the_run_and_resumes_the_very_session_at_the_reset(world, tmp_path):
    world.api.request("PUT", "/api/v1/settings/limit_resume_delay", body={"value": 0})
    reset = int(time.time()) + 3
    marker = tmp_path / "limited-once"
    runner = world.launch(
        "claude",
        [
            ["turn", {"input_tokens": 10, "output_tokens": 5}],
            [
                "once",
                str(marker),
                [
                    ["limit", f"Claude AI usage limit reached|{reset}"],
                    ["exit", 1],
                ],
            ],
            ["turn", {"input_tokens": 20, "output_tokens": 7}],
        ],
        prompt="long task",
    )
    sid = runner["session_id"]
    paused = world.daemon.wait_state(runner["id"], "paused")
    assert paused["reason"].startswith("limit: Claude AI usage limit reached (resets at ")
    assert paused["reason"].endswith("; resumes then)")
    assert paused["limit_resets_at"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reset))
    )
    (event,) = world.events(runner["id"], {"runner.paused"})
    assert (event["severity"], event["data"]["resets_at"]) == ("warning", reset)
    done = world.daemon.wait_state(runner["id"], "exited", timeout=20)
    assert done["session_id"] == sid and done["restarts"] == 1
    first, second = world.runs()
    assert first["argv"][:3] == ["-p", "--session-id", sid]
    assert second["argv"][:3] == ["-p", "--resume", sid]
    assert second["argv"][-2:] == ["--", "Continue where you left off."]
    assert second["session_id"] == sid
    resumed = world.events(runner["id"], {"runner.starting"})[-1]
    assert resumed["body"] == f"resumed session {sid}"


def test_a_pause_survives_a_supervisor_restart_and_resume_by_hand(world, tmp_path):
    """Without auto-resume it waits for the user; across a restart it is still paused, and
    `stratavore resume` continues that session."""
    runner = world.launch(
        "claude",
        [
            [
                "once",
                str(tmp_path / "m"),
                [["limit", "5-hour limit reached ∙ resets 11pm"], ["exit", 1]],
            ]
        ],
        prompt="work",
        resume_on_limit=False,
    )
    paused = world.daemon.wait_state(runner["id"], "paused")
    assert paused["reason"].startswith("limit: 5-hour limit reached ∙ resets 11pm (resets ")
    assert not paused["reason"].endswith("resumes then)")
    world.daemon.stop()
    world.daemon.start()
    assert world.daemon.runner(runner["id"])["state"] == "paused"
    cli = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "resume", str(runner["id"]),
         "--prompt", "carry on"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == f"resumed runner {runner['id']}: session {runner['session_id']} " + (
        "(starting)\n"
    )
    world.daemon.wait_state(runner["id"], "exited")
    assert world.runs()[-1]["argv"][-4:-2] == ["--settings", str(world.daemon.root /
                                                                 "claude-hooks.json")]  # fmt: skip
    assert world.runs()[-1]["argv"][-1] == "carry on"


def test_restart_starts_a_new_session_where_resume_continues_the_old_one(world):
    runner = world.launch("claude", prompt="one")
    world.daemon.wait_state(runner["id"], "exited")
    world.api.post(f"/api/v1/runners/{runner['id']}/restart")
    again = world.daemon.wait_state(runner["id"], "exited")
    assert again["session_id"] != runner["session_id"]  # Claude refuses a used --session-id
    assert world.runs()[1]["argv"][:3] == ["-p", "--session-id", again["session_id"]]
    world.api.post(f"/api/v1/runners/{runner['id']}/resume", {"mode": "batch"})
    world.daemon.wait_state(runner["id"], "exited")
    assert world.runs()[2]["argv"][:3] == ["-p", "--resume", again["session_id"]]


def test_codex_run_learns_its_session_from_its_log_and_resumes_it(world):
    runner = world.launch("codex", prompt="hello")
    assert runner["session_id"] is None  # Codex picks its own
    assert runner["command"][1:] == ["exec", "--", "hello"]
    world.daemon.wait_state(runner["id"], "exited")
    world.api.post(f"/api/v1/runners/{runner['id']}/resume", {"prompt": "more"})
    learned = world.daemon.runner(runner["id"])["session_id"]
    assert fake_agents.codex_rollout(world.logs["codex"], learned) is not None
    world.daemon.wait_state(runner["id"], "exited")
    assert world.runs()[-1]["argv"] == ["exec", "resume", learned, "more"]


def test_gemini_run_learns_its_session_from_its_recording_and_resumes_it(world):
    runner = world.launch("gemini", prompt="hello")
    assert runner["session_id"] is None  # Gemini CLI picks its own
    assert runner["command"][1:] == ["--prompt=hello"]
    world.daemon.wait_state(runner["id"], "exited")
    world.api.post(f"/api/v1/runners/{runner['id']}/resume", {"prompt": "more"})
    learned = world.daemon.runner(runner["id"])["session_id"]
    assert learned == world.runs()[0]["session_id"]
    world.daemon.wait_state(runner["id"], "exited")
    assert world.runs()[-1]["argv"] == ["--resume", learned, "--prompt=more"]
    assert world.runs()[-1]["session_id"] == learned  # the very session, not the latest
    world.api.post("/api/v1/usage/import")
    (session,) = world.api.get("/api/v1/sessions", project="demo")
    assert (session["session_id"], session["runner_id"]) == (learned, runner["id"])
    assert session["resumable"] and session["tokens"] == 2 * (1200 + 40 + 12)
    assert world.daemon.runner(runner["id"])["tokens"] == 2 * (1200 + 40 + 12)


def test_aider_run_usage_is_its_own_with_aiders_cost(world):
    runner = world.launch("aider", prompt="add a flag", command=["--model", "sonnet"])
    assert runner["command"][1:] == ["--yes-always", "--model", "sonnet", "--message=add a flag"]
    world.daemon.wait_state(runner["id"], "exited")
    assert (world.folder / ".aider.chat.history.md").exists()
    world.api.post("/api/v1/usage/import")
    assert world.daemon.runner(runner["id"])["tokens"] == 12_000 + 1200  # as Aider rounds them
    daily = world.api.get("/api/v1/usage/daily", agent="aider", project="demo")
    exact = 12_400 * 3e-06 + 1180 * 1.5e-05  # what the fake Aider priced: $0.0549
    assert daily["totals"]["cost_usd"] == pytest.approx(0.05)  # as it showed it: "$0.05"
    assert abs(daily["totals"]["cost_usd"] - exact) < 0.005
    assert daily["rows"][0]["models"] == ["anthropic/claude-sonnet-4-5-20250929"]


def test_limit_in_codex_output_pauses_it_until_the_reset_it_names(world):
    started = time.time()
    runner = world.launch(
        "codex",
        [["limit", "You've hit your usage limit. Try again in 2 hours 5 minutes."], ["exit", 1]],
        prompt="x",
    )
    paused = world.daemon.wait_state(runner["id"], "paused")
    assert paused["reason"].startswith("limit: You've hit your usage limit.")
    resets = datetime.fromisoformat(paused["limit_resets_at"].replace("Z", "+00:00"))
    assert started + 7500 - 5 < resets.timestamp() < time.time() + 7500 + 5


def test_agent_without_hooks_is_idle_by_the_documented_heuristic(world):
    world.api.post("/api/v1/profiles", {"name": "quiet", "copy_of": "shell", "idle_after": 1})
    runner = world.launch("quiet", prompt="echo started; sleep 30")
    wait_for(lambda: world.attention(runner["id"]) == ["working", "idle"], timeout=15, what="idle")
    idle = world.events(runner["id"], {"runner.idle"})[0]
    assert idle["body"].startswith("no output and no CPU for ")
    assert idle["body"].endswith(" s (heuristic)")
    world.api.post(f"/api/v1/runners/{runner['id']}/stop", {"force": True})


def test_terminal_wrapper_runs_the_profile_the_supervisor_renders(world):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FAKE_AGENT_LOG": str(world.log),
        "FAKE_AGENT_SCRIPT": script(["hook", "Notification", PERMISSION]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.cli.agent", "--profile", "claude", "--project", "demo",
         "--", "--model", "opus"],
        cwd=world.folder, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = world.runs()
    (runner,) = world.api.get("/api/v1/runners", all=1)
    sid = runner["session_id"]
    hooks = str(world.daemon.root / "claude-hooks.json")
    assert run["argv"] == ["--session-id", sid, "--settings", hooks, "--model", "opus"]
    assert (runner["supervised"], runner["profile"], runner["state"]) == (False, "claude", "exited")
    assert world.attention(runner["id"]) == ["needs_input"]
    error = api_error(lambda: world.api.post(f"/api/v1/runners/{runner['id']}/resume", {}))
    assert error.message == (
        f"Runner {runner['id']} ran in a terminal; resume it in one with "
        f"`stratavore-agent --profile claude --resume {sid}`."
    )


def _git(*args: str, cwd: Path) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def test_worktree_per_runner_copied_setup_files_removed_unless_it_holds_work(world):
    _git("init", "-q", cwd=world.folder)
    (world.folder / "README").write_text("x\n")
    (world.folder / ".env").write_text("TOKEN=1\n")
    _git("add", "README", cwd=world.folder)
    _git("commit", "-qm", "first", cwd=world.folder)
    world.api.post("/api/v1/profiles", {
        "name": "sh-tree", "copy_of": "shell", "worktree": True, "setup_files": [".env"],
    })  # fmt: skip
    idle = world.launch("sh-tree", prompt="cat .env")
    assert idle["worktree"].startswith(str(world.daemon.root / "worktrees" / "demo-"))
    assert idle["cwd"] == idle["worktree"] and idle["branch"].startswith("stratavore/demo-")
    world.daemon.wait_state(idle["id"], "exited")
    # the folder goes first, then the branch (two git commands): wait for both
    wait_for(
        lambda: (
            not Path(idle["worktree"]).exists()
            and idle["branch"] not in _git("branch", "--list", cwd=world.folder)
        ),
        what="the empty worktree and its branch removed",
    )
    busy = world.launch(
        "sh-tree",
        prompt="echo y > work && git add work && git -c user.name=a -c user.email=a@b "
        "commit -qm work",
    )
    world.daemon.wait_state(busy["id"], "exited")
    kept = wait_for(lambda: world.events(busy["id"], {"runner.worktree_kept"}), what="kept")
    assert kept[0]["body"] == f"kept worktree {busy['worktree']} (1 commit on {busy['branch']})"
    assert Path(busy["worktree"], "work").exists()
    log = world.api.get(f"/api/v1/runners/{idle['id']}/logs")["text"]
    assert "TOKEN=1" in log  # the setup file was there for the agent


def test_a_launch_is_refused_before_a_worktree_is_made_for_it(world, tmp_path):
    """What refuses a launch (its cap here; its project, command or budget alike) is found
    before git is asked for a worktree: the answer is that refusal, and git is not run."""
    capped = tmp_path / "capped"
    capped.mkdir()  # not a git repository: a worktree made first would fail with git's sentence
    world.daemon.project("capped", capped, max_runners=1)
    world.api.post("/api/v1/runners", {"project": "capped", "command": ["sleep", "30"]})
    body = {"project": "capped", "command": ["true"], "worktree": True, "no_queue": True}
    error = api_error(lambda: world.api.post("/api/v1/runners", body))
    assert (error.code.status, error.message) == (
        409,
        "Project 'capped' already has 1 of 1 runners; stop one or raise the cap with "
        "`stratavore set max_runners_per_project N --project capped`.",
    )
    assert not (world.daemon.root / "worktrees").exists()


def test_bad_agent_requests_get_one_sentence(world):
    cases = [
        ({"project": "demo", "command": ["true"], "prompt": "x"}, 422,
         "A prompt, a mode or a session to resume needs a profile (--profile NAME)."),
        ({"project": "demo", "profile": "claude", "mode": "batch"}, 422,
         "Profile 'claude' in batch mode needs a prompt; give one with --prompt."),
        ({"project": "demo", "profile": "aider", "resume_session": "abc"}, 409,
         "Profile 'aider' cannot resume a session in interactive mode (it has no 'resume' "
         "template); copy it and add one, or start a new run."),
        ({"project": "demo", "profile": "claude", "worktree": True}, 422,
         None),  # not a git repository: git's sentence
    ]  # fmt: skip
    for body, status, message in cases:
        error = api_error(lambda b=body: world.api.post("/api/v1/runners", b))
        assert error.code.status == status, error.message
        if message is not None:
            assert error.message == message
        else:
            assert "is not inside a git repository" in error.message
    error = api_error(
        lambda: world.api.post(
            "/api/v1/profiles", {"name": "x", "command": ["{binary}", "--in={dir}"]}
        )
    )
    assert error.message.startswith("Template 'command' uses unknown placeholder {dir}; use ")
    assert world.api.get("/api/v1/runners", all=1) == []
    assert not (world.daemon.root / "worktrees").exists() or not any(
        (world.daemon.root / "worktrees").iterdir()
    )


REAL = {agent: shutil.which(agent) for agent in ("claude", "codex")}  # before any fake


@pytest.mark.parametrize("agent", ["claude", "codex"])
def test_a_real_agent_when_installed(agent, tmp_path, daemon_factory):
    """Against the real CLI when it is on PATH (a developer's machine; CI has none): a batch
    run with a tiny prompt keeps its exact session, and resumes it. Spends a few tokens."""
    if REAL[agent] is None:
        pytest.skip(f"`{agent}` is not installed")
    daemon = daemon_factory()
    folder = tmp_path / "real"
    folder.mkdir()
    daemon.project("real", folder)
    runner = daemon.api.post("/api/v1/runners", {
        "project": "real", "profile": agent, "prompt": "Reply with the single word OK.",
    })  # fmt: skip
    done = daemon.wait_state(runner["id"], {"exited", "failed", "paused"}, timeout=300)
    assert done["state"] == "exited", done["reason"]
    daemon.api.post("/api/v1/usage/import")
    sid = daemon.runner(runner["id"])["session_id"]
    assert sid and sid in [s["session_id"] for s in daemon.api.get("/api/v1/sessions")]
    daemon.api.post(f"/api/v1/runners/{runner['id']}/resume", {"prompt": "Once more: OK."})
    again = daemon.wait_state(runner["id"], {"exited", "failed", "paused"}, timeout=300)
    assert (again["state"], again["session_id"]) == ("exited", sid)


def test_a_deleted_hooks_file_is_written_again_at_the_next_launch(world):
    hooks = world.daemon.root / "claude-hooks.json"
    hooks.unlink()
    runner = world.launch("claude", [["hook", "Notification", PERMISSION]], prompt="x")
    world.daemon.wait_state(runner["id"], "exited")
    assert json.loads(hooks.read_text())["hooks"]["Notification"]
    assert world.attention(runner["id"]) == ["needs_input"]
