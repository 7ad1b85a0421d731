"""Quote cards: one PNG share image per quote and card size, each with its alt text.

Render stage, registered in DAY_RENDERERS. `render(day, ctx)` takes a `Day` and returns a
`Rendered` holding `cards/<record>-<n>.<size>.png` for every quote of the day with
`card: true` (n counts the record's quotes from 1, so it names `quotes[n-1]`), in every size
the card spec (`render/cardspec.py`) defines. Each artifact carries the alt text (the whole
quote verbatim in its quotation marks, then speaker, role, event and date) and the layout
facts in `meta`. No text is drawn under the spec's sizes, which never go under the legibility
floor (16 px for the quote, 11 px for other lines, on a phone showing the card 360 px wide).
A quote too long to set whole at that size is shown as an excerpt (`text/excerpt.py`: the
record's `quotes[].excerpt`, else its leading whole sentences, with "…" where it continues),
and the manifest marks the card `excerpt: true`. A card that holds a character no font can
draw is skipped with a warning: never drawn with missing-glyph boxes. Emoji are drawn in
colour (`render/cardemoji.py`).

Cards are independent, so a day with many of them is drawn across the machine's cores in a
process pool; results keep their order and PNGs carry no timestamps, so the bytes are the
same whichever way they were drawn.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from PIL import Image, ImageDraw

from aspdigest.days import Day
from aspdigest.errors import RenderError, UserError
from aspdigest.records import Quote, Record
from aspdigest.render import Artifact, RenderContext, Rendered, cardemoji
from aspdigest.render.cardlayout import (
    Block,
    Direction,
    first_strong,
    fit,
    has_direction,
    measure,
    mirror,
)
from aspdigest.render.cardspec import (
    CardSize,
    LoadedSpec,
    Phone,
    TextBox,
    canvas_box,
    load_spec,
    phone_px,
)
from aspdigest.render.fonts import describe_char, load, missing_glyphs, require_raqm
from aspdigest.render.quotemarks import Marks, marks
from aspdigest.render.quotemarks import direction as lang_direction
from aspdigest.text.excerpt import Excerpt, excerpt

# Up to this many cards a day, starting worker processes costs more than it saves. Measured
# on 2 cores: 12 cards take as long either way (fork server start included), 24 take 0.43 s
# in the pool against 0.63 s serially, 96 take 1.2 s against 1.9 s.
PARALLEL_ABOVE = 8
# zlib level 1: flat colours compress well even at the fastest level, and level 6 or 9
# takes several times longer for a few per cent.
PNG_COMPRESS_LEVEL = 1
MAX_PNG_BYTES = 1_000_000


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


@dataclass(frozen=True)
class CardPlan:
    """The cards a day needs, before drawing: jobs in output order, alt texts, early warnings."""

    jobs: tuple[CardJob, ...]
    alts: Mapping[tuple[str, int], str]
    warnings: tuple[str, ...]


def plan(day: Day, ctx: RenderContext) -> CardPlan:
    quotes = [
        (r, n, q) for r in day.records for n, q in enumerate(r.quotes, start=1) if q.makes_card
    ]
    if not quotes:
        return CardPlan((), {}, ())
    require_raqm()
    spec = load_spec(ctx.project)
    jobs: list[CardJob] = []
    alts: dict[tuple[str, int], str] = {}
    warnings: list[str] = []
    for record, number, quote in quotes:
        lang = quote.lang or day.event.language
        values = _values(day, ctx, record, quote, lang)
        alts[(record.id, number)] = alt_text(values)
        direction = quote_direction(quote.text, lang)
        for size_name, size in spec.spec.sizes.items():
            texts = tuple(
                (name, fill(el.text, values, direction)) for name, el in size.text.items()
            )
            texts = tuple((name, text) for name, text in texts if text.strip())
            if any(cardemoji.has_emoji(text) for _, text in texts):
                cardemoji.require_emoji_font()
            problem = _missing(texts, size, spec)
            if problem:
                warning = f"cards: {record.id} quote {number}: skipped: {problem}"
                if warning not in warnings:  # the same gap would repeat for every size
                    warnings.append(warning)
                continue
            jobs.append(
                CardJob(
                    path=f"cards/{record.id}-{number}.{size_name}.png",
                    record=record.id,
                    number=number,
                    size_name=size_name,
                    size=size,
                    lang=lang,
                    direction=direction,
                    texts=texts,
                    colors=spec.colors,
                    fonts=spec.fonts,
                    spec_folder=spec.folder,
                    quote=quote.text,
                    excerpt=quote.excerpt,
                    marks=marks(lang),
                    phone=spec.spec.phone,
                    logo=_logo_file(size, spec),
                )
            )
    return CardPlan(tuple(jobs), alts, tuple(warnings))


def render(day: Day, ctx: RenderContext) -> Rendered:
    cards = plan(day, ctx)
    artifacts = []
    warnings = list(cards.warnings)
    for job, result in zip(cards.jobs, draw_all(cards.jobs), strict=True):
        if result.png is None:
            el = job.size.text[result.failed or "quote"]
            what = (
                "not even the first word of the quote fits"
                if result.failed == "quote"
                else f"the {result.failed} does not fit"
            )
            warnings.append(
                f"cards: {job.record} quote {job.number}: {job.size_name} card skipped: "
                f"{what} its box at the minimum size of {el.min_size:g} px on a phone "
                f"(text is never shrunk further or cut)"
            )
            continue
        artifacts.append(
            Artifact(
                path=job.path,
                data=result.png,
                sources=(job.record,),
                alt=cards.alts[(job.record, job.number)],
                meta=result.meta,
            )
        )
    return Rendered(tuple(artifacts), tuple(warnings))


def fill(template: str, values: Mapping[str, str], direction: Direction) -> str:
    """A spec element's text with its placeholders filled in.

    When right-to-left text is involved and a template joins several parts ("{event} ·
    {date}"), each value is wrapped in Unicode first-strong isolates (FSI … PDI) so the bidi
    algorithm orders the parts as a whole: otherwise "ASP23 · 4 ديسمبر" pulls the "4" of the
    date into the Latin run of "ASP23". The isolates draw as nothing.
    """
    single = template.strip() in {f"{{{name}}}" for name in values}
    if single or (direction == "ltr" and not any(has_direction(v, "rtl") for v in values.values())):
        return template.format_map(values)
    return template.format_map({k: f"\u2068{v}\u2069" if v else "" for k, v in values.items()})


def quote_direction(text: str, lang: str) -> Direction:
    """Right-to-left for a right-to-left language, or for text that starts in such a script."""
    if lang_direction(lang) == "rtl":
        return "rtl"
    return first_strong(text) or "ltr"


def _locale(lang: str) -> Locale:
    for tag in (lang.replace("-", "_"), lang.split("-")[0]):
        try:
            return Locale.parse(tag)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def _values(
    day: Day, ctx: RenderContext, record: Record, quote: Quote, lang: str
) -> dict[str, str]:
    speaker = record.speaker(quote.by)
    # Quotation marks are shared with the digest and the posts (render/quotemarks.py, CLDR):
    # “…” en, « … » fr (narrow no-break spaces), „…“ de, «…» uk and ru. Arabic gets CLDR's
    # ”…“: in memory ” opens; Raqm draws it at the right-hand start of the right-to-left line
    # and “ at the left-hand end, so both point at the quote the way Arabic print shows them
    # (test_cards checks both ends in pixels). «…» would also draw correctly, since Raqm
    # mirrors guillemets in right-to-left text, but the channels should agree.
    quote_marks = marks(lang)
    return {
        "quote": quote_marks.wrap(quote.text),
        "mark": quote_marks.open.strip(" \u00a0\u202f"),
        "speaker": quote.attribution,
        "role": (speaker.role if speaker and speaker.role else ""),
        "event": day.event.short_name,
        "event_name": day.event.name,
        "date": format_date(day.date, format="long", locale=_locale(lang)),
        "brand": ctx.project.settings.brand.name or day.event.publisher,
    }


def alt_text(values: Mapping[str, str]) -> str:
    """The quote verbatim (in its marks), then who said it, where and when."""
    who = values["speaker"] + (f", {values['role']}" if values["role"] else "")
    return f"{values['quote']} — {who}. {values['event']}, {values['date']}."


def _logo_file(size: CardSize, spec: LoadedSpec) -> str | None:
    if size.logo is None:
        return None
    if size.logo.path is not None:
        return str(Path(spec.folder) / size.logo.path)
    return spec.logo


def _missing(texts: Sequence[tuple[str, str]], size: CardSize, spec: LoadedSpec) -> str | None:
    for name, text in texts:
        gaps = missing_glyphs(cardemoji.without_emoji(text), spec.fonts[size.text[name].font])
        for run, is_emoji in cardemoji.runs(text):
            if is_emoji:
                gaps += missing_glyphs(run, str(cardemoji.EMOJI_FONT))
        if gaps:
            listed = ", ".join(describe_char(c) for c in gaps)
            return f"no bundled font draws {listed} (in the {name}); it would show as an empty box"
    return None


# -- drawing (runs in worker processes when there are many cards) -------------------------------


def draw_all(jobs: Sequence[CardJob]) -> list[CardResult]:
    """Every job's result, in job order; across processes when there are many.

    Worker processes start by "forkserver" (or "spawn"), which re-imports the main module:
    a script that builds must keep its top-level code under `if __name__ == "__main__":`.
    """
    workers = min(_cores(), len(jobs))
    if len(jobs) <= PARALLEL_ABOVE or workers < 2:
        return [draw_card(job) for job in jobs]
    methods = multiprocessing.get_all_start_methods()
    # Never "fork": the parent may hold threads (progress bars, schedulers) a fork would copy.
    context: BaseContext
    if "forkserver" in methods:
        forkserver = multiprocessing.get_context("forkserver")
        # The fork server imports Pillow and this module once; each worker forks from it
        # ready to draw instead of importing everything again.
        forkserver.set_forkserver_preload([__name__])
        context = forkserver
    else:
        context = multiprocessing.get_context("spawn")
    chunk = max(1, len(jobs) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(draw_card, jobs, chunksize=chunk))


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


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes with no metadata chunks (no time, no text), so equal images give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    data = buffer.getvalue()
    if len(data) > MAX_PNG_BYTES:
        # Photos in a logo can defeat the fast level; spend the time only then.
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=9)
        data = buffer.getvalue()
    if len(data) > MAX_PNG_BYTES:
        raise RenderError(
            f"cards: a {image.width}×{image.height} card is {len(data)} bytes, "
            f"over the {MAX_PNG_BYTES}-byte limit; use a simpler logo image"
        )
    return data
