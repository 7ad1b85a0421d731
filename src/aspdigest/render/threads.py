"""Pack a day's social text into posts for one platform: the thread composer.

A helper of the render stage, used by `render/social.py`, `render/threadsections.py` and
`render/quoteposts.py`. It takes sections (a tuple of units each; a section always starts a new
post) and a `Platform` (the length rule, numbering, media cap), and returns frozen `Post`s whose
text the platform accepts by its own counting rule. It never reads templates or files: the units
arrive rendered.

How a thread is packed:
- units of one section share a post while they fit (joined by a blank line); a unit that does
  not fit the current post starts the next one, whole;
- a unit that fits no single post is split (`text/split.py`): a paragraph between sentences,
  clauses, then words; a quote between sentences and then clauses only, each part in its
  quotation marks with an ellipsis where it was cut and the attribution on its last part. The
  words of a quote are never changed, dropped or reordered; each post records the exact span
  of the quote it carries (`QuoteSpan`);
- numbering ("3/7") is reserved before packing at its widest for the thread's size and the
  thread is packed again if the size gains a digit, so a label never pushes a post over.
A quote clause (or a paragraph word) that alone exceeds the limit is a `RenderError` naming
the record file and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aspdigest.errors import Problem, RenderError
from aspdigest.platforms import display_name
from aspdigest.render.quotemarks import Marks
from aspdigest.text import PlatformRule
from aspdigest.text.bluesky import bluesky_display_text
from aspdigest.text.split import Level, Span, Unsplittable, merge_spans, pack, protected_spans

ELLIPSIS = "\u2026"
JOIN = "\n\n"  # between units sharing a post
LABEL_JOIN = "\n"  # before the "3/7" label
TEXT_LEVELS: tuple[Level, ...] = ("sentence", "clause", "word")
QUOTE_LEVELS: tuple[Level, ...] = ("sentence", "clause")
# What is not prose in a post: links, handles, hashtags and cashtags.
_NOT_PROSE = re.compile(r"(?:https?://|www\.)\S+|[@#$][\w.@-]+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Media:
    """An image attached to a post: a card artifact's path in the day folder and alt text."""

    path: str
    alt: str
    size: str


@dataclass(frozen=True)
class QuoteSpan:
    """Which characters of which quote a post carries: `quotes[index].text[start:end]`."""

    record: str
    index: int
    start: int
    end: int
    part: int  # 1-based
    parts: int


@dataclass(frozen=True)
class TextUnit:
    """A paragraph of template output; `fields` map record fields to their text, so an
    error can say which field an unsplittable piece came from."""

    text: str
    path: str  # file to name in an error
    records: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    link: str | None = None  # ends the unit; when the unit is split, it ends the last part

    @property
    def full(self) -> str:
        return self.text + JOIN + self.link if self.link else self.text


@dataclass(frozen=True)
class CardQuote:
    """A quote as one post with its card: `text` is the framed excerpt (what the post says),
    `quotes[index].text[start:end]` the span it shows; the card's alt text has it whole."""

    record: str
    index: int
    text: str
    start: int
    end: int
    path: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class QuoteUnit:
    """A verbatim quote framed for posting: `frame` goes around a part that is not the last,
    `frame_last` (carrying the attribution) around the last or only part."""

    record: str
    index: int
    text: str
    marks: Marks
    frame: tuple[str, str]
    frame_last: tuple[str, str]
    path: str
    media: tuple[Media, ...] = ()

    def decorate(self, start: int, end: int) -> str:
        lead = ""
        if start > 0:
            lead = ELLIPSIS + (" " if self.text[start - 1].isspace() else "")
        trail = ""
        if end < len(self.text):
            trail = (" " if self.text[end].isspace() else "") + ELLIPSIS
        before, after = self.frame_last if end == len(self.text) else self.frame
        body = self.marks.wrap(lead + self.text[start:end] + trail)
        return before + body + after


Unit = TextUnit | QuoteUnit | CardQuote
Section = tuple[Unit, ...]


# How many answers of `Platform.problems` one Platform keeps (a day's thread asks a few
# thousand distinct texts; the bound only caps a pathological input).
_MEMO_SIZE = 200_000


@dataclass(frozen=True)
class Platform:
    """What packing needs to know about one platform.

    Measuring a text is pure, and packing asks the same texts again and again (the thread
    budget packs the day's thread once per record it tries, see `count`), so each Platform
    remembers its answers: `problems` per text, and the post count of each section per
    number reserve.
    """

    name: str
    rule: PlatformRule
    numbered: bool
    max_media: int = 4
    _problems: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )
    _counts: dict[tuple[Section, str], int] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    @property
    def label(self) -> str:
        return display_name(self.name)

    def display(self, text: str) -> str:
        """The text as posted: Bluesky shows long links shortened (the facet keeps the URL)."""
        if self.name == "bluesky":
            return bluesky_display_text(text)
        return text

    def problems(self, text: str) -> list[str]:
        known = self._problems.get(text)
        if known is None:
            if len(self._problems) >= _MEMO_SIZE:
                self._problems.clear()
            known = self._problems[text] = tuple(self.rule.problems(self.display(text)))
        return list(known)

    def fits(self, text: str) -> bool:
        return not self.problems(text)

    def length(self, text: str) -> int:
        return self.rule.count(self.display(text))


@dataclass(frozen=True)
class Chunk:
    """One unit's share of one post."""

    text: str
    records: tuple[str, ...] = ()
    quote: QuoteSpan | None = None
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Post:
    text: str  # before Bluesky's link shortening; `Platform.display` gives what is posted
    records: tuple[str, ...]
    quotes: tuple[QuoteSpan, ...]
    media: tuple[Media, ...]


def compose(sections: Sequence[Section], platform: Platform) -> tuple[Post, ...]:
    """The thread, packed, numbered where the platform is, every post within its limit."""
    if not platform.rule.thread:
        posts = [single(sections, platform)]
        verify(posts, platform)
        return tuple(posts)
    digits = 1
    while True:
        reserve = LABEL_JOIN + "9" * digits + "/" + "9" * digits if platform.numbered else ""
        drafts = _pack(sections, platform, _reserving(platform, reserve))
        if not platform.numbered or len(str(len(drafts))) <= digits:
            break
        digits = len(str(len(drafts)))
    total = len(drafts)
    posts = []
    for position, chunks in enumerate(drafts, start=1):
        text = JOIN.join(c.text for c in chunks)
        if platform.numbered:
            text += f"{LABEL_JOIN}{position}/{total}"
        posts.append(_post(text, chunks))
    verify(posts, platform)
    return tuple(posts)


def count(sections: Sequence[Section], platform: Platform) -> int:
    """`len(compose(sections, platform))`, without making the posts: a section always starts
    a new post, so the thread's size is the sum of its sections' sizes, each packed once per
    number reserve and remembered by the platform (the thread budget asks this for many
    threads that share most of their sections)."""
    if not platform.rule.thread:
        return 1
    digits = 1
    while True:
        reserve = LABEL_JOIN + "9" * digits + "/" + "9" * digits if platform.numbered else ""
        fits = _reserving(platform, reserve)
        total = 0
        for section in sections:
            key = (section, reserve)
            size = platform._counts.get(key)
            if size is None:
                if len(platform._counts) >= _MEMO_SIZE:
                    platform._counts.clear()
                size = platform._counts[key] = len(_pack([section], platform, fits))
            total += size
        if not platform.numbered or len(str(total)) <= digits:
            return total
        digits = len(str(total))


def _reserving(platform: Platform, reserve: str) -> Callable[[str], bool]:
    def fits(text: str) -> bool:
        return platform.fits(text + reserve)

    return fits


def single(sections: Sequence[Section], platform: Platform) -> Post:
    """Everything in one post (LinkedIn), quotes whole; the caller checks that it fits."""
    chunks = [_whole(unit) for section in sections for unit in section]
    return _post(JOIN.join(c.text for c in chunks), chunks)


def verify(posts: Sequence[Post], platform: Platform) -> None:
    """The last line of defence: a post over its limit here is a bug, never published."""
    for number, post in enumerate(posts, start=1):
        problems = platform.problems(post.text)
        if problems:
            raise AssertionError(f"{platform.name} post {number}: {'; '.join(problems)}")


def _post(text: str, chunks: Sequence[Chunk]) -> Post:
    records: list[str] = []
    for chunk in chunks:
        records.extend(r for r in chunk.records if r not in records)
    return Post(
        text=text,
        records=tuple(records),
        quotes=tuple(c.quote for c in chunks if c.quote is not None),
        media=tuple(m for c in chunks for m in c.media),
    )


def _whole(unit: Unit) -> Chunk:
    if isinstance(unit, TextUnit):
        return Chunk(unit.full, unit.records)
    if isinstance(unit, CardQuote):
        span = QuoteSpan(unit.record, unit.index, unit.start, unit.end, 1, 1)
        return Chunk(unit.text, (unit.record,), span, unit.media)
    span = QuoteSpan(unit.record, unit.index, 0, len(unit.text), 1, 1)
    return Chunk(unit.decorate(0, len(unit.text)), (unit.record,), span, unit.media)


def _pack(
    sections: Sequence[Section], platform: Platform, fits: Callable[[str], bool]
) -> list[list[Chunk]]:
    posts: list[list[Chunk]] = []
    for section in sections:
        current: list[Chunk] | None = None
        for unit in section:
            whole = _whole(unit)
            if current is not None:
                media = sum(len(c.media) for c in current) + len(whole.media)
                if media <= platform.max_media and fits(
                    JOIN.join(c.text for c in [*current, whole])
                ):
                    current.append(whole)
                    continue
            parts = [whole] if fits(whole.text) else split(unit, platform, fits)
            for part in parts:
                current = [part]
                posts.append(current)
    return posts


def split(unit: Unit, platform: Platform, fits: Callable[[str], bool]) -> list[Chunk]:
    """A unit too long for one post, as the parts that each fit one."""
    if isinstance(unit, CardQuote):
        raise RenderError(
            [
                Problem(
                    unit.path,
                    f"quotes[{unit.index}].text",
                    f"cannot be posted on {platform.label}: not even its first words fit "
                    "one post with the attribution",
                )
            ]
        )
    if isinstance(unit, TextUnit):
        text = unit.text
        try:
            spans = pack_with_prose(text, lambda s, e: fits(text[s:e]), TEXT_LEVELS)
        except Unsplittable as exc:
            piece = text[exc.start : exc.end]
            raise RenderError([_problem(unit, piece, platform)]) from None
        parts = [text[s:e] for s, e in spans]
        if unit.link:
            # The link ends the last part that can hold it, so no post is only a link.
            for n in range(len(parts) - 1, -1, -1):
                if fits(parts[n] + JOIN + unit.link):
                    parts[n] += JOIN + unit.link
                    break
        return [Chunk(part, unit.records) for part in parts]
    quote = unit

    def quote_fits(start: int, end: int) -> bool:
        return fits(quote.decorate(start, end))

    try:
        spans = pack_with_prose(quote.text, quote_fits, QUOTE_LEVELS, span=(0, len(quote.text)))
    except Unsplittable as exc:
        shown = quote.decorate(exc.start, exc.end)
        raise RenderError(
            [
                Problem(
                    quote.path,
                    f"quotes[{quote.index}].text",
                    f"cannot be posted on {platform.label}: the clause "
                    f'"{_excerpt(quote.text[exc.start : exc.end])}" {_why(platform, shown)} '
                    "with its quotation marks and attribution, and has no sentence or clause break "
                    "to split it at (a quote is never cut inside a clause)",
                )
            ]
        ) from None
    return [
        Chunk(
            quote.decorate(s, e),
            (quote.record,),
            QuoteSpan(quote.record, quote.index, s, e, n, len(spans)),
            quote.media if n == 1 else (),
        )
        for n, (s, e) in enumerate(spans, start=1)
    ]


def has_prose(text: str) -> bool:
    """Whether ``text`` has a letter outside its links, handles and hashtags."""
    return _LETTER.search(_NOT_PROSE.sub(" ", text)) is not None


def pack_with_prose(
    text: str, fits: Callable[[int, int], bool], levels: Sequence[Level], span: Span | None = None
) -> list[Span]:
    """`split.pack` over the whole text, except that no part is only links, handles or
    hashtags: the break before such a part (a clause of four URLs, say) is taken away and
    the text packed again, so its words join a neighbour's post. Raises `Unsplittable` when
    the text cannot be packed that way."""
    protected = protected_spans(text)
    if span is None:
        stripped = text.strip()
        offset = text.find(stripped) if stripped else 0
        span = (offset, offset + len(stripped))
    spans = [span]
    for _ in range(len(text)):
        spans = pack(text, fits, levels, span=span, protected=protected)
        bare = [n for n, (s, e) in enumerate(spans) if not has_prose(text[s:e])]
        if len(spans) < 2 or not bare:
            return spans
        n = bare[0]
        # The gap between this part and the one before (or, for the first, after it).
        cut, resume = (spans[n - 1][1], spans[n][0]) if n else (spans[0][1], spans[1][0])
        protected = merge_spans([*protected, (max(cut - 1, 0), resume + 1)])
    return spans


def _excerpt(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + ELLIPSIS


def _why(platform: Platform, shown: str) -> str:
    problems = platform.problems(shown)
    if not problems:
        return "is over the limit once the post is numbered"
    if len(problems) == 1 and platform.length(shown) > platform.rule.limit:
        return f"is {problems[0]}"
    return "breaks the platform's rules (" + "; ".join(problems) + ")"


def _problem(unit: TextUnit, piece: str, platform: Platform) -> Problem:
    field = next((name for name, value in unit.fields if piece in value), "")
    return Problem(
        unit.path,
        field,
        f'cannot be posted on {platform.label}: "{_excerpt(piece)}" {_why(platform, piece)} '
        "and has no break point (space, sentence or clause end) to split it at",
    )
