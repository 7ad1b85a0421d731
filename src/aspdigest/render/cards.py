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

Cards are independent, so they are drawn across the machine's cores in a process pool: a
build starts every day's cards at once (`ahead`) and renders everything else while they are
drawn; `render` alone uses the pool for a day with many of them. Results keep their order
and PNGs carry no timestamps, so the bytes are the same whichever way they were drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from aspdigest.days import Day
from aspdigest.records import Quote, Record
from aspdigest.render import Artifact, DayRenderer, RenderContext, Rendered, cardemoji
from aspdigest.render.carddraw import (
    CardJob,
    CardResult,
    draw_all,
    start_drawing,
)
from aspdigest.render.cardlayout import (
    Direction,
    first_strong,
    has_direction,
)
from aspdigest.render.cardspec import (
    CardSize,
    LoadedSpec,
    load_spec,
)
from aspdigest.render.fonts import describe_char, missing_glyphs, require_raqm
from aspdigest.render.quotemarks import direction as lang_direction
from aspdigest.render.quotemarks import marks


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
        # The alt text goes with posts and a digest in the event's language: its context (the
        # date) is in that language, even when the quote and its card are in another.
        context_date = format_date(day.date, format="long", locale=_locale(day.event.language))
        alts[(record.id, number)] = alt_text({**values, "date": context_date})
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
    return _rendered(cards, draw_all(cards.jobs))


def ahead(days: Sequence[Day], ctx: RenderContext) -> DayRenderer:
    """Start drawing the cards of all of `days` now, in the process pool when there are
    enough of them (see `carddraw.start_drawing`), while the build renders the rest;
    returns the day renderer that waits for a day's cards (each of `days`, once)."""
    plans = {day.key: plan(day, ctx) for day in days}
    waiting = dict(zip(plans, start_drawing([cards.jobs for cards in plans.values()]), strict=True))

    def collect(day: Day, ctx: RenderContext) -> Rendered:
        if day.key not in plans:  # not one of `days`: drawn here and now
            return render(day, ctx)
        return _rendered(plans[day.key], waiting[day.key]())

    return collect


def _rendered(cards: CardPlan, results: Sequence[CardResult]) -> Rendered:
    artifacts = []
    warnings = list(cards.warnings)
    for job, result in zip(cards.jobs, results, strict=True):
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
