"""Quote posts and the quote cards attached to social posts.

A helper of the render stage, used by `render/social.py` and `render/threadsections.py`.
Renderers do not see each other's artifacts, so `card_index(day, ctx)` asks the cards renderer's
own planning function (`cards.plan`) which cards it will draw and repeats the same layout check
it makes before drawing (`cardlayout.fit` on every text element): a card the cards renderer
skips is never attached. `attach(...)` picks, for one platform, the card size that platform
shows best and the fullest alt text within the platform's alt-text limit (both from
`aspdigest.platforms`); `quote_posts(...)` returns one `QuotePost` per quote with `card: true`:

1. the quote in the post text, with the card attached (images of text are not accessible on
   their own), when that fits the platform;
2. otherwise a verbatim excerpt (`quotes[].excerpt`, else the leading whole sentences that
   fit, "…" where the quote continues), with the card attached and the whole quote in its
   alt text; when not even the first sentence fits beside the attribution, session and link,
   the hashtags go first (as a social editor would), and only then is the excerpt cut at a
   word boundary;
3. with no card to attach (skipped, or its alt text cannot hold the quote), the quote in the
   text, split into a short numbered thread if it must be; on LinkedIn (one post, no thread)
   such a quote gets no quote post, and the caller warns.
Alt text is shortened by dropping context (date and event, then role), never the quote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aspdigest.days import Day
from aspdigest.platforms import PLATFORMS
from aspdigest.records import Record
from aspdigest.render import RenderContext
from aspdigest.render.carddraw import CardJob, drawable
from aspdigest.render.cards import plan
from aspdigest.render.quotemarks import marks
from aspdigest.render.threads import (
    Media,
    Platform,
    Post,
    QuoteSpan,
    QuoteUnit,
    Section,
    TextUnit,
    compose,
)
from aspdigest.text.excerpt import excerpt


def alt_length(text: str) -> int:
    """UTF-16 code units: never fewer than the code points or graphemes a platform counts."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class CardIndex:
    """The cards the cards renderer will draw for a day, checked lazily by size."""

    jobs: dict[tuple[str, int], dict[str, CardJob]]  # (record id, quote index) → size → job
    alts: dict[tuple[str, int], str]
    checked: dict[str, bool] = field(default_factory=dict)  # job path → drawable

    def drawable(self, job: CardJob) -> bool:
        if job.path not in self.checked:
            self.checked[job.path] = drawable(job)  # as `cards` decides it, at the minimum sizes
        return self.checked[job.path]


def card_index(day: Day, ctx: RenderContext) -> CardIndex:
    cards = plan(day, ctx)
    jobs: dict[tuple[str, int], dict[str, CardJob]] = {}
    for job in cards.jobs:
        jobs.setdefault((job.record, job.number - 1), {})[job.size_name] = job
    alts = {(record, number - 1): alt for (record, number), alt in cards.alts.items()}
    return CardIndex(jobs, alts)


def alt_candidates(record: Record, index: int, full: str, language: str) -> list[str]:
    """The card's alt text, then the same with less context; the quote is in every one."""
    quote = record.quotes[index]
    marked = marks(quote.lang or language).wrap(quote.text)
    speaker = record.speaker(quote.by)
    role = speaker.role if speaker and speaker.role else None
    out = [full]
    if role:
        out.append(f"{marked} — {quote.attribution}, {role}.")
    out.append(f"{marked} — {quote.attribution}.")
    return out


def attach(
    cards: CardIndex, record: Record, index: int, platform: str, language: str
) -> tuple[Media | None, str | None]:
    """The card to attach on `platform` for `record.quotes[index]`, or None and why not."""
    if not record.quotes[index].makes_card:
        return None, None
    key = (record.id, index)
    sizes = cards.jobs.get(key)
    if not sizes:
        return None, "the cards renderer skips its card"
    # The sizes the platform shows uncropped in its feed, best first, then any other size.
    spec = PLATFORMS[platform]
    preferred = spec.card_sizes
    order = [s for s in preferred if s in sizes] + [s for s in sizes if s not in preferred]
    job = next((sizes[s] for s in order if cards.drawable(sizes[s])), None)
    if job is None:
        return None, "the cards renderer skips its card (the text does not fit any size)"
    limit = spec.alt_limit
    for alt in alt_candidates(record, index, cards.alts[key], language):
        if alt_length(alt) <= limit:
            return Media(job.path, alt, job.size_name), None
    return None, f"its alt text cannot hold the whole quote within {platform}'s {limit} characters"


@dataclass(frozen=True)
class QuotePost:
    record: str
    index: int
    quote_in_text: bool
    posts: tuple[Post, ...]


# record, quote index, marked quote or None, with the hashtags → the post's text
Render = Callable[[Record, int, str | None, bool], str]


def quote_post(
    record: Record,
    index: int,
    unit: QuoteUnit,
    media: Media | None,
    platform: Platform,
    text: Render,
    hashtags: TextUnit | None,
) -> QuotePost | None:
    """One quote's post on one platform (see the module docstring for the three forms), or
    None on a platform without threads when neither the text nor a card can carry the quote."""
    quote = record.quotes[index]
    whole = QuoteSpan(record.id, index, 0, len(quote.text), 1, 1)
    attached = (media,) if media else ()
    with_quote = text(record, index, unit.marks.wrap(quote.text), True)
    if platform.fits(with_quote):
        return QuotePost(
            record.id, index, True, (Post(with_quote, (record.id,), (whole,), attached),)
        )
    if media is not None:
        # The card's alt text holds the quote whole; the post, a quotable verbatim excerpt.
        cut, tags = None, True
        # Whole sentences with the hashtags, then without them, then (without) whole words.
        for tags, words in ((True, False), (False, False), (False, True)):

            def fits(shown: str, tags: bool = tags) -> bool:
                return platform.fits(text(record, index, unit.marks.wrap(shown), tags))

            cut = excerpt(quote.text, fits, quote.excerpt, words=words)
            if cut is not None:
                break
        if cut is not None:
            span = QuoteSpan(record.id, index, cut.start, cut.end, 1, 1)
            body = text(record, index, unit.marks.wrap(cut.shown), tags)
            return QuotePost(
                record.id, index, cut.whole, (Post(body, (record.id,), (span,), attached),)
            )
    if not platform.rule.thread:
        return None  # one post only (LinkedIn), no card, and the quote is longer than a post
    section: Section = (replace(unit, media=attached),)
    if hashtags is not None:
        section += (hashtags,)
    return QuotePost(record.id, index, True, compose([section], platform))
