"""Bodies of the worktree review routes: a runner's changes, and what a merge or a discard
did."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct


class FileChange(Struct, kw_only=True):
    path: str
    status: Literal["A", "M", "D", "T"]  # added, modified, deleted, type changed
    added: int | None  # lines; None for a binary file
    deleted: int | None


class Changes(Struct, kw_only=True):
    """What a runner's branch and worktree hold that its base does not: its commits and its
    uncommitted edits (new files too; its copied setup files and ignored files not)."""

    runner_id: int
    path: str  # the worktree
    branch: str
    base_branch: str | None  # the branch it started from (None: a detached HEAD)
    base: str  # the commit compared against: where the branch left its base branch
    commits: int
    uncommitted: bool  # a merge commits these first
    files: list[FileChange]
    patch: str  # the unified diff
    truncated: bool  # the diff was cut (4 MiB of text)


class Merged(Struct, kw_only=True):
    runner_id: int
    branch: str
    base_branch: str
    commit: str  # the base branch's new tip
    fast_forward: bool
    message: str


class Discarded(Struct, kw_only=True):
    runner_id: int
    message: str
