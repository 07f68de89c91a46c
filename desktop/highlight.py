"""A unified diff as the window draws it: split by file, each line's kind (added, deleted,
context, hunk, header), and its code as pygments tokens in the file's language.

Pygments rather than a lexer of our own: it knows some 500 languages by file name. A line is
lexed alone (a hunk shows pieces of a file, not a whole one), which colours keywords,
strings and comments on that line; a string or comment that spans lines shows plain after
its first. Past :data:`MAX_HIGHLIGHTED` lines a file's diff is shown without colours, so a
huge diff still opens at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound

MAX_HIGHLIGHTED = 3000  # lines of one file's diff lexed; the rest plain
STYLES = {False: "default", True: "github-dark"}  # by whether the background is dark


@dataclass(frozen=True)
class FileDiff:
    """One file's part of a unified diff."""

    path: str
    lines: tuple[str, ...]


def split_files(patch: str) -> list[FileDiff]:
    """A ``git diff`` output as one :class:`FileDiff` per file (by its ``diff --git`` line)."""
    files: list[FileDiff] = []
    current: list[str] = []
    path = ""
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            if current:
                files.append(FileDiff(path, tuple(current)))
            current, path = [], _path_of(line)
        current.append(line)
    if current:
        files.append(FileDiff(path, tuple(current)))
    return files


def _path_of(header: str) -> str:
    """'diff --git a/src/x.py b/src/x.py' -> 'src/x.py' (the new side)."""
    _, _, new = header.partition(" b/")
    return new or header.removeprefix("diff --git ")


def kind_of(line: str, in_hunk: bool) -> str:
    """'add', 'del', 'ctx', 'hunk', 'meta' (the file's header lines, 'No newline...')."""
    if line.startswith("@@"):
        return "hunk"
    if in_hunk and line.startswith("+"):
        return "add"
    if in_hunk and line.startswith("-"):
        return "del"
    if in_hunk and line.startswith(" "):
        return "ctx"
    return "meta"


@functools.lru_cache(maxsize=256)
def lexer_for(path: str) -> Lexer:
    """The pygments lexer of ``path``'s language (plain text when none is known)."""
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def tokens(lexer: Lexer, code: str) -> list[tuple[str, _TokenType]]:
    """``code`` (one line) as (text, token type) pieces."""
    return [(text, kind) for kind, text in lexer.get_tokens(code) if text]


@functools.lru_cache(maxsize=8)
def _styles(dark: bool) -> dict[_TokenType, dict]:
    return {kind: dict(look) for kind, look in get_style_by_name(STYLES[dark])}  # a Style iterates


def look(kind: _TokenType, dark: bool) -> dict:
    """A token type's look in the style for a light or dark background (pygments' own:
    colour as 'rrggbb' or '', bold, italic), from its nearest styled parent type."""
    styles = _styles(dark)
    while kind not in styles and kind.parent is not None:
        kind = kind.parent
    return styles.get(kind, {"color": "", "bold": False, "italic": False})
