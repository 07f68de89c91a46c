"""Reviewing a runner's worktree on real git repositories: its changes (committed and not)
with their counts and diff, merged into the branch it started from (fast-forward, merge
commit, refused on a conflict with nothing changed), or discarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.runners import review, worktrees
from supervisor.runners.review import FileChange
from supervisor.runners.worktrees import Worktree, WorktreeError
from tests.runners import test_worktrees as base
from tests.runners.test_worktrees import branches, commit_all, git, registered

# the real-repository fixtures of the worktree tests (an empty git config, a repo, a root)
git_env, repo, root = base.git_env, base.repo, base.root


def state(repo: Path, wt: Worktree) -> tuple[str, str, str, str, bool]:
    """What a refused merge must leave as it was: both branches' tips, both checkouts'
    status, and whether a merge is under way in the project."""
    return (
        git(repo, "rev-parse", "refs/heads/main"),
        git(repo, "rev-parse", f"refs/heads/{wt.branch}"),
        git(repo, "status", "--porcelain"),
        git(wt.path, "status", "--porcelain"),
        (repo / ".git" / "MERGE_HEAD").exists(),
    )


def test_diff_lists_committed_and_uncommitted_changes_but_not_setup_files(repo, root):
    (repo / "logo.png").write_bytes(b"\x89PNG\0\1\2")
    commit_all(repo, "logo")
    (repo / ".env").write_text("SECRET=1\n")  # untracked: copied in, never part of the work
    wt = worktrees.create(str(repo), root, "api", setup_files=[".env"])
    assert wt.base_branch == "main"
    tree = Path(wt.path)
    (tree / "README.md").write_text("hello\nworld\n")
    git(tree, "commit", "-q", "-a", "-m", "say world")  # the tracked files only
    (tree / "config" / "settings.json").unlink()  # uncommitted: deleted, ...
    (tree / "notes.txt").write_text("a\nb\nc\n")  # ... a new file, ...
    (tree / "logo.png").write_bytes(b"\x89PNG\0\3")  # ... a binary edit

    changes = review.diff(wt)

    assert (changes.branch, changes.base_branch, changes.commits) == (wt.branch, "main", 1)
    assert changes.uncommitted and not changes.truncated
    assert changes.base == wt.base
    assert changes.files == (
        FileChange("README.md", "M", 1, 0),
        FileChange("config/settings.json", "D", 0, 1),
        FileChange("logo.png", "M", None, None),
        FileChange("notes.txt", "A", 3, 0),
    )
    assert "+world\n" in changes.patch and "+++ b/notes.txt\n" in changes.patch
    assert ".env" not in changes.patch
    assert wt.copied == (".env",)
    assert git(tree, "status", "--porcelain").count("\n") == 4  # its own index untouched
    assert len(review.diff(wt, max_patch=10).patch) == 10
    assert review.diff(wt, max_patch=10).truncated


def test_diff_is_against_where_the_branch_left_a_base_that_moved_on(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (repo / "later.txt").write_text("on main after the fork\n")
    commit_all(repo, "later")
    (Path(wt.path) / "mine.txt").write_text("mine\n")
    assert [f.path for f in review.diff(wt).files] == ["mine.txt"]


def test_merge_fast_forwards_the_base_with_the_uncommitted_work_committed(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "README.md").write_text("hello\nfrom the agent\n")

    merged = review.merge(wt, "runner 7 (demo)")

    assert merged.fast_forward
    assert merged.sentence == (
        f"merged {wt.branch} into main (fast-forward, now at {merged.commit[:10]})"
    )
    assert git(repo, "rev-parse", "main").strip() == merged.commit
    assert git(repo, "rev-parse", wt.branch).strip() == merged.commit
    assert (repo / "README.md").read_text() == "hello\nfrom the agent\n"  # the checkout follows
    message = git(repo, "log", "-1", "--format=%an|%s", "main")
    assert message == "Stratavore|runner 7 (demo): uncommitted work, committed by Stratavore " \
                      "to merge it\n"  # fmt: skip
    assert git(wt.path, "status", "--porcelain") == ""  # its index follows, its files stay
    assert (Path(wt.path) / "README.md").read_text() == "hello\nfrom the agent\n"


def test_merge_makes_a_merge_commit_when_the_base_moved_on(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "mine.txt").write_text("mine\n")
    commit_all(Path(wt.path), "mine")
    (repo / "theirs.txt").write_text("theirs\n")
    commit_all(repo, "theirs")

    merged = review.merge(wt, "runner 7 (demo)")

    assert not merged.fast_forward and "merge commit" in merged.sentence
    parents = git(repo, "log", "-1", "--format=%P", "main").split()
    assert len(parents) == 2 and parents[1] == git(repo, "rev-parse", wt.branch).strip()
    assert (repo / "mine.txt").exists() and (repo / "theirs.txt").exists()


def test_a_conflict_is_refused_in_one_sentence_and_nothing_changes(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "README.md").write_text("the agent's hello\n")  # uncommitted
    (repo / "README.md").write_text("the user's hello\n")
    commit_all(repo, "mine")
    before = state(repo, wt)

    with pytest.raises(WorktreeError) as refused:
        review.merge(wt, "runner 7 (demo)")

    assert str(refused.value) == (
        f"{wt.branch} conflicts with main in README.md; nothing was changed: merge it by hand "
        f"in {repo.resolve()}, or ask the agent to rebase."
    )
    assert state(repo, wt) == before


def test_edits_in_the_base_checkout_in_the_way_refuse_the_merge_and_change_nothing(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "README.md").write_text("the agent's\n")
    commit_all(Path(wt.path), "agent")
    (repo / "README.md").write_text("the user's, not committed\n")
    before = state(repo, wt)

    with pytest.raises(WorktreeError, match=r"could not be merged into main in .*nothing was"):
        review.merge(wt, "runner 7 (demo)")

    assert state(repo, wt) == before
    assert (repo / "README.md").read_text() == "the user's, not committed\n"


def test_a_base_not_checked_out_anywhere_is_merged_without_a_checkout(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    git(repo, "switch", "-q", "-c", "elsewhere")
    (Path(wt.path) / "mine.txt").write_text("mine\n")
    first = review.merge(wt, "runner 7 (demo)")
    assert first.fast_forward and git(repo, "rev-parse", "main").strip() == first.commit
    git(repo, "switch", "-q", "main")
    (repo / "theirs.txt").write_text("theirs\n")
    commit_all(repo, "theirs")
    git(repo, "switch", "-q", "elsewhere")
    (Path(wt.path) / "more.txt").write_text("more\n")

    second = review.merge(wt, "runner 7 (demo)")

    assert not second.fast_forward
    files = git(repo, "ls-tree", "--name-only", "main").split()
    assert {"mine.txt", "more.txt", "theirs.txt"} <= set(files)
    assert not (repo / "mine.txt").exists()  # the checkout on "elsewhere" is left alone


def test_merge_refuses_nothing_to_merge_and_an_unrecorded_base(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    with pytest.raises(WorktreeError, match=f"{wt.branch} has nothing that is not on main"):
        review.merge(wt, "runner 7 (demo)")
    old = Worktree.from_json({k: v for k, v in wt.to_json().items() if k != "base_branch"})
    assert old.base_branch is None
    with pytest.raises(WorktreeError, match="merge it by hand in "):
        review.merge(old, "runner 7 (demo)")


def test_discard_removes_the_worktree_and_its_branch_whatever_they_hold(repo, root):
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "mine.txt").write_text("mine\n")
    commit_all(Path(wt.path), "mine")
    (Path(wt.path) / "more.txt").write_text("uncommitted\n")

    assert review.discard(wt) == f"discarded worktree {wt.path} and branch {wt.branch}"

    assert not Path(wt.path).exists()
    assert registered(repo) == [repo.resolve()] and branches(repo) == ["main"]
    with pytest.raises(WorktreeError, match="is gone"):
        review.diff(wt)
