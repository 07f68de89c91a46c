"""A git worktree per agent run, so several agents in one project don't trample each other.

Opt-in: the runner works on a new branch ``stratavore/<name>`` in its own checkout under the
supervisor's data dir. Untracked setup files the agent needs (``.env``) are copied in from the
project. When the run ends, the worktree is removed unless it holds work (commits on the branch
or uncommitted changes); then it is kept and the sentence tells the user where. Reviewing a
kept one (its diff, a merge, a discard) is ``review.py``'s; both run git through :func:`git`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
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


def run_git(
    args: Sequence[str], cwd: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """git ``args`` in ``cwd`` (``env``: variables set for this call only)."""
    found = shutil.which("git")
    if found is None:
        raise WorktreeError("git was not found on PATH; install git or launch without --worktree.")
    environ = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATING_VARS}
    environ.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    environ.update(env or {})
    try:
        return subprocess.run(
            [found, *args],
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


def git(args: Sequence[str], cwd: str | Path, env: dict[str, str] | None = None) -> str:
    """git's stdout, or WorktreeError with git's own first line of complaint."""
    return checked(run_git(args, cwd, env), cwd)


def checked(done: subprocess.CompletedProcess[str], cwd: str | Path) -> str:
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # progress lines ("Preparing worktree ...") can come before the one that says why
        errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
        why = (errors or lines or [f"exit status {done.returncode}"])[0]
        raise WorktreeError(f"git {done.args[1]} failed in {cwd}: {why}")
    return done.stdout


def _toplevel(project: Path) -> Path:
    done = run_git(["rev-parse", "--show-toplevel"], project)
    if done.returncode != 0 and "not a git repository" in done.stderr:
        raise WorktreeError(
            f"{project} is not inside a git repository; "
            "launch without --worktree or run `git init` there."
        )
    return Path(checked(done, project).strip()).resolve()


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
    refs = set(git(["for-each-ref", "--format=%(refname)", "refs/heads/"], repo).splitlines())
    listing = git(["worktree", "list", "--porcelain"], repo).splitlines()
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
    head = run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo)
    if head.returncode != 0:
        raise WorktreeError(
            f"the repository {repo} has no commits yet; "
            "make a first commit or launch without --worktree."
        )
    base = head.stdout.strip()
    on = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], project)
    base_branch = on.stdout.strip() if on.returncode == 0 else None
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir's, kept private
    except OSError as exc:
        raise WorktreeError(
            f"could not create the worktree folder {root}: {exc.strerror}."
        ) from exc
    branch, path = _free_name(repo, root.resolve(), name)
    git(["worktree", "add", "-b", branch, str(path), base], repo)
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
    out = git(["rev-list", "--count", f"{wt.base}..refs/heads/{wt.branch}", "--"], wt.repo)
    return int(out.strip())


def _dirty(wt: Worktree) -> bool:
    # -z: paths unquoted; all: each untracked file, not just its folder, to match `copied`
    out = git(["status", "--porcelain", "-z", "--untracked-files=all"], wt.path)
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
    git(["worktree", "remove", "--force", wt.path], wt.repo)
    git(["branch", "-D", wt.branch], wt.repo)


def finish(wt: Worktree) -> Outcome:
    """Remove the worktree and its branch if the agent left no work in them, else keep both."""
    if not (Path(wt.repo) / ".git").exists():
        sentence = f"repository {wt.repo} is gone, so worktree {wt.path} could not be cleaned up"
        return Outcome(kept=False, commits=0, dirty=False, sentence=sentence)
    if not Path(wt.path).exists():
        git(["worktree", "prune"], wt.repo)
        ref = f"refs/heads/{wt.branch}"
        if run_git(["rev-parse", "--verify", "--quiet", ref], wt.repo).returncode != 0:
            sentence = f"worktree {wt.path} was already gone; pruned it"
            return Outcome(kept=False, commits=0, dirty=False, sentence=sentence)
        commits = _commits(wt)
        if commits:
            sentence = (
                f"worktree {wt.path} was already gone; pruned it "
                f"and kept branch {wt.branch} ({_plural(commits)})"
            )
        else:
            git(["branch", "-D", wt.branch], wt.repo)
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
