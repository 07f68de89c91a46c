"""Gemini CLI's chat recordings: where they live, which project each belongs to, and the tokens
of each model response.

Read from gemini-cli's own source (github.com/google-gemini/gemini-cli, ``packages/core/src/``):
``utils/paths.ts`` (the home is ``$GEMINI_CLI_HOME`` or the user's, plus ``.gemini``),
``config/storage.ts`` and ``config/projectRegistry.ts`` (a project's directory is
``tmp/<id>``: ``<id>`` was the SHA-256 of the project path, and is now a short slug that
``projects.json``, ``{"projects": {path: slug}}``, and the directory's ``.project_root`` file
map to the path; the old hash directory is *copied* to the slug one, so a session can be on
disk twice), ``services/chatRecordingService.ts`` and ``chatRecordingTypes.ts`` (the files):

- ``tmp/<id>/chats/session-<YYYY-MM-DDTHH-MM>-<first 8 of the session id>.json``: until
  April 2026, one JSON document ``{sessionId, projectHash, startTime, lastUpdated, messages,
  kind}`` rewritten whole on every change;
- ``....jsonl`` since: a first line with that metadata, then each message record appended,
  again whenever it changes (the tokens arrive after the message), ``{"$set": {...}}``
  metadata updates (a checkpoint may carry ``messages``), ``{"$rewindTo": id}``. Resuming a
  ``.json`` session writes a ``.jsonl`` beside it with the same messages.
- a sub-agent's session is ``chats/<parent session id>/<its session id>.json(l)``.

A model response is a message with ``type: "gemini"``, ``model`` and ``tokens``: ``input``
(``promptTokenCount``, cached tokens included), ``output`` (``candidatesTokenCount``),
``cached``, ``thoughts``, ``tool`` (``toolUsePromptTokenCount``) and ``total``. A row's input is
``input - cached + tool``, its cache reads ``cached``, its output ``output + thoughts`` (Google
bills thinking as output); only when ``total`` says the cached tokens were not part of
``input`` are they left out of the subtraction. Rewound messages are still counted: they
were billed.

Dedupe key ``gemini:<session>:<message id>``: a message re-appended with its tokens, copied
by the hash-to-slug migration or into a resumed ``.jsonl``, counts once (the largest token
total wins). A sub-agent's rows belong to its parent session, the one a user resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from supervisor.usage.records import UsageRow
from supervisor.usage.scan import Parsed, iso_timestamp

AGENT = "gemini"
UNKNOWN_MODEL = "unknown"  # a response whose message names no model (gemini-cli always does)
_decoder = msgspec.json.Decoder()
_DECODE_ERRORS = (msgspec.DecodeError, ValueError)
_SUFFIXES = (".json", ".jsonl")


def gemini_dir(env: Mapping[str, str] = os.environ, home: Path | None = None) -> Path:
    """Gemini CLI's directory: ``$GEMINI_CLI_HOME/.gemini``, else ``~/.gemini``."""
    configured = env.get("GEMINI_CLI_HOME")
    if configured:
        return Path(configured) / ".gemini"
    home = home if home is not None else Path(env.get("HOME") or Path.home())
    return home / ".gemini"


def gemini_files(directory: Path) -> list[Path]:
    """Every chat recording: ``tmp/*/chats/*.json(l)`` and the sub-agents' one level down,
    sorted by path. Symbolic links are not followed."""
    found: list[Path] = []
    for project in _subdirs(directory / "tmp"):
        chats = os.path.join(project, "chats")
        for entry in _entries(chats):
            if _is_dir(entry):
                found.extend(Path(e.path) for e in _entries(entry.path) if _is_recording(e))
            elif _is_recording(entry):
                found.append(Path(entry.path))
    found.sort(key=str)
    return found


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _subdirs(directory: Path) -> list[str]:
    return [entry.path for entry in _entries(str(directory)) if _is_dir(entry)]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_recording(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.name.endswith(_SUFFIXES) and entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def path_hash(folder: str) -> str:
    """gemini-cli's ``getProjectHash``: the SHA-256 of the project path, in hex."""
    return hashlib.sha256(folder.encode()).hexdigest()


class Folders:
    """Which project folder each ``tmp/<id>`` directory belongs to.

    In order: the directory's ``.project_root`` file, ``projects.json`` (slug back to path,
    or the SHA-256 of a listed path), then the SHA-256 of a folder Stratavore knows (its
    projects' and runners' folders: sessions from before ``projects.json`` existed). Built
    once per import; each directory is resolved once.
    """

    def __init__(self, directory: Path, known: Iterable[str] = ()) -> None:
        self.directory = directory
        self._known = known
        self._ids: dict[str, str] | None = None  # slug or hash -> folder
        self._resolved: dict[str, str | None] = {}

    def hint(self, recording: Path) -> dict[str, Any] | None:
        """The parser context a recording starts from: ``{"cwd": its project's folder}``."""
        folder = self.of(recording)
        return None if folder is None else {"cwd": folder}

    def of(self, recording: Path) -> str | None:
        """The project folder of a chat recording, None when nothing says."""
        parts = recording.relative_to(self.directory / "tmp").parts
        project_id = parts[0]
        if project_id not in self._resolved:
            self._resolved[project_id] = self._resolve(project_id)
        return self._resolved[project_id]

    def _resolve(self, project_id: str) -> str | None:
        marker = self.directory / "tmp" / project_id / ".project_root"
        try:
            text = marker.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        if text:
            return text
        if self._ids is None:
            self._ids = self._load_ids()
        return self._ids.get(project_id)

    def _load_ids(self) -> dict[str, str]:
        ids = {path_hash(folder): folder for folder in self._known}
        try:
            registry = json.loads((self.directory / "projects.json").read_text("utf-8"))
        except (OSError, ValueError):
            return ids
        projects = registry.get("projects") if isinstance(registry, dict) else None
        if isinstance(projects, dict):
            for folder, slug in projects.items():
                if isinstance(folder, str) and isinstance(slug, str):
                    ids[slug] = folder
                    ids[path_hash(folder)] = folder
        return ids


def parse(chunk: bytes, base_offset: int, source: str, context: dict[str, Any]) -> Parsed:
    """The usage rows in ``chunk``: complete lines of a ``.jsonl`` recording starting at
    ``base_offset``, or the whole of a ``.json`` one.

    ``context`` (updated in place, JSON values) carries ``session_id`` and ``model`` across
    refreshes; ``cwd`` is the project folder the importer found for the file (``Folders``).
    """
    parsed = Parsed(context=context)
    parent = _parent_session(source)
    if source.endswith(".json"):
        try:
            document = _decoder.decode(chunk)
        except _DECODE_ERRORS:
            parsed.skip(source, base_offset, "not valid JSON (a file being rewritten?)")
            return parsed
        if isinstance(document, dict):
            _metadata(context, document)
            messages = document.get("messages")
            for message in messages if isinstance(messages, list) else ():
                _message(parsed, context, message, source, base_offset, parent)
        return parsed
    pos = 0
    for line in chunk.split(b"\n"):
        start = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        try:
            record = _decoder.decode(line)
        except _DECODE_ERRORS:
            parsed.skip(source, base_offset + start, "not valid JSON (a truncated line?)")
            continue
        if not isinstance(record, dict):
            continue
        update = record.get("$set")
        if isinstance(update, dict):
            _metadata(context, update)
            messages = update.get("messages")
            for message in messages if isinstance(messages, list) else ():
                _message(parsed, context, message, source, base_offset + start, parent)
        elif "id" in record:
            _message(parsed, context, record, source, base_offset + start, parent)
        else:
            _metadata(context, record)
    return parsed


def _parent_session(source: str) -> str | None:
    """A sub-agent's recording (``tmp/<id>/chats/<parent>/<file>``): the parent session's
    id; None for a session's own (``tmp/<id>/chats/<file>``, whatever ``<id>`` is called)."""
    parts = Path(source).parts
    sub = len(parts) >= 5 and parts[-3] == "chats" and parts[-5] == "tmp"
    return parts[-2] if sub else None


def _metadata(context: dict[str, Any], record: dict[str, Any]) -> None:
    session_id = record.get("sessionId")
    if isinstance(session_id, str) and session_id:
        context["session_id"] = session_id


def _message(
    parsed: Parsed,
    context: dict[str, Any],
    message: Any,
    source: str,
    offset: int,
    parent: str | None,
) -> None:
    if not isinstance(message, dict) or message.get("type") != "gemini":
        return
    model = message.get("model")
    if isinstance(model, str) and model.strip():
        context["model"] = model = model.strip()
    else:
        model = context.get("model") or UNKNOWN_MODEL
    tokens = message.get("tokens")
    message_id = message.get("id")
    if not isinstance(tokens, dict) or not isinstance(message_id, str):
        return  # the tokens come with a later copy of the message
    counts = _counts(tokens)
    if counts is None:
        parsed.skip(source, offset, "tokens are not counts")
        return
    input_tokens, cached, output, thoughts, tool = counts
    if not any(counts):
        return
    raw_ts = message.get("timestamp")
    ts = iso_timestamp(raw_ts) if isinstance(raw_ts, str) else None
    if ts is None:
        parsed.skip(source, offset, f"timestamp {raw_ts!r} not understood")
        return
    session_id = context.get("session_id") or Path(source).stem
    parsed.rows.append(
        UsageRow(
            ts=ts,
            agent=AGENT,
            model=model,
            input_tokens=input_tokens - cached + tool,
            output_tokens=output + thoughts,  # thinking is billed as output
            cache_creation_tokens=0,  # Gemini's implicit caching has no write charge
            cache_read_tokens=cached,
            key=f"gemini:{session_id}:{message_id}",
            source=source,
            session_id=parent or session_id,
            cwd=context.get("cwd"),
            sidechain=parent is not None,
        )
    )


def _counts(tokens: dict[str, Any]) -> tuple[int, int, int, int, int] | None:
    """(input including cached, cached, output, thoughts, tool), or None if one is not a
    non-negative whole number."""
    values = []
    for name in ("input", "cached", "output", "thoughts", "tool"):
        value = tokens.get(name, 0)
        if value is None:
            value = 0
        if type(value) is not int or value < 0:
            return None
        values.append(value)
    input_tokens, cached, output, thoughts, tool = values
    total = tokens.get("total")
    if type(total) is int and cached and total == input_tokens + cached + output + thoughts + tool:
        input_tokens += cached  # this total counts cached apart: it was not part of input
    return input_tokens, min(cached, input_tokens), output, thoughts, tool
