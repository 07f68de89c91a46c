"""Aider's chat history: which files, and how its usage reports become rows.

Aider keeps no usage log of its own; it appends what it tells the user to a Markdown file per
project, ``.aider.chat.history.md`` in the git root (else the working folder), or
``--chat-history-file``. Read from Aider's source (github.com/Aider-AI/aider): ``aider/io.py``
(``InputOutput``: ``# aider chat started at <local time>`` when a run starts;
``tool_output`` writes ``> <text>  `` and ``append_chat_history``), ``aider/coders/
base_coder.py`` (``get_announcements``: ``Model: <name> with ...`` or ``Main model: ...``;
``calculate_and_show_tokens_and_cost`` and ``show_usage_report``: after each reply
``Tokens: 12k sent, 8k cache write, 3k cache hit, 1.2k received. Cost: $0.02 message, $0.10
session.``, the cost part on its own line when there are both cache figures, and absent for
a model Aider has no price for), ``aider/utils.py`` (``format_tokens``), ``aider/args.py``
(the default file).

What is stored, and why:

- Tokens are as Aider rounds them (``format_tokens``: exact below 1,000, ``1.2k`` below
  10,000, ``12k`` above), the value shown: at most 500 tokens (4 %) off, unbiased.
- ``sent`` is the whole input side as Aider counted it (cache writes and, with the LiteLLM
  versions Aider ships, cache reads included): input is ``sent`` minus the cache figures,
  cache writes and reads are Aider's own figures.
- The cost is Aider's: it prices each reply from the exact tokens (LiteLLM's
  ``completion_cost``), where repricing the rounded tokens would be up to 4 % off and could
  not split the input side reliably. The *session* total is used, as the growth since the
  previous reply: shown to the cent, it keeps a whole session's sum within half a cent,
  where adding up per-message figures rounded to the cent would not.
- The model is the latest ``Model:``/``Main model:`` line of the run, else the one the
  runner's arguments name (``--model``), else ``unknown``.
- Times: the file has one timestamp per run, its start (local time). A reply of a run that
  a later run's header follows gets that start; a reply of the file's last run gets the
  file's modification time when read (for a run Stratavore watches, within one import
  interval of the reply).

Dedupe key ``aider:<file>:<run start>:<n>``, the n-th usage report of that run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor.usage.records import UsageRow
from supervisor.usage.scan import Parsed

AGENT = "aider"
HISTORY = ".aider.chat.history.md"
UNKNOWN_MODEL = "unknown"

_STARTED = re.compile(r"# aider chat started at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*")
_MODEL = re.compile(r"> (?:Main )?[Mm]odel: (\S+) with ")
_COUNT = r"(\d+(?:\.\d)?k?)"
_TOKENS = re.compile(
    rf"> Tokens: {_COUNT} sent(?:, {_COUNT} cache write)?(?:, {_COUNT} cache hit)?, "
    rf"{_COUNT} received\.(.*)"
)
_COST = re.compile(r"\s*Cost: \$(\d+\.\d+) message, \$(\d+\.\d+) session\.\s*")


def tokens(text: str) -> int:
    """Aider's rounded count as a number: ``12k`` -> 12000, ``1.2k`` -> 1200, ``999`` -> 999."""
    if text.endswith("k"):
        return round(float(text[:-1]) * 1000)
    return int(text)


def option(argv: Iterable[str], name: str) -> str | None:
    """The value of ``--name X`` or ``--name=X`` in an Aider command line, if given."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2] or None
    return None


def git_root(folder: str) -> str | None:
    """The nearest folder at or above ``folder`` holding ``.git`` (Aider's root), if any."""
    path = Path(folder)
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return str(candidate)
    return None


class Places:
    """The history files Stratavore reads: in each registered project's folder, and where
    it ran Aider (the git root of the run's folder, or the run's ``--chat-history-file``),
    with the model each run's arguments name."""

    def __init__(self, folders: Iterable[str], runs: Iterable[tuple[str, list[str]]]) -> None:
        self._models: dict[str, str | None] = {}
        for folder in folders:
            self._models.setdefault(os.path.normpath(os.path.join(folder, HISTORY)), None)
        for cwd, argv in runs:  # oldest first: the latest run's model is kept
            named = option(argv, "--chat-history-file")
            if named is not None:
                path = os.path.join(cwd, os.path.expanduser(named))
            else:
                path = os.path.join(git_root(cwd) or cwd, HISTORY)
            self._models[os.path.normpath(path)] = option(argv, "--model")

    def files(self) -> list[Path]:
        """The history files that exist, sorted by path."""
        return sorted(Path(p) for p in self._models if os.path.isfile(p))

    def hint(self, path: Path) -> dict[str, Any] | None:
        """The parser context a file starts from: the model its runner's arguments name."""
        model = self._models.get(os.path.normpath(str(path)))
        return None if model is None else {"runner_model": model}


def parse(chunk: bytes, base_offset: int, source: str, context: dict[str, Any]) -> Parsed:
    """The usage rows in ``chunk`` (complete lines of ``source`` from ``base_offset``).

    ``context`` (updated in place, JSON values) carries the current run across refreshes:
    ``started`` (its header's time text), ``n`` (usage reports so far), ``cost`` (its session
    total so far), ``model``; ``runner_model`` comes from the importer (``Places.hint``).
    """
    parsed = Parsed(context=context)
    lines = chunk.split(b"\n")
    last_run: list[UsageRow] = []  # rows of the run still open at the end of the chunk
    offset = base_offset
    for i, raw in enumerate(lines):
        at = offset
        offset += len(raw) + 1
        if not raw.startswith((b"# aider chat started at ", b"> ")):
            continue
        line = raw.decode("utf-8", errors="replace")
        if line.startswith("# aider chat started at "):
            match = _STARTED.fullmatch(line)
            if match is None:
                parsed.skip(source, at, "a run header without a time")
                continue
            context.update(started=match.group(1), n=0, cost=0.0, model=None)
            last_run = []
            continue
        found = _MODEL.match(line)
        if found is not None:
            context["model"] = found.group(1)
            continue
        usage = _TOKENS.match(line)
        if usage is None:
            continue
        rest = usage.group(5)
        cost = _COST.fullmatch(rest) if rest.strip() else None
        if cost is None and not rest.strip() and i + 1 < len(lines):
            # both cache figures: the cost on its own line
            cost = _COST.fullmatch(lines[i + 1].decode("utf-8", errors="replace"))
        row = _row(context, usage, cost, source, at)
        if row is None:
            parsed.skip(source, at, "a usage report before any run header")
            continue
        parsed.rows.append(row)
        last_run.append(row)
    if last_run:
        try:
            modified = os.stat(source).st_mtime
        except OSError:
            modified = None
        for row in last_run:
            row.ts = max(row.ts, modified or row.ts)
    return parsed


def _row(
    context: dict[str, Any],
    usage: re.Match[str],
    cost: re.Match[str] | None,
    source: str,
    offset: int,
) -> UsageRow | None:
    started = context.get("started")
    if not started:
        return None
    sent, write, hit, received = (
        tokens(usage.group(k)) if usage.group(k) else 0 for k in range(1, 5)
    )
    logged = None
    if cost is not None:
        session = float(cost.group(2))
        before = float(context.get("cost") or 0.0)
        # The growth of the session total; a total that fell (a new coder without its
        # predecessor's figure) restarts from this message's own cost.
        logged = round(session - before, 10) if session >= before else float(cost.group(1))
        context["cost"] = session
    context["n"] = number = int(context.get("n") or 0) + 1
    folder = os.path.dirname(source)
    return UsageRow(
        ts=datetime.strptime(started, "%Y-%m-%d %H:%M:%S").timestamp(),  # local, as written
        agent=AGENT,
        model=context.get("model") or context.get("runner_model") or UNKNOWN_MODEL,
        input_tokens=max(sent - write - hit, 0),
        output_tokens=received,
        cache_creation_tokens=write,
        cache_read_tokens=hit,
        key=f"aider:{source}:{started}:{number}",
        source=source,
        logged_cost=logged,
        session_id=f"aider:{folder}:{started}",
        cwd=folder,
    )
