"""Colour emoji on quote cards, from Debian's Noto Color Emoji.

A helper of the render stage, used by `cardlayout` (to measure) and `cards` (to draw). Pillow
has no font fallback, so a card line is cut into runs: text runs are drawn with the card
font as before, emoji runs (whole clusters: flags, skin tones, ZWJ families) with Noto Color
Emoji. That font is a CBDT bitmap font with one strike, 109 px: each cluster is drawn there
once with `embedded_color=True`, shaped by Raqm so a ZWJ sequence or a flag becomes its one
glyph, then scaled to the text size (LANCZOS, deterministic, so PNG bytes stay the same).
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from aspdigest.errors import UserError
from aspdigest.text.length import emoji_spans

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
STRIKE = 109  # the font's only bitmap size
_PRESENTATION = frozenset({0x200D, 0xFE0F})


def _is_picture(cluster: str) -> bool:
    # emoji.emoji_list also matches ©, ® and keycap digits, which read as text; a cluster
    # is drawn in colour when it asks for emoji presentation or is a pictograph.
    return any(
        ord(c) in _PRESENTATION or ord(c) >= 0x1F000 or 0x2600 <= ord(c) <= 0x27BF for c in cluster
    )


@functools.lru_cache(maxsize=4096)
def runs(text: str) -> tuple[tuple[str, bool], ...]:
    """The text cut into (run, is_emoji) in logical order; one run when there is no emoji."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in emoji_spans(text):
        if not _is_picture(text[start:end]):
            continue
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    if at < len(text) or not out:
        out.append((text[at:], False))
    return tuple(out)


def has_emoji(text: str) -> bool:
    return any(is_emoji for _, is_emoji in runs(text))


def without_emoji(text: str) -> str:
    return "".join(run for run, is_emoji in runs(text) if not is_emoji)


def require_emoji_font() -> None:
    if not EMOJI_FONT.is_file():
        raise UserError(
            f"cards: colour emoji need {EMOJI_FONT}; install the Debian package "
            "fonts-noto-color-emoji and build again"
        )


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    require_emoji_font()
    return ImageFont.truetype(str(EMOJI_FONT), STRIKE, layout_engine=ImageFont.Layout.RAQM)


@functools.lru_cache(maxsize=1)
def coverage() -> frozenset[int]:
    from aspdigest.render.fonts import coverage as font_coverage

    require_emoji_font()
    return font_coverage(str(EMOJI_FONT))


def advance(cluster: str, size: int) -> float:
    return float(_font().getlength(cluster)) * size / STRIKE


@functools.lru_cache(maxsize=1024)
def image(cluster: str, size: int) -> tuple[Image.Image, int]:
    """The cluster drawn in colour at `size`, and its ascent (pixels above the baseline)."""
    font = _font()
    ascent, descent = font.getmetrics()
    width = max(1, round(font.getlength(cluster)))
    strike = Image.new("RGBA", (width, ascent + descent), (0, 0, 0, 0))
    ImageDraw.Draw(strike).text((0, ascent), cluster, font=font, anchor="ls", embedded_color=True)
    scale = size / STRIKE
    scaled = strike.resize(
        (max(1, round(width * scale)), max(1, round((ascent + descent) * scale))),
        Image.Resampling.LANCZOS,
    )
    return scaled, round(ascent * scale)
