"""Worktrees on real git repositories in the test's temp dir, never the user's git config."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from supervisor.runners import worktrees
from supervisor.runners.worktrees import Outcome, Worktree, WorktreeError

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty global config and no system config; no inherited hook variables."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(var, raising=False)


def git(cwd: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit_all(cwd: Path | str, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit: a README and a tracked ``config/settings.json``."""
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q")
    (path / "README.md").write_text("hello\n")
    (path / "config").mkdir()
    (path / "config" / "settings.json").write_text("{}\n")
    commit_all(path, "first")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "worktrees"


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def registered(repo: Path) -> list[Path]:
    listing = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [
        Path(line.removeprefix("worktree ")) for line in listing if line.startswith("worktree ")
    ]


def test_finish_without_changes_removes_worktree_and_branch(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api-7")

    assert wt.path == str(root.resolve() / "api-7")
    assert wt.branch == "stratavore/api-7"
    assert wt.base == git(repo, "rev-parse", "HEAD").strip()
    assert (Path(wt.path) / "README.md").read_text() == "hello\n"
    assert Path(wt.path) in registered(repo)
    assert "stratavore/api-7" in branches(repo)

    outcome = worktrees.finish(wt)

    assert outcome == Outcome(
        kept=False, commits=0, dirty=False, sentence=f"removed worktree {wt.path} (no changes)"
    )
    assert not Path(wt.path).exists()
    assert registered(repo) == [repo.resolve()]
    assert branches(repo) == ["main"]


def test_commit_in_worktree_keeps_it(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "README.md").write_text("changed\n")
    commit_all(wt.path, "agent's work")

    outcome = worktrees.finish(wt)

    assert outcome == Outcome(
        kept=True,
        commits=1,
        dirty=False,
        sentence=f"kept worktree {wt.path} (1 commit on stratavore/api)",
    )
    assert Path(wt.path).is_dir()
    assert "stratavore/api" in branches(repo)


def test_uncommitted_edit_keeps_it(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api", setup_files=[".env"])
    (repo / ".env").write_text("unused\n")  # made after create: not copied
    (Path(wt.path) / "config" / "settings.json").write_text('{"debug": true}\n')

    outcome = worktrees.finish(wt)

    assert (outcome.kept, outcome.commits, outcome.dirty) == (True, 0, True)
    assert outcome.sentence == f"kept worktree {wt.path} (uncommitted changes on stratavore/api)"
    assert Path(wt.path).is_dir()


def test_commits_and_untracked_file_are_both_named(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api")
    for n in range(2):
        (Path(wt.path) / f"file{n}.txt").write_text(f"{n}\n")
        commit_all(wt.path, f"work {n}")
    (Path(wt.path) / "notes" / "new.txt").parent.mkdir()
    (Path(wt.path) / "notes" / "new.txt").write_text("draft\n")

    outcome = worktrees.finish(wt)

    assert outcome.sentence == (
        f"kept worktree {wt.path} (2 commits and uncommitted changes on stratavore/api)"
    )


def test_copied_env_is_present_and_not_dirty(repo: Path, root: Path) -> None:
    (repo / ".env").write_text("TOKEN=secret\n")
    (repo / ".env").chmod(0o600)

    wt = worktrees.create(str(repo), root, "api", setup_files=[".env", "missing.txt"])

    copy = Path(wt.path) / ".env"
    assert wt.copied == (".env",)
    assert copy.read_text() == "TOKEN=secret\n"
    if os.name != "nt":
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    outcome = worktrees.finish(wt)
    assert (outcome.kept, outcome.dirty) == (False, False)
    assert not Path(wt.path).exists()


def test_glob_setup_files_keep_their_folders(repo: Path, root: Path) -> None:
    (repo / ".env.local").write_text("A=1\n")
    (repo / ".env.test").write_text("B=2\n")
    (repo / "config" / "local.json").write_text('{"local": true}\n')
    (repo / "keys").mkdir()  # untracked folder: git status would list only "keys/"
    (repo / "keys" / "dev.pem").write_text("KEY\n")
    (repo / "config" / "settings.json").write_text('{"edited": true}\n')  # tracked: not copied
    (repo / "README.md").write_text("edited\n")  # tracked: not copied

    wt = worktrees.create(
        str(repo),
        root,
        "api",
        setup_files=[".env.*", "config/*.json", "keys/*", "README.md", ".git/config", ".git"],
    )

    assert wt.copied == (".env.local", ".env.test", "config/local.json", "keys/dev.pem")
    assert (Path(wt.path) / "config" / "local.json").read_text() == '{"local": true}\n'
    assert (Path(wt.path) / "config" / "settings.json").read_text() == "{}\n"
    assert (Path(wt.path) / "README.md").read_text() == "hello\n"
    assert (Path(wt.path) / ".git").is_file()  # still git's own pointer, not the project's .git
    assert not worktrees.finish(wt).kept


@pytest.mark.parametrize("pattern", ["../secrets.env", "config/../../x", "/etc/hosts", ""])
def test_setup_file_outside_project_is_refused(repo: Path, root: Path, pattern: str) -> None:
    with pytest.raises(WorktreeError, match="is not a relative path inside the project folder"):
        worktrees.create(str(repo), root, "api", setup_files=[pattern])

    assert branches(repo) == ["main"]
    assert registered(repo) == [repo.resolve()]


def test_failed_copy_removes_the_half_made_worktree(
    repo: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / ".env").write_text("A=1\n")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(worktrees.shutil, "copy2", refuse)

    with pytest.raises(
        WorktreeError, match=r"could not copy setup files into .*: Permission denied"
    ):
        worktrees.create(str(repo), root, "api", setup_files=[".env"])

    assert not (root / "api").exists()
    assert branches(repo) == ["main"]


def test_not_a_repository(tmp_path: Path, root: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()

    with pytest.raises(WorktreeError) as caught:
        worktrees.create(str(folder), root, "api")

    assert str(caught.value) == (
        f"{folder.resolve()} is not inside a git repository; "
        "launch without --worktree or run `git init` there."
    )


def test_repository_without_commits(tmp_path: Path, root: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    git(folder, "init", "-q")

    with pytest.raises(WorktreeError, match="has no commits yet; make a first commit"):
        worktrees.create(str(folder), root, "api")


def test_git_not_on_path(repo: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(WorktreeError) as caught:
        worktrees.create(str(repo), root, "api")

    assert str(caught.value) == (
        "git was not found on PATH; install git or launch without --worktree."
    )


def test_git_failure_carries_gits_message(repo: Path, root: Path) -> None:
    with pytest.raises(WorktreeError, match=r"^git worktree failed in .*: fatal: .*branch name"):
        worktrees.create(str(repo), root, "a..b")


def test_git_variables_from_a_hook_are_ignored(
    repo: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisor started from a git hook inherits GIT_DIR; the project's repo must win."""
    monkeypatch.setenv("GIT_DIR", str(root / "elsewhere.git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(root / "elsewhere.index"))

    wt = worktrees.create(str(repo), root, "api")

    assert wt.repo == str(repo.resolve())
    assert worktrees.finish(wt).sentence.startswith("removed worktree")


def test_taken_branch_name_gets_a_suffix(repo: Path, root: Path) -> None:
    git(repo, "branch", "stratavore/api")

    wt = worktrees.create(str(repo), root, "api")

    assert (wt.branch, Path(wt.path).name) == ("stratavore/api-2", "api-2")
    assert worktrees.create(str(repo), root, "api").branch == "stratavore/api-3"


def test_taken_path_gets_a_suffix(repo: Path, root: Path) -> None:
    (root / "api").mkdir(parents=True)

    wt = worktrees.create(str(repo), root, "api")

    assert (wt.branch, Path(wt.path).name) == ("stratavore/api-2", "api-2")


def test_project_in_subfolder_works_in_the_same_subfolder(repo: Path, root: Path) -> None:
    (repo / "config" / ".env").write_text("SUB=1\n")

    wt = worktrees.create(str(repo / "config"), root, "api", setup_files=[".env"])

    assert wt.repo == str(repo.resolve())
    assert wt.path == str(root.resolve() / "api")
    assert worktrees.cwd_in(wt, str(repo / "config")) == str(Path(wt.path) / "config")
    assert worktrees.cwd_in(wt, str(repo)) == wt.path
    assert wt.copied == ("config/.env",)
    assert (Path(wt.path) / "config" / ".env").read_text() == "SUB=1\n"
    assert not worktrees.finish(wt).dirty


def test_untracked_project_subfolder_exists_in_worktree(repo: Path, root: Path) -> None:
    (repo / "scratch").mkdir()

    wt = worktrees.create(str(repo / "scratch"), root, "api")

    assert Path(worktrees.cwd_in(wt, str(repo / "scratch"))).is_dir()
    assert worktrees.finish(wt).sentence.startswith("removed worktree")


def test_finish_after_worktree_deleted_by_hand(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api")
    shutil.rmtree(wt.path)

    outcome = worktrees.finish(wt)

    assert outcome == Outcome(
        kept=False,
        commits=0,
        dirty=False,
        sentence=(
            f"worktree {wt.path} was already gone; pruned it and deleted branch stratavore/api"
        ),
    )
    assert registered(repo) == [repo.resolve()]
    assert branches(repo) == ["main"]


def test_finish_after_worktree_with_commits_deleted_by_hand_keeps_branch(
    repo: Path, root: Path
) -> None:
    wt = worktrees.create(str(repo), root, "api")
    (Path(wt.path) / "work.txt").write_text("done\n")
    commit_all(wt.path, "work")
    shutil.rmtree(wt.path)

    outcome = worktrees.finish(wt)

    assert (outcome.kept, outcome.commits) == (False, 1)
    assert outcome.sentence.endswith("pruned it and kept branch stratavore/api (1 commit)")
    assert "stratavore/api" in branches(repo)
    assert registered(repo) == [repo.resolve()]


def test_finish_when_repository_is_gone(repo: Path, root: Path) -> None:
    wt = worktrees.create(str(repo), root, "api")
    shutil.rmtree(repo)

    outcome = worktrees.finish(wt)

    assert not outcome.kept
    assert outcome.sentence == (
        f"repository {wt.repo} is gone, so worktree {wt.path} could not be cleaned up"
    )


def test_json_round_trip() -> None:
    wt = Worktree(
        repo="/r", path="/d/api", branch="stratavore/api", base="a" * 40, copied=(".env", "c/x")
    )

    assert Worktree.from_json(wt.to_json()) == wt
    assert Worktree.from_json({k: v for k, v in wt.to_json().items() if k != "copied"}).copied == ()
