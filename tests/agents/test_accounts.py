"""Accounts: the config directory a run uses (its key), a profile's own account checked and
put in its environment, and the accounts' labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supervisor.agents import accounts, profiles, sessions
from supervisor.api.schemas import ProfileCreate
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from tests import fake_agents
from tests.cli.test_e2e import Cli
from tests.conftest import Daemon, api_error
from tests.fake_agents import script
from tests.usage_data import claude_line, write_transcript


def test_account_key_is_the_resolved_config_dir_or_the_default(tmp_path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    (tmp_path / "link").symlink_to(work, target_is_directory=True)
    work.mkdir()
    env = {"HOME": str(home)}
    assert accounts.account_key("claude", env) == str((home / ".claude").resolve())
    assert accounts.account_key("codex", env) == str((home / ".codex").resolve())
    assert accounts.account_key("claude", {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "link")}) == (
        str(work.resolve())
    )  # a link and its target are one account
    assert accounts.account_key("codex", {**env, "CODEX_HOME": "~/elsewhere"}) == str(
        (home / "elsewhere").resolve()
    )
    # a list of config dirs (ccusage reads them all): a run uses the first
    listed = {**env, "CLAUDE_CONFIG_DIR": f" {work} , {home}"}
    assert accounts.account_key("claude", listed) == str(work.resolve())
    assert accounts.account_key("aider", {**env, "CLAUDE_CONFIG_DIR": str(work)}) == ""
    assert accounts.account_key("claude", {**env, "CLAUDE_CONFIG_DIR": ""}) == str(
        (home / ".claude").resolve()
    )


@pytest.mark.parametrize(
    ("agent", "raw", "message"),
    [
        ("aider", "/tmp", "Only claude and codex profiles have an account (a config directory); "
                          "this profile's agent is aider."),
        (None, "/tmp", "Only claude and codex profiles have an account (a config directory); "
                       "this profile's agent is none."),
        ("claude", "relative/dir", "Account directory 'relative/dir' is not an absolute path; "
                                   "give the full path of the CLAUDE_CONFIG_DIR folder."),
    ],
)  # fmt: skip
def test_an_account_dir_that_cannot_be_one_is_refused_in_one_sentence(agent, raw, message) -> None:
    with pytest.raises(ApiError) as caught:
        accounts.check_dir(agent, raw)
    assert caught.value.message == message


def test_a_missing_account_dir_says_how_to_make_it(tmp_path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ApiError) as caught:
        accounts.check_dir("codex", str(missing))
    assert caught.value.message == (
        f"Account directory {missing} does not exist; create it (sign in once with "
        f"CODEX_HOME={missing} codex) or give an existing folder."
    )
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    assert accounts.check_dir("claude", "~/work", home) == str((home / "work").resolve())


def test_a_profile_names_its_account_through_the_api(daemon, tmp_path: Path) -> None:
    work = tmp_path / "claude-work"
    work.mkdir()
    made = daemon.api.post(
        "/api/v1/profiles", {"name": "work", "copy_of": "claude", "account": str(work)}
    )
    assert made["account"] == str(work.resolve())
    assert made["env"] == {"CLAUDE_CONFIG_DIR": str(work.resolve())}  # what the run gets
    assert daemon.api.get("/api/v1/profiles/claude")["account"] is None  # the default one
    # set through env, it is checked alike
    error = api_error(lambda: daemon.api.post("/api/v1/profiles", {
        "name": "bad", "copy_of": "codex", "env": {"CODEX_HOME": str(tmp_path / "gone")},
    }))  # fmt: skip
    assert error.code is ErrorCode.INVALID  # 422
    assert error.message.startswith(f"Account directory {tmp_path / 'gone'} does not exist;")
    error = api_error(lambda: daemon.api.post(
        "/api/v1/profiles", {"name": "bad", "copy_of": "aider", "account": str(work)}
    ))  # fmt: skip
    assert (error.code, error.message) == (ErrorCode.INVALID, (
        "Only claude and codex profiles have an account (a config directory); this profile's "
        "agent is aider."
    ))  # fmt: skip
    assert [p["name"] for p in daemon.api.get("/api/v1/profiles") if not p["builtin"]] == ["work"]


@pytest.fixture
def two_accounts(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Daemon, dict[str, Path]]:
    """A daemon with a project ``demo`` and two copies of the claude profile, ``work`` and
    ``personal``, each signed in with its own config dir (the fake claude first on PATH)."""
    request.getfixturevalue("fake_bin")  # before the daemon factory copies the environment
    daemon = request.getfixturevalue("daemon_factory")()
    (tmp_path / "demo").mkdir()
    daemon.project("demo", tmp_path / "demo")
    dirs = {name: tmp_path / f"claude-{name}" for name in ("work", "personal")}
    for name, path in dirs.items():
        path.mkdir()
        daemon.api.post("/api/v1/profiles", {"name": name, "copy_of": "claude",
                                             "account": str(path)})  # fmt: skip
    return daemon, dirs


def test_an_account_budget_blocks_launches_on_that_account_not_on_the_other(
    two_accounts, tmp_path: Path
) -> None:
    daemon, dirs = two_accounts
    folder = tmp_path / "demo"

    def launch(profile: str) -> dict[str, Any]:
        steps = script(["turn", {"input_tokens": 1000, "output_tokens": 500}])
        body = {"project": "demo", "profile": profile, "prompt": "go",
                "env": {"FAKE_AGENT_SCRIPT": steps}}  # fmt: skip
        return daemon.api.post("/api/v1/runners", body)

    first = daemon.wait_state(launch("work")["id"], "exited")
    assert fake_agents.claude_transcript(dirs["work"], str(folder), first["session_id"]).exists()
    daemon.api.post("/api/v1/usage/import")  # the work dir is read: its profile names it
    report = daemon.api.get("/api/v1/usage/daily", by_account=1)
    assert [(r["account"], r["total_tokens"]) for r in report["rows"]] == [("work", 1500)]
    daemon.api.request("PUT", "/api/v1/budgets", body={
        "scope": "account:work", "period": "daily", "limit_tokens": 1000, "action": "block",
    })  # fmt: skip
    error = api_error(lambda: launch("work"))
    assert error.code is ErrorCode.BUDGET_SPENT
    assert error.message.startswith(
        "budget account:work daily is spent (1,500 / 1,000 tokens); "
    )
    other = launch("personal")  # the other account has spent nothing
    daemon.wait_state(other["id"], "exited")
    # removed by the directory as listed, through the API (its slashes quoted)
    [budget] = daemon.api.get("/api/v1/budgets")
    assert budget["shown_scope"] == "account:work"
    cli = Cli(daemon.root)
    assert cli.ok("budget", "rm", budget["scope"], "--period", "daily").startswith("removed")
    assert daemon.api.get("/api/v1/budgets") == []


def test_a_spent_stop_budget_stops_the_runs_on_its_account_only(two_accounts) -> None:
    daemon, _ = two_accounts
    daemon.api.request("PUT", "/api/v1/budgets", body={
        "scope": "account:work", "period": "daily", "limit_tokens": 1000, "action": "stop",
    })  # fmt: skip
    body = {"project": "demo", "prompt": "go", "env": {"FAKE_AGENT_SCRIPT": script(["sleep", 60])}}
    work = daemon.api.post("/api/v1/runners", {**body, "profile": "work"})["id"]
    personal = daemon.api.post("/api/v1/runners", {**body, "profile": "personal"})["id"]
    daemon.wait_state(work, "running")
    daemon.wait_state(personal, "running")
    # usage the work run reports itself is its account's
    record = {"model": "claude-sonnet-4-5-20250929", "input_tokens": 600, "output_tokens": 500}
    daemon.api.post("/api/v1/usage", {"records": [record], "runner_id": work})
    daemon.wait_state(work, "stopped")
    assert daemon.runner(personal)["state"] == "running"
    report = daemon.api.get("/api/v1/usage/daily", by_account=1)
    assert [(r["account"], r["total_tokens"]) for r in report["rows"]] == [("work", 1100)]


def test_a_sessions_log_is_found_in_its_profiles_account(db, tmp_path: Path) -> None:
    """Was: only the environment's config dirs were searched, so a run on a profile's own
    account had no transcript to read its limit from."""
    work = tmp_path / "claude-work"
    work.mkdir()
    fields = profiles.profile_fields(ProfileCreate(name="work", copy_of="claude",
                                                   account=str(work)))  # fmt: skip
    queries.create_profile("work", fields, 0.0)
    path = write_transcript(work, "-w", "s-work", [claude_line("m1", 1e9, session="s-work")])
    assert sessions.session_file("claude", "s-work") == path
    assert sessions.session_file("claude", "s-elsewhere") is None


def test_accounts_are_labelled_by_their_profile_and_found_by_any_of_its_profiles(
    db, tmp_path: Path
) -> None:
    work = tmp_path / "claude-work"
    work.mkdir()
    for name, account in (("work", str(work)), ("claude-fast", None)):
        body = ProfileCreate(name=name, copy_of="claude", account=account)
        queries.create_profile(name, profiles.profile_fields(body), 0.0)
    base = {"HOME": str(tmp_path / "home")}
    default = accounts.account_key("claude", base)
    used = [("claude", str(tmp_path / "old" / ".claude"))]  # seen in the ledger only
    found = {a.key: a for a in accounts.known(base, used)}
    assert {key: a.label for key, a in found.items()} == {
        default: "claude", str(work.resolve()): "work",
        accounts.account_key("codex", base): "codex", used[0][1]: ".claude",
    }  # fmt: skip
    assert found[default].profiles == ("claude", "claude-fast")
    listed = list(found.values())
    assert accounts.find("claude-fast", listed).key == default  # its runs use the default
    assert accounts.find(str(work), listed).label == "work"
    with pytest.raises(ApiError, match="There is no account 'aider'"):
        accounts.find("aider", listed)  # a profile without accounts names none
