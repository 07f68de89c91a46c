"""Bodies of the projects, profiles and settings routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from supervisor.api.schemas.base import (
    Cap,
    Environment,
    ExitCode,
    Input,
    Name,
    RestartPolicyName,
    Template,
    Timestamp,
)


class ProjectCreate(Input):
    name: Name
    path: Annotated[str, Meta(min_length=1, description="absolute path of an existing folder")]
    max_runners: Cap | None = None


class ProjectUpdate(Input):
    """A project's own runner cap; null: follow the global max_runners_per_project."""

    max_runners: Cap | None


class Project(Struct, kw_only=True):
    id: int
    name: str
    path: str
    archived: bool
    max_runners: int | None
    active_runners: int
    created_at: Timestamp


# A profile's account: its agent's config directory (CLAUDE_CONFIG_DIR / CODEX_HOME).
AccountDir = Annotated[
    str,
    Meta(min_length=1, max_length=1000, pattern=r"^[^\x00]+$",
         description="an existing directory: the agent's CLAUDE_CONFIG_DIR or CODEX_HOME"),
]  # fmt: skip


class ProfileCreate(Input):
    """A user profile: argument-list templates with placeholders (see supervisor.profiles),
    e.g. a copy of a built-in with ``copy_of`` and the fields to change."""

    name: Name
    copy_of: Name | None = None  # start from this profile's fields
    command: Template | None = None  # interactive; required unless copied
    description: str | None = None
    restart: RestartPolicyName | None = None
    expected_exit_codes: Annotated[list[ExitCode], Meta(max_length=256)] | None = None
    env: Environment | None = None
    agent: Literal["claude", "codex", "aider", "gemini", "shell"] | None = None
    binaries: list[Annotated[str, Meta(min_length=1, max_length=1000)]] | None = None
    batch: Template | None = None
    resume: Template | None = None
    resume_batch: Template | None = None
    setup_files: list[Annotated[str, Meta(min_length=1, max_length=500)]] | None = None
    worktree: bool | None = None
    resume_on_limit: bool | None = None
    idle_after: Annotated[float, Meta(ge=1, le=86_400)] | None = None
    account: AccountDir | None = None


class Profile(Struct, kw_only=True):
    name: str
    command: list[str]
    description: str
    restart: RestartPolicyName
    expected_exit_codes: list[int]
    env: dict[str, str]
    builtin: bool
    agent: str | None
    binaries: list[str]
    batch: list[str] | None
    resume: list[str] | None
    resume_batch: list[str] | None
    setup_files: list[str]
    worktree: bool
    resume_on_limit: bool | None
    idle_after: float | None
    hooks: bool  # attention states come from the agent's hooks (else a heuristic)
    account: str | None  # its config directory when it names one (else the default account)


class SettingUpdate(Input):
    value: int | float | str | dict[str, dict[str, float]]


class SettingValue(Struct, kw_only=True):
    key: str
    value: int | float | str | dict[str, Any]  # in effect now
    saved: int | float | str | dict[str, Any] | None  # what the next start uses (None: default)
    default: int | float | str | dict[str, Any]
    applies: Literal["now", "at next start"]
