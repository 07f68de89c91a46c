"""``stratavore diff``, ``merge`` and ``discard`` as a user types them, against a real daemon
on a real git repository (the routes behind them: tests/api/test_worktrees.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.api.test_worktrees import edit, repo  # noqa: F401  (repo: a fixture)
from tests.cli.test_e2e import Cli
from tests.conftest import wait_for
from tests.runners.test_worktrees import branches, git


def test_diff_shows_the_patch_the_stat_and_json(daemon, repo):  # noqa: F811
    runner = edit(daemon, "from the agent\n")
    cli = Cli(daemon.root)

    patch = cli("diff", runner["id"])
    stat = cli("diff", runner["id"], "--stat")
    as_json = cli("diff", runner["id"], "--json")

    assert patch.returncode == 0, patch.stderr
    assert "+from the agent" in patch.stdout and "README.md" in patch.stdout
    assert stat.returncode == 0, stat.stderr
    lines = stat.stdout.splitlines()
    assert lines[0] == (
        f"runner {runner['id']}: {runner['branch']} against main: 0 commit(s), uncommitted "
        "edits, 1 file(s), +1 -0"
    )
    assert lines[2].split() == ["modified", "+1", "-0", "README.md"]
    assert json.loads(as_json.stdout)["files"] == [
        {"path": "README.md", "status": "M", "added": 1, "deleted": 0}
    ]


def test_merge_puts_the_edit_on_the_base_branch(daemon, repo):  # noqa: F811
    runner = edit(daemon, "from the agent\n")

    done = Cli(daemon.root)("merge", runner["id"])

    assert done.returncode == 0, done.stderr
    tip = git(repo, "rev-parse", "main").strip()
    assert done.stdout == (
        f"runner {runner['id']}: Merged {runner['branch']} into main (fast-forward, now at "
        f"{tip[:10]}). (main is now {tip[:12]})\n"
    )
    assert (repo / "README.md").read_text() == "hello\nfrom the agent\n"


def test_discard_asks_first_then_removes_the_worktree_and_branch(daemon, repo):  # noqa: F811
    runner = edit(daemon, "not wanted\n")
    cli = Cli(daemon.root)

    running = cli("discard", runner["id"], "--yes")
    assert running.returncode != 0
    assert re.fullmatch(
        f"stratavore: Runner {runner['id']} is still (starting|running) in its worktree; "
        "stop it first.\n",
        running.stderr,
    )
    daemon.api.post(f"/api/v1/runners/{runner['id']}/stop", {"force": True})
    wait_for(lambda: daemon.runner(runner["id"])["state"] == "stopped", what="the stop")
    unasked = cli("discard", runner["id"])  # no terminal to ask in, no --yes: nothing done
    assert unasked.returncode == 2
    assert "add --yes" in unasked.stderr
    assert Path(runner["worktree"]).exists()

    done = cli("discard", runner["id"], "--yes")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"runner {runner['id']}: ")
    assert not Path(runner["worktree"]).exists()
    assert runner["branch"] not in branches(repo)


def test_a_runner_without_a_worktree_is_refused_in_one_sentence(daemon, repo):  # noqa: F811
    runner = daemon.launch("demo", ["sleep", "600"])

    refused = Cli(daemon.root)("diff", runner["id"])

    assert refused.returncode != 0
    assert refused.stderr == (
        f"stratavore: Runner {runner['id']} has no worktree of its own; launch with --worktree "
        "to review an agent's changes before they reach your branch.\n"
    )
