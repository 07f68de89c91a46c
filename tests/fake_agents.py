"""Fake ``claude``, ``codex``, ``gemini`` and ``aider`` programs for tests (the real CLIs are
not installed on CI).

``install(bin_dir, "claude")`` writes an executable that behaves, as far as the supervisor can
see, like Claude Code 2.x (``codex``: Codex CLI 0.x; ``gemini``: Gemini CLI 0.x; ``aider``:
Aider 0.86): version line, batch and interactive modes, session ids, ``--resume``, the
transcript, rollout, chat recording or chat history our usage importers read, Claude's http
and command hooks, SIGTERM. Put ``bin_dir`` first on ``PATH``.

Gemini writes its JSONL recordings in a slug directory with ``projects.json``; with
``FAKE_GEMINI_LEGACY`` set, the older whole-JSON recording in a SHA-256 directory. Aider
prices replies of the models it knows (``AIDER_PRICES``) and shows only tokens for others.

What a run does is scripted by the environment variable ``FAKE_AGENT_SCRIPT`` (build it with
:func:`script`), a JSON list of steps:

- ``["hook", EVENT, {fields}]``: fire Claude's hooks for EVENT (ignored by codex);
- ``["turn", {"input_tokens": 10, "output_tokens": 5, ...}]``: log one model turn (claude:
  also ``cache_creation_input_tokens``, ``cache_read_input_tokens``; codex: also
  ``cached_input_tokens``, part of its input, ``reasoning_output_tokens``, and
  ``rate_limits``, written as Codex's plan windows; both:
  ``model``; aider: the same four as claude, uncached input first; gemini: Gemini's own
  ``input`` (cached included), ``output``, ``cached``, ``thoughts``, ``tool``, ``model``);
- ``["limit", TEXT]``: log a usage-limit refusal (claude: the synthetic ``isApiErrorMessage``
  line; codex: a ``rate_limits`` update at 100% resetting at ``$FAKE_LIMIT_RESETS_AT``, and an
  error event) and print TEXT;
- ``["statusline", {fields}]``: one status-line update (claude only): the ``statusLine``
  command of its settings (the last layer that has one, ``--settings`` last) run through the
  shell with Claude's JSON plus ``fields`` (e.g. ``rate_limits``) on stdin; what it prints is
  appended to ``$FAKE_STATUSLINE_OUT`` (else printed);
- ``["print", TEXT]``, ``["stderr", TEXT]``, ``["sleep", SECONDS]``;
- ``["append", PATH, TEXT]``: append TEXT to the file PATH (relative: in its folder), as an
  agent edits a file;
- ``["wait_file", PATH]``: hold until PATH exists (exit 3 after 60 s);
- ``["exit", CODE]``: exit at once;
- ``["once", MARKER, [steps]]``: run ``steps`` only if the file MARKER does not exist yet (and
  create it): a resumed run skips them (e.g. a limit hit the first time only).

A script that runs out exits 0; claude fires SessionEnd first (reason ``other`` in batch
mode, ``prompt_input_exit`` interactive). Without the variable the program runs one normal
turn (claude: SessionStart, UserPromptSubmit, Pre/PostToolUse on Bash, the turn, Stop,
SessionEnd) and prints ``ok: <prompt>``. SIGTERM fires SessionEnd (≤ 1 s) and exits 143.
Every run appends ``{"agent", "argv" (without the program name), "cwd", "session_id",
"env_token"}`` to ``$FAKE_AGENT_LOG`` when that is set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.fake_agents_main import find_rollout, project_key

AGENTS = ("claude", "codex", "gemini", "aider")
PROGRAM = Path(__file__).with_name("fake_agents_main.py")


def install(bin_dir: Path, agent: str) -> Path:
    """Write the fake ``agent`` (one of ``AGENTS``) into ``bin_dir``; returns its path."""
    if agent not in AGENTS:
        raise ValueError(f"no fake for {agent!r}: one of {', '.join(AGENTS)}")
    if any(c.isspace() for c in sys.executable):
        raise ValueError(f"a shebang can't name {sys.executable!r} (it contains whitespace)")
    source = PROGRAM.read_text(encoding="utf-8")
    marker = 'INSTALLED_AS = ""'
    if marker not in source:
        raise RuntimeError(f"{PROGRAM} lost its {marker} line")
    source = source.replace(marker, f"INSTALLED_AS = {agent!r}", 1)
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / agent
    # -I: no PYTHONPATH, user site or script directory: stdlib only, whatever the cwd.
    path.write_text(f"#!{sys.executable} -I\n{source}", encoding="utf-8")
    path.chmod(0o755)
    return path


def claude_transcript(config_dir: Path, cwd: str, session_id: str) -> Path:
    """Where Claude Code (and the fake) writes the transcript of ``session_id`` run in
    ``cwd``."""
    return config_dir / "projects" / project_key(cwd) / f"{session_id}.jsonl"


def codex_rollout(codex_home: Path, session_id: str) -> Path | None:
    """The rollout file of ``session_id`` under ``codex_home/sessions``, or None."""
    return find_rollout(codex_home, session_id)


def gemini_recordings(gemini_home: Path) -> list[Path]:
    """Every chat recording the fake gemini wrote under ``$GEMINI_CLI_HOME``."""
    return sorted((gemini_home / ".gemini" / "tmp").glob("*/chats/session-*.json*"))


def script(*steps: list[Any]) -> str:
    """The value of ``FAKE_AGENT_SCRIPT`` for these steps."""
    return json.dumps(list(steps))
