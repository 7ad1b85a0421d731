"""The bundled card fonts: loading them for Pillow, checking coverage, and rebuilding them.

A helper of the render stage, used by `render/cards.py`. `require_raqm()` refuses to draw
without Pillow's Raqm layout engine (without it Arabic comes out unjoined and
left-to-right); `load(path, size)` returns a cached `FreeTypeFont` using Raqm;
`missing_glyphs(text, path)` lists the characters a font cannot draw, so a card is skipped
rather than printed with empty boxes.

Pillow has no font fallback: one `text()` call draws with one font. So the fonts shipped in
`aspdigest/fonts/` are merged with fontTools from Debian's fonts-noto-core (Noto Sans for
Latin, Greek and Cyrillic, Noto Naskh Arabic for Arabic) plus, in the regular weight only,
the emoji code points of Debian's fonts-symbola as monochrome outlines. One font holding
every script lets Raqm run the bidi algorithm and shaping over a whole mixed line.
`python -m aspdigest.render.fonts [OUT_DIR]` rebuilds them from the Debian packages.
"""

from __future__ import annotations

import functools
import importlib
import io
import struct
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ImageFont, features

from aspdigest.errors import UserError

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
REGULAR = "CardSans-Regular.ttf"
BOLD = "CardSans-Bold.ttf"
FAMILY = "aspdigest Card Sans"

# HarfBuzz draws these as nothing (default-ignorable code points); a font need not map them.
_IGNORABLE = frozenset(
    (
        0x00AD,
        0x034F,
        0x061C,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x3164,
        0xFEFF,
        0xFFA0,
        *range(0x180B, 0x1810),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *range(0xFE00, 0xFE10),
        *range(0xE0000, 0xE1000),
    )
)


def require_raqm() -> None:
    """Fail before drawing anything if Pillow cannot shape complex scripts."""
    if features.check("raqm"):
        return
    # Pillow's wheels carry Raqm but load FriBiDi from the system at run time.
    package = "libraqm0" if features.check("fribidi") else "libfribidi0"
    raise UserError(
        "cards: Pillow's Raqm text layout is not available, so Arabic would be drawn unjoined "
        f"and left-to-right; install the Debian package {package} and build again"
    )


def font_path(name: str, spec_dir: Path | None = None) -> Path:
    """A font named in a card spec: beside the spec first, then among the bundled fonts."""
    if spec_dir is not None and (spec_dir / name).is_file():
        return (spec_dir / name).resolve()
    return FONTS_DIR / name


@functools.lru_cache(maxsize=8)
def _font_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


@functools.lru_cache(maxsize=1024)
def load(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Reading the file once and handing FreeType a fresh in-memory copy per size keeps a
    # binary search over sizes from re-reading a megabyte from disk each step.
    return ImageFont.truetype(
        io.BytesIO(_font_bytes(path)), size, layout_engine=ImageFont.Layout.RAQM
    )


@functools.lru_cache(maxsize=8)
def coverage(path: str) -> frozenset[int]:
    """The code points the font maps to a glyph (its best cmap)."""
    try:
        points = _cmap_code_points(_font_bytes(path))
    except struct.error:  # a truncated table: let fontTools say what is wrong
        points = None
    if points is not None:
        return points
    with _fonttools("ttLib").TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())


# fontTools' getBestCmap order: the first of these subtables the font has is its best cmap.
_CMAP_PREFERENCE = ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0))


def _cmap_code_points(data: bytes) -> frozenset[int] | None:
    """The code points of the best cmap subtable, read straight from the font's bytes.

    fontTools names every glyph before it answers (about 30 ms for the bundled fonts, plus
    its import, in every cold build); the cmap subtables fonts use for Unicode, formats 4
    and 12, take a few lines. None for anything else (a collection, another format), which
    `coverage` then hands to fontTools.
    """
    if data[:4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
        return None
    (tables,) = struct.unpack_from(">H", data, 4)
    cmap = next(
        (
            offset
            for tag, _, offset, _ in struct.iter_unpack(">4sIII", data[12 : 12 + 16 * tables])
            if tag == b"cmap"
        ),
        None,
    )
    if cmap is None:
        return None
    (count,) = struct.unpack_from(">H", data, cmap + 2)
    subtables = {
        (platform, encoding): cmap + offset
        for platform, encoding, offset in struct.iter_unpack(
            ">HHI", data[cmap + 4 : cmap + 4 + 8 * count]
        )
    }
    start = next((subtables[key] for key in _CMAP_PREFERENCE if key in subtables), None)
    if start is None:
        return None
    (kind,) = struct.unpack_from(">H", data, start)
    if kind == 12:
        (groups,) = struct.unpack_from(">I", data, start + 12)
        points: set[int] = set()
        for first, last, glyph in struct.iter_unpack(
            ">III", data[start + 16 : start + 16 + 12 * groups]
        ):
            points.update(range(first, last + 1))
            if glyph == 0:  # a group starting at .notdef maps its first character to nothing
                points.discard(first)
        return frozenset(points)
    if kind == 4:
        return frozenset(_format4(data, start))
    return None


def _format4(data: bytes, start: int) -> set[int]:
    (segments,) = struct.unpack_from(">H", data, start + 6)
    segments //= 2
    ends = struct.unpack_from(f">{segments}H", data, start + 14)
    starts = struct.unpack_from(f">{segments}H", data, start + 16 + 2 * segments)
    deltas = struct.unpack_from(f">{segments}h", data, start + 16 + 4 * segments)
    range_at = start + 16 + 6 * segments
    offsets = struct.unpack_from(f">{segments}H", data, range_at)
    points: set[int] = set()
    for i, (first, last, delta, offset) in enumerate(
        zip(starts, ends, deltas, offsets, strict=True)
    ):
        if first == 0xFFFF:
            continue
        if offset == 0:
            # glyph = (code + delta) mod 65536: one code at most lands on .notdef
            points.update(c for c in range(first, last + 1) if (c + delta) & 0xFFFF)
            continue
        at = range_at + 2 * i + offset
        glyphs = struct.unpack_from(f">{last - first + 1}H", data, at)
        points.update(
            c
            for c, g in zip(range(first, last + 1), glyphs, strict=True)
            if g and (g + delta) & 0xFFFF
        )
    return points


def _fonttools(module: str) -> Any:
    # fontTools ships no type information; importing it by name keeps mypy --strict honest
    # about that (everything from it is Any) without per-line ignores.
    return importlib.import_module(f"fontTools.{module}")


def missing_glyphs(text: str, path: str) -> list[str]:
    """Characters of `text` the font would draw as a missing-glyph box, in order, once each."""
    cmap = coverage(path)
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code in cmap or code in _IGNORABLE or char in "\n\t" or char in out:
            continue
        out.append(char)
    return out


def describe_char(char: str) -> str:
    name = unicodedata.name(char, "unnamed character")
    return f"U+{ord(char):04X} {name}"


# -- rebuilding the bundled fonts ---------------------------------------------------------------

NOTO = Path("/usr/share/fonts/truetype/noto")
SYMBOLA = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")


@dataclass(frozen=True)
class Source:
    path: Path
    emoji_only: bool = False  # keep only emoji code points (Symbola is a large symbol font)


BUILDS: dict[str, tuple[Source, ...]] = {
    REGULAR: (
        Source(NOTO / "NotoSans-Regular.ttf"),
        Source(NOTO / "NotoNaskhArabic-Regular.ttf"),
        Source(SYMBOLA, emoji_only=True),
    ),
    BOLD: (Source(NOTO / "NotoSans-Bold.ttf"), Source(NOTO / "NotoNaskhArabic-Bold.ttf")),
}


def _emoji_code_points() -> set[int]:
    import emoji

    points = {ord(ch) for sequence in emoji.EMOJI_DATA for ch in sequence}
    points |= set(range(0x1F3FB, 0x1F400))  # skin-tone modifiers
    points |= set(range(0x1F1E6, 0x1F200))  # regional indicators (flags)
    return points


def build_font(sources: Sequence[Source], style: str, out: Path) -> None:
    """Subset (dropping hinting, which fontTools cannot merge), merge, rename, save."""
    import tempfile

    subset = _fonttools("subset")
    TTFont = _fonttools("ttLib").TTFont
    scale_upem = _fonttools("ttLib.scaleUpem").scale_upem

    taken: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, source in enumerate(sources):
            font = TTFont(source.path)
            wanted = set(font.getBestCmap()) - taken  # the first font to map a character wins
            if source.emoji_only:
                wanted &= _emoji_code_points()
            if font["head"].unitsPerEm != 1000:
                scale_upem(font, 1000)  # fontTools merges only fonts of equal units per em
            options = subset.Options()
            options.hinting = False
            options.layout_features = [] if source.emoji_only else ["*"]
            options.name_IDs = ["*"]
            options.notdef_outline = True
            options.drop_tables += ["DSIG"]
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=sorted(wanted))
            subsetter.subset(font)
            taken |= set(font.getBestCmap())
            part = Path(tmp) / f"{i}.ttf"
            font.save(part)
            parts.append(str(part))
        merged = _fonttools("merge").Merger().merge(parts)
    _rename(merged, style, [s.path for s in sources])
    merged.recalcTimestamp = False
    merged["head"].created = merged["head"].modified = 3818448000  # 2024-12-31, for stable bytes
    out.parent.mkdir(parents=True, exist_ok=True)
    merged.save(out)


def _rename(font: Any, style: str, sources: Sequence[Path]) -> None:
    # The OFL asks that a modified font not pass itself off as the original.
    table = font["name"]
    copyright_ = (
        "Copyright 2012-2020 Google Inc. (Noto Sans, Noto Naskh Arabic), SIL Open Font License 1.1; "
        "emoji outlines from Symbola by George Douros, free for any use"
    )
    names = {
        0: copyright_,
        1: FAMILY,
        2: style,
        3: f"{FAMILY} {style}; merged from " + ", ".join(p.name for p in sources),
        4: f"{FAMILY} {style}",
        5: "Version 2.004; unhinted merge of Noto 2.004 and Symbola 9.17",
        6: FAMILY.replace(" ", "") + "-" + style,
    }
    table.names = [n for n in table.names if n.nameID not in names and n.nameID not in (16, 17)]
    for name_id, value in names.items():
        table.setName(value, name_id, 3, 1, 0x409)
        table.setName(value, name_id, 1, 0, 0)


def main(argv: Sequence[str]) -> int:
    out_dir = Path(argv[0]) if argv else FONTS_DIR
    for name, sources in BUILDS.items():
        missing = [str(s.path) for s in sources if not s.path.is_file()]
        if missing:
            print(
                f"missing {', '.join(missing)}: apt-get install fonts-noto-core fonts-symbola",
                file=sys.stderr,
            )
            return 1
        style = "Bold" if name == BOLD else "Regular"
        build_font(sources, style, out_dir / name)
        print(f"{out_dir / name}: {(out_dir / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
