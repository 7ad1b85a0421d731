"""Drawing quote cards: the picklable jobs `render/cards.py` plans, laid out and drawn to PNG.

Render stage, under `cards.py`: `draw_all(jobs)` takes the day's `CardJob`s (every text,
colour, font and size a card needs, no project objects, so they cross to worker processes)
and returns one `CardResult` each (the PNG bytes and the layout the manifest records, or the
element that did not fit). `layout(job)` fits the quote at the phone-legible floor or falls
back to a verbatim excerpt; `draw_card` draws it with Raqm shaping, colour emoji and the
logo. Output is deterministic: the same job gives the same bytes.
"""

from __future__ import annotations

import atexit
import functools
import io
import itertools
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from aspdigest.errors import UserError
from aspdigest.render import cardemoji
from aspdigest.render.cardlayout import (
    Block,
    Direction,
    first_strong,
    fit,
    fits_at_minimum,
    has_direction,
    measure,
    mirror,
)
from aspdigest.render.cardpng import encode_png
from aspdigest.render.cardspec import (
    CardSize,
    Phone,
    TextBox,
    canvas_box,
    phone_px,
)
from aspdigest.render.fonts import FONTS_DIR, load
from aspdigest.render.quotemarks import Marks
from aspdigest.text.excerpt import Excerpt, excerpt

# Up to this many cards a day, drawing them here beats starting worker processes. A card
# takes ~11 ms once fonts are loaded (ASP23); forked workers start in milliseconds but
# spend about a third more CPU in all than one process would (each loads the fonts at every
# size and measures the words again), so the pool pays only with a core to spare: on a
# busy 2-core machine 12 cards took 0.27 s CPU serially against 0.36 s across workers.
# The pool, once started, serves every later day of the build (see card_pool).
PARALLEL_ABOVE = 12
# Drawn while the build renders everything else (start_drawing), cards pay for the pool
# sooner: this process has work of its own meanwhile, and each worker's start (a fork,
# its own font and word-width caches) runs beside it.
AHEAD_ABOVE = 4


@dataclass(frozen=True)
class CardJob:
    """Everything one worker needs to draw one card (picklable, no project objects)."""

    path: str
    record: str
    number: int
    size_name: str
    size: CardSize
    lang: str
    direction: Direction
    texts: tuple[tuple[str, str], ...]  # element name → text to draw, in drawing order
    colors: Mapping[str, str]
    fonts: Mapping[str, str]
    spec_folder: str
    quote: str  # verbatim; the quote element shows it, or an excerpt of it, in `marks`
    excerpt: str | None
    marks: Marks
    phone: Phone
    logo: str | None  # image file to draw in the size's logo box


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]
    shown: Excerpt  # what of the quote the card shows


@dataclass(frozen=True)
class CardResult:
    png: bytes | None
    meta: Mapping[str, Any]
    failed: str | None = None  # element that did not fit at its minimum size


# -- drawing (runs in worker processes when there are many cards) -------------------------------


def draw_all(jobs: Sequence[CardJob]) -> list[CardResult]:
    """Every job's result, in job order; across processes when there are many.

    Worker processes are forked from this one when it runs no other thread (see card_pool);
    else they start by "forkserver" (or "spawn"), which re-imports the main module: a
    script that builds must keep its top-level code under `if __name__ == "__main__":`.
    """
    if len(jobs) <= PARALLEL_ABOVE or _cores() < 2:
        return _draw_here(jobs)
    return _results(_submit(card_pool(), jobs))


def start_drawing(batches: Sequence[Sequence[CardJob]]) -> list[Callable[[], list[CardResult]]]:
    """Start drawing every batch of jobs (a build's days) in the process pool and return at
    once, while the caller does other work; each returned function waits for its batch's
    results, in job order. With AHEAD_ABOVE jobs or fewer in all, one core, or workers that
    could not be forked (this process runs other threads, and a fork server or fresh
    interpreters take a good part of a second to start), each function calls `draw_all`
    on its batch when called."""
    few = sum(len(jobs) for jobs in batches) <= AHEAD_ABOVE
    if few or _cores() < 2 or (_POOL is None and start_method() != "fork"):
        return [functools.partial(draw_all, jobs) for jobs in batches]
    pool = card_pool()
    waiting = [_submit(pool, jobs) for jobs in batches]
    return [functools.partial(_results, futures) for futures in waiting]


def _submit(pool: ProcessPoolExecutor, jobs: Sequence[CardJob]) -> list[Future[list[CardResult]]]:
    # One task per quote, all its sizes (4 in the default spec): the worker measures the
    # quote's words once for every size, where two workers would each measure them; and
    # a quarter of the hand-overs, each of which waits for this process to be scheduled
    # while both cores draw. On ASP23's day of 24 cards: 1.85x serial, against 1.76x a
    # card at a time.
    return [pool.submit(_draw_here, list(group)) for _, group in itertools.groupby(jobs, _quote)]


def _quote(job: CardJob) -> tuple[str, int]:
    return job.record, job.number


def _draw_here(jobs: Sequence[CardJob]) -> list[CardResult]:
    return [draw_card(job) for job in jobs]


def _results(futures: Sequence[Future[list[CardResult]]]) -> list[CardResult]:
    return [result for future in futures for result in future.result()]


_POOL: ProcessPoolExecutor | None = None


def _warm_worker() -> None:
    """A worker's initializer: read the bundled fonts once, before the first card waits."""
    for font in sorted(FONTS_DIR.glob("*.ttf")):
        load(str(font), 48)


def card_pool() -> ProcessPoolExecutor:
    """The one process pool of this process, started on first use and kept for later days
    (starting workers costs more than drawing a dozen cards); shut down at exit."""
    global _POOL
    if _POOL is None:
        method = start_method()
        context: BaseContext = multiprocessing.get_context(method)
        if method == "forkserver":
            # The fork server imports Pillow and this module once; each worker forks from it
            # ready to draw instead of importing everything again.
            context.set_forkserver_preload([__name__])
        _POOL = ProcessPoolExecutor(
            max_workers=_cores(), mp_context=context, initializer=_warm_worker
        )
        atexit.register(shutdown_card_pool)
    return _POOL


def start_method() -> str:
    """How card_pool starts its workers, were it started now."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        # Forking is safe while this process runs no other thread (one could hold a lock, a
        # progress bar's or the logging module's, that the copy would never see released),
        # as in `aspdigest build`. Workers then start in milliseconds with what this process
        # has loaded; the fork server took ~0.3 s of CPU (a new interpreter importing Pillow)
        # before the first card.
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def shutdown_card_pool() -> None:
    """Stop the pool's workers (at exit, or when a caller is done drawing)."""
    global _POOL
    if _POOL is not None:
        pool, _POOL = _POOL, None
        pool.shutdown()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def element_direction(text: str, card: Direction) -> Direction:
    # A Latin name on an Arabic card reads left-to-right (but still aligns to the right);
    # a line holding any Arabic on an Arabic card takes the card's direction.
    if has_direction(text, card):
        return card
    return first_strong(text) or card


def layout(job: CardJob) -> Layout | str:
    """Every element fitted to its box, the quote whole or as the longest excerpt that fits
    at the spec's minimum size; or the name of the element that does not fit."""
    size = job.size
    rtl = job.direction == "rtl"
    blocks: list[Block] = []
    shown: Excerpt | None = None
    for name, text in job.texts:
        el = canvas_box(size.text[name], size.width, job.phone)
        font = job.fonts[el.font]
        if name != "quote":
            direction = element_direction(text, job.direction)
            block = fit(name, text, el, font, direction, job.lang, size.width, rtl)
            if block is None and el.optional:
                continue
            if block is None:
                return name
            blocks.append(block)
            continue
        fitted = _fit_quote(job, el, font)
        if fitted is None:
            return name
        shown, block = fitted
        blocks.append(block)
    if shown is None:
        return "quote"
    return Layout(tuple(blocks), shown)


def drawable(job: CardJob) -> bool:
    """Whether `layout(job)` succeeds (and `draw_card` draws the card), decided as `layout`
    decides it but at each element's minimum size only (see `fits_at_minimum`): what a
    thread checks before it attaches a card the cards renderer draws elsewhere, without
    laying every card out a second time."""
    for name, text in job.texts:
        el = canvas_box(job.size.text[name], job.size.width, job.phone)
        font = job.fonts[el.font]
        if name == "quote":

            def fits(candidate: str, el: TextBox = el, font: str = font) -> bool:
                wrapped = job.marks.wrap(candidate)
                return fits_at_minimum(wrapped, el, font, job.direction, job.lang)

            if excerpt(job.quote, fits, job.excerpt) is None:
                return False
        elif not el.optional:
            direction = element_direction(text, job.direction)
            if not fits_at_minimum(text, el, font, direction, job.lang):
                return False
    return any(name == "quote" for name, _ in job.texts)


def _fit_quote(job: CardJob, el: TextBox, font: str) -> tuple[Excerpt, Block] | None:
    fitted: dict[str, Block] = {}

    def fits(candidate: str) -> bool:
        block = fit(
            "quote",
            job.marks.wrap(candidate),
            el,
            font,
            job.direction,
            job.lang,
            job.size.width,
            job.direction == "rtl",
        )
        if block is not None:
            fitted[candidate] = block
        return block is not None

    shown = excerpt(job.quote, fits, job.excerpt)
    return None if shown is None else (shown, fitted[shown.shown])


def draw_card(job: CardJob) -> CardResult:
    size = job.size
    rtl = job.direction == "rtl"
    laid = layout(job)
    if isinstance(laid, str):
        return CardResult(None, {}, failed=laid)
    image = Image.new("RGB", (size.width, size.height), job.colors["background"])
    draw = ImageDraw.Draw(image)
    for shape in size.shapes:
        x, y, w, h = mirror(shape.box, size.width, rtl)
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=job.colors[shape.color])
    if size.logo is not None and job.logo is not None:
        _paste_logo(
            image, Path(job.logo), mirror(size.logo.box, size.width, rtl), size.logo.align, rtl
        )
    for block in laid.blocks:
        el = size.text[block.name]
        font_file = job.fonts[el.font]
        for line, baseline in zip(block.lines, block.baselines, strict=True):
            _draw_line(
                image, draw, block, line, baseline, font_file, job.colors[el.color], job.lang
            )
    png = encode_png(image)
    quote = next(b for b in laid.blocks if b.name == "quote")
    meta: dict[str, Any] = {
        "size": job.size_name,
        "width": size.width,
        "height": size.height,
        "lang": job.lang,
        "direction": job.direction,
        "font_size": quote.size,
        "phone_width": job.phone.width,
        "excerpt": not laid.shown.whole,
        "elements": {
            b.name: {
                **b.meta(),
                "phone_size": round(phone_px(b.size, size.width, job.phone.width), 2),
            }
            for b in laid.blocks
        },
    }
    if not laid.shown.whole:
        meta["excerpt_text"] = laid.shown.shown
    return CardResult(png, meta)


def _draw_line(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    block: Block,
    line: str,
    baseline: int,
    font_file: str,
    colour: str,
    lang: str,
) -> None:
    font = load(font_file, block.size)
    parts = cardemoji.runs(line)
    if len(parts) == 1 and not parts[0][1]:
        draw.text(
            (block.x, baseline),
            line,
            font=font,
            fill=colour,
            anchor=block.anchor,
            direction=block.direction,
            language=lang,
        )
        return
    # Runs are placed side by side in reading order (right to left on a right-to-left
    # line); each text run is still shaped and reordered by Raqm on its own.
    widths = [measure(font_file, block.size, run, block.direction, lang) for run, _ in parts]
    total = sum(widths)
    left = {"l": block.x, "r": block.x - total, "m": block.x - total / 2}[block.anchor[0]]
    placed = list(zip(parts, widths, strict=True))
    if block.direction == "rtl":
        placed.reverse()
    cursor = left
    for (run, is_emoji), width in placed:
        if is_emoji:
            picture, ascent = cardemoji.image(run, block.size)
            image.paste(picture, (round(cursor), baseline - ascent), picture)
        else:
            draw.text(
                (cursor, baseline),
                run,
                font=font,
                fill=colour,
                anchor="ls",
                direction=block.direction,
                language=lang,
            )
        cursor += width


def _paste_logo(
    image: Image.Image, path: Path, box: tuple[int, int, int, int], align: str, rtl: bool
) -> None:
    x, y, w, h = box
    logo = _logo_image(path, h)
    # At the box's height; narrower boxes (a wide logo) scale it down to the box's width.
    scale = min(w / logo.width, h / logo.height)
    logo = logo.resize(
        (max(1, round(logo.width * scale)), max(1, round(logo.height * scale))),
        Image.Resampling.LANCZOS,
    )
    side = {"start": "right" if rtl else "left", "end": "left" if rtl else "right"}.get(
        align, "center"
    )
    left = {"left": x, "right": x + w - logo.width, "center": x + (w - logo.width) // 2}[side]
    image.paste(logo, (left, y + (h - logo.height) // 2), logo)


def _logo_image(path: Path, height: int) -> Image.Image:
    if path.suffix.lower() == ".svg":
        try:
            import cairosvg
        except ImportError:
            raise UserError(
                f"cards: {path.name}: drawing an SVG logo needs the Python package cairosvg "
                "(pip install cairosvg), or give brand.logo as a PNG"
            ) from None
        png = cairosvg.svg2png(url=str(path), output_height=height * 2)
        with Image.open(io.BytesIO(png)) as source:
            return source.convert("RGBA")
    with Image.open(path) as source:
        return source.convert("RGBA")
