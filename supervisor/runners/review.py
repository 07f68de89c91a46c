"""Reviewing a runner's worktree: what it changed (:func:`diff`), its work merged into the
branch it started from (:func:`merge`), or thrown away (:func:`discard`). Each answers in one
sentence, and a refusal (a conflict, a branch gone) changes nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from supervisor.runners.worktrees import Worktree, WorktreeError, checked, git, run_git

MAX_PATCH = 4 * 1024 * 1024  # characters of unified diff returned; the rest is cut, and said so
# Who a commit of the worktree's uncommitted work is by when git knows nobody (a fresh machine).
FALLBACK_IDENTITY = {"name": "Stratavore", "email": "stratavore@localhost"}


@dataclasses.dataclass(frozen=True)
class FileChange:
    """One file the runner changed: its path, lines added and deleted (None for a binary
    file) and how (A added, M modified, D deleted, T type changed)."""

    path: str
    status: str
    added: int | None
    deleted: int | None


@dataclasses.dataclass(frozen=True)
class Changes:
    """What the runner's branch and worktree hold that its base does not: committed work and
    uncommitted edits alike (new files too; the copied setup files and ignored files not)."""

    base: str  # the commit compared against: where the branch left its base branch
    base_branch: str | None
    branch: str
    commits: int  # commits on the branch not on its base
    uncommitted: bool  # edits not committed yet (a merge commits them first)
    files: tuple[FileChange, ...]
    patch: str  # unified diff, cut at MAX_PATCH characters
    truncated: bool


@dataclasses.dataclass(frozen=True)
class Merged:
    """What :func:`merge` did, and the sentence to show for it."""

    commit: str  # the base branch's new tip
    fast_forward: bool
    sentence: str


def _snapshot_tree(wt: Worktree) -> str:
    """The tree of the worktree as it is now (its committed and uncommitted work, new files
    included, the copied setup files not), written through a temporary index so the
    worktree's own index is left alone."""
    with tempfile.TemporaryDirectory(prefix="stratavore-index-") as folder:
        env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
        git(["read-tree", "HEAD"], wt.path, env)
        exclude = [f":(top,exclude,literal){path}" for path in wt.copied]
        git(["add", "-A", "--", ":/", *exclude], wt.path, env)
        return git(["write-tree"], wt.path, env).strip()


def _fork_point(wt: Worktree, head: str) -> str:
    """Where the branch left its base branch (the base may have moved on since), else the
    commit it was made from."""
    if wt.base_branch and _has_branch(wt.repo, wt.base_branch):
        done = run_git(["merge-base", f"refs/heads/{wt.base_branch}", head], wt.repo)
        if done.returncode == 0:
            return done.stdout.strip()
    return wt.base


def _has_branch(repo: str, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return run_git(["rev-parse", "--verify", "--quiet", ref], repo).returncode == 0


def _exists(wt: Worktree) -> None:
    if not (Path(wt.repo) / ".git").exists():
        raise WorktreeError(f"the repository {wt.repo} is gone, so its worktree cannot be used.")
    if not Path(wt.path).is_dir():
        raise WorktreeError(
            f"the worktree {wt.path} is gone (discarded, or removed when its run ended without "
            "changes)."
        )


def diff(wt: Worktree, max_patch: int = MAX_PATCH) -> Changes:
    """The files the runner changed with their +/- counts, and the unified diff, against where
    its branch left its base branch."""
    _exists(wt)
    head = git(["rev-parse", "HEAD"], wt.path).strip()
    tree = _snapshot_tree(wt)
    base = _fork_point(wt, head)
    files = _changed_files(wt.path, base, tree)
    patch = git(["diff", "--no-renames", "--no-color", "--no-ext-diff", base, tree], wt.path)
    commits = int(git(["rev-list", "--count", f"{base}..{head}"], wt.path).strip())
    uncommitted = tree != git(["rev-parse", "HEAD^{tree}"], wt.path).strip()
    return Changes(
        base=base,
        base_branch=wt.base_branch,
        branch=wt.branch,
        commits=commits,
        uncommitted=uncommitted,
        files=files,
        patch=patch[:max_patch],
        truncated=len(patch) > max_patch,
    )


def _changed_files(cwd: str, base: str, tree: str) -> tuple[FileChange, ...]:
    args = ["diff", "--no-renames", "-z", base, tree]
    status = git([*args[:3], "--name-status", *args[3:]], cwd).split("\0")
    how = {path: kind[:1] for kind, path in zip(status[::2], status[1::2], strict=False)}
    counts = git([*args[:3], "--numstat", *args[3:]], cwd).split("\0")
    files = []
    for entry in counts:
        if not entry:
            continue
        added, deleted, path = entry.split("\t", 2)
        binary = added == "-"
        files.append(FileChange(
            path=path,
            status=how.get(path, "M"),
            added=None if binary else int(added),
            deleted=None if binary else int(deleted),
        ))  # fmt: skip
    return tuple(files)


def _identity(cwd: str) -> dict[str, str]:
    """The committer for a commit of the worktree's work: the user's own git identity, or
    :data:`FALLBACK_IDENTITY` when git has none (else git refuses to commit)."""
    env = {}
    for part, fallback in FALLBACK_IDENTITY.items():
        if not run_git(["config", f"user.{part}"], cwd).stdout.strip():
            env[f"GIT_AUTHOR_{part.upper()}"] = env[f"GIT_COMMITTER_{part.upper()}"] = fallback
    return env


def _checkout_of(repo: str, branch: str) -> str | None:
    """The worktree (the main checkout or another) that has ``branch`` checked out."""
    path = None
    for line in git(["worktree", "list", "--porcelain"], repo).splitlines():
        if line.startswith("worktree "):
            path = line.removeprefix("worktree ")
        elif line == f"branch refs/heads/{branch}":
            return path
    return None


def merge(wt: Worktree, title: str) -> Merged:
    """Merge the runner's work into the branch it started from: its uncommitted edits are
    committed on its branch first (``title`` says whose work it is), then the base branch is
    fast-forwarded, or gets a merge commit. A conflict is refused with one sentence, and
    nothing is changed."""
    _exists(wt)
    base = wt.base_branch
    if not base:
        raise WorktreeError(
            f"the branch {wt.branch} was made from a detached HEAD (or before Stratavore "
            f"recorded it): merge it by hand in {wt.repo}."
        )
    if not _has_branch(wt.repo, base):
        raise WorktreeError(f"the branch {base} that {wt.branch} started from no longer exists.")
    on = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], wt.path).stdout.strip()
    if on != wt.branch:
        raise WorktreeError(
            f"the worktree {wt.path} is no longer on its branch {wt.branch} (it is on "
            f"{on or 'a detached HEAD'}); merge by hand in {wt.repo}."
        )
    head = git(["rev-parse", "HEAD"], wt.path).strip()
    tree = _snapshot_tree(wt)
    work = head
    if tree != git(["rev-parse", "HEAD^{tree}"], wt.path).strip():
        message = f"{title}: uncommitted work, committed by Stratavore to merge it"
        work = git(["commit-tree", tree, "-p", head, "-m", message], wt.path,
                    _identity(wt.path)).strip()  # fmt: skip
    tip = git(["rev-parse", f"refs/heads/{base}"], wt.repo).strip()
    if run_git(["merge-base", "--is-ancestor", work, tip], wt.repo).returncode == 0:
        raise WorktreeError(f"{wt.branch} has nothing that is not on {base} already.")
    merged = run_git(["merge-tree", "--write-tree", "--name-only", "--no-messages", tip, work],
                  wt.repo)  # fmt: skip
    if merged.returncode == 1:
        conflicted = sorted(set(merged.stdout.splitlines()[1:]) - {""})
        raise WorktreeError(
            f"{wt.branch} conflicts with {base} in {', '.join(conflicted) or 'some files'}; "
            f"nothing was changed: merge it by hand in {wt.repo}, or ask the agent to rebase."
        )
    checked(merged, wt.repo)
    fast_forward = run_git(["merge-base", "--is-ancestor", tip, work], wt.repo).returncode == 0
    into = _checkout_of(wt.repo, base)
    message = f"Merge {wt.branch} ({title}) into {base}"
    if into is not None:
        _merge_in_checkout(into, work, message, wt.branch, base)
    elif fast_forward:
        git(["update-ref", f"refs/heads/{base}", work, tip], wt.repo)
    else:
        new = git(["commit-tree", merged.stdout.split()[0], "-p", tip, "-p", work, "-m",
                    message], wt.repo, _identity(wt.repo)).strip()  # fmt: skip
        git(["update-ref", f"refs/heads/{base}", new, tip], wt.repo)
    if work != head:  # the branch takes the commit of its uncommitted work, the files stay
        git(["update-ref", f"refs/heads/{wt.branch}", work, head], wt.repo)
        git(["reset", "--quiet"], wt.path)
    new_tip = git(["rev-parse", f"refs/heads/{base}"], wt.repo).strip()
    how = "fast-forward" if fast_forward else "merge commit"
    sentence = f"merged {wt.branch} into {base} ({how}, now at {new_tip[:10]})"
    return Merged(commit=new_tip, fast_forward=fast_forward, sentence=sentence)


def _merge_in_checkout(path: str, work: str, message: str, branch: str, base: str) -> None:
    """``git merge`` in the checkout that has the base branch: its own files follow. Git
    refuses when the checkout's uncommitted edits are in the way; a merge that stops half
    way is aborted, so nothing is changed."""
    done = run_git(["merge", "--no-edit", "-m", message, work], path, _identity(path))
    if done.returncode == 0:
        return
    if run_git(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"], path).returncode == 0:
        run_git(["merge", "--abort"], path)
    lines = (done.stderr or done.stdout).strip().splitlines()
    why = next((line for line in lines if line.startswith(("error:", "fatal:"))), None)
    raise WorktreeError(
        f"{branch} could not be merged into {base} in {path}"
        + (f" ({why.removeprefix('error: ').removeprefix('fatal: ')})" if why else "")
        + "; nothing was changed: commit or stash the edits there, then merge again."
    )


def discard(wt: Worktree) -> str:
    """Remove the worktree and delete its branch, whatever they hold; the sentence."""
    if not (Path(wt.repo) / ".git").exists():
        raise WorktreeError(f"the repository {wt.repo} is gone; there is nothing to discard.")
    if Path(wt.path).exists():
        git(["worktree", "remove", "--force", wt.path], wt.repo)
    else:
        git(["worktree", "prune"], wt.repo)
    if _has_branch(wt.repo, wt.branch):
        git(["branch", "-D", wt.branch], wt.repo)
    return f"discarded worktree {wt.path} and branch {wt.branch}"
