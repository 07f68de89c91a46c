"""A git worktree per agent run, so several agents in one project don't trample each other.

Opt-in: the runner works on a new branch ``stratavore/<name>`` in its own checkout under the
supervisor's data dir. Untracked setup files the agent needs (``.env``) are copied in from the
project. When the run ends, the worktree is removed unless it holds work (commits on the branch
or uncommitted changes); then it is kept and the sentence tells the user where.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePath

from supervisor.core.ownprocess import user_umask

GIT_TIMEOUT = 60.0
# Set when we run inside a git hook: they would point git at that repository, not at our cwd.
_REPO_LOCATING_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")


class WorktreeError(Exception):
    """Why a worktree could not be made or removed, in one sentence for the user (what was wrong,
    what to do)."""


@dataclasses.dataclass(frozen=True)
class Worktree:
    """A worktree made by :func:`create`; ``copied`` is relative to the worktree root."""

    repo: str  # the repository's top-level directory (of the project folder)
    path: str  # the new worktree directory
    branch: str  # e.g. "stratavore/api-7"
    base: str  # full sha of the commit the branch started from
    copied: tuple[str, ...] = ()  # setup files copied in (relative paths, posix separators)
    base_branch: str | None = None  # the branch the project was on (None: detached, or older)

    def to_json(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "copied": list(self.copied)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Worktree:
        copied = data.get("copied")
        return cls(
            repo=str(data["repo"]),
            path=str(data["path"]),
            branch=str(data["branch"]),
            base=str(data["base"]),
            copied=tuple(str(p) for p in copied) if isinstance(copied, list | tuple) else (),
            base_branch=str(data["base_branch"]) if data.get("base_branch") else None,
        )


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What :func:`finish` did with a worktree, and the sentence to show for it."""

    kept: bool
    commits: int  # commits on the branch not in base
    dirty: bool  # uncommitted changes (ignoring the copied setup files)
    sentence: str


def _run(
    args: Sequence[str], cwd: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """git ``args`` in ``cwd`` (``env``: variables set for this call only)."""
    git = shutil.which("git")
    if git is None:
        raise WorktreeError("git was not found on PATH; install git or launch without --worktree.")
    environ = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATING_VARS}
    environ.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    environ.update(env or {})
    try:
        return subprocess.run(
            [git, *args],
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=GIT_TIMEOUT,
            # git writes into the user's repository: with the user's umask, not the daemon's
            umask=-1 if os.name == "nt" else user_umask(),
        )
    except subprocess.TimeoutExpired as exc:
        raise WorktreeError(
            f"git {args[0]} took longer than {GIT_TIMEOUT:g} s in {cwd}; try again."
        ) from exc
    except OSError as exc:
        raise WorktreeError(f"could not run git in {cwd}: {exc.strerror}.") from exc


def _git(args: Sequence[str], cwd: str | Path, env: dict[str, str] | None = None) -> str:
    """git's stdout, or WorktreeError with git's own first line of complaint."""
    return _checked(_run(args, cwd, env), cwd)


def _checked(done: subprocess.CompletedProcess[str], cwd: str | Path) -> str:
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # progress lines ("Preparing worktree ...") can come before the one that says why
        errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
        why = (errors or lines or [f"exit status {done.returncode}"])[0]
        raise WorktreeError(f"git {done.args[1]} failed in {cwd}: {why}")
    return done.stdout


def _toplevel(project: Path) -> Path:
    done = _run(["rev-parse", "--show-toplevel"], project)
    if done.returncode != 0 and "not a git repository" in done.stderr:
        raise WorktreeError(
            f"{project} is not inside a git repository; "
            "launch without --worktree or run `git init` there."
        )
    return Path(_checked(done, project).strip()).resolve()


def _subfolder(repo: Path, project: Path) -> Path:
    try:
        return project.resolve().relative_to(repo)
    except ValueError:
        raise WorktreeError(f"{project} is not inside the repository {repo}.") from None


def cwd_in(wt: Worktree, project_path: str) -> str:
    """The folder inside the worktree that matches ``project_path`` in the project checkout."""
    return str(Path(wt.path) / _subfolder(Path(wt.repo).resolve(), Path(project_path)))


def _setup_sources(project: Path, patterns: Sequence[str]) -> list[Path]:
    """The setup files that exist, relative to the project; refuses patterns outside it."""
    found: dict[Path, None] = {}  # ordered and without duplicates when patterns overlap
    for pattern in patterns:
        pure = PurePath(pattern)
        if not pattern.strip() or pure.anchor or ".." in pure.parts:
            raise WorktreeError(
                f"setup file {pattern!r} is not a relative path inside the project folder; "
                "fix it in the agent profile."
            )
        for match in sorted(project.glob(pattern)):
            rel = match.relative_to(project)
            if ".git" not in rel.parts and match.is_file():
                found[rel] = None
    return list(found)


def _free_name(repo: Path, root: Path, name: str) -> tuple[str, Path]:
    """The first ``stratavore/<name>[-N]`` branch and ``root/<name>[-N]`` path not yet taken."""
    refs = set(_git(["for-each-ref", "--format=%(refname)", "refs/heads/"], repo).splitlines())
    listing = _git(["worktree", "list", "--porcelain"], repo).splitlines()
    registered = {
        Path(line.removeprefix("worktree ")) for line in listing if line.startswith("worktree ")
    }
    n = 1
    while True:
        suffix = "" if n == 1 else f"-{n}"
        branch, path = f"stratavore/{name}{suffix}", root / f"{name}{suffix}"
        if f"refs/heads/{branch}" not in refs and path not in registered and not path.exists():
            return branch, path
        n += 1


def create(project_path: str, root: Path, name: str, setup_files: Sequence[str] = ()) -> Worktree:
    """A new worktree at ``root/name`` on a new branch from the project's HEAD, with the
    project's existing setup files copied into the matching folder."""
    project = Path(project_path).resolve()
    if not project.is_dir():
        raise WorktreeError(f"project folder {project_path} does not exist; check its path.")
    if name in {"", ".", ".."} or Path(name).name != name:
        raise WorktreeError(f"worktree name {name!r} must be a single folder name.")
    sources = _setup_sources(project, setup_files)
    repo = _toplevel(project)
    head = _run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo)
    if head.returncode != 0:
        raise WorktreeError(
            f"the repository {repo} has no commits yet; "
            "make a first commit or launch without --worktree."
        )
    base = head.stdout.strip()
    on = _run(["symbolic-ref", "--quiet", "--short", "HEAD"], project)
    base_branch = on.stdout.strip() if on.returncode == 0 else None
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir's, kept private
    except OSError as exc:
        raise WorktreeError(
            f"could not create the worktree folder {root}: {exc.strerror}."
        ) from exc
    branch, path = _free_name(repo, root.resolve(), name)
    _git(["worktree", "add", "-b", branch, str(path), base], repo)
    wt = Worktree(repo=str(repo), path=str(path), branch=branch, base=base, base_branch=base_branch)
    subfolder = _subfolder(repo, project)
    copied: list[str] = []
    try:
        # git does not check out empty or untracked folders; the agent's cwd must exist anyway
        (path / subfolder).mkdir(parents=True, exist_ok=True)
        for rel in sources:
            dest = path / subfolder / rel
            if dest.exists() or dest.is_symlink():
                continue  # tracked on the branch: the checkout wins over the project's copy
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project / rel, dest)
            copied.append((subfolder / rel).as_posix())
    except OSError as exc:
        _remove(wt)  # half-set-up: the agent must not start in it
        raise WorktreeError(
            f"could not copy setup files into {path}: {exc.strerror or exc}; "
            "check the files' permissions or the agent profile's setup files."
        ) from exc
    return dataclasses.replace(wt, copied=tuple(copied))


def _commits(wt: Worktree) -> int:
    out = _git(["rev-list", "--count", f"{wt.base}..refs/heads/{wt.branch}", "--"], wt.repo)
    return int(out.strip())


def _dirty(wt: Worktree) -> bool:
    # -z: paths unquoted; all: each untracked file, not just its folder, to match `copied`
    out = _git(["status", "--porcelain", "-z", "--untracked-files=all"], wt.path)
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            next(entries, None)  # a rename or copy is followed by its source path
        if not (status == "??" and path in wt.copied):
            return True
    return False


def _remove(wt: Worktree) -> None:
    _git(["worktree", "remove", "--force", wt.path], wt.repo)
    _git(["branch", "-D", wt.branch], wt.repo)


def finish(wt: Worktree) -> Outcome:
    """Remove the worktree and its branch if the agent left no work in them, else keep both."""
    if not (Path(wt.repo) / ".git").exists():
        sentence = f"repository {wt.repo} is gone, so worktree {wt.path} could not be cleaned up"
        return Outcome(kept=False, commits=0, dirty=False, sentence=sentence)
    if not Path(wt.path).exists():
        _git(["worktree", "prune"], wt.repo)
        ref = f"refs/heads/{wt.branch}"
        if _run(["rev-parse", "--verify", "--quiet", ref], wt.repo).returncode != 0:
            sentence = f"worktree {wt.path} was already gone; pruned it"
            return Outcome(kept=False, commits=0, dirty=False, sentence=sentence)
        commits = _commits(wt)
        if commits:
            sentence = (
                f"worktree {wt.path} was already gone; pruned it "
                f"and kept branch {wt.branch} ({_plural(commits)})"
            )
        else:
            _git(["branch", "-D", wt.branch], wt.repo)
            sentence = (
                f"worktree {wt.path} was already gone; pruned it and deleted branch {wt.branch}"
            )
        return Outcome(kept=False, commits=commits, dirty=False, sentence=sentence)
    commits, dirty = _commits(wt), _dirty(wt)
    if commits or dirty:
        why = [_plural(commits)] if commits else []
        if dirty:
            why.append("uncommitted changes")
        sentence = f"kept worktree {wt.path} ({' and '.join(why)} on {wt.branch})"
        return Outcome(kept=True, commits=commits, dirty=dirty, sentence=sentence)
    _remove(wt)
    return Outcome(
        kept=False, commits=0, dirty=False, sentence=f"removed worktree {wt.path} (no changes)"
    )


def _plural(commits: int) -> str:
    return f"{commits} commit" if commits == 1 else f"{commits} commits"


# --- review: what the runner changed, merged into the branch it started from, or discarded ----
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
        _git(["read-tree", "HEAD"], wt.path, env)
        exclude = [f":(top,exclude,literal){path}" for path in wt.copied]
        _git(["add", "-A", "--", ":/", *exclude], wt.path, env)
        return _git(["write-tree"], wt.path, env).strip()


def _fork_point(wt: Worktree, head: str) -> str:
    """Where the branch left its base branch (the base may have moved on since), else the
    commit it was made from."""
    if wt.base_branch and _has_branch(wt.repo, wt.base_branch):
        done = _run(["merge-base", f"refs/heads/{wt.base_branch}", head], wt.repo)
        if done.returncode == 0:
            return done.stdout.strip()
    return wt.base


def _has_branch(repo: str, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return _run(["rev-parse", "--verify", "--quiet", ref], repo).returncode == 0


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
    head = _git(["rev-parse", "HEAD"], wt.path).strip()
    tree = _snapshot_tree(wt)
    base = _fork_point(wt, head)
    files = _changed_files(wt.path, base, tree)
    patch = _git(["diff", "--no-renames", "--no-color", "--no-ext-diff", base, tree], wt.path)
    commits = int(_git(["rev-list", "--count", f"{base}..{head}"], wt.path).strip())
    uncommitted = tree != _git(["rev-parse", "HEAD^{tree}"], wt.path).strip()
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
    status = _git([*args[:3], "--name-status", *args[3:]], cwd).split("\0")
    how = {path: kind[:1] for kind, path in zip(status[::2], status[1::2], strict=False)}
    counts = _git([*args[:3], "--numstat", *args[3:]], cwd).split("\0")
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
        if not _run(["config", f"user.{part}"], cwd).stdout.strip():
            env[f"GIT_AUTHOR_{part.upper()}"] = env[f"GIT_COMMITTER_{part.upper()}"] = fallback
    return env


def _checkout_of(repo: str, branch: str) -> str | None:
    """The worktree (the main checkout or another) that has ``branch`` checked out."""
    path = None
    for line in _git(["worktree", "list", "--porcelain"], repo).splitlines():
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
    on = _run(["symbolic-ref", "--quiet", "--short", "HEAD"], wt.path).stdout.strip()
    if on != wt.branch:
        raise WorktreeError(
            f"the worktree {wt.path} is no longer on its branch {wt.branch} (it is on "
            f"{on or 'a detached HEAD'}); merge by hand in {wt.repo}."
        )
    head = _git(["rev-parse", "HEAD"], wt.path).strip()
    tree = _snapshot_tree(wt)
    work = head
    if tree != _git(["rev-parse", "HEAD^{tree}"], wt.path).strip():
        message = f"{title}: uncommitted work, committed by Stratavore to merge it"
        work = _git(["commit-tree", tree, "-p", head, "-m", message], wt.path,
                    _identity(wt.path)).strip()  # fmt: skip
    tip = _git(["rev-parse", f"refs/heads/{base}"], wt.repo).strip()
    if _run(["merge-base", "--is-ancestor", work, tip], wt.repo).returncode == 0:
        raise WorktreeError(f"{wt.branch} has nothing that is not on {base} already.")
    merged = _run(["merge-tree", "--write-tree", "--name-only", "--no-messages", tip, work],
                  wt.repo)  # fmt: skip
    if merged.returncode == 1:
        conflicted = sorted(set(merged.stdout.splitlines()[1:]) - {""})
        raise WorktreeError(
            f"{wt.branch} conflicts with {base} in {', '.join(conflicted) or 'some files'}; "
            f"nothing was changed: merge it by hand in {wt.repo}, or ask the agent to rebase."
        )
    _checked(merged, wt.repo)
    fast_forward = _run(["merge-base", "--is-ancestor", tip, work], wt.repo).returncode == 0
    into = _checkout_of(wt.repo, base)
    message = f"Merge {wt.branch} ({title}) into {base}"
    if into is not None:
        _merge_in_checkout(into, work, message, wt.branch, base)
    elif fast_forward:
        _git(["update-ref", f"refs/heads/{base}", work, tip], wt.repo)
    else:
        new = _git(["commit-tree", merged.stdout.split()[0], "-p", tip, "-p", work, "-m",
                    message], wt.repo, _identity(wt.repo)).strip()  # fmt: skip
        _git(["update-ref", f"refs/heads/{base}", new, tip], wt.repo)
    if work != head:  # the branch takes the commit of its uncommitted work, the files stay
        _git(["update-ref", f"refs/heads/{wt.branch}", work, head], wt.repo)
        _git(["reset", "--quiet"], wt.path)
    new_tip = _git(["rev-parse", f"refs/heads/{base}"], wt.repo).strip()
    how = "fast-forward" if fast_forward else "merge commit"
    sentence = f"merged {wt.branch} into {base} ({how}, now at {new_tip[:10]})"
    return Merged(commit=new_tip, fast_forward=fast_forward, sentence=sentence)


def _merge_in_checkout(path: str, work: str, message: str, branch: str, base: str) -> None:
    """``git merge`` in the checkout that has the base branch: its own files follow. Git
    refuses when the checkout's uncommitted edits are in the way; a merge that stops half
    way is aborted, so nothing is changed."""
    done = _run(["merge", "--no-edit", "-m", message, work], path, _identity(path))
    if done.returncode == 0:
        return
    if _run(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"], path).returncode == 0:
        _run(["merge", "--abort"], path)
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
        _git(["worktree", "remove", "--force", wt.path], wt.repo)
    else:
        _git(["worktree", "prune"], wt.repo)
    if _has_branch(wt.repo, wt.branch):
        _git(["branch", "-D", wt.branch], wt.repo)
    return f"discarded worktree {wt.path} and branch {wt.branch}"
