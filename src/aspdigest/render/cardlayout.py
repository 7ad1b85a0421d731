"""Fitting text into a quote card's boxes: line breaks, the largest size that fits, positions.

A helper of the render stage, used by `render/cards.py`. `fit(...)` takes one text, the
spec's `TextBox` for it (sizes in the card's pixels, see `cardspec.canvas_box`) and the font
file, and returns a frozen `Block` (chosen size, lines, baselines, anchor) or None when the
text does not fit even at the box's minimum size. The caller then shows an excerpt of a quote
or skips the card: text is never drawn smaller than the spec allows and never cut.

Lines break only at ordinary spaces (and tabs or newlines in the source), never at a
no-break space (U+00A0, U+202F, U+2007) or after a word joiner, so French « guillemets »
and the space before « ; » or « ! » stay with their word. Each line is measured whole with
Raqm in its own direction, so Arabic is measured joined and mixed lines are measured as
they will be drawn.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aspdigest.render import cardemoji
from aspdigest.render.cardspec import Box, TextBox
from aspdigest.render.fonts import load

Direction = Literal["ltr", "rtl"]

_BREAK = re.compile(r"[ \t\r\n]+")  # the only break opportunities


@dataclass(frozen=True)
class Block:
    """One text element laid out: everything needed to draw it, and to compare layouts."""

    name: str
    box: Box  # where the spec put it, mirrored for a right-to-left card
    size: int
    lines: tuple[str, ...]
    x: int
    baselines: tuple[int, ...]
    anchor: str  # Pillow text anchor: ls, ms or rs (left, middle, right on the baseline)
    direction: Direction

    def meta(self) -> dict[str, object]:
        return {
            "box": list(self.box),
            "font_size": self.size,
            "lines": list(self.lines),
            "x": self.x,
            "baselines": list(self.baselines),
            "anchor": self.anchor,
            "direction": self.direction,
        }


def first_strong(text: str) -> Direction | None:
    """The direction of the first strongly directional character (Unicode bidi rule P2)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return None


def has_direction(text: str, direction: Direction) -> bool:
    kinds = ("R", "AL") if direction == "rtl" else ("L",)
    return any(unicodedata.bidirectional(c) in kinds for c in text)


def mirror(box: Box, card_width: int, rtl: bool) -> Box:
    x, y, w, h = box
    return (card_width - x - w, y, w, h) if rtl else box


def words(text: str) -> list[str]:
    return [w for w in _BREAK.split(text) if w]


@functools.lru_cache(maxsize=65536)
def measure(font_file: str, size: int, text: str, direction: Direction, language: str) -> float:
    """Advance width of a shaped text; cached, as each size tried re-measures the same words.

    Emoji clusters are measured in the colour emoji font they are drawn with.
    """
    font = load(font_file, size)
    parts = cardemoji.runs(text)
    if len(parts) == 1 and not parts[0][1]:
        return float(font.getlength(text, direction=direction, language=language))
    return sum(
        cardemoji.advance(run, size)
        if is_emoji
        else float(font.getlength(run, direction=direction, language=language))
        for run, is_emoji in parts
    )


def wrap(
    parts: list[str], font_file: str, size: int, width: int, direction: Direction, language: str
) -> list[str] | None:
    """Greedy line filling (which gives the fewest lines); None if one word is too wide.

    Lines are first filled by adding up word and space widths (one measurement per word),
    then each line is measured whole; only if a whole line turns out wider than the sum
    said (kerning across a space) is the text wrapped again measuring every candidate line.
    """

    def length(text: str) -> float:
        return measure(font_file, size, text, direction, language)

    space = length(" ")
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for word in parts:
        w = length(word)
        if w > width:
            return None
        if current and used + space + w <= width:
            current.append(word)
            used += space + w
            continue
        if current:
            lines.append(" ".join(current))
        current, used = [word], w
    if current:
        lines.append(" ".join(current))
    if all(length(line) <= width for line in lines):
        return lines
    return _wrap_exact(parts, width, length)


def _wrap_exact(parts: list[str], width: int, length: Callable[[str], float]) -> list[str] | None:
    lines: list[str] = []
    current: str | None = None
    for word in parts:
        candidate = word if current is None else f"{current} {word}"
        if length(candidate) <= width:
            current = candidate
            continue
        if current is None or length(word) > width:
            return None
        lines.append(current)
        current = word
    if current is not None:
        lines.append(current)
    return lines


def _line_height(el: TextBox, size: int, direction: Direction) -> int:
    factor = el.line_height_rtl if direction == "rtl" and el.line_height_rtl else el.line_height
    return round(size * factor)


def _attempt(
    parts: list[str], el: TextBox, font_file: str, size: int, direction: Direction, language: str
) -> list[str] | None:
    _, _, width, height = el.box
    lines = wrap(parts, font_file, size, width, direction, language)
    if lines is None or (el.max_lines is not None and len(lines) > el.max_lines):
        return None
    ascent, descent = load(font_file, size).getmetrics()
    if ascent + descent + (len(lines) - 1) * _line_height(el, size, direction) > height:
        return None
    return lines


def fits_at_minimum(
    text: str, el: TextBox, font_file: str, direction: Direction, language: str
) -> bool:
    """Whether `fit` finds a size for `text` at all: it tries the minimum first and gives up
    when that fails, so this is its verdict, found at one size instead of several."""
    return _attempt(words(text), el, font_file, int(el.min_size), direction, language) is not None


def fit(
    name: str,
    text: str,
    el: TextBox,
    font_file: str,
    direction: Direction,
    language: str,
    card_width: int,
    rtl_card: bool,
) -> Block | None:
    """The largest size in [min_size, max_size] at which every line fits the box, placed."""
    parts = words(text)
    low, high = int(el.min_size), int(el.max_size)  # whole pixels (cardspec.canvas_box)
    # Larger type never needs fewer lines, so "fits" is monotone in size: binary search,
    # after trying both ends. The minimum first: a quote too long for its box (the excerpt
    # search tries several) is then turned down in one try; the maximum next: short lines
    # (a name, a date) fit at it, and other tries are saved.
    lines = _attempt(parts, el, font_file, low, direction, language)
    if lines is None:
        return None
    best: tuple[int, list[str]] = (low, lines)
    if high > low:
        lines = _attempt(parts, el, font_file, high, direction, language)
        if lines is not None:
            best = (high, lines)
    low, high = (high + 1, high) if best[0] == high else (low + 1, high - 1)
    while low <= high:
        size = (low + high) // 2
        lines = _attempt(parts, el, font_file, size, direction, language)
        if lines is not None:
            best = (size, lines)
            low = size + 1
        else:
            high = size - 1
    size, lines = best
    return place(name, lines, size, el, font_file, direction, card_width, rtl_card)


def place(
    name: str,
    lines: list[str],
    size: int,
    el: TextBox,
    font_file: str,
    direction: Direction,
    card_width: int,
    rtl_card: bool,
) -> Block:
    box = mirror(el.box, card_width, rtl_card)
    x, y, w, h = box
    ascent, descent = load(font_file, size).getmetrics()
    step = _line_height(el, size, direction)
    block_height = ascent + descent + (len(lines) - 1) * step
    top = {"top": y, "middle": y + (h - block_height) // 2, "bottom": y + h - block_height}[
        el.valign
    ]
    # "start" is the side a reader of the card's language starts from.
    side = {
        "start": "right" if rtl_card else "left",
        "end": "left" if rtl_card else "right",
        "center": "center",
    }[el.align]
    anchor_x = {"left": (x, "ls"), "right": (x + w, "rs"), "center": (x + w // 2, "ms")}[side]
    return Block(
        name=name,
        box=box,
        size=size,
        lines=tuple(lines),
        x=anchor_x[0],
        baselines=tuple(top + ascent + i * step for i in range(len(lines))),
        anchor=anchor_x[1],
        direction=direction,
    )
