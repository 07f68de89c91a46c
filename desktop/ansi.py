"""ANSI escape sequences in a runner's output, turned into styled runs of text.

Agents colour their output with SGR sequences (``ESC[1;31m``); the output pane shows those
colours and drops every other control sequence (cursor moves, window titles), which mean
nothing in a log. The state (colour, bold...) carries over from one chunk to the next, as a
terminal's does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Any

# SGR (ESC [ ... m), any other CSI sequence, OSC (ESC ] ... BEL or ST), and lone escapes.
_SEQUENCE = re.compile(r"\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_PARAMS = re.compile("[;:]")
# The 16 colours, chosen to read on a light and a dark background alike (xterm's are too
# pale or too dark on one of them).
BASIC = (
    "#4d4d4d", "#cd3131", "#0dbc79", "#b58900", "#2472c8", "#bc3fbc", "#11a8cd", "#8a8a8a",
    "#666666", "#f14c4c", "#23d18b", "#d7a600", "#3b8eea", "#d670d6", "#29b8db", "#b0b0b0",
)  # fmt: skip


@dataclass(frozen=True)
class Style:
    """What an SGR sequence sets; None colours are the pane's own."""

    fg: str | None = None
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    inverse: bool = False


PLAIN = Style()


def colour_256(n: int) -> str:
    """The xterm 256-colour palette: 16 basic, a 6x6x6 cube, 24 greys."""
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        levels = [0 if v == 0 else 55 + 40 * v for v in (n // 36, n // 6 % 6, n % 6)]
        return "#{:02x}{:02x}{:02x}".format(*levels)
    grey = 8 + 10 * (n - 232)
    return f"#{grey:02x}{grey:02x}{grey:02x}"


def _extended(codes: list[int], i: int) -> tuple[str | None, int]:
    """A 38/48 colour (``5;n`` or ``2;r;g;b``) after codes[i]: the colour and the index of the
    last code it used (past the end when it is malformed: the rest is ignored)."""
    kind = codes[i + 1] if i + 1 < len(codes) else None
    if kind == 5 and i + 2 < len(codes):
        return colour_256(codes[i + 2] % 256), i + 2
    if kind == 2 and i + 4 < len(codes):
        r, g, b = (min(255, c) for c in codes[i + 2 : i + 5])
        return f"#{r:02x}{g:02x}{b:02x}", i + 4
    return None, len(codes)


_FLAGS = {1: ("bold", True), 2: ("dim", True), 3: ("italic", True), 4: ("underline", True),
          7: ("inverse", True), 22: ("bold", False), 23: ("italic", False),
          24: ("underline", False), 27: ("inverse", False)}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def apply_sgr(style: Style, params: str) -> Style:
    """``style`` after the SGR sequence with ``params`` ("1;31", "" means reset). Cached: an
    agent uses a handful of styles, and this ran for most of the pane's drawing time."""
    codes = [int(p) if p.isdigit() else 0 for p in _PARAMS.split(params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = PLAIN
        elif code in _FLAGS:
            name, value = _FLAGS[code]
            flag: dict[str, Any] = {name: value}
            style = replace(style, **flag)
            if code == 22:
                style = replace(style, dim=False)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style = replace(style, fg=BASIC[code - 30 if code < 90 else code - 82])
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style = replace(style, bg=BASIC[code - 40 if code < 100 else code - 92])
        elif code in (38, 48):
            colour, i = _extended(codes, i)
            extended: dict[str, Any] = {"fg" if code == 38 else "bg": colour}
            style = replace(style, **extended)
        elif code == 39:
            style = replace(style, fg=None)
        elif code == 49:
            style = replace(style, bg=None)
        i += 1
    return style


def runs(text: str, style: Style = PLAIN) -> tuple[list[tuple[str, Style]], Style]:
    """``text`` as (plain text, style) runs without escape sequences, and the style at its
    end (to pass with the next chunk)."""
    out: list[tuple[str, Style]] = []
    at = 0
    for match in _SEQUENCE.finditer(text):
        if match.start() > at:
            out.append((text[at : match.start()], style))
        if match.group(2) == "m":
            style = apply_sgr(style, match.group(1))
        at = match.end()
    if at < len(text):
        out.append((text[at:], style))
    return out, style
