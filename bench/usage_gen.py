"""Realistic Claude Code (and Codex) transcript trees for the usage benchmark.

Writes, deterministically from ``--seed``, a Claude Code config dir
``OUT_DIR/claude/projects/<encoded-cwd>/<session-uuid>.jsonl`` with exactly ``--lines`` lines
in all (sub-agent files and copies included), shaped like real transcripts:

* ``user`` lines: prompts (some with ``isMeta``), and ``tool_result`` lines whose content is
  repeated in ``toolUseResult`` (Read: numbered lines plus the raw file; Edit: the whole
  ``originalFile``; Bash stdout with the odd ANSI escape; Task results carrying a nested
  ``"usage":{...}`` that is not an API response);
* ``assistant`` lines: ``message.id`` / ``requestId`` / ``message.model`` (several real model
  names, by date), ``message.usage`` with the four token counts, usually the ``cache_creation``
  5m/1h breakdown (sums equal to ``cache_creation_input_tokens``), and thinking / text /
  tool_use content of varied length; one API response is written as one line per content
  block (2-4 "streaming snapshots" sharing ``message.id`` + ``requestId``, the early ones with
  a smaller ``output_tokens``); ``<synthetic>`` API-error lines with zero usage;
* ``summary``, ``system`` (compaction, hooks, turn duration), ``file-history-snapshot`` and,
  from Claude Code 2.1, ``progress`` lines: hook and command-output progress, and a copy of
  each sub-agent message (usage included) in the parent transcript;
* sub-agents: ``isSidechain`` lines with an ``agentId``, in ``agent-<8 hex>.jsonl`` next to the
  sessions (2.0.x) or ``<session-uuid>/subagents/agent-<17 hex>.jsonl`` (2.1.x); a few are
  side-question logs that replay the parent's last response (same ``message.id``, new
  ``requestId``);
* ``sessionId`` / ``cwd`` / ``version`` / ``gitBranch`` / ``uuid`` / ``parentUuid`` chains,
  ISO ``timestamp`` with ``Z`` spread over ``--days`` days before ``--end``, several projects;
* a few malformed lines, and one truncated last line (no newline) in the newest session;
* with ``--roots 2``, copies (whole, or a prefix: an older snapshot) of some sessions under a
  second config dir ``OUT_DIR/claude2`` (the same responses in two roots).

``--codex-lines M`` also writes ``OUT_DIR/codex/sessions/YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl``
(a ``CODEX_HOME``): ``session_meta``, ``turn_context`` (model), ``response_item`` filler
(reasoning with ``encrypted_content``, function calls and their doubly-escaped output) and
``event_msg`` lines, ``token_count`` ones with cumulative ``total_token_usage`` and
``last_token_usage`` (input includes cached input), sometimes repeated unchanged or with
``info: null``.

Line shapes follow ccusage's loader and fixtures (``rust/adapters/claude/src/{lib,daily}.rs``,
``rust/adapters/codex/src/parser.rs``, ``rust/crates/ccusage/tests/fixtures/codex/``).
Filler text is escaped once at start-up and only ever cut at piece boundaries, so lines are
built from f-strings without a ``json.dumps`` per line.

Run: ``.venv/bin/python bench/usage_gen.py /tmp/usage-1m --lines 1000000 --roots 2``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import datetime
import itertools
import json
import math
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MS_PER_DAY = 86_400_000
DEFAULT_END = "2026-02-20"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
HEX = "0123456789abcdef"
B64_TO_B58 = str.maketrans("+/0OIl", "abcdef")

# Claude Code versions (first day seen) and models (first day offered, weight) by date.
CLAUDE_VERSIONS = [
    ("2025-10-01", "2.0.14"),
    ("2025-11-01", "2.0.32"),
    ("2025-11-20", "2.0.50"),
    ("2025-11-28", "2.0.55"),
    ("2025-12-05", "2.0.60"),
    ("2025-12-12", "2.0.67"),
    ("2025-12-19", "2.0.72"),
    ("2025-12-27", "2.0.76"),
    ("2026-01-07", "2.1.1"),
    ("2026-01-14", "2.1.7"),
    ("2026-01-21", "2.1.12"),
    ("2026-01-28", "2.1.20"),
    ("2026-02-04", "2.1.29"),
    ("2026-02-12", "2.1.37"),
]
MAIN_MODELS = [  # (from, until, model, weight)
    ("2025-01-01", "2026-12-31", "claude-sonnet-4-5-20250929", 5.0),
    ("2025-01-01", "2025-11-24", "claude-opus-4-1-20250805", 2.0),
    ("2025-11-24", "2026-12-31", "claude-opus-4-5-20251101", 6.0),
    ("2026-02-05", "2026-12-31", "claude-opus-4-6", 8.0),
    ("2025-01-01", "2026-12-31", "claude-sonnet-4-20250514", 0.5),
]
AGENT_MODELS = [
    "claude-haiku-4-5-20251001",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5-20250929",
]
CODEX_MODELS = [
    ("2025-01-01", "2025-11-13", "gpt-5-codex", 3.0),
    ("2025-01-01", "2026-12-31", "gpt-5", 0.5),
    ("2025-11-13", "2026-12-31", "gpt-5.1-codex", 2.0),
    ("2025-11-19", "2026-12-31", "gpt-5.1-codex-max", 3.0),
    ("2025-12-11", "2026-12-31", "gpt-5.2", 2.0),
    ("2026-01-14", "2026-12-31", "gpt-5.2-codex", 4.0),
]
CODEX_VERSIONS = ["0.58.0", "0.63.0", "0.71.0", "0.77.0", "0.87.0", "0.94.0"]
PROJECT_CWDS = [
    "/home/dev/src/stratavore",
    "/home/dev/src/api-gateway",
    "/home/dev/src/billing-service",
    "/home/dev/src/infra/terraform",
    "/home/dev/src/web-dashboard",
    "/home/dev/src/ml-pipeline",
    "/home/dev/src/dotfiles",
    "/home/dev/scratch",
    "/Users/alex/work/mobile-app",
    "/Users/alex/work/design-system",
    "/Users/alex/Documents/My Projects/site.v2",
    "/Users/alex/work/data_tools",
    "/home/dev/src/rust-indexer",
    "/home/dev/src/docs-site",
    "/home/dev/oss/ccusage",
    "/home/dev/src/legacy-monolith",
]
BRANCHES = [
    "main",
    "main",
    "main",
    "develop",
    "feature/usage-panel",
    "fix/login-timeout",
    "refactor/store",
    "chore/deps",
    "HEAD",
    "",
]
_WORDS = (
    "the a an of to in for on with from by this that it is are was be as we you can should "
    "will function method class module test tests config file path value error request "
    "response server client cache token usage session project runner daemon process state "
    "event handler queue worker timeout retry backoff schema migration database index query "
    "parser loader report daily total model cost budget limit window hour minute second "
    "update fix add remove refactor rename check verify ensure handle return raise call "
    "async await loop thread lock signal exit status code line column field key map list "
    "dict set string number integer boolean null undefined type interface struct enum trait "
    "import export build deploy release version branch commit merge rebase diff patch log "
    "output input stream buffer chunk bytes encoding json yaml toml csv sql http api route "
    "endpoint auth user admin permission role policy secret env variable default option flag "
    "argument parameter result failure success warning info debug trace metric histogram"
)
WORDS = _WORDS.split()
_IDENTS = (
    "load_config parse_line read_usage_file DailyReport budget_period_bounds RunnerState "
    "apply_migration handle_request on_heartbeat compute_totals SessionStore "
    "format_tokens cache_key retry_with_backoff TokenCounter iter_jsonl "
    "resolve_model_name write_results"
)
IDENTS = _IDENTS.split()
NON_ASCII = ["→", "é", "—", "✓", "…", "日本語", "ü", "°C", "✗", "\u2019"]
TOOLS = [
    ("Read", 34),
    ("Bash", 24),
    ("Edit", 14),
    ("Grep", 8),
    ("Glob", 5),
    ("Write", 3),
    ("TodoWrite", 6),
    ("Task", 3),
    ("WebFetch", 1),
    ("MultiEdit", 2),
]
AGENT_TOOLS = [("Read", 40), ("Bash", 20), ("Grep", 25), ("Glob", 15)]
SUMMARY_TITLES = [
    "Fix flaky heartbeat test",
    "Refactor usage loader",
    "Add daily budget report",
    "Debug login timeout in gateway",
    "Migrate store to WAL mode",
    "Tray menu rebuild on aboutToShow",
    "Terraform state cleanup",
    "Investigate slow JSONL parsing",
    "Set up CI matrix for py311",
    "Rename runner states",
    "Add Codex usage support",
    "Dashboard dark mode",
]


def esc(text: str) -> str:
    """The body of a JSON string holding ``text`` (non-ASCII kept, as JSON.stringify does)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def day_ms(day: str) -> int:
    stamp = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
    return int(stamp.timestamp() * 1000)


def encode_cwd(cwd: str) -> str:
    """Claude Code's project dir name: every character but [A-Za-z0-9] becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


_iso_cache = [-1, ""]


def iso(ms: int) -> str:
    """``2026-01-10T23:59:59.123Z`` (the formatted second is cached: lines come in order)."""
    sec, milli = divmod(ms, 1000)
    if sec != _iso_cache[0]:
        _iso_cache[0] = sec
        _iso_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_iso_cache[1]}.{milli:03d}Z"


class Exhausted(Exception):
    """The line budget is spent: stop the session being generated."""


class Dice(random.Random):
    """``random.Random`` with cheaper picks for the hot paths (``choice`` and ``randint`` cost
    about a microsecond each; one ``random()`` call is a twentieth of that)."""

    def pick(self, seq):  # type: ignore[no-untyped-def]
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        """An int in [low, high], like ``randint``."""
        return low + int(self.random() * (high - low + 1))

    def below(self, n: int) -> int:
        return int(self.random() * n)

    def weighted(self, names: list[str], cumulative: list[float]) -> str:
        return names[bisect.bisect(cumulative, self.random() * cumulative[-1])]


def weights(table: list[tuple[str, int]]) -> tuple[list[str], list[float]]:
    """Names and cumulative weights, for :meth:`Dice.weighted`."""
    return [n for n, _ in table], list(itertools.accumulate(float(w) for _, w in table))


TOOL_PICK = weights(TOOLS)
AGENT_TOOL_PICK = weights(AGENT_TOOLS)


# --- filler -----------------------------------------------------------------------------------
class Pieces:
    """Escaped text cut only between pieces (lines, sentences), so that any run of pieces is
    a valid JSON string body, found by two offsets instead of escaping per use."""

    def __init__(self, pieces: list[str], double: bool = False) -> None:
        escaped = [esc(esc(p)) if double else esc(p) for p in pieces]
        self.text = "".join(escaped)
        self.offsets = [0, *itertools.accumulate(len(e) for e in escaped)]
        self.count = len(pieces)

    def run(self, start: int, count: int) -> str:
        start = min(start, self.count - 1)
        end = min(start + max(count, 1), self.count)
        return self.text[self.offsets[start] : self.offsets[end]]


class Filler:
    """All the text lines are made of, generated once from the seed."""

    def __init__(self, rng: Dice) -> None:
        self.rng = rng
        sentences = [self._sentence() for _ in range(12_000)]
        ends = [" ", " ", " ", "\n\n", "\n- ", ":\n\n```python\n" + self._code_line() + "\n```\n\n"]
        self.prose = Pieces([s + rng.pick(ends) for s in sentences])
        self.files: list[tuple[str, Pieces, Pieces]] = []
        for index in range(40):
            lines = [self._code_line() for _ in range(int(rng.lognormvariate(5.3, 0.8)) + 5)]
            path = self._path(index)
            numbered = [f"{i + 1:>6}→{line}\n" for i, line in enumerate(lines)]
            self.files.append((path, Pieces([line + "\n" for line in lines]), Pieces(numbered)))
        log = [self._log_line() for _ in range(8_000)]
        self.log = Pieces([line + "\n" for line in log])
        self.log2 = Pieces([line + "\n" for line in log], double=True)
        self.b64 = base64.b64encode(rng.randbytes(96_000)).decode()
        self.enc = "gAAAAA" + base64.urlsafe_b64encode(rng.randbytes(48_000)).decode()

    def _word(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return f"`{rng.pick(IDENTS)}()`"
        if roll < 0.055:
            return rng.pick(NON_ASCII)
        if roll < 0.065:
            return f'"{rng.pick(WORDS)}"'
        return rng.pick(WORDS)

    def _sentence(self) -> str:
        words = [self._word() for _ in range(self.rng.between(5, 22))]
        sentence = " ".join(words)
        return sentence[0].upper() + sentence[1:] + self.rng.pick([".", ".", ".", ":", "?"])

    def _code_line(self) -> str:
        rng = self.rng
        indent = "    " * rng.pick([0, 1, 1, 2, 2, 3])
        kind = rng.random()
        a, b = rng.pick(IDENTS), rng.pick(WORDS)
        if kind < 0.1:
            return ""
        if kind < 0.2:
            return f"{indent}def {a}({b}, *, timeout: float = 10.0) -> dict[str, int]:"
        if kind < 0.3:
            return f'{indent}raise ValueError(f"bad {b}: {{{b}!r}}\\n")'
        if kind < 0.4:
            return f"{indent}# {self._sentence()}"
        if kind < 0.5:
            return f"{indent}if {b} is None or not {a}({b}):"
        if kind < 0.55:
            return f'\t{b} := {a}(ctx, "{rng.pick(WORDS)}") // go-style tab'
        return f"{indent}{b} = {a}({rng.pick(WORDS)}, {rng.between(0, 999)})"

    def _log_line(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.3:
            return (
                f"tests/test_{rng.pick(WORDS)}.py::test_{rng.pick(IDENTS).lower()} "
                + rng.pick(["PASSED", "PASSED", "PASSED", "FAILED", "SKIPPED"])
                + f" [{rng.between(1, 100):>3}%]"
            )
        if kind < 0.45:
            return (
                f"-rw-r--r--  1 dev  staff  {rng.between(80, 90000):>6} Jan {rng.between(1, 31):>2}"
                f" 1{rng.between(0, 9)}:{rng.between(10, 59)} {rng.pick(IDENTS).lower()}.py"
            )
        if kind < 0.55:
            return f"{rng.getrandbits(28):07x} {self._sentence()}"
        if kind < 0.6:
            return f"\x1b[32m✓\x1b[0m {rng.pick(WORDS)} built in {rng.between(1, 900)}ms"
        if kind < 0.7:
            return (
                f'  File "/home/dev/src/app/{rng.pick(WORDS)}.py", line {rng.between(1, 900)},'
                f" in {rng.pick(IDENTS)}"
            )
        return f"{rng.pick(['INFO', 'DEBUG', 'WARN', 'ERROR'])} {self._sentence()}"

    def _path(self, index: int) -> str:
        rng = self.rng
        ext = rng.pick([".py", ".py", ".ts", ".tsx", ".rs", ".go", ".md", ".toml"])
        return f"src/{rng.pick(WORDS)}/{rng.pick(IDENTS).lower()}_{index}{ext}"

    def text(self, mean_pieces: float) -> str:
        rng = self.rng
        count = int(rng.expovariate(1 / mean_pieces)) + 1
        return self.prose.run(rng.below(self.prose.count), count)

    def signature(self) -> str:
        rng = self.rng
        length = rng.between(200, 900)
        start = rng.below(len(self.b64) - length)
        return self.b64[start : start + length]


# --- ids --------------------------------------------------------------------------------------
class Ids:
    def __init__(self, rng: Dice) -> None:
        self.rng = rng

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def b58(self, prefix: str, k: int) -> str:
        raw = base64.b64encode(self.rng.randbytes(k)).decode()
        return prefix + raw[:k].translate(B64_TO_B58)

    def hexid(self, k: int) -> str:
        return f"{self.rng.getrandbits(4 * k):0{k}x}"


def by_date(table: list[tuple[str, str, str, float]], day: str, rng: Dice) -> str:
    live = [(name, weight) for start, end, name, weight in table if start <= day < end]
    return rng.choices([n for n, _ in live], [w for _, w in live])[0]


def version_on(day: str, rng: Dice) -> str:
    """The version a user runs on ``day``: the current one, or (often) one a little older."""
    index = max(i for i, (start, _) in enumerate(CLAUDE_VERSIONS) if start <= day)
    lag = rng.pick([0, 0, 0, 1, 1, 2])
    return CLAUDE_VERSIONS[max(0, index - lag)][1]


# --- the run ----------------------------------------------------------------------------------
def plan_sessions(
    rng: Dice, total: int, median: int, sigma: float, cap: int, start: Callable[[], int]
) -> list[tuple[int, int]]:
    """Session (start ms, length in lines) pairs in time order, lengths summing to ``total``."""
    plan: list[tuple[int, int]] = []
    planned = 0
    while planned < total:
        length = min(max(int(rng.lognormvariate(math.log(median), sigma)), 8), cap)
        plan.append((start(), length))
        planned += length
    return sorted(plan)


def scaled_targets(plan: list[tuple[int, int]], budget: Budget) -> Iterator[tuple[int, int]]:
    """Walk the plan oldest first, scaling each length to the lines actually left, so that
    overshoot (a session ends at a turn boundary) does not leave the newest days empty."""
    planned = sum(length for _, length in plan)
    for index, (start, length) in enumerate(plan):
        if budget.left <= 0:
            return
        scale = budget.left / max(planned, 1)
        planned -= length
        last = index == len(plan) - 1
        yield start, 10**9 if last else max(int(length * scale), 4)


class Budget:
    """Lines left to write, malformed lines to slip in, and progress on stderr."""

    def __init__(self, total: int, rng: Dice, label: str) -> None:
        self.total = total
        self.written = 0
        self.bytes = 0
        self.files = 0
        self.label = label
        bad = max(3, total // 50_000)
        self.malformed = set(rng.sample(range(total), min(bad, total)))
        self.started = time.perf_counter()
        self.next_report = 0.0

    @property
    def left(self) -> int:
        return self.total - self.written

    def take(self) -> bool:
        """Count one line; True when it must be a malformed one."""
        if self.written >= self.total:
            raise Exhausted
        self.written += 1
        return self.written - 1 in self.malformed

    def progress(self, final: bool = False) -> None:
        now = time.perf_counter() - self.started
        if final or now >= self.next_report:
            self.next_report = now + 1.0
            print(
                f"\r{self.label}: {self.written:,}/{self.total:,} lines, {self.files:,} files, "
                f"{self.bytes / 1e6:,.0f} MB, {now:.1f} s",
                end="\n" if final else "",
                file=sys.stderr,
                flush=True,
            )


def write_file(path: Path, lines: list[str], budget: Budget, truncate_last: bool = False) -> None:
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if truncate_last:  # a write cut short by a crash: half a line, no newline
        last = lines[-1]
        text = "".join(line + "\n" for line in lines[:-1]) + last[: len(last) // 2]
    else:
        text = "\n".join(lines) + "\n"
    data = text.encode()
    path.write_bytes(data)
    budget.bytes += len(data)
    budget.files += 1
    budget.progress()


MALFORMED = [
    '{"parentUuid":"{u}","isSidechain":false,"type":"assistant","message":{"id":"msg_01',
    '{"type":"assistant","message":{"usage":{"input_tokens":12,"output_tokens":}}}',
    "\x00\x00\x00\x00\x00\x00\x00\x00",
    '{"type":"user","message":{"role":"user","content":"unterminated}',
    "<<<<<<< HEAD",
]


class Transcript:
    """The lines of one file of a session, with the envelope fields every line repeats."""

    def __init__(self, gen: ClaudeGen, session: ClaudeSession, agent_id: str | None) -> None:
        self.gen = gen
        self.session = session
        self.lines: list[str] = []
        self.parent = "null"
        sidechain = "true" if agent_id else "false"
        agent = f',"agentId":"{agent_id}"' if agent_id else ""
        slug = f',"slug":"{session.slug}"' if session.v2 else ""
        self.head = (
            f'"isSidechain":{sidechain},"userType":"external","cwd":"{session.cwd}",'
            f'"sessionId":"{session.sid}","version":"{session.version}",'
            f'"gitBranch":"{session.branch}"{agent}{slug}'
        )

    def add(self, line: str) -> None:
        if self.gen.budget.take():
            bad = self.gen.rng.pick(MALFORMED).replace("{u}", self.gen.ids.uuid())
            self.lines.append(bad)
            self.session.count += 1
            self.gen.budget.take()
        self.lines.append(line)
        self.session.count += 1

    def envelope(self, kind: str, body: str, ms: int, extra: str = "") -> str:
        """Add a threaded line (``parentUuid`` chain) and return its uuid."""
        uuid = self.gen.ids.uuid()
        self.add(
            f'{{"parentUuid":{self.parent},{self.head},"type":"{kind}",{body},'
            f'"uuid":"{uuid}","timestamp":"{iso(ms)}"{extra}}}'
        )
        self.parent = f'"{uuid}"'
        return uuid


class ClaudeSession:
    """One session: its main transcript, its sub-agent transcripts, and the token model.

    Context grows with every tool result and answer; each API call reads the cached prefix
    (``cache_read_input_tokens``), writes what was added since (``cache_creation``), and sends
    a few uncached tokens (``input_tokens``). A pause longer than the cache TTL makes the next
    call write the whole context again; past ~160k tokens the session compacts.
    """

    def __init__(self, gen: ClaudeGen, start_ms: int, target: int) -> None:
        self.gen = gen
        rng = gen.rng
        self.rng = rng
        self.ids = gen.ids
        self.filler = gen.filler
        self.ms = start_ms
        self.day = time.strftime("%Y-%m-%d", time.gmtime(start_ms // 1000))
        self.target = target
        self.count = 0
        self.cwd = rng.choices(PROJECT_CWDS, gen.project_weights)[0]
        self.project = encode_cwd(self.cwd)
        self.sid = self.ids.uuid()
        self.version = version_on(self.day, rng)
        self.v2 = self.version.startswith("2.")
        self.v21 = self.version >= "2.1."
        self.branch = rng.pick(BRANCHES)
        self.slug = "-".join(rng.pick(WORDS) for _ in range(3))
        self.model = by_date(MAIN_MODELS, self.day, rng)
        self.ttl = rng.choices(["5m", "1h", "mixed", "none"], [70, 20, 5, 5])[0]
        self.thinking = rng.random() < 0.45
        hooks = ["~/.claude/hooks/format.sh", "bunx prettier --write", "uv run ruff format"]
        self.hooks = rng.pick(hooks) if self.v21 and rng.random() < 0.5 else ""
        self.main = Transcript(gen, self, None)
        self.agents: list[tuple[Path, Transcript]] = []
        self.last_response: tuple[str, str] | None = None  # (message id, usage json)
        self.snapshot_id = ""
        self.current_tool = ""  # the Task running a sub-agent, for its progress lines
        self.current_agent = ""

    # --- tokens ---------------------------------------------------------------------------
    def usage(self, model_ctx: list[int], added: int, output: int, ttl: str) -> str:
        """The usage of one API call; ``model_ctx`` is [context tokens, cached tokens, last ms]."""
        rng = self.rng
        context, cached, last_ms = model_ctx
        ttl_ms = 3_600_000 if ttl == "1h" else 300_000
        if self.ms - last_ms > ttl_ms:  # expired: at most a prefix shared with other sessions
            cached = min(context, rng.pick([0, 0, 11_800, 14_200]))
        context += added
        creation = max(context - cached, 0)
        read = cached
        uncached = (
            rng.pick([1, 2, 3, 3, 4, 5, 6, 8, 10])
            if rng.random() < 0.93
            else (rng.between(200, 9_000))
        )
        model_ctx[0], model_ctx[1], model_ctx[2] = context + output, context, self.ms
        if ttl == "none":
            split = ""
        else:
            if ttl == "5m":
                five, hour = creation, 0
            elif ttl == "1h":
                five, hour = 0, creation
            else:
                hour = min(creation, rng.between(0, 6_000))
                five = creation - hour
            split = (
                f',"cache_creation":{{"ephemeral_5m_input_tokens":{five},'
                f'"ephemeral_1h_input_tokens":{hour}}}'
            )
        server = (
            ',"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0}'
            if self.v21 and rng.random() < 0.5
            else ""
        )
        return (
            f'{{"input_tokens":{uncached},"cache_creation_input_tokens":{creation},'
            f'"cache_read_input_tokens":{read}{split},"output_tokens":{output}{server},'
            f'"service_tier":"standard"}}'
        )

    # --- one API response -----------------------------------------------------------------
    def response(
        self,
        t: Transcript,
        model: str,
        ctx: list[int],
        added: int,
        final: bool,
        tools: tuple[list[str], list[float]],
        agent: bool = False,
        progress: bool = False,
    ) -> list[tuple[str, str, str]]:
        """Write one API response, one line per content block (``progress``: and a copy of
        each in the parent transcript); return its tool calls."""
        rng = self.rng
        filler = self.filler
        blocks: list[str] = []
        calls: list[tuple[str, str, str]] = []
        if self.thinking and not agent and rng.random() < 0.4:
            blocks.append(
                f'{{"type":"thinking","thinking":"{filler.text(2)}",'
                f'"signature":"{filler.signature()}"}}'
            )
        if final or rng.random() < 0.45:
            blocks.append(f'{{"type":"text","text":"{filler.text(3 if final else 1.2)}"}}')
        if not final:
            parallel = 1 if rng.random() < 0.85 else rng.between(2, 3)
            for _ in range(min(parallel, 4 - len(blocks))):  # 2-4 lines per response at most
                name = rng.weighted(*tools)
                tool_id = self.ids.b58("toolu_01", 22)
                blocks.append(
                    f'{{"type":"tool_use","id":"{tool_id}","name":"{name}",'
                    f'"input":{self.tool_input(name)}}}'
                )
                calls.append((name, tool_id, ""))
        text_len = sum(len(b) for b in blocks)
        # what the transcript shows, plus what it does not (planning, redacted thinking)
        output = int(text_len / 3.6 * rng.uniform(0.8, 1.3)) + int(rng.lognormvariate(4.0, 1.0))
        usage = self.usage(ctx, added, output, "5m" if agent and self.ttl != "none" else self.ttl)
        msg_id = self.ids.b58("msg_01", 22)
        req_id = self.ids.b58("req_011C", 21)
        stop = '"end_turn"' if final else "null"
        last = len(blocks) - 1
        head_uuid = ""
        for index, block in enumerate(blocks):
            line_usage = usage
            if index < last:  # an early snapshot of the stream: fewer output tokens so far
                early = max(1, min(output, rng.pick([1, 1, 2, 4, 8, 12, 30])))
                line_usage = usage.replace(
                    f'"output_tokens":{output},', f'"output_tokens":{early},'
                )
            body = (
                f'"message":{{"model":"{model}","id":"{msg_id}","type":"message",'
                f'"role":"assistant","content":[{block}],"stop_reason":'
                f'{stop if index == last else "null"},"stop_sequence":null,'
                f'"usage":{line_usage}}},"requestId":"{req_id}"'
            )
            uuid = t.envelope("assistant", body, self.ms)
            head_uuid = head_uuid or uuid
            if progress:
                self.progress_copy(body, uuid)
            self.ms += rng.between(40, 2500)
        if not agent:
            self.last_response = (msg_id, usage)
        return [(name, tool_id, head_uuid) for name, tool_id, _ in calls]

    def tool_input(self, name: str) -> str:
        rng = self.rng
        filler = self.filler
        path = f"{self.cwd}/{rng.pick(filler.files)[0]}"
        if name == "Read":
            return f'{{"file_path":"{path}"}}'
        if name == "Bash":
            cmd = rng.pick(
                [
                    "pytest -x -q",
                    "git status",
                    "ls -la src",
                    "npm run build",
                    "cargo test --workspace",
                    "git diff --stat",
                    'rg -n \\"TODO\\" src',
                ]
            )
            describe = filler.prose.run(rng.below(filler.prose.count), 1)
            return f'{{"command":"{cmd}","description":"{describe}"}}'
        if name in ("Edit", "MultiEdit"):
            old = filler.log.run(rng.below(filler.log.count), rng.between(1, 4))
            new = filler.log.run(rng.below(filler.log.count), rng.between(1, 6))
            return f'{{"file_path":"{path}","old_string":"{old}","new_string":"{new}"}}'
        if name == "Write":
            _, raw, _ = rng.pick(filler.files)
            return f'{{"file_path":"{path}","content":"{raw.run(0, rng.between(8, 50))}"}}'
        if name == "Grep":
            return f'{{"pattern":"{rng.pick(IDENTS)}","path":"{self.cwd}","output_mode":"content"}}'
        if name == "Glob":
            return f'{{"pattern":"**/*{rng.pick([".py", ".ts", ".rs", ".md"])}"}}'
        if name == "TodoWrite":
            todos = ",".join(
                f'{{"content":"{rng.pick(SUMMARY_TITLES)}","status":"'
                f'{rng.pick(["pending", "in_progress", "completed"])}","activeForm":"Working"}}'
                for _ in range(rng.between(2, 7))
            )
            return f'{{"todos":[{todos}]}}'
        if name == "Task":
            return (
                f'{{"description":"{rng.pick(SUMMARY_TITLES)}","prompt":"{filler.text(6)}",'
                f'"subagent_type":"{rng.pick(["Explore", "general-purpose", "Plan"])}"}}'
            )
        return f'{{"url":"https://docs.example.com/{rng.pick(WORDS)}","prompt":"Summarize"}}'

    # --- tool results ---------------------------------------------------------------------
    def tool_result(self, t: Transcript, name: str, tool_id: str, source: str, agent: bool) -> int:
        """Write the user line with a tool's result; return the tokens it adds to context."""
        rng = self.rng
        filler = self.filler
        if self.hooks and not agent:
            self.progress(
                t,
                tool_id,
                f'{{"type":"hook_progress","hookEvent":"PreToolUse",'
                f'"hookName":"PreToolUse:{name}","command":"{self.hooks}"}}',
            )
        if name == "Bash" and self.v21 and not agent and rng.random() < 0.5:
            for second in range(1, rng.between(2, 7)):
                tail = filler.log.run(rng.below(filler.log.count), rng.between(1, 3))
                self.ms += 1000
                self.progress(
                    t,
                    tool_id,
                    f'{{"type":"bash_progress","output":"{tail}",'
                    f'"fullOutput":"{tail}","elapsedTimeSeconds":{second},'
                    f'"totalLines":{second * 3}}}',
                )
        if name == "Task" and not agent:
            content, extra = self.run_subagent(tool_id)
        elif name == "Read":
            path, raw, numbered = rng.pick(filler.files)
            start = 0 if rng.random() < 0.7 else rng.below(numbered.count)
            count = int(rng.lognormvariate(1.5, 1.1)) + 1
            content = numbered.run(start, count)
            lines = min(count, numbered.count - min(start, numbered.count - 1))
            extra = (
                f',"toolUseResult":{{"type":"text","file":{{"filePath":"{self.cwd}/{path}",'
                f'"content":"{raw.run(start, count)}","numLines":{lines},'
                f'"startLine":{start + 1},"totalLines":{numbered.count}}}}}'
            )
        elif name in ("Edit", "MultiEdit"):
            path, raw, _ = rng.pick(filler.files)
            content = f"The file {self.cwd}/{path} has been updated. Here's the result:\\n"
            snippet = filler.log.run(rng.below(filler.log.count), rng.between(2, 12))
            content += snippet
            original = raw.run(0, int(rng.lognormvariate(1.5, 1.0)) + 1)
            extra = (
                f',"toolUseResult":{{"filePath":"{self.cwd}/{path}","oldString":"x",'
                f'"newString":"{snippet}","originalFile":"{original}","structuredPatch":'
                f'[{{"oldStart":4,"oldLines":3,"newStart":4,"newLines":5,"lines":'
                f'[" a","-b","+c"]}}],"userModified":false,"replaceAll":false}}'
            )
        elif name == "Bash":
            stdout = filler.log.run(rng.below(filler.log.count), int(rng.lognormvariate(1.0, 1.1)))
            content = stdout
            extra = (
                f',"toolUseResult":{{"stdout":"{stdout}","stderr":"","interrupted":false,'
                f'"isImage":false}}'
            )
        elif name in ("Grep", "Glob"):
            files = [f"{self.cwd}/{rng.pick(filler.files)[0]}" for _ in range(rng.between(0, 8))]
            content = f"Found {len(files)} files\\n" + "\\n".join(files)
            listed = ",".join(f'"{f}"' for f in files)
            extra = (
                f',"toolUseResult":{{"mode":"files_with_matches","filenames":[{listed}],'
                f'"numFiles":{len(files)},"durationMs":{rng.between(3, 400)}}}'
            )
        elif name == "Write":
            path = rng.pick(filler.files)[0]
            content = f"File created successfully at: {self.cwd}/{path}"
            extra = (
                f',"toolUseResult":{{"type":"create","filePath":"{self.cwd}/{path}",'
                f'"content":"{filler.text(3)}","structuredPatch":[]}}'
            )
        elif name == "TodoWrite":
            content = (
                "Todos have been modified successfully. Ensure that you continue to use "
                "the todo list to track your progress."
            )
            extra = ',"toolUseResult":{"oldTodos":[],"newTodos":[]}'
        else:
            content = filler.text(8)
            extra = f',"toolUseResult":{{"bytes":{len(content) * 3},"code":200,"codeText":"OK"}}'
        error = ',"is_error":true' if rng.random() < 0.03 else ""
        body = (
            f'"message":{{"role":"user","content":[{{"tool_use_id":"{tool_id}",'
            f'"type":"tool_result","content":"{content}"{error}}}]}}'
        )
        source_field = f',"sourceToolAssistantUUID":"{source}"' if self.v21 else ""
        self.ms += rng.between(100, 4000)
        t.envelope("user", body, self.ms, extra + source_field)
        if self.v2 and not agent and name in ("Edit", "MultiEdit", "Write"):
            backup = (
                f'"{rng.pick(filler.files)[0]}":{{"backupFileName":"{self.ids.hexid(16)}@v'
                f'{rng.between(1, 4)}","version":2,"backupTime":"{iso(self.ms)}"}}'
            )
            t.add(
                f'{{"type":"file-history-snapshot","messageId":"{self.snapshot_id}",'
                f'"snapshot":{{"messageId":"{self.snapshot_id}","trackedFileBackups":{{{backup}}},'
                f'"timestamp":"{iso(self.ms)}"}},"isSnapshotUpdate":true}}'
            )
        if self.hooks and not agent:
            self.progress(
                t,
                tool_id,
                f'{{"type":"hook_progress","hookEvent":"PostToolUse",'
                f'"hookName":"PostToolUse:{name}","command":"{self.hooks}"}}',
            )
        return int(len(content) / 3.4) + 20

    def progress(self, t: Transcript, tool_id: str, data: str) -> None:
        """A 2.1 ``progress`` line about a running tool (hook, command output so far)."""
        t.envelope(
            "progress",
            f'"data":{data},"parentToolUseID":"{tool_id}","toolUseID":"{tool_id}"',
            self.ms,
        )

    def run_subagent(self, tool_id: str) -> tuple[str, str]:
        """A Task: the sub-agent's own transcript (and, from 2.1, progress copies in the
        parent); return the parent's tool_result content and ``toolUseResult``."""
        rng = self.rng
        if self.v21:
            agent_id = self.ids.hexid(17)
            path = self.gen.root / "projects" / self.project / self.sid / "subagents"
        else:
            agent_id = self.ids.hexid(8)
            path = self.gen.root / "projects" / self.project
        t = Transcript(self.gen, self, agent_id)
        self.agents.append((path / f"agent-{agent_id}.jsonl", t))
        self.current_tool = tool_id
        self.current_agent = agent_id
        model = rng.pick(AGENT_MODELS)
        ctx = [rng.between(6_000, 14_000), 0, 0]
        started = self.ms
        t.envelope(
            "user", f'"message":{{"role":"user","content":"{self.filler.text(5)}"}}', self.ms
        )
        totals = [0, 0, 0, 0]
        steps = int(rng.lognormvariate(1.8, 0.7)) + 1
        added = 0
        for step in range(steps):
            self.ms += rng.between(800, 9000)
            final = step == steps - 1
            calls = self.response(t, model, ctx, added, final, AGENT_TOOL_PICK, True, self.v21)
            totals[1] += 1
            added = 0
            for name, call_id, source in calls:
                added += self.tool_result(t, name, call_id, source, agent=True)
        report = self.filler.text(6)
        totals[0] = ctx[0]
        usage = (
            f'{{"input_tokens":{rng.between(1, 9)},"cache_creation_input_tokens":'
            f'{rng.between(100, 4000)},"cache_read_input_tokens":{ctx[1]},"output_tokens":'
            f'{rng.between(100, 1500)},"service_tier":"standard"}}'
        )
        extra = (
            f',"toolUseResult":{{"status":"completed","prompt":"{self.filler.text(2)}",'
            f'"agentId":"{agent_id}","content":[{{"type":"text","text":"{report}"}}],'
            f'"totalDurationMs":{self.ms - started},"totalTokens":{totals[0]},'
            f'"totalToolUseCount":{totals[1]},"usage":{usage}}}'
        )
        return report, extra

    def progress_copy(self, body: str, uuid: str) -> None:
        """Claude Code 2.1 copies every sub-agent message into the parent transcript."""
        nested = (
            f'{{"type":"assistant","timestamp":"{iso(self.ms)}",{body},'
            f'"isSidechain":true,"uuid":"{uuid}"}}'
        )
        data = (
            f'"data":{{"message":{nested},"type":"agent_progress","prompt":"",'
            f'"agentId":"{self.current_agent}"}},"toolUseID":"agent_msg_{self.ids.b58("", 24)}",'
            f'"parentToolUseID":"{self.current_tool}"'
        )
        self.main.envelope("progress", data, self.ms)

    # --- the session ----------------------------------------------------------------------
    def run(self) -> None:
        rng = self.rng
        t = self.main
        filler = self.filler
        for _ in range(rng.pick([0, 0, 0, 1, 1, 2, 3])):
            t.add(
                f'{{"type":"summary","summary":"{rng.pick(SUMMARY_TITLES)}",'
                f'"leafUuid":"{self.ids.uuid()}"}}'
            )
        ctx = [rng.between(14_000, 26_000), 0, 0]
        while self.count < self.target:
            if self.v2:
                self.snapshot_id = self.ids.uuid()
                t.add(
                    f'{{"type":"file-history-snapshot","messageId":"{self.snapshot_id}",'
                    f'"snapshot":{{"messageId":"{self.snapshot_id}","trackedFileBackups":{{}},'
                    f'"timestamp":"{iso(self.ms)}"}},"isSnapshotUpdate":false}}'
                )
            if rng.random() < 0.08:
                t.envelope(
                    "user",
                    '"message":{"role":"user","content":"<command-name>/clear'
                    '</command-name>\\n<command-message>clear</command-message>"}',
                    self.ms,
                    ',"isMeta":true',
                )
            prompt = filler.text(3)
            t.envelope(
                "user",
                f'"message":{{"role":"user","content":"{prompt}"}}',
                self.ms,
                ',"thinkingMetadata":{"level":"high","disabled":false,"triggers":[]},'
                '"todos":[],"permissionMode":"default"'
                if self.v2
                else "",
            )
            added = int(len(prompt) / 3.4) + 10
            steps = min(int(rng.lognormvariate(1.9, 0.9)) + 1, 60)
            for step in range(steps):
                self.ms += rng.between(1500, 12_000)
                final = step == steps - 1
                if rng.random() < 0.004:
                    self.api_error(t)
                calls = self.response(t, self.model, ctx, added, final, TOOL_PICK)
                added = 0
                for name, tool_id, source in calls:
                    added += self.tool_result(t, name, tool_id, source, agent=False)
                if self.last_response and rng.random() < 0.003 and self.v21:
                    self.side_question()
            if rng.random() < 0.25:
                t.envelope(
                    "system",
                    f'"subtype":"turn_duration","durationMs":'
                    f'{rng.between(3000, 400_000)},"isMeta":false',
                    self.ms,
                )
            elif rng.random() < 0.1:
                t.envelope(
                    "system",
                    '"subtype":"stop_hook_summary","hookCount":1,'
                    '"hookInfos":[{"command":"~/.claude/hooks/notify.sh"}],'
                    '"hookErrors":[],"preventedContinuation":false,"stopReason":"",'
                    '"hasOutput":false,"level":"suggestion"',
                    self.ms,
                )
            if ctx[0] > 160_000:
                t.envelope(
                    "system",
                    f'"subtype":"compact_boundary","content":"Conversation '
                    f'compacted","isMeta":false,"level":"info","compactMetadata":'
                    f'{{"trigger":"auto","preTokens":{ctx[0]}}}',
                    self.ms,
                )
                ctx[0] = rng.between(18_000, 40_000)
                ctx[1] = 0
            self.ms += int(rng.lognormvariate(5.0, 1.4) * 1000)  # a third exceed the 5 min TTL

    def api_error(self, t: Transcript) -> None:
        body = (
            '"message":{"id":"' + self.ids.uuid() + '","container":null,"model":"<synthetic>",'
            '"role":"assistant","stop_reason":"stop_sequence","stop_sequence":"","type":'
            '"message","usage":{"input_tokens":0,"output_tokens":0,'
            '"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
            '"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},'
            '"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,'
            '"ephemeral_5m_input_tokens":0}},"content":[{"type":"text","text":"API Error: '
            '529 {\\"type\\":\\"error\\",\\"error\\":{\\"type\\":\\"overloaded_error\\",'
            '\\"message\\":\\"Overloaded\\"}}"}]}'
        )
        t.envelope("assistant", body, self.ms, ',"isApiErrorMessage":true')
        self.ms += self.rng.between(2000, 30_000)

    def side_question(self) -> None:
        """A /btw side question: its log replays the parent's last response with a new
        requestId (and isSidechain), then answers."""
        assert self.last_response is not None
        msg_id, usage = self.last_response
        agent_id = self.ids.hexid(17)
        path = self.gen.root / "projects" / self.project / self.sid / "subagents"
        t = Transcript(self.gen, self, agent_id)
        self.agents.append((path / f"agent-{agent_id}.jsonl", t))
        replay = (
            f'"message":{{"model":"{self.model}","id":"{msg_id}","type":"message",'
            f'"role":"assistant","content":[{{"type":"text","text":"{self.filler.text(2)}"}}],'
            f'"stop_reason":"end_turn","stop_sequence":null,"usage":{usage}}},'
            f'"requestId":"{self.ids.b58("req_011C", 21)}"'
        )
        t.envelope("assistant", replay, self.ms)
        t.envelope(
            "user", f'"message":{{"role":"user","content":"{self.filler.text(1)}"}}', self.ms
        )
        self.ms += self.rng.between(1000, 8000)
        ctx = [int(self.rng.between(20_000, 90_000)), 0, 0]
        self.response(t, self.model, ctx, 50, True, TOOL_PICK, agent=True)


class ClaudeGen:
    def __init__(
        self, out: Path, lines: int, roots: int, end_ms: int, days: int, filler: Filler, rng: Dice
    ) -> None:
        self.root = out / "claude"
        self.second = out / "claude2" if roots > 1 else None
        self.rng = rng
        self.ids = Ids(rng)
        self.filler = filler
        self.budget = Budget(lines, rng, "claude")
        self.end_ms = end_ms
        self.days = days
        self.project_weights = [1 / (i + 1) ** 0.8 for i in range(len(PROJECT_CWDS))]

    def session_start(self) -> int:
        rng = self.rng
        while True:
            day = rng.below(self.days)
            start = self.end_ms - (self.days - day) * MS_PER_DAY
            weekday = time.gmtime(start // 1000).tm_wday
            if weekday < 5 or rng.random() < 0.35:
                break
        hour = min(max(rng.gauss(14.5, 3.5), 0.0), 23.5)
        return start + int(hour * 3_600_000) + rng.below(3_600_000)

    def run(self) -> None:
        plan = plan_sessions(self.rng, self.budget.total, 160, 1.0, 6_000, self.session_start)
        for start, target in scaled_targets(plan, self.budget):
            self.one_session(start, target)

    def one_session(self, start: int, target: int) -> None:
        session = ClaudeSession(self, start, target)
        done = False
        try:
            session.run()
        except Exhausted:
            done = True
        main = self.root / "projects" / session.project / f"{session.sid}.jsonl"
        write_file(main, session.main.lines, self.budget, truncate_last=done)
        for path, transcript in session.agents:
            write_file(path, transcript.lines, self.budget)
        if self.second is not None and not done and self.rng.random() < 0.2:
            lines = session.main.lines
            keep = len(lines) if self.rng.random() < 0.5 else self.rng.between(1, len(lines))
            keep = min(keep, self.budget.left)
            if keep > 0:
                self.budget.written += keep
                copy = self.second / "projects" / session.project / f"{session.sid}.jsonl"
                write_file(copy, lines[:keep], self.budget)


# --- Codex ------------------------------------------------------------------------------------
class CodexGen:
    """Codex CLI rollouts: cumulative ``token_count`` events, ``turn_context`` models."""

    def __init__(
        self, out: Path, lines: int, end_ms: int, days: int, filler: Filler, rng: Dice
    ) -> None:
        self.root = out / "codex" / "sessions"
        self.rng = rng
        self.ids = Ids(rng)
        self.filler = filler
        self.budget = Budget(lines, rng, "codex")
        self.end_ms = end_ms
        self.days = days

    def run(self) -> None:
        rng = self.rng
        window = self.days * MS_PER_DAY
        plan = plan_sessions(
            rng,
            self.budget.total,
            140,
            0.9,
            4_000,
            lambda: self.end_ms - window + rng.below(window),
        )
        for start, target in scaled_targets(plan, self.budget):
            lines: list[str] = []
            with contextlib.suppress(Exhausted):
                self.session(start, target, lines)
            stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(start // 1000))
            day = time.strftime("%Y/%m/%d", time.gmtime(start // 1000))
            name = f"rollout-{stamp}-{self.ids.uuid()}.jsonl"
            write_file(self.root / day / name, lines, self.budget)

    def session(self, ms: int, target: int, lines: list[str]) -> None:
        rng = self.rng
        filler = self.filler
        budget = self.budget
        day = time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))
        cwd = rng.pick(PROJECT_CWDS)
        model = by_date(CODEX_MODELS, day, rng)
        effort = rng.pick(["medium", "medium", "high", "low"])

        def add(kind: str, payload: str) -> None:
            if budget.take():
                lines.append("malformed task_started marker")
                budget.take()
            lines.append(f'{{"timestamp":"{iso(ms)}","type":"{kind}","payload":{payload}}}')

        add(
            "session_meta",
            f'{{"id":"{self.ids.uuid()}","timestamp":"{iso(ms)}","cwd":"{cwd}",'
            f'"originator":"codex_cli_rs","cli_version":"{rng.pick(CODEX_VERSIONS)}",'
            f'"instructions":null,"source":"cli","model_provider":"openai","git":{{'
            f'"commit_hash":"{self.ids.hexid(40)}","branch":"{rng.pick(BRANCHES[:7])}",'
            f'"repository_url":"git@github.com:acme/{cwd.rsplit("/", 1)[-1]}.git"}}}}',
        )
        add(
            "response_item",
            f'{{"type":"message","role":"user","content":[{{"type":"input_text",'
            f'"text":"<environment_context>\\n  <cwd>{cwd}</cwd>\\n  <approval_policy>on-request'
            f"</approval_policy>\\n  <sandbox_mode>workspace-write</sandbox_mode>\\n"
            f'</environment_context>"}}]}}',
        )
        totals = [0, 0, 0, 0]  # input (cached included), cached, output, reasoning
        context = rng.between(7_000, 12_000)
        first = True
        while len(lines) < target:
            ms += int(rng.lognormvariate(4.3, 1.2) * 1000)
            if rng.random() < 0.15:
                model = by_date(CODEX_MODELS, day, rng)
            add(
                "turn_context",
                f'{{"cwd":"{cwd}","approval_policy":"on-request",'
                f'"sandbox_policy":{{"type":"workspace-write","network_access":false,'
                f'"exclude_tmpdir_env_var":false,"exclude_slash_tmp":false}},"model":"{model}",'
                f'"effort":"{effort}","summary":"auto"}}',
            )
            prompt = filler.text(2)
            add(
                "response_item",
                f'{{"type":"message","role":"user","content":[{{"type":'
                f'"input_text","text":"{prompt}"}}]}}',
            )
            add("event_msg", f'{{"type":"user_message","message":"{prompt}","images":[]}}')
            if first:
                add("event_msg", '{"type":"token_count","info":null,"rate_limits":null}')
                first = False
            for _ in range(int(rng.lognormvariate(1.7, 0.8)) + 1):
                ms += rng.between(1500, 20_000)
                summary = filler.text(1)
                add("event_msg", f'{{"type":"agent_reasoning","text":"{summary}"}}')
                blob = rng.between(400, 6000)
                offset = rng.below(len(filler.enc) - blob)
                add(
                    "response_item",
                    f'{{"type":"reasoning","summary":[{{"type":"summary_text",'
                    f'"text":"{summary}"}}],"content":null,"encrypted_content":'
                    f'"{filler.enc[offset : offset + blob]}"}}',
                )
                call_id = self.ids.b58("call_", 24)
                cmd = rng.pick(
                    [
                        "rg -n TODO src",
                        "cargo test",
                        "git diff",
                        "ls -la",
                        "pytest -q",
                        "sed -n 1,200p src/main.rs",
                    ]
                )
                add(
                    "response_item",
                    f'{{"type":"function_call","name":"shell","arguments":'
                    f'"{{\\"command\\":[\\"bash\\",\\"-lc\\",\\"{cmd}\\"],\\"workdir\\":'
                    f'\\"{cwd}\\"}}","call_id":"{call_id}"}}',
                )
                output = filler.log2.run(
                    rng.below(filler.log2.count), int(rng.lognormvariate(2.3, 1.0))
                )
                add(
                    "response_item",
                    f'{{"type":"function_call_output","call_id":"{call_id}",'
                    f'"output":"{{\\"output\\":\\"{output}\\",\\"metadata\\":{{\\"exit_code\\":0,'
                    f'\\"duration_seconds\\":{rng.between(1, 900) / 100}}}}}"}}',
                )
                # one model response: input = whole context (cached part included)
                cached = context if rng.random() < 0.9 else 0
                context += len(output) // 4 + rng.between(50, 600)
                out = int(rng.lognormvariate(5.0, 1.0)) + 10
                reasoning = int(out * rng.uniform(0.0, 0.7))
                last = (context, min(cached, context), out, reasoning)
                for i in range(4):
                    totals[i] += last[i]
                context += out
                event = (
                    '{"type":"token_count","info":{"total_token_usage":'
                    + codex_usage(totals)
                    + ',"last_token_usage":'
                    + codex_usage(last)
                    + ',"model_context_window":272000},"rate_limits":{"primary":'
                    f'{{"used_percent":{rng.between(0, 100)}.0,"window_minutes":300,'
                    f'"resets_in_seconds":{rng.between(60, 18_000)}}},"secondary":'
                    f'{{"used_percent":{rng.between(0, 100)}.0,"window_minutes":10080,'
                    f'"resets_in_seconds":{rng.between(600, 600_000)}}}}}}}'
                )
                add("event_msg", event)
                if rng.random() < 0.2:  # the same totals again (a rate-limit refresh)
                    ms += rng.between(5, 400)
                    add("event_msg", event)
            answer = filler.text(6)
            add("event_msg", f'{{"type":"agent_message","message":"{answer}"}}')
            add(
                "response_item",
                f'{{"type":"message","role":"assistant","content":[{{"type":'
                f'"output_text","text":"{answer}"}}]}}',
            )
            if context > 220_000:
                context = rng.between(15_000, 30_000)


def codex_usage(u: tuple[int, ...] | list[int]) -> str:
    return (
        f'{{"input_tokens":{u[0]},"cached_input_tokens":{u[1]},"output_tokens":{u[2]},'
        f'"reasoning_output_tokens":{u[3]},"total_tokens":{u[0] + u[2]}}}'
    )


# --- entry point ------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path, help="where claude/ (claude2/, codex/) are written")
    p.add_argument("--lines", type=int, required=True, help="Claude lines in all (copies too)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--roots",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also OUT_DIR/claude2 with copies of some sessions",
    )
    p.add_argument("--codex-lines", type=int, default=0, metavar="M")
    p.add_argument("--days", type=int, default=90, help="span of the timestamps")
    p.add_argument("--end", default=DEFAULT_END, help="last day (exclusive), YYYY-MM-DD")
    return p.parse_args()


def generate(
    out: Path,
    lines: int,
    seed: int = 1,
    roots: int = 1,
    codex_lines: int = 0,
    days: int = 90,
    end: str = DEFAULT_END,
) -> dict[str, float]:
    """Write the tree; return counts, bytes and seconds."""
    started = time.perf_counter()
    rng = Dice(seed)
    filler = Filler(rng)
    end_ms = day_ms(end)
    claude = ClaudeGen(out, lines, roots, end_ms, days, filler, rng)
    claude.run()
    claude.budget.progress(final=True)
    result = {
        "claude_lines": claude.budget.written,
        "claude_files": claude.budget.files,
        "claude_bytes": claude.budget.bytes,
    }
    if codex_lines:
        codex = CodexGen(out, codex_lines, end_ms, days, filler, Dice(seed + 1))
        codex.run()
        codex.budget.progress(final=True)
        result.update(
            codex_lines=codex.budget.written,
            codex_files=codex.budget.files,
            codex_bytes=codex.budget.bytes,
        )
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def main() -> int:
    args = parse_args()
    result = generate(
        args.out_dir, args.lines, args.seed, args.roots, args.codex_lines, args.days, args.end
    )
    per_line = result["claude_bytes"] / max(result["claude_lines"], 1)
    print(
        f"wrote {result['claude_lines']:,} Claude lines in {result['claude_files']:,} files, "
        f"{result['claude_bytes']:,} bytes ({per_line:,.0f} B/line) under {args.out_dir}"
    )
    if args.codex_lines:
        print(
            f"wrote {result['codex_lines']:,} Codex lines in {result['codex_files']:,} files, "
            f"{result['codex_bytes']:,} bytes"
        )
    print(f"in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
