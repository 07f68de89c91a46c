"""Which provider account an agent run uses: the folder its CLI keeps its login in.

Claude Code keeps its login and settings in ``CLAUDE_CONFIG_DIR`` (``~/.claude`` by default)
and Codex CLI in ``CODEX_HOME`` (``~/.codex``), so two folders are two accounts (work and
personal) and one folder is one account whatever the project. Plan limits, and usage where it
is kept per account, are keyed by that folder's resolved path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# agent -> (the variable naming its folder, the folder under the home directory by default)
HOMES = {"claude": ("CLAUDE_CONFIG_DIR", ".claude"), "codex": ("CODEX_HOME", ".codex")}


def account_key(agent: str, env: Mapping[str, str]) -> str:
    """The account of an ``agent`` run with environment ``env``: the absolute, resolved path
    of its config folder (the variable if set and non-empty, else the default under the home
    directory of ``env``); the agent's own name for an agent without such a folder."""
    if agent not in HOMES:
        return agent
    variable, default = HOMES[agent]
    folder = env.get(variable) or ""
    if not folder:
        home = env.get("USERPROFILE" if os.name == "nt" else "HOME") or os.path.expanduser("~")
        folder = os.path.join(home, default)
    elif folder.startswith("~"):
        own_home = env.get("USERPROFILE" if os.name == "nt" else "HOME")
        folder = own_home + folder[1:] if own_home else os.path.expanduser(folder)
    return os.path.realpath(folder)


def shown(account: str) -> str:
    """An account's folder for people: under the home folder as ``~/…``."""
    home = os.path.expanduser("~")
    if account == home or account.startswith(home + os.sep):
        return "~" + account[len(home) :]
    return account
