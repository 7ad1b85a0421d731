"""Quote cards to PNG bytes, quickly and the same bytes every time.

Render stage, under `carddraw` (which draws a card and hands its Pillow image here):
`encode_png(image)` returns the PNG file, without the metadata chunks (time, text) that
would make equal images give different bytes.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from aspdigest.errors import RenderError

# zlib level 1: flat colours compress well even at the fastest level, and level 6 or 9
# takes several times longer for a few per cent.
PNG_COMPRESS_LEVEL = 1
MAX_PNG_BYTES = 1_000_000
# Rows of a card read out of Pillow at a time for encoding: ~200 KB, which stays in a
# core's cache (see _png_unfiltered).
_BAND = 64


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes with no metadata chunks (no time, no text), so equal images give equal bytes."""
    data = _png_unfiltered(image) if image.mode == "RGB" else b""
    if not data or len(data) > MAX_PNG_BYTES:
        # Photos in a logo can defeat unfiltered rows at the fastest level; Pillow's encoder
        # (a filter chosen per row, the best zlib level) spends the time only then.
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=9)
        data = buffer.getvalue()
    if len(data) > MAX_PNG_BYTES:
        raise RenderError(
            f"cards: a {image.width}×{image.height} card is {len(data)} bytes, "
            f"over the {MAX_PNG_BYTES}-byte limit; use a simpler logo image"
        )
    return data


def _png_unfiltered(image: Image.Image) -> bytes:
    """An 8-bit RGB PNG, every row with filter type 0 (none), deflated at PNG_COMPRESS_LEVEL.

    Pillow's encoder picks one of five filters for every row by trying them all, which took
    more than half of the encoding time of a card; flat colours and anti-aliased text
    compress as well unfiltered (ASP23's cards came out a few per cent smaller), and zlib at
    level 1 then takes about 5 ms for a 1080×1350 card against Pillow's 13. zlib's output
    depends only on its input and settings, so the bytes are the same on every run.

    The pixels are read out in bands of _BAND rows rather than as one 4 MB `tobytes()`:
    the whole copy, fresh memory for every card, cost ~800 page faults a card and kept two
    pool workers waiting on memory, each spending a fifth more CPU per card than one
    process alone (the pool's speed-up on 2 cores went from ~1.5× to ~1.8×). The bytes
    are the same either way: zlib's output does not depend on how its input is split.
    """
    width, height = image.size
    stride = width * 3
    deflate = zlib.compressobj(PNG_COMPRESS_LEVEL)
    parts = []  # fed row by row: a filter-type byte, then the row
    for top in range(0, height, _BAND):
        band = memoryview(image.crop((0, top, width, min(top + _BAND, height))).tobytes())
        for start in range(0, len(band), stride):
            parts.append(deflate.compress(b"\0"))
            parts.append(deflate.compress(band[start : start + stride]))
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", b"".join(parts)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
