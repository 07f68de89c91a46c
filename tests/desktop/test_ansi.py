"""ANSI escape sequences of a runner's output as styled runs (headless)."""

from __future__ import annotations

from desktop.ansi import BASIC, PLAIN, Style, apply_sgr, colour_256, runs


def test_sgr_colours_and_flags_are_runs_and_other_sequences_are_dropped():
    text = "ok \x1b[1;31mred bold\x1b[22m red\x1b[0m \x1b]0;title\x07plain\x1b[2K\x1b[?25l."
    pieces, end = runs(text)
    assert pieces == [
        ("ok ", PLAIN),
        ("red bold", Style(fg=BASIC[1], bold=True)),
        (" red", Style(fg=BASIC[1])),
        (" ", PLAIN),
        ("plain", PLAIN),
        (".", PLAIN),
    ]
    assert end == PLAIN


def test_the_style_carries_over_to_the_next_chunk():
    _, style = runs("\x1b[4;92;44mgreen on blue")
    assert style == Style(fg=BASIC[10], bg=BASIC[4], underline=True)
    pieces, _ = runs("still", style)
    assert pieces == [("still", style)]


def test_256_and_true_colours():
    assert apply_sgr(PLAIN, "38;5;196").fg == "#ff0000"
    assert apply_sgr(PLAIN, "48;5;232").bg == "#080808"
    assert apply_sgr(PLAIN, "38;2;1;2;300").fg == "#0102ff"
    assert colour_256(3) == BASIC[3] and colour_256(16) == "#000000"
    assert apply_sgr(apply_sgr(PLAIN, "31"), "39") == PLAIN


def test_malformed_sequences_do_not_raise():
    assert apply_sgr(PLAIN, "38;5") == PLAIN
    assert apply_sgr(PLAIN, "38") == PLAIN
    assert runs("\x1b[")[0] == []  # an unfinished sequence is dropped, not shown
    assert runs("a\x1b")[0] == [("a", PLAIN)]
