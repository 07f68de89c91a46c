"""The profiles a running supervisor starts runs from: looked up once and kept, each start's
command line planned from one, and Claude Code's hooks settings file their runs point at."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from supervisor.agents import profiles
from supervisor.core import paths
from supervisor.core.errors import ApiError
from supervisor.storage import queries
from supervisor.storage.models import Profile, Runner

HOOKS_FILE = "claude-hooks.json"


class ProfileBook:
    """Profiles by name (cached, misses too: they change only through the API, which calls
    :meth:`forget`), the plan of one start, and the hooks file that plan may name."""

    def __init__(self, root: Path, search_path: str) -> None:
        self.search_path = search_path
        self.hooks_file = root / HOOKS_FILE
        self.api_url = ""
        self._profiles: dict[str, Profile | None] = {}

    def set_api_url(self, url: str) -> None:
        """Where runners reach the API; Claude Code's hooks settings file points there."""
        self.api_url = url
        self._write_hooks_file()

    def _write_hooks_file(self) -> None:
        """Write the hooks settings unless the file holds exactly them (compared as bytes: a
        damaged file, even one that is not UTF-8, is simply written again)."""
        text = json.dumps(profiles.hooks_settings(self.api_url), indent=2)
        if not self.hooks_file.exists() or self.hooks_file.read_bytes() != text.encode():
            paths.write_private(self.hooks_file, text)

    def plan(self, profile: Profile, **how: Any) -> profiles.Plan:
        """One start of ``profile`` (see :func:`profiles.plan`); the hooks file it may name
        is written again first if someone deleted it (Claude Code refuses a missing one)."""
        if profiles.has_hooks(profile) and not self.hooks_file.exists():
            self._write_hooks_file()
        return profiles.plan(
            profile, search_path=self.search_path, hooks_file=str(self.hooks_file), **how
        )

    def profile(self, name: str | None) -> Profile | None:
        """The profile called ``name``, None for a runner without one (404 when missing)."""
        found = self.profile_or_none(name)
        if found is None and name is not None:
            queries.profile_by_name(name)  # raises the 404
        return found

    def profile_or_none(self, name: str | None) -> Profile | None:
        """The profile called ``name``; None for none, or one deleted since."""
        if name is None:
            return None
        if name not in self._profiles:
            try:
                self._profiles[name] = queries.profile_by_name(name)
            except ApiError:
                self._profiles[name] = None
        return self._profiles[name]

    def forget(self, name: str) -> None:
        self._profiles.pop(name, None)

    def fresh_session(self, runner: Runner) -> dict[str, Any]:
        """For a run started again from the top: a new session id where the agent takes one
        chosen up front (Claude Code refuses a used one); resuming keeps the old one."""
        profile = self.profile_or_none(runner.profile)
        if profile is None or profile.agent not in profiles.SESSIONS_UP_FRONT:
            return {}
        old, new = runner.session_id, str(uuid.uuid4())
        if not old or old not in runner.command:
            return {}
        return {"session_id": new, "command": [new if a == old else a for a in runner.command]}
