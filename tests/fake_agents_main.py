"""The fake ``claude``, ``codex``, ``gemini`` and ``aider`` programs (``tests/fake_agents.py``
installs this file).

What the supervisor can see of the real CLIs, and nothing more: their command lines, version
lines, session ids, the transcripts and rollout files they write (in the formats
``supervisor/usage/`` imports), Claude Code's hooks (http and command), stdout/stderr, exit
codes and SIGTERM. What they do is scripted by the JSON list in ``FAKE_AGENT_SCRIPT`` (see
``tests/fake_agents.py``).

Standard library only, and nothing from this repository: the program runs as
``#!<python> -I`` in any directory, and starts fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INSTALLED_AS = ""  # install() writes the agent's name here; else the program's file name

CLAUDE_VERSION = "2.1.999"
CODEX_VERSION = "0.99.0"
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
CLAUDE_ALIASES = {
    "sonnet": CLAUDE_MODEL,
    "opus": "claude-opus-4-1-20250805",
    "haiku": "claude-haiku-4-5-20251001",
}
CODEX_MODEL = "gpt-5-codex"
WAIT_FILE_POLL = 0.02
WAIT_FILE_LIMIT = 60.0
WAIT_FILE_GAVE_UP = 3
BAD_USAGE = 2
END_HOOKS_BUDGET = 1.0  # seconds for SessionEnd hooks after a signal
STATUSLINE_TIMEOUT = 10.0  # seconds for one status-line command
HTTP_HOOK_TIMEOUT = 30.0
COMMAND_HOOK_TIMEOUT = 60.0  # Claude Code's documented default for command hooks

# Which payload field a hook matcher is matched against, per event (Claude Code's rules);
# other events ignore the matcher.
MATCH_FIELD = {
    "PreToolUse": "tool_name",
    "PostToolUse": "tool_name",
    "PostToolUseFailure": "tool_name",
    "PermissionRequest": "tool_name",
    "Notification": "notification_type",
    "SessionStart": "source",
    "SessionEnd": "reason",
    "PreCompact": "trigger",
    "SubagentStart": "agent_type",
    "SubagentStop": "agent_type",
}

# Claude Code's options (Commander.js): which take a value, which take every following
# argument up to the next option (so `--allowedTools Bash "prompt"` swallows the prompt, as
# the real CLI does: anthropics/claude-code#25978), and which take a value only if one follows.
CLAUDE_VALUE_OPTIONS = frozenset({
    "--model", "--output-format", "--input-format", "--permission-mode", "--settings",
    "--setting-sources", "--session-id", "--system-prompt", "--system-prompt-file",
    "--append-system-prompt", "--append-system-prompt-file", "--fallback-model", "--agents",
    "--agent", "--max-turns", "--max-budget-usd", "--permission-prompt-tool", "--json-schema",
    "--plugin-dir",
})  # fmt: skip
CLAUDE_VARIADIC_OPTIONS = frozenset({
    "--add-dir", "--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools",
    "--tools", "--mcp-config", "--betas",
})  # fmt: skip
CLAUDE_OPTIONAL_VALUE = frozenset({"--resume", "-r", "--debug", "-d"})
CLAUDE_SUBCOMMANDS = frozenset({
    "mcp", "plugin", "doctor", "update", "install", "setup-token", "migrate-installer",
})  # fmt: skip
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")

CODEX_VALUE_OPTIONS = frozenset({
    "-m", "--model", "-C", "--cd", "-c", "--config", "-p", "--profile", "-s", "--sandbox", "-a",
    "--ask-for-approval", "-i", "--image", "-o", "--output-last-message", "--output-schema",
    "--color", "--enable", "--disable", "--add-dir", "--local-provider",
})  # fmt: skip
CODEX_SUBCOMMANDS = frozenset({
    "login", "logout", "mcp", "mcp-server", "app-server", "apply", "completion", "sandbox",
    "debug", "proto", "cloud", "features", "fork",
})  # fmt: skip


class Terminated(BaseException):
    """SIGTERM or SIGINT arrived: unwinds the script (a BaseException, so that the hooks'
    own error handling does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class UsageError(Exception):
    """A command line or environment the real CLI would refuse: message, exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


_terminating = False


def _on_signal(signum: int, frame: Any) -> None:
    global _terminating
    if _terminating:
        return  # a second signal while the end hooks run: they are bounded anyway
    _terminating = True
    raise Terminated(signum)


# --- small helpers --------------------------------------------------------------------------


def iso_now() -> str:
    """Now as both agents write it: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def out(text: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # nobody reads us any more: carry on
        print(text, flush=True)


def err(text: str) -> None:
    with contextlib.suppress(BrokenPipeError):
        print(text, file=sys.stderr, flush=True)


def append_json(path: Path, line: dict[str, Any]) -> None:
    """One compact JSON line, written and flushed at once (readers tail these files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")


def expand_home(raw: str) -> Path:
    return Path(os.path.expanduser(raw))


def project_key(cwd: str) -> str:
    """Claude Code's directory name for a project: every non-alphanumeric character -> '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def claude_config_dir() -> Path:
    raw = os.environ.get("CLAUDE_CONFIG_DIR")
    return expand_home(raw) if raw else Path.home() / ".claude"


def codex_home() -> Path:
    raw = os.environ.get("CODEX_HOME")
    return expand_home(raw) if raw else Path.home() / ".codex"


def find_rollout(home: Path, session_id: str) -> Path | None:
    """The rollout file of ``session_id`` under ``home/sessions``, or None."""
    sessions = home / "sessions"
    if not session_id or not sessions.is_dir():
        return None
    found = sorted(sessions.rglob(f"rollout-*-{session_id}.jsonl"))
    return found[0] if found else None


def uuid7() -> str:
    """A time-ordered UUID, as Codex's thread ids."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def record_invocation(agent: str, argv: list[str], session_id: str | None) -> None:
    """One line per run in ``$FAKE_AGENT_LOG``, so tests can assert on exact command lines."""
    log = os.environ.get("FAKE_AGENT_LOG")
    if not log:
        return
    append_json(
        Path(log),
        {
            "agent": agent,
            "argv": argv,
            "cwd": os.getcwd(),
            "session_id": session_id,
            "env_token": bool(os.environ.get("STRATAVORE_RUNNER_TOKEN")),
        },
    )


def split_options(
    argv: list[str],
    takes_value: frozenset[str],
    missing: str,
    status: int,
    maybe_value: frozenset[str] = frozenset({"-r", "--resume"}),
) -> tuple[dict[str, str], set[str], list[str]]:
    """A yargs/argparse-like command line: ``--name=value`` and the options of
    ``takes_value`` followed by their value; those of ``maybe_value`` take the next argument
    only if it is not an option (else they are flags). (values, flags, positionals); a value
    missing at the end raises ``missing`` (``{name}``, or ``{bare}`` without its dashes, filled
    in) with ``status``."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, has_value, inline = arg.partition("=")
        if has_value and name.startswith("--"):
            values[name] = inline
        elif arg in maybe_value:
            if i < len(argv) and not argv[i].startswith("-"):
                values[arg] = argv[i]
                i += 1
            else:
                flags.add(arg)
        elif arg in takes_value:
            if i >= len(argv):
                raise UsageError(missing.format(name=arg, bare=arg.lstrip("-")), status)
            values[arg] = argv[i]
            i += 1
        elif arg.startswith("-") and arg != "-":
            flags.add(arg)
        else:
            positionals.append(arg)
    return values, flags, positionals


def load_script() -> list[list[Any]] | None:
    raw = os.environ.get("FAKE_AGENT_SCRIPT")
    if raw is None:
        return None
    try:
        steps = json.loads(raw)
    except ValueError as error:
        raise UsageError(f"fake agent: FAKE_AGENT_SCRIPT is not JSON: {error}", BAD_USAGE) from None
    if not isinstance(steps, list) or not all(isinstance(s, list) and s for s in steps):
        raise UsageError("fake agent: FAKE_AGENT_SCRIPT must be a list of lists", BAD_USAGE)
    return steps


def wait_file(path: Path) -> bool:
    """Poll until ``path`` exists; False after WAIT_FILE_LIMIT seconds."""
    deadline = time.monotonic() + WAIT_FILE_LIMIT
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(WAIT_FILE_POLL)
    return True


def read_stdin_prompt() -> str:
    """The prompt piped on stdin (both CLIs read it when no prompt argument is given)."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return ""
        return sys.stdin.read().strip()
    except (OSError, ValueError):
        return ""


# --- the script -----------------------------------------------------------------------------


class Agent:
    """What the steps of a script do; subclasses write each agent's own files."""

    name = ""

    def __init__(self, prompt: str, batch: bool) -> None:
        self.prompt = prompt
        self.batch = batch

    def hook(self, event: str, fields: dict[str, Any]) -> None:
        pass  # Codex has no hooks

    def statusline(self, fields: dict[str, Any]) -> None:
        pass  # only Claude Code has a status-line command

    def turn(self, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def limit(self, text: str) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """The script ran out without an ``exit`` step."""

    def terminate(self) -> None:
        """A signal arrived: what the real CLI does on its way out."""

    default_turn: dict[str, int] = {}  # the tokens of the one turn of a run without a script

    def default_script(self) -> list[list[Any]]:
        return [
            ["turn", dict(self.default_turn)],
            ["print", f"ok: {self.prompt or 'continue'}"],
            ["exit", 0],
        ]

    def run(self, steps: list[list[Any]]) -> int:
        queue = list(steps)
        while queue:
            step = queue.pop(0)
            kind, args = step[0], step[1:]
            if kind == "once":  # ["once", MARKER, [steps]]: the first run only (a resume skips)
                marker = Path(str(args[0]))
                if not marker.exists():
                    marker.touch()
                    queue[:0] = list(args[1])
                continue
            if kind == "hook":
                self.hook(str(args[0]), dict(args[1]) if len(args) > 1 else {})
            elif kind == "turn":
                self.turn(dict(args[0]) if args else {})
            elif kind == "statusline":
                self.statusline(dict(args[0]) if args else {})
            elif kind == "limit":
                self.limit(str(args[0]))
            elif kind == "print":
                out(str(args[0]))
            elif kind == "stderr":
                err(str(args[0]))
            elif kind == "sleep":
                time.sleep(float(args[0]))
            elif kind == "append":  # ["append", PATH, TEXT]: edit a file of its folder
                with open(str(args[0]), "a", encoding="utf-8") as edited:
                    edited.write(str(args[1]))
            elif kind == "wait_file":
                if not wait_file(Path(str(args[0]))):
                    err(f"fake {self.name}: gave up waiting for {args[0]}")
                    return WAIT_FILE_GAVE_UP
            elif kind == "exit":
                return int(args[0]) if args else 0
            else:
                err(f"fake {self.name}: unknown script step {step!r}")
                return BAD_USAGE
        self.finish()
        return 0


def run_agent(agent: Agent) -> int:
    """Run the script (``FAKE_AGENT_SCRIPT`` or the default); a signal ends it as the real
    CLI ends: exit status 128 + the signal."""
    try:
        steps = load_script()
        return agent.run(steps if steps is not None else agent.default_script())
    except Terminated as signalled:
        agent.terminate()
        return 128 + signalled.signum


# --- claude ---------------------------------------------------------------------------------


class ClaudeArgs:
    """Claude Code's command line, parsed as Commander.js parses it."""

    def __init__(self, argv: list[str]) -> None:
        self.flags: set[str] = set()
        self.values: dict[str, str] = {}
        self.positionals: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                self.positionals.extend(argv[i:])
                break
            if not arg.startswith("-") or arg == "-":
                self.positionals.append(arg)
                continue
            name, has_value, inline = arg.partition("=")
            if not name.startswith("--"):
                name, has_value, inline = arg, "", ""  # no `-x=v` short form
            if has_value:
                self.values[name] = inline
            elif name in CLAUDE_VALUE_OPTIONS:
                if i >= len(argv):
                    raise UsageError(f"error: option '{name} <value>' argument missing")
                self.values[name] = argv[i]
                i += 1
            elif name in CLAUDE_VARIADIC_OPTIONS:
                taken = []
                while i < len(argv) and not argv[i].startswith("-"):
                    taken.append(argv[i])
                    i += 1
                if not taken:
                    raise UsageError(f"error: option '{name} <values...>' argument missing")
                self.values[name] = ",".join(taken)
            elif name in CLAUDE_OPTIONAL_VALUE:
                if i < len(argv) and not argv[i].startswith("-"):
                    self.values[name] = argv[i]
                    i += 1
                else:
                    self.flags.add(name)
            else:
                self.flags.add(name)  # known flags, and unknown ones: ignored

    def has(self, *names: str) -> bool:
        return any(name in self.flags or name in self.values for name in names)

    def value(self, *names: str) -> str | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return None


class Claude(Agent):
    """Claude Code 2.x: a transcript per session under the config dir, and hooks."""

    name = "claude"

    def __init__(self, args: ClaudeArgs, prompt: str, batch: bool) -> None:
        super().__init__(prompt, batch)
        self.cwd = os.getcwd()
        self.config_dir = claude_config_dir()
        self.project_dir = self.config_dir / "projects" / project_key(self.cwd)
        model = args.value("--model") or CLAUDE_MODEL
        self.model = CLAUDE_ALIASES.get(model, model)
        if args.has("--dangerously-skip-permissions"):
            self.permission_mode = "bypassPermissions"
        else:
            self.permission_mode = args.value("--permission-mode") or "default"
        self.resumed = False
        self.session_id = ""
        self.transcript = Path()
        self.parent_uuid: str | None = None
        self.hooks: dict[str, list[Any]] = {}
        self.status_line: Any = None  # the statusLine setting of the last layer that has one
        self.settings_arg = args.value("--settings")
        self.sources = args.value("--setting-sources")

    def open_session(self, args: ClaudeArgs) -> None:
        """Pick the session (--session-id, --resume, --continue or a new one); raises
        UsageError as the real CLI refuses."""
        wanted = args.value("--session-id")
        resume = args.value("--resume", "-r")
        continuing = args.has("--continue", "-c")
        fork = args.has("--fork-session")
        if args.has("--resume", "-r") and resume is None:
            raise UsageError("Error: --resume needs a session ID here (no picker in the fake)")
        if wanted is not None:
            self.session_id = wanted  # logged as asked, even when refused
            if (resume is not None or continuing) and not fork:
                raise UsageError(
                    "Error: --session-id can only be used with --continue or --resume"
                    " if --fork-session is also specified."
                )
            if not UUID_RE.fullmatch(wanted):
                raise UsageError("Error: Invalid session ID. Must be a valid UUID.")
        previous: Path | None = None
        if resume is not None:
            previous = self.project_dir / f"{resume}.jsonl"
            if not previous.is_file():
                self.session_id = self.session_id or resume
                raise UsageError(f"No conversation found with session ID: {resume}")
        elif continuing:
            found = sorted(self.project_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
            if not found:
                raise UsageError("No conversation found to continue")
            previous = found[-1]
        if previous is not None and not fork:
            self.session_id = previous.stem
        else:
            self.session_id = wanted or str(uuid.uuid4())
        self.resumed = previous is not None
        self.transcript = self.project_dir / f"{self.session_id}.jsonl"
        if previous is None:
            if self.transcript.exists():
                raise UsageError(f"Error: Session ID {self.session_id} is already in use.")
        elif previous != self.transcript:
            self.transcript.write_bytes(previous.read_bytes())  # a fork starts as a copy
        if self.transcript.exists():
            self.parent_uuid = last_uuid(self.transcript)

    def load_hooks(self) -> None:
        """Hooks of every settings source, concatenated per event, as Claude Code merges
        them: user, project, local (limited by --setting-sources), then --settings."""
        sources = {"user", "project", "local"}
        if self.sources is not None:
            sources = {s.strip() for s in self.sources.split(",") if s.strip()}
        files = [
            ("user", self.config_dir / "settings.json"),
            ("project", Path(self.cwd, ".claude", "settings.json")),
            ("local", Path(self.cwd, ".claude", "settings.local.json")),
        ]
        layers = []
        for source, path in files:
            if source in sources and path.is_file():
                try:
                    layers.append(json.loads(path.read_text(encoding="utf-8")))
                except ValueError:
                    err(f"fake claude: ignoring {path}: not valid JSON")
        if self.settings_arg is not None:
            layers.append(parse_settings(self.settings_arg))
        for layer in layers:
            if isinstance(layer, dict) and "statusLine" in layer:
                self.status_line = layer["statusLine"]
            hooks = layer.get("hooks") if isinstance(layer, dict) else None
            if isinstance(hooks, dict):
                for event, groups in hooks.items():
                    if isinstance(groups, list):
                        self.hooks.setdefault(event, []).extend(groups)

    # The transcript

    def _line(self, kind: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        line_uuid = str(uuid.uuid4())
        line = {
            "parentUuid": self.parent_uuid,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": CLAUDE_VERSION,
            "gitBranch": "",
            "type": kind,
            "message": message,
            **extra,
            "uuid": line_uuid,
            "timestamp": iso_now(),
        }
        self.parent_uuid = line_uuid
        return line

    def _user_line(self) -> None:
        message = {"role": "user", "content": self.prompt or "continue"}
        append_json(self.transcript, self._line("user", message))

    def turn(self, fields: dict[str, Any]) -> None:
        self._user_line()
        model = str(fields.get("model") or self.model)
        message = {
            "id": "msg_01" + secrets.token_hex(11),
            "type": "message",
            "role": "assistant",
            "model": CLAUDE_ALIASES.get(model, model),
            "content": [{"type": "text", "text": f"ok: {self.prompt or 'continue'}"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": int(fields.get("input_tokens", 0)),
                "cache_creation_input_tokens": int(fields.get("cache_creation_input_tokens", 0)),
                "cache_read_input_tokens": int(fields.get("cache_read_input_tokens", 0)),
                "output_tokens": int(fields.get("output_tokens", 0)),
                "service_tier": "standard",
            },
        }
        line = self._line("assistant", message, requestId="req_011C" + secrets.token_hex(10))
        append_json(self.transcript, line)

    def limit(self, text: str) -> None:
        """The synthetic message Claude Code logs when the API refuses for a usage limit."""
        self._user_line()
        message = {
            "id": str(uuid.uuid4()),
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        line = self._line("assistant", message, isApiErrorMessage=True, error="rate_limit")
        append_json(self.transcript, line)
        out(text)

    # Hooks

    def hook(self, event: str, fields: dict[str, Any], budget: float | None = None) -> None:
        """Fire every hook of ``event`` whose matcher matches, in order; failures are
        logged and ignored. ``budget``: seconds for all of them (after a signal)."""
        payload = {
            "session_id": self.session_id,
            "transcript_path": str(self.transcript),
            "cwd": self.cwd,
            "permission_mode": self.permission_mode,
            "hook_event_name": event,
            **fields,
        }
        body = json.dumps(payload).encode()
        deadline = None if budget is None else time.monotonic() + budget
        field = MATCH_FIELD.get(event)
        for group in self.hooks.get(event, []):
            if not isinstance(group, dict):
                continue
            if field is not None and not matches(group.get("matcher"), payload.get(field)):
                continue
            for spec in group.get("hooks") or []:
                if not isinstance(spec, dict):
                    continue
                kind = spec.get("type")
                default = HTTP_HOOK_TIMEOUT if kind == "http" else COMMAND_HOOK_TIMEOUT
                timeout = float(spec.get("timeout") or default)
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                    if timeout <= 0:
                        return
                if kind == "http":
                    post_hook(event, spec, body, timeout)
                elif kind == "command":
                    command_hook(event, spec, body, timeout, self.cwd)

    def statusline(self, fields: dict[str, Any]) -> None:
        """One status-line update: the statusLine command run through the shell with the
        session's JSON on stdin (``fields`` added, e.g. ``rate_limits``); what it prints goes
        to ``$FAKE_STATUSLINE_OUT`` (appended), else to the terminal."""
        spec = self.status_line
        if not isinstance(spec, dict) or spec.get("type") != "command":
            return
        payload = {
            "hook_event_name": "Status",
            "session_id": self.session_id,
            "transcript_path": str(self.transcript),
            "cwd": self.cwd,
            "model": {"id": self.model, "display_name": self.model},
            "workspace": {"current_dir": self.cwd, "project_dir": self.cwd},
            "version": CLAUDE_VERSION,
            **fields,
        }
        try:
            done = subprocess.run(
                str(spec.get("command") or ""), shell=True, input=json.dumps(payload).encode(),
                capture_output=True, timeout=STATUSLINE_TIMEOUT, cwd=self.cwd, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            err("fake claude: the status line timed out")
            return
        shown = done.stdout.decode("utf-8", "replace")
        target = os.environ.get("FAKE_STATUSLINE_OUT")
        if target:
            with open(target, "a", encoding="utf-8") as file:
                file.write(shown if shown.endswith("\n") else shown + "\n")
        else:
            out(f"statusline: {shown.rstrip()}")

    def finish(self) -> None:
        reason = "other" if self.batch else "prompt_input_exit"
        self.hook("SessionEnd", {"reason": reason})

    def terminate(self) -> None:
        self.hook("SessionEnd", {"reason": "other"}, budget=END_HOOKS_BUDGET)

    def default_script(self) -> list[list[Any]]:
        prompt = self.prompt or "continue"
        tool_input = {"command": "ls"}
        return [
            ["hook", "SessionStart", {"source": "resume" if self.resumed else "startup"}],
            ["hook", "UserPromptSubmit", {"prompt": prompt}],
            ["hook", "PreToolUse", {"tool_name": "Bash", "tool_input": tool_input}],
            [
                "hook",
                "PostToolUse",
                {"tool_name": "Bash", "tool_input": tool_input, "tool_response": {}},
            ],
            ["turn", {"input_tokens": 100, "output_tokens": 20}],
            ["hook", "Stop", {"stop_hook_active": False}],
            ["hook", "SessionEnd", {"reason": "other" if self.batch else "prompt_input_exit"}],
            ["print", f"ok: {prompt}"],
            ["exit", 0],
        ]


def last_uuid(transcript: Path) -> str | None:
    """The ``uuid`` of a transcript's last line, the parent of the next one."""
    found = None
    with transcript.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("uuid"), str):
                found = line["uuid"]
    return found


def parse_settings(value: str) -> Any:
    """``--settings``: a JSON file's path, or the JSON itself."""
    text = value
    if not value.lstrip().startswith("{"):
        path = expand_home(value)
        if not path.is_file():
            raise UsageError(f"Error: Settings file not found: {value}")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        raise UsageError(f"Error: Invalid settings JSON: {value}") from None


def matches(matcher: Any, value: Any) -> bool:
    """Claude Code's matcher: empty or ``*`` matches all, else a regex over the whole value."""
    if not matcher or matcher == "*":
        return True
    try:
        return re.fullmatch(str(matcher), str(value or "")) is not None
    except re.error:
        return False


def expand_header(value: str, allowed: set[str]) -> str:
    """``$NAME`` / ``${NAME}``: the variable if allowedEnvVars lists it, else empty."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return os.environ.get(name, "") if name in allowed else ""

    return ENV_REF.sub(one, value)


def post_hook(event: str, spec: dict[str, Any], body: bytes, timeout: float) -> None:
    """An http hook: POST the payload; any failure is one line on stderr."""
    import urllib.error
    import urllib.request

    url = str(spec.get("url") or "")
    allowed = {str(name) for name in spec.get("allowedEnvVars") or []}
    headers = {"Content-Type": "application/json"}
    for name, value in (spec.get("headers") or {}).items():
        headers[str(name)] = expand_header(str(value), allowed)
    # No proxies: the hooks the tests install go to loopback sinks.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with opener.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        error.close()
        err(f"fake claude: {event} hook {url} failed: HTTP {error.code}")
    except (OSError, ValueError) as error:
        err(f"fake claude: {event} hook {url} failed: {error}")


def command_hook(event: str, spec: dict[str, Any], body: bytes, timeout: float, cwd: str) -> None:
    """A command hook: run through the shell with the payload on stdin."""
    command = str(spec.get("command") or "")
    env = {**os.environ, "CLAUDE_PROJECT_DIR": cwd}
    try:
        done = subprocess.run(
            command,
            shell=True,
            input=body,
            stdout=subprocess.DEVNULL,  # no pipes: a hook's orphans can't hold us up
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired:
        err(f"fake claude: {event} hook {command!r} timed out after {timeout:g} s")
    except OSError as error:
        err(f"fake claude: {event} hook {command!r} failed: {error}")
    else:
        if done.returncode != 0:
            err(f"fake claude: {event} hook {command!r} exited with status {done.returncode}")


def claude_main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-v"]):
        record_invocation("claude", argv, None)
        out(f"{CLAUDE_VERSION} (Claude Code)")
        return 0
    args = ClaudeArgs(argv)
    if args.has("--help", "-h"):
        out("Usage: claude [options] [command] [prompt]  (fake)")
        return 0
    if args.positionals and args.positionals[0] in CLAUDE_SUBCOMMANDS:
        raise UsageError(f"fake claude: `claude {args.positionals[0]}` is not faked", BAD_USAGE)
    batch = args.has("--print", "-p")
    prompt = args.positionals[0] if args.positionals else ""
    if batch and not prompt:
        prompt = read_stdin_prompt()
    agent = Claude(args, prompt, batch)
    try:
        if batch and not prompt:
            raise UsageError(
                "Error: Input must be provided either through stdin or as a prompt argument"
                " when using --print"
            )
        agent.open_session(args)
        agent.load_hooks()
    except UsageError:
        record_invocation("claude", argv, agent.session_id or args.value("--session-id"))
        raise
    record_invocation("claude", argv, agent.session_id)
    return run_agent(agent)


# --- codex ----------------------------------------------------------------------------------


class Codex(Agent):
    """Codex CLI 0.x: one rollout file per thread under ``$CODEX_HOME/sessions``."""

    name = "codex"
    default_turn = {"input_tokens": 100, "output_tokens": 20}

    def __init__(self, prompt: str, batch: bool, model: str | None) -> None:
        super().__init__(prompt, batch)
        self.cwd = os.getcwd()
        self.model = model or CODEX_MODEL
        self.session_id = ""
        self.rollout = Path()
        self.total = {key: 0 for key in TOKEN_FIELDS}
        self.context_model = ""

    def new_session(self) -> None:
        self.session_id = uuid7()
        moment = datetime.now().astimezone()  # local time, as Codex names its files
        self.rollout = (
            codex_home()
            / "sessions"
            / moment.strftime("%Y/%m/%d")
            / f"rollout-{moment.strftime('%Y-%m-%dT%H-%M-%S')}-{self.session_id}.jsonl"
        )
        payload = {
            "id": self.session_id,
            "timestamp": iso_now(),
            "cwd": self.cwd,
            "originator": "codex_exec" if self.batch else "codex_cli_rs",
            "cli_version": CODEX_VERSION,
            "instructions": None,
            "source": "exec" if self.batch else "cli",
            "model_provider": "openai",
        }
        self.write("session_meta", payload)
        self.turn_context(self.model)

    def resume(self, session_id: str | None, last: bool) -> None:
        found = None
        if last:
            sessions = codex_home() / "sessions"
            rollouts = sorted(sessions.rglob("rollout-*.jsonl"), key=lambda p: p.stat().st_mtime)
            if not rollouts:
                raise UsageError("Error: No saved session found")
            found = rollouts[-1]
        elif session_id:
            found = find_rollout(codex_home(), session_id)
            if found is None:
                raise UsageError(f"Error: No saved session found with ID {session_id}")
        else:
            raise UsageError("Error: a session id or --last is needed (no picker in the fake)")
        self.rollout = found
        self.session_id = session_id or found.stem[-36:]
        self.total = last_total(found)
        self.turn_context(self.model)

    def write(self, kind: str, payload: dict[str, Any]) -> None:
        append_json(self.rollout, {"timestamp": iso_now(), "type": kind, "payload": payload})

    def turn_context(self, model: str) -> None:
        self.context_model = model
        payload = {
            "cwd": self.cwd,
            "approval_policy": "on-request",
            "sandbox_policy": {"mode": "workspace-write"},
            "model": model,
            "summary": "auto",
        }
        self.write("turn_context", payload)

    def turn(self, fields: dict[str, Any]) -> None:
        model = str(fields.get("model") or self.model)
        if model != self.context_model:
            self.turn_context(model)
        prompt = self.prompt or "continue"
        self.write("event_msg", {"type": "user_message", "message": prompt, "images": []})
        last = {
            "input_tokens": int(fields.get("input_tokens", 0)),
            "cached_input_tokens": int(
                fields.get("cached_input_tokens", fields.get("cache_read_input_tokens", 0))
            ),
            "output_tokens": int(fields.get("output_tokens", 0)),
            "reasoning_output_tokens": int(fields.get("reasoning_output_tokens", 0)),
        }
        # Codex's input includes the cached part and its output the reasoning part.
        last["total_tokens"] = last["input_tokens"] + last["output_tokens"]
        self.total = {key: self.total[key] + last[key] for key in TOKEN_FIELDS}
        info = {
            "total_token_usage": dict(self.total),
            "last_token_usage": last,
            "model_context_window": 272000,
        }
        limits = fields.get("rate_limits")  # the plan's windows, as Codex reports them
        self.write("event_msg", {"type": "token_count", "info": info, "rate_limits": limits})
        self.write("event_msg", {"type": "agent_message", "message": f"ok: {prompt}"})

    def limit(self, text: str) -> None:
        resets_at = int(os.environ.get("FAKE_LIMIT_RESETS_AT") or time.time() + 3600)
        limits = {"primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": resets_at}}
        self.write("event_msg", {"type": "token_count", "info": None, "rate_limits": limits})
        self.write("event_msg", {"type": "error", "message": text})
        out(text)


TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)


def last_total(rollout: Path) -> dict[str, int]:
    """The cumulative token counter a rollout ended with (a resumed thread goes on from it)."""
    total = {key: 0 for key in TOKEN_FIELDS}
    with rollout.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            if "token_count" not in raw:
                continue
            try:
                payload = json.loads(raw).get("payload") or {}
            except (ValueError, AttributeError):
                continue
            info = payload.get("info") if isinstance(payload, dict) else None
            usage = info.get("total_token_usage") if isinstance(info, dict) else None
            if isinstance(usage, dict):
                total = {key: int(usage.get(key) or 0) for key in TOKEN_FIELDS}
    return total


def config_model(overrides: list[str]) -> str | None:
    """The model a ``-c model=...`` override names (its value is TOML: maybe quoted)."""
    model = None
    for override in overrides:
        key, _, value = override.partition("=")
        if key.strip() == "model" and value.strip():
            model = value.strip().strip("'\"")
    return model


def codex_main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-V"]):
        record_invocation("codex", argv, None)
        out(f"codex-cli {CODEX_VERSION}")
        return 0
    flags: set[str] = set()
    values: dict[str, str] = {}
    overrides: list[str] = []  # every -c key=value, in order
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            continue
        name, has_value, inline = arg.partition("=")
        if has_value and name.startswith("--"):
            values[name] = inline
            if name == "--config":
                overrides.append(inline)
        elif arg in CODEX_VALUE_OPTIONS:
            if i >= len(argv):
                raise UsageError(f"error: a value is required for '{arg} <VALUE>'", BAD_USAGE)
            values[arg] = argv[i]
            if arg in ("-c", "--config"):
                overrides.append(argv[i])
            i += 1
        else:
            flags.add(arg)  # --json, --full-auto, --skip-git-repo-check, --last, unknown ones
    if flags & {"-h", "--help"}:
        out("Usage: codex [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] [PROMPT]  (fake)")
        return 0
    batch = bool(positionals) and positionals[0] in ("exec", "e")
    if batch:
        positionals = positionals[1:]
    elif positionals and positionals[0] in CODEX_SUBCOMMANDS:
        raise UsageError(f"fake codex: `codex {positionals[0]}` is not faked", BAD_USAGE)
    resuming = bool(positionals) and positionals[0] == "resume"
    session_id = None
    if resuming:
        positionals = positionals[1:]
        if positionals and "--last" not in flags:
            session_id, positionals = positionals[0], positionals[1:]
    prompt = positionals[0] if positionals else ""
    if batch and prompt in ("", "-"):
        prompt = read_stdin_prompt()
    directory = values.get("-C") or values.get("--cd")
    model = values.get("-m") or values.get("--model") or config_model(overrides)
    agent = Codex(prompt, batch, model)
    try:
        if directory is not None:
            try:
                os.chdir(directory)
            except OSError as error:
                raise UsageError(f"Error: cannot change to {directory}: {error}") from None
            agent.cwd = os.getcwd()
        if batch and not prompt:
            raise UsageError(
                "No prompt provided. Either specify one as an argument or pipe the prompt"
                " into stdin."
            )
        if resuming:
            agent.resume(session_id, "--last" in flags)
        else:
            agent.new_session()
    except UsageError:
        record_invocation("codex", argv, session_id)
        raise
    record_invocation("codex", argv, agent.session_id)
    if batch:
        out(f"session id: {agent.session_id}")
    return run_agent(agent)


# --- gemini ---------------------------------------------------------------------------------

GEMINI_VERSION = "0.99.0"
GEMINI_MODEL = "gemini-2.5-pro"
GEMINI_VALUE_OPTIONS = frozenset({
    "-m", "--model", "-p", "--prompt", "-i", "--prompt-interactive", "-o", "--output-format",
    "--approval-mode", "--include-directories", "-e", "--extensions",
})  # fmt: skip


def gemini_home() -> Path:
    """``$GEMINI_CLI_HOME/.gemini``, else ``~/.gemini`` (gemini-cli ``utils/paths.ts``)."""
    raw = os.environ.get("GEMINI_CLI_HOME")
    return (expand_home(raw) if raw else Path.home()) / ".gemini"


def gemini_slug(folder: str) -> str:
    """The ProjectRegistry's short id of a folder (no collision handling: tests use one)."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", os.path.basename(folder).lower()))
    return slug.strip("-") or "project"


class Gemini(Agent):
    """Gemini CLI 0.x: a chat recording per session under ``~/.gemini/tmp/<project>/chats``:
    JSONL in a slug directory (projects.json, .project_root), or, with ``FAKE_GEMINI_LEGACY``
    set, the older whole JSON document in a SHA-256 directory."""

    name = "gemini"
    default_turn = {"input": 1200, "output": 40, "cached": 800, "thoughts": 12}

    def __init__(self, prompt: str, batch: bool, model: str | None) -> None:
        super().__init__(prompt, batch)
        self.cwd = os.getcwd()
        self.model = model or GEMINI_MODEL
        self.legacy = bool(os.environ.get("FAKE_GEMINI_LEGACY"))
        self.session_id = ""
        self.recording = Path()
        self.document: dict[str, Any] = {}

    def chats(self) -> Path:
        home = gemini_home()
        if self.legacy:
            project = hashlib.sha256(self.cwd.encode()).hexdigest()
        else:
            project = gemini_slug(self.cwd)
            registry = home / "projects.json"
            try:
                known = json.loads(registry.read_text(encoding="utf-8"))["projects"]
            except (OSError, ValueError, KeyError):
                known = {}
            known[self.cwd] = project
            registry.parent.mkdir(parents=True, exist_ok=True)
            registry.write_text(json.dumps({"projects": known}, indent=2), encoding="utf-8")
            (home / "tmp" / project).mkdir(parents=True, exist_ok=True)
            (home / "tmp" / project / ".project_root").write_text(self.cwd, encoding="utf-8")
        return home / "tmp" / project / "chats"

    def open(self, resume: str | None) -> None:
        """Resume the session ``--resume`` names, or start a new one."""
        if resume is not None:
            self.resume(resume)
        else:
            self.new_session()

    def new_session(self) -> None:
        self.session_id = str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M")
        suffix = ".json" if self.legacy else ".jsonl"
        self.recording = self.chats() / f"session-{stamp}-{self.session_id[:8]}{suffix}"
        meta = {
            "sessionId": self.session_id,
            "projectHash": hashlib.sha256(self.cwd.encode()).hexdigest(),
            "startTime": iso_now(),
            "lastUpdated": iso_now(),
        }
        if self.legacy:
            self.document = {**meta, "messages": []}
        else:
            append_json(self.recording, meta)

    def resume(self, wanted: str) -> None:
        """``--resume latest|<index>|<uuid>``, as gemini-cli's SessionSelector resolves it."""
        found = []
        for path in sorted(self.chats().glob("session-*.json*"), key=lambda p: p.stat().st_mtime):
            session = gemini_session_of(path)
            if session:
                found.append((session, path))
        if not found:
            raise UsageError("No previous sessions found for this project.")
        if wanted == "latest":
            session, path = found[-1]
        elif wanted.isdigit() and 0 < int(wanted) <= len(found):
            session, path = found[int(wanted) - 1]
        else:
            matches = [(s, p) for s, p in found if s == wanted]
            if not matches:
                raise UsageError(f'Invalid session identifier "{wanted}".')
            session, path = matches[-1]
        self.session_id, self.recording = session, path
        if path.suffix == ".json":
            self.document = json.loads(path.read_text(encoding="utf-8"))

    def record(self, message: dict[str, Any]) -> None:
        if self.recording.suffix == ".json":
            messages = self.document["messages"]
            messages[:] = [m for m in messages if m.get("id") != message["id"]] + [message]
            self.document["lastUpdated"] = iso_now()
            self.recording.parent.mkdir(parents=True, exist_ok=True)
            self.recording.write_text(json.dumps(self.document, indent=2), encoding="utf-8")
        else:
            append_json(self.recording, message)
            append_json(self.recording, {"$set": {"lastUpdated": iso_now()}})

    def turn(self, fields: dict[str, Any]) -> None:
        self.record({
            "id": str(uuid.uuid4()), "timestamp": iso_now(), "type": "user",
            "content": [{"text": self.prompt or "continue"}],
        })  # fmt: skip
        reply = {
            "id": str(uuid.uuid4()),
            "timestamp": iso_now(),
            "type": "gemini",
            "content": f"ok: {self.prompt or 'continue'}",
            "thoughts": [],
            "model": str(fields.get("model") or self.model),
        }
        self.record(dict(reply))  # the tokens arrive after the message (recordMessageTokens)
        usage = {key: int(fields.get(key, 0)) for key in ("input", "output", "cached",
                                                          "thoughts", "tool")}  # fmt: skip
        usage["total"] = usage["input"] + usage["output"] + usage["thoughts"] + usage["tool"]
        self.record({**reply, "tokens": usage})

    def limit(self, text: str) -> None:
        out(text)


def gemini_session_of(path: Path) -> str | None:
    """The session id a recording names (its metadata line or document)."""
    try:
        text = path.read_text(encoding="utf-8")
        first = json.loads(text if path.suffix == ".json" else text.split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    session = first.get("sessionId") if isinstance(first, dict) else None
    return session if isinstance(session, str) else None


def gemini_main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-v"]):
        record_invocation("gemini", argv, None)
        out(GEMINI_VERSION)
        return 0
    values, flags, positionals = split_options(
        argv, GEMINI_VALUE_OPTIONS, "Not enough arguments following: {bare}", 1
    )
    for name in ("-r", "--resume"):  # a value only if one follows: else the latest session
        if name in flags:
            values["--resume"] = "latest"
        elif name in values:
            values["--resume"] = values[name]
    if flags & {"-h", "--help"}:
        out("Usage: gemini [options] [query..]  (fake)")
        return 0
    prompt = values.get("-p") or values.get("--prompt") or " ".join(positionals)
    model = values.get("-m") or values.get("--model")
    agent = Gemini(prompt, bool(prompt), model)
    try:
        agent.open(values.get("--resume"))
    except UsageError:
        record_invocation("gemini", argv, None)
        raise
    record_invocation("gemini", argv, agent.session_id)
    return run_agent(agent)


# --- aider ----------------------------------------------------------------------------------

AIDER_VERSION = "0.86.1"
AIDER_VALUE_OPTIONS = frozenset({"--model", "--message", "-m", "--chat-history-file"})
AIDER_ALIASES = {"sonnet": "anthropic/claude-sonnet-4-5-20250929", "4o": "gpt-4o"}
# USD per token (input, output), as Aider's model metadata has them; a model not listed here
# has no price in Aider: it shows tokens only.
AIDER_PRICES = {
    "anthropic/claude-sonnet-4-5-20250929": (3e-06, 1.5e-05),
    "gpt-4o": (2.5e-06, 1e-05),
}


def aider_tokens(count: int) -> str:
    """Aider's ``format_tokens``."""
    if count < 1000:
        return str(count)
    if count < 10000:
        return f"{count / 1000:.1f}k"
    return f"{round(count / 1000)}k"


def aider_cost(value: float) -> str:
    """Aider's ``format_cost``."""
    if value == 0:
        return "0.00"
    if abs(value) >= 0.01:
        return f"{value:.2f}"
    return f"{value:.{max(2, 2 - int(math.log10(abs(value))))}f}"


def git_root(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


class Aider(Agent):
    """Aider 0.86: its chat history, ``.aider.chat.history.md`` in the git root (else here)
    or ``--chat-history-file``, with the announcements, the prompts and a usage report after
    each reply (tokens rounded as Aider rounds them, its own cost of the exact ones)."""

    name = "aider"
    default_turn = {"input_tokens": 12400, "output_tokens": 1180}

    def __init__(self, prompt: str, batch: bool, model: str, history: Path) -> None:
        super().__init__(prompt, batch)
        self.model = model
        self.history = history
        self.session_cost = 0.0

    def write(self, text: str) -> None:
        self.history.parent.mkdir(parents=True, exist_ok=True)
        with self.history.open("a", encoding="utf-8") as handle:
            handle.write(text)

    def tool_output(self, text: str) -> None:
        """``InputOutput.tool_output``: a blockquote ending in a Markdown line break."""
        self.write(f"> {text.strip()}  \n")

    def start(self, argv: list[str]) -> None:
        self.write(f"\n# aider chat started at {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}\n\n")
        self.tool_output(" ".join(["aider", *argv]))
        self.tool_output(f"Aider v{AIDER_VERSION}")
        self.tool_output(f"Model: {self.model} with diff edit format")
        self.tool_output("Git repo: none" if git_root(Path.cwd()) is None else "Git repo: .git")

    def turn(self, fields: dict[str, Any]) -> None:
        self.write(f"#### {self.prompt or 'continue'}  \n\nok: {self.prompt or 'continue'}\n\n")
        sent = int(fields.get("input_tokens", 0))
        write = int(fields.get("cache_creation_input_tokens", 0))
        hit = int(fields.get("cache_read_input_tokens", 0))
        received = int(fields.get("output_tokens", 0))
        report = f"Tokens: {aider_tokens(sent + write + hit)} sent"
        if write:
            report += f", {aider_tokens(write)} cache write"
        if hit:
            report += f", {aider_tokens(hit)} cache hit"
        report += f", {aider_tokens(received)} received."
        price = AIDER_PRICES.get(self.model)
        if price is not None:
            cost = (sent + 1.25 * write + 0.1 * hit) * price[0] + received * price[1]
            self.session_cost += cost
            separator = "\n" if write and hit else " "
            report += (
                f"{separator}Cost: ${aider_cost(cost)} message, "
                f"${aider_cost(self.session_cost)} session."
            )
        self.tool_output(report)

    def limit(self, text: str) -> None:
        self.tool_output(text)
        out(text)


def aider_main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        record_invocation("aider", argv, None)
        out(f"aider {AIDER_VERSION}")
        return 0
    values, _, _ = split_options(
        argv, AIDER_VALUE_OPTIONS, "aider: error: argument {name}: expected one argument", 2
    )
    model = values.get("--model") or "gpt-4o"
    model = AIDER_ALIASES.get(model, model)
    prompt = values.get("--message") or values.get("-m") or ""
    named = values.get("--chat-history-file")
    cwd = Path.cwd()
    history = cwd / named if named else (git_root(cwd) or cwd) / ".aider.chat.history.md"
    agent = Aider(prompt, bool(prompt), model, history)
    record_invocation("aider", argv, None)
    agent.start(argv)
    return run_agent(agent)


# --- entry ----------------------------------------------------------------------------------


def main(agent: str, argv: list[str]) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="replace")  # as Node and Rust write
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    programs = {
        "claude": claude_main, "codex": codex_main, "gemini": gemini_main, "aider": aider_main,
    }  # fmt: skip
    if agent not in programs:
        err(f"fake agent: don't know how to be {agent!r} ({', '.join(programs)})")
        return BAD_USAGE
    try:
        return programs[agent](argv)
    except UsageError as error:
        err(str(error))
        return error.status
    except Terminated as signalled:
        return 128 + signalled.signum


if __name__ == "__main__":
    sys.exit(main(INSTALLED_AS or Path(sys.argv[0]).name, sys.argv[1:]))
