"""Agent profiles: from a profile's templates to the exact command line of a run.

A template is an argument list with named placeholders, never a shell string, so a prompt
with quotes, ``$`` or ``;`` reaches the agent as one argument, untouched. Placeholders:

``{binary}``      the agent's program: the first of the profile's ``binaries`` on the search
                  path (on Windows ``.exe`` before npm's ``.cmd`` shims, see ``commands``)
``{prompt}``      a batch run's prompt
``{session_id}``  the session: chosen up front for a new one where the agent allows it
                  (Claude Code's ``--session-id``), or the one to resume
``{hooks}``       Stratavore's settings file for Claude Code: its hooks report to the API
``{args}``        the launch's extra arguments (a whole element; appended when absent)
``{shell}``, ``{shell_c}``  the user's shell and its "run this" flag (``-c``, or ``/c``)

A profile has up to four templates: ``command`` (interactive), ``batch``, ``resume`` and
``resume_batch``; what is missing is a sentence, not a guess ("aider cannot resume").
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supervisor.agents import accounts, commands, statusline
from supervisor.api.schemas import ProfileCreate
from supervisor.core.errors import ApiError, ErrorCode
from supervisor.storage import queries
from supervisor.storage.models import Profile

PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
SCALARS = frozenset({"binary", "prompt", "session_id", "hooks", "shell", "shell_c"})
ARGS = "{args}"
MODES = ("interactive", "batch")
SESSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DEFAULT_IDLE_AFTER = 300.0  # seconds without output or CPU: heuristic "idle"
RESUME_PROMPT = "Continue where you left off."  # a batch resume after a provider limit
HOOKS_AGENT = "claude"  # the agent whose hooks report attention states
SESSIONS_UP_FRONT = frozenset({"claude"})  # agents that take a session id chosen by us


def check_template(name: str, template: Sequence[str]) -> None:
    """Refuse a template with an unknown placeholder or a ``{args}`` inside an argument, in
    one sentence naming the template."""
    for part in template:
        unknown = {p for p in PLACEHOLDER.findall(part) if p not in SCALARS | {"args"}}
        if unknown:
            known = ", ".join("{" + p + "}" for p in sorted(SCALARS | {"args"}))
            raise ApiError(
                ErrorCode.INVALID,
                f"Template '{name}' uses unknown placeholder {{{sorted(unknown)[0]}}}; "
                f"use {known}.",
            )
        if ARGS in part and part != ARGS:
            raise ApiError(
                ErrorCode.INVALID,
                f"Template '{name}' puts {{args}} inside '{part}'; it must be a whole argument.",
            )


def render(template: Sequence[str], values: Mapping[str, str], args: Sequence[str]) -> list[str]:
    """``template`` with its placeholders filled from ``values`` and ``{args}`` expanded to
    ``args`` (appended at the end when the template has no ``{args}``)."""
    out: list[str] = []
    for part in template:
        if part == ARGS:
            out.extend(args)
            continue
        out.append(PLACEHOLDER.sub(lambda m: values[m.group(1)], part))
    if ARGS not in template:
        out.extend(args)
    return out


def uses(template: Sequence[str] | None, placeholder: str) -> bool:
    return template is not None and any("{" + placeholder + "}" in p for p in template)


@dataclass(frozen=True)
class Plan:
    """What one start of a profile runs: the command line and the session it belongs to."""

    argv: list[str]
    session_id: str | None
    mode: str
    resumed: bool


def template_for(profile: Profile, mode: str, resume: bool) -> list[str]:
    """The profile's template for ``mode`` (interactive/batch), new or resumed session."""
    field = {
        ("interactive", False): "command",
        ("batch", False): "batch",
        ("interactive", True): "resume",
        ("batch", True): "resume_batch",
    }[(mode, resume)]
    template = getattr(profile, field)
    if template:
        return list(template)
    if resume:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"Profile '{profile.name}' cannot resume a session in {mode} mode (it has no "
            f"'{field}' template); copy it and add one, or start a new run.",
        )
    raise ApiError(
        ErrorCode.INVALID,
        f"Profile '{profile.name}' has no {mode} command line ('{field}'); "
        "launch it the other way or copy it and add one.",
    )


def plan(
    profile: Profile,
    *,
    mode: str,
    search_path: str,
    hooks_file: str,
    prompt: str | None = None,
    session_id: str | None = None,
    resume: bool = False,
    args: Sequence[str] = (),
) -> Plan:
    """The command line for one start of ``profile``. A new session gets an id chosen here
    when the template takes one; ``resume`` continues ``session_id``."""
    template = template_for(profile, mode, resume)
    if uses(template, "prompt") and not prompt:
        raise ApiError(
            ErrorCode.INVALID,
            f"Profile '{profile.name}' in {mode} mode needs a prompt; give one with --prompt.",
        )
    if resume and not session_id:
        raise ApiError(ErrorCode.INVALID, "Resuming needs the session id to continue.")
    if uses(template, "session_id") and not session_id:
        session_id = str(uuid.uuid4())
    values = {
        "prompt": prompt or "",
        "session_id": session_id or "",
        "hooks": hooks_file,
        "shell": commands.default_shell(),
        "shell_c": "/c" if os.name == "nt" else "-c",
        "binary": "",
    }
    if uses(template, "binary"):
        values["binary"] = find_binary(profile, search_path)
    argv = render(template, values, args)
    return Plan(argv, session_id if uses(template, "session_id") else None, mode, resume)


def find_binary(profile: Profile, search_path: str) -> str:
    """The profile's program on the search path, or one sentence saying what to install."""
    names = list(profile.binaries or [])
    found = commands.find_program(names, search_path) if names else None
    if found is None:
        what = " or ".join(f"'{n}'" for n in names) or "(no binaries listed)"
        raise ApiError(
            ErrorCode.COMMAND_NOT_FOUND,
            f"{profile.description or profile.name} ({what}) was not found on PATH "
            f"(searched: {search_path or '(empty)'}); install it, or copy the profile and "
            "list the program's name or path in 'binaries'.",
        )
    return found


TEMPLATES = ("command", "batch", "resume", "resume_batch")
COPIED = (
    "command", "description", "restart", "expected_exit_codes", "env", "agent", "binaries",
    "batch", "resume", "resume_batch", "setup_files", "worktree", "resume_on_limit", "idle_after",
)  # fmt: skip


def profile_fields(body: ProfileCreate) -> dict[str, Any]:
    """A new user profile's fields: those given, the rest from ``copy_of`` (or defaults);
    its templates checked. A copy of a built-in keeps its templates, so the copy still gets
    sessions, hooks and resume."""
    fields: dict[str, Any] = {}
    if body.copy_of is not None:
        source = queries.profile_by_name(body.copy_of)
        fields = {name: getattr(source, name) for name in COPIED}
    given = {name: getattr(body, name) for name in COPIED if getattr(body, name) is not None}
    fields.update(given)
    if not fields.get("command"):
        raise ApiError(
            ErrorCode.INVALID, "A profile needs a command, or copy_of a profile to start from."
        )
    for name in TEMPLATES:
        if fields.get(name):
            check_template(name, fields[name])
    fields["env"] = account_env(fields.get("agent"), dict(fields.get("env") or {}), body.account)
    return fields


def account_env(agent: str | None, env: dict[str, str], account: str | None) -> dict[str, str]:
    """A profile's environment with its account: the agent's config-directory variable set
    to ``account`` (checked: an existing directory), or the one ``env`` sets checked."""
    variable = accounts.VARIABLES.get(agent or "")
    given = account if account is not None else env.get(variable) if variable else None
    if given:
        directory = accounts.check_dir(agent, given)  # refuses an agent without accounts
        env = {**env, accounts.VARIABLES[agent or ""]: directory}
    return env


def account_of(profile: Profile) -> str | None:
    """The config directory a profile names (its account), None for the default one."""
    variable = accounts.VARIABLES.get(profile.agent or "")
    return (profile.env or {}).get(variable) if variable else None


def has_hooks(profile: Profile) -> bool:
    """Whether runs of ``profile`` report their attention through Claude Code's hooks."""
    return profile.agent == HOOKS_AGENT and any(
        uses(getattr(profile, name), "hooks") for name in TEMPLATES
    )


def can_resume(profile: Profile | None) -> bool:
    return profile is not None and bool(profile.resume or profile.resume_batch)


def hooks_settings(api_url: str) -> dict[str, object]:
    """Claude Code settings whose HTTP hooks report to ``api_url`` as the runner itself: its
    id and token come from the environment the supervisor (or stratavore-agent) gives the
    agent, and Claude Code only expands the variables listed in ``allowedEnvVars``. Its
    status line is ours (``supervisor.agents.statusline``): it reports the plan's limits the
    same way and then runs the user's own."""
    hook = {
        "type": "http",
        "url": f"{api_url}/api/v1/hooks",
        "headers": {
            "Authorization": "Bearer $STRATAVORE_RUNNER_TOKEN",
            "X-Stratavore-Runner": "$STRATAVORE_RUNNER_ID",
        },
        "allowedEnvVars": ["STRATAVORE_RUNNER_TOKEN", "STRATAVORE_RUNNER_ID"],
        "timeout": 5,
    }
    tool_events = ("PreToolUse", "PostToolUse")
    plain_events = (
        "SessionStart", "UserPromptSubmit", "Notification", "PermissionRequest", "Stop",
        "SessionEnd",
    )  # fmt: skip
    hooks: dict[str, list[dict[str, object]]] = {
        event: [{"matcher": "*", "hooks": [hook]}] for event in tool_events
    }
    hooks.update({event: [{"hooks": [hook]}] for event in plain_events})
    return {
        "hooks": hooks,
        "statusLine": {"type": "command", "command": statusline.command(), "padding": 0},
    }
