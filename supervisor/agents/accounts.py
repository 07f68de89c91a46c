"""Accounts: which of the user's subscriptions (work, personal, ...) an agent's run uses.

Claude Code keeps its login, settings and transcripts in one config directory
(``$CLAUDE_CONFIG_DIR``, default ``~/.claude``), Codex in ``$CODEX_HOME`` (default
``~/.codex``); pointing the variable elsewhere is how one signs in to a second account. So an
account is that directory: its key is the directory's resolved path (what the ledger, budgets
and limits store), and people see it by a short label: the name of the profile that uses it,
else the folder's name. A profile names its account by setting the variable in its ``env``
(``profile_fields`` puts a profile's ``account`` there); agents without such a directory
(Aider, Gemini CLI, a shell) have no account: key ``""``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries

# The variable that names each agent's config directory, and the directory without it.
VARIABLES = {"claude": "CLAUDE_CONFIG_DIR", "codex": "CODEX_HOME"}
DEFAULT_DIRS = {"claude": ".claude", "codex": ".codex"}
NO_ACCOUNT = ""


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def expand(raw: str, home: Path) -> Path:
    """``raw`` with a leading ``~`` meaning ``home`` (the agents expand it the same way)."""
    if raw == "~":
        return home
    if raw.startswith(("~/", "~" + os.sep)):
        return home / raw[2:]
    return Path(raw)


def resolved(path: Path) -> str:
    """An account's key: the directory's absolute path, links and ``..`` resolved, so two
    spellings of one directory are one account."""
    return str(path.resolve())


def account_key(agent: str, env: Mapping[str, str]) -> str:
    """The account a run of ``agent`` with environment ``env`` uses: the resolved path of its
    config directory (the first one listed, where the variable lists several), default
    ``~/.claude`` or ``~/.codex``; ``""`` for an agent without accounts."""
    variable = VARIABLES.get(agent)
    if variable is None:
        return NO_ACCOUNT
    home = _home(env)
    listed = [part.strip() for part in (env.get(variable) or "").split(",") if part.strip()]
    path = expand(listed[0], home) if listed else home / DEFAULT_DIRS[agent]
    if agent == "claude" and path.name == "projects" and path.is_dir():
        path = path.parent  # Claude's variable may name the projects/ folder itself
    return resolved(path)


def check_dir(agent: str | None, raw: str, home: Path | None = None) -> str:
    """A profile's account directory, checked: ``agent`` has accounts and ``raw`` is an
    existing directory; its resolved path, or one sentence saying what to give instead."""
    if agent not in VARIABLES:
        raise ApiError(
            ErrorCode.INVALID,
            f"Only claude and codex profiles have an account (a config directory); this "
            f"profile's agent is {agent or 'none'}.",
        )
    path = expand(raw, home if home is not None else _home(os.environ))
    if not path.is_absolute():
        raise ApiError(
            ErrorCode.INVALID,
            f"Account directory '{raw}' is not an absolute path; give the full path of the "
            f"{VARIABLES[agent]} folder.",
        )
    if not path.is_dir():
        raise ApiError(
            ErrorCode.INVALID,
            f"Account directory {path} does not exist; create it (sign in once with "
            f"{VARIABLES[agent]}={path} {agent}) or give an existing folder.",
        )
    return resolved(path)


@dataclass(frozen=True)
class Account:
    """One account as people see it: its key, its agent, its short label, and the names of
    the profiles whose runs use it."""

    key: str
    agent: str
    label: str
    profiles: tuple[str, ...] = ()


def profile_account(agent: str | None, env: Mapping[str, str], base: Mapping[str, str]) -> str:
    """The account key of a run of a profile with ``env`` over the supervisor's ``base``."""
    return account_key(agent or "", {**base, **env})


def known(base: Mapping[str, str], used: Iterable[tuple[str, str]] = ()) -> list[Account]:
    """Every account Stratavore knows: the default ones (as ``base`` gives them), each
    profile's, and ``used`` ((agent, key) pairs seen in the ledger); labelled by the profile
    that names it (a user's profile over a built-in), else by the folder's name, made unique
    by the full path where two would read the same."""
    named: dict[str, tuple[str, list[str], list[str]]] = {}  # key -> agent, explicit, builtin

    def note(agent: str, key: str) -> tuple[str, list[str], list[str]]:
        return named.setdefault(key, (agent, [], []))

    for agent in VARIABLES:
        note(agent, account_key(agent, base))
    for profile in queries.list_profiles():
        if profile.agent not in VARIABLES:
            continue
        key = profile_account(profile.agent, profile.env, base)
        _, explicit, builtin = note(profile.agent, key)
        sets_it = VARIABLES[profile.agent] in (profile.env or {})
        (explicit if sets_it else builtin).append(profile.name)
    for agent, key in used:
        if key:
            note(agent, key)
    labels: dict[str, int] = {}
    found = []
    for key, (agent, explicit, builtin) in named.items():
        names = explicit or [n for n in builtin if n == agent] or builtin
        label = names[0] if names else Path(key).name or key
        labels[label] = labels.get(label, 0) + 1
        found.append(Account(key, agent, label, (*explicit, *builtin)))
    return [
        a if labels[a.label] == 1 else Account(a.key, a.agent, a.key, a.profiles) for a in found
    ]


def find(name: str, accounts: list[Account], home: Path | None = None) -> Account:
    """The account called ``name``: a label, a profile whose runs use it, or a directory's
    path; 404 in one sentence."""
    for account in accounts:
        if name in (account.label, account.key):
            return account
    for account in accounts:
        if name in account.profiles:
            return account
    path = expand(name, home if home is not None else _home(os.environ))
    if path.is_absolute():
        key = resolved(path)
        for account in accounts:
            if account.key == key:
                return account
    listed = ", ".join(sorted(a.label for a in accounts)) or "none"
    raise ApiError(
        ErrorCode.NOT_FOUND,
        f"There is no account '{name}'; give a profile's name or an account directory "
        f"(known: {listed}).",
    )


def shown(account: str) -> str:
    """An account's folder for people: under the home folder as ``~/…``."""
    home = os.path.expanduser("~")
    if account == home or account.startswith(home + os.sep):
        return "~" + account[len(home) :]
    return account
