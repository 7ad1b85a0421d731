"""The card stage's fast paths give what the slow ones gave (issue 18).

render/carddraw.py writes PNGs itself (unfiltered rows, zlib level 1) instead of Pillow's
encoder, and starts its process pool by fork when it runs no other thread; render/fonts.py
reads a font's cmap itself instead of through fontTools. Real fonts, real cards of the ASP23
sample, real worker processes: the pixels, the code points and the bytes must match.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw

from aspdigest.config import Project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.errors import RenderError
from aspdigest.render import RenderContext, carddraw, cardemoji, cardpng, fonts
from aspdigest.render.cards import plan
from aspdigest.render.templates import make_environment


def _asp23_jobs(project: Project) -> list[carddraw.CardJob]:
    content = load_content(project, "asp23")
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    return [job for day in plan_days(content) for job in plan(day, ctx).jobs]


def _decoded(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.copy()


def test_png_holds_the_drawn_pixels_and_nothing_else() -> None:
    image = Image.new("RGB", (301, 97), "#fafaf7")  # odd sizes: rows are not 4-byte aligned
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 9, 96), fill="#1d3557")
    draw.text(
        (20, 60),
        "Justice «\u202fmaintenant\u202f»",
        font=fonts.load(str(fonts.FONTS_DIR / fonts.REGULAR), 40),
        fill="#e63946",
    )
    png = cardpng.encode_png(image)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    back = _decoded(png)
    assert back.mode == "RGB" and back.size == image.size
    assert back.tobytes() == image.tobytes()
    assert back.info == {}  # no time, text or other metadata chunk
    assert cardpng.encode_png(image.copy()) == png  # equal images, equal bytes


def _random_walk(size: int, seed: int) -> Image.Image:
    """Every row a random walk per channel: photo-like, smooth along x, unlike row to row."""
    rng = random.Random(seed)
    data = bytearray()
    for _ in range(size):
        level = [rng.randrange(256) for _ in range(3)]
        for _ in range(size):
            for c in range(3):
                level[c] = (level[c] + rng.choice((-3, -1, 0, 1, 3))) % 256
            data += bytes(level)
    return Image.frombytes("RGB", (size, size), bytes(data))


def test_a_photo_like_card_over_the_limit_gets_pillows_filters_and_best_level() -> None:
    photo = _random_walk(700, seed=18)
    assert len(cardpng._png_unfiltered(photo)) > cardpng.MAX_PNG_BYTES
    png = cardpng.encode_png(photo)
    assert len(png) <= cardpng.MAX_PNG_BYTES
    assert _decoded(png).tobytes() == photo.tobytes()


def test_a_card_no_encoder_brings_under_the_limit_is_an_error() -> None:
    noise = Image.frombytes("RGB", (700, 700), random.Random(18).randbytes(700 * 700 * 3))
    with pytest.raises(RenderError, match=re.escape("a 700×700 card is ")):
        cardpng.encode_png(noise)


def test_asp23_cards_decode_to_what_pillow_encodes(sample_project: Project) -> None:
    job = _asp23_jobs(sample_project)[1]  # a portrait card, the largest
    png = carddraw.draw_card(job).png
    assert png is not None
    ours = _decoded(png)
    buffer = io.BytesIO()
    ours.save(buffer, format="PNG", compress_level=1)
    assert _decoded(buffer.getvalue()).tobytes() == ours.tobytes()
    assert ours.size == (job.size.width, job.size.height)
    assert len(png) < buffer.tell() * 1.1  # no bigger than Pillow's output, within 10 %


@pytest.mark.parametrize(
    "path",
    [
        str(fonts.FONTS_DIR / fonts.REGULAR),
        str(fonts.FONTS_DIR / fonts.BOLD),
        str(cardemoji.EMOJI_FONT),
    ],
    ids=["regular", "bold", "emoji"],
)
def test_coverage_is_the_best_cmap_fonttools_reads(path: str) -> None:
    if not Path(path).is_file():
        pytest.skip(f"{path} is not installed")
    fonts.coverage.cache_clear()
    with TTFont(path, lazy=True) as font:
        expected = frozenset(font.getBestCmap())
    assert fonts.coverage(path) == expected
    assert fonts._cmap_code_points(Path(path).read_bytes()) == expected  # not the fallback


def test_coverage_of_a_font_without_a_unicode_cmap_is_asked_of_fonttools(tmp_path: Path) -> None:
    # A format-6 subtable (trimmed table) is not read directly; fontTools answers.
    font = TTFont(str(fonts.FONTS_DIR / fonts.BOLD))
    cmap = font["cmap"]
    latin = {c: g for c, g in font.getBestCmap().items() if 0x41 <= c <= 0x5A}
    from fontTools.ttLib.tables._c_m_a_p import CmapSubtable

    table = CmapSubtable.newSubtable(6)
    table.platformID, table.platEncID, table.language = 3, 1, 0
    table.cmap = latin
    cmap.tables = [table]
    path = tmp_path / "trimmed.ttf"
    font.save(path)
    assert fonts._cmap_code_points(path.read_bytes()) is None
    fonts.coverage.cache_clear()
    assert fonts.coverage(str(path)) == frozenset(latin)


_FORKED_POOL = """
import hashlib, json, sys
from pathlib import Path
from aspdigest.config import load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.render import RenderContext, carddraw
from aspdigest.render.cards import plan
from aspdigest.render.templates import make_environment

project = load_project(Path(sys.argv[1]), environ={})
content = load_content(project, "asp23")
ctx = RenderContext(project=project, content=content, env=make_environment(project))
days = [plan(day, ctx).jobs for day in plan_days(content)]
jobs = [job for day in days for job in day]
method = carddraw.start_method()
waiting = carddraw.start_drawing(days)  # every day's cards at once, as a build starts them
started = carddraw._POOL is not None
ahead = [hashlib.sha256(r.png).hexdigest() for wait in waiting for r in wait()]
pngs = [hashlib.sha256(r.png).hexdigest() for r in carddraw.draw_all(jobs)]
carddraw.shutdown_card_pool()
print(json.dumps([method, started, ahead, pngs]))
"""


def test_pool_by_fork_and_by_fork_server_draw_the_serial_bytes(sample_project: Project) -> None:
    jobs = _asp23_jobs(sample_project)
    assert len(jobs) > carddraw.PARALLEL_ABOVE
    serial = [carddraw.draw_card(job).png for job in jobs]
    # By fork: in a fresh process with no other thread, as `aspdigest build` runs (this
    # test process may have threads other tests left behind).
    child = subprocess.run(
        [sys.executable, "-c", _FORKED_POOL, str(sample_project.root)],
        capture_output=True,
        text=True,
        check=True,
    )
    method, started, ahead, pngs = json.loads(child.stdout)
    assert (method, started) == ("fork", True)
    assert pngs == ahead == [hashlib.sha256(png).hexdigest() for png in serial]
    # By the fork server: whenever another thread runs.
    carddraw.shutdown_card_pool()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert carddraw.start_method() == "forkserver"  # a thread: never fork
        # Not worth a fork server's start for drawing ahead: drawn when collected.
        waiting = carddraw.start_drawing([jobs[:6], jobs[6:]])
        assert carddraw._POOL is None
        assert [r.png for wait in waiting for r in wait()] == serial
        assert [r.png for r in carddraw.draw_all(jobs)] == serial
    finally:
        stop.set()
        other.join()
        carddraw.shutdown_card_pool()
