"""The worktree review routes against a real daemon on a real git repository: a runner that
edits a file in its own worktree, its diff, the merge into the branch it started from (a
conflict refused with nothing changed), the discard once it stopped; the events they leave."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import api_error, wait_for
from tests.runners import test_worktrees as base
from tests.runners.test_worktrees import branches, commit_all, git

git_env = base.git_env  # an empty git config: no identity, no user hooks
# Appends a line to README.md in its folder (its worktree), then waits.
EDITOR = "import time; open('README.md', 'a').write({line!r}); time.sleep(600)"


@pytest.fixture
def repo(daemon, project_dir: Path) -> Path:
    """The project "demo", a git repository on main with one commit."""
    git(project_dir, "init", "-q")
    (project_dir / "README.md").write_text("hello\n")
    commit_all(project_dir, "first")
    daemon.project("demo", project_dir)
    return project_dir


def edit(daemon, line: str) -> dict:
    """A runner in its own worktree that appended ``line`` to README.md."""
    runner = daemon.launch(
        "demo", [sys.executable, "-c", EDITOR.format(line=line)], worktree=True
    )
    readme = Path(runner["worktree"]) / "README.md"
    wait_for(lambda: line in readme.read_text(), what="the edit")
    return runner


def events_of(daemon, runner_id: int, kind: str) -> list[dict]:
    found = daemon.api.get("/api/v1/events", since=0, limit=1000)
    return [e for e in found if e["runner_id"] == runner_id and e["type"] == kind]


def test_a_runners_edit_is_diffed_then_merged_into_its_base(daemon, repo):
    runner = edit(daemon, "from the agent\n")

    changes = daemon.api.get(f"/api/v1/runners/{runner['id']}/diff")

    assert changes["branch"] == runner["branch"] and changes["base_branch"] == "main"
    assert changes["files"] == [{"path": "README.md", "status": "M", "added": 1, "deleted": 0}]
    assert "+from the agent\n" in changes["patch"]
    assert (changes["commits"], changes["uncommitted"], changes["truncated"]) == (0, True, False)

    merged = daemon.api.post(f"/api/v1/runners/{runner['id']}/merge")

    assert merged["fast_forward"] and merged["base_branch"] == "main"
    assert merged["message"] == (
        f"Merged {runner['branch']} into main (fast-forward, now at {merged['commit'][:10]})."
    )
    assert git(repo, "rev-parse", "main").strip() == merged["commit"]
    assert (repo / "README.md").read_text() == "hello\nfrom the agent\n"
    assert git(repo, "log", "-1", "--format=%s", "main").startswith(
        f"runner {runner['id']} (demo): uncommitted work"
    )
    event = events_of(daemon, runner["id"], "runner.worktree_merged")[0]
    assert event["data"]["commit"] == merged["commit"]
    again = daemon.api.get(f"/api/v1/runners/{runner['id']}/diff")
    assert again["files"] == [] and not again["uncommitted"]


def test_a_conflicting_merge_is_refused_and_changes_nothing(daemon, repo):
    first = edit(daemon, "first agent\n")
    second = edit(daemon, "second agent\n")
    daemon.api.post(f"/api/v1/runners/{first['id']}/merge")
    before = git(repo, "rev-parse", "main", second["branch"])

    refused = api_error(lambda: daemon.api.post(f"/api/v1/runners/{second['id']}/merge"))

    assert refused.code.status == 409
    assert refused.message == (
        f"{second['branch'].capitalize()} conflicts with main in README.md; nothing was "
        f"changed: merge it by hand in {repo.resolve()}, or ask the agent to rebase."
    )
    assert git(repo, "rev-parse", "main", second["branch"]) == before
    assert git(second["worktree"], "status", "--porcelain") == " M README.md\n"
    assert events_of(daemon, second["id"], "runner.worktree_merged") == []


def test_discard_waits_for_the_stop_then_removes_the_worktree_and_branch(daemon, repo):
    runner = edit(daemon, "unwanted\n")
    daemon.wait_state(runner["id"], "running")
    refused = api_error(lambda: daemon.api.post(f"/api/v1/runners/{runner['id']}/discard"))
    assert (refused.code.status, refused.message) == (
        409, f"Runner {runner['id']} is still running in its worktree; stop it first."
    )  # fmt: skip
    daemon.api.post(f"/api/v1/runners/{runner['id']}/stop")
    daemon.wait_state(runner["id"], "stopped")

    done = daemon.api.post(f"/api/v1/runners/{runner['id']}/discard")

    assert done["message"] == (
        f"Discarded worktree {runner['worktree']} and branch {runner['branch']}."
    )
    assert not Path(runner["worktree"]).exists() and branches(repo) == ["main"]
    assert (repo / "README.md").read_text() == "hello\n"
    assert events_of(daemon, runner["id"], "runner.worktree_discarded")
    gone = api_error(lambda: daemon.api.get(f"/api/v1/runners/{runner['id']}/diff"))
    assert gone.code.status == 409 and "is gone (discarded, or removed when" in gone.message


def test_a_runner_without_a_worktree_or_no_runner_at_all(daemon, repo):
    plain = daemon.launch("demo", [sys.executable, "-c", "pass"])
    refused = api_error(lambda: daemon.api.get(f"/api/v1/runners/{plain['id']}/diff"))
    assert (refused.code.status, refused.message) == (409, (
        f"Runner {plain['id']} has no worktree of its own; launch with --worktree to review "
        "an agent's changes before they reach your branch."
    ))  # fmt: skip
    assert api_error(lambda: daemon.api.post("/api/v1/runners/999/merge")).code.status == 404
