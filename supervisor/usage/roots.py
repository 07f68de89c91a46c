"""Where each account's logs are: the config directories of Claude Code and Codex that an
import reads, and which account a log file belongs to.

The directories are those the environment names (or the defaults without it, as ccusage
reads them) and those every profile names in its ``env`` (``supervisor.agents.accounts``):
a work account's transcripts are read although the supervisor itself runs with the personal
one. A file's account is the one of the directory it lies under.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.agents.accounts import NO_ACCOUNT, VARIABLES, resolved
from supervisor.storage import queries
from supervisor.usage import claude, codex


@dataclass
class Roots:
    """The config directories to read, per agent, and the account key of each."""

    claude: list[Path] = field(default_factory=list)
    codex: list[Path] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # directory as listed -> account key
    _of: dict[str, str] = field(default_factory=dict)  # file -> account key (a cache)

    def add(self, agent: str, path: Path) -> None:
        listed = self.claude if agent == "claude" else self.codex
        if path not in listed:
            listed.append(path)
            self.keys.setdefault(str(path), resolved(path))

    def account_of(self, source: str) -> str:
        """The account of the log file ``source``: the key of the deepest directory it lies
        under; ``""`` for a file under none (an agent without accounts)."""
        key = self._of.get(source)
        if key is None:
            key = NO_ACCOUNT
            best = -1
            for root, root_key in self.keys.items():
                if len(root) > best and source.startswith(root.rstrip(os.sep) + os.sep):
                    key, best = root_key, len(root)
            self._of[source] = key
        return key


def log_roots(env: Mapping[str, str], home: Path | None) -> Roots:
    """The directories an import reads: the environment's, then each profile's own."""
    roots = Roots()
    for path in claude.claude_roots(env, home):
        roots.add("claude", path)
    for path in codex.codex_homes(env, home):
        roots.add("codex", path)
    for profile in queries.list_profiles():
        variable = VARIABLES.get(profile.agent or "")
        if variable is None or not (profile.env or {}).get(variable):
            continue
        named = {variable: str(profile.env[variable])}
        if profile.agent == "claude":
            for path in claude.claude_roots(named, home):
                roots.add("claude", path)
        else:
            for path in codex.codex_homes(named, home):
                roots.add("codex", path)
    return roots


def reaccount(roots: Roots) -> None:
    """Give the rows of every imported file the account of the directory it lies under (in
    the caller's transaction; a file under none of today's directories keeps its rows')."""
    found = []
    for file_id, path in queries.file_paths():
        key = roots.account_of(path)
        if key:
            found.append((key, file_id))
    queries.set_file_accounts(found)
