"""render/cards.py (with cardlayout, cardspec, fonts): quote cards in every size and script.

Real renders throughout: the bundled fonts, Pillow with Raqm, real PNGs read back. Layout
facts (chosen size, line breaks, box positions) are compared exactly with golden files;
pixels only loosely (size, mode, how much ink), since antialiasing may differ by a shade
between FreeType builds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from aspdigest.build import build
from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.days import Day, plan_days
from aspdigest.errors import RenderError, UserError
from aspdigest.render import DAY_RENDERERS, RenderContext, Rendered, cardemoji, fonts
from aspdigest.render import carddraw as cards_module
from aspdigest.render.carddraw import draw_card
from aspdigest.render.cardlayout import measure, wrap
from aspdigest.render.cards import plan, render
from aspdigest.render.cardspec import canvas_box, contrast, load_spec
from aspdigest.render.templates import make_environment

REPO = Path(__file__).resolve().parents[1]
SIZES = {
    "square": (1080, 1080),
    "portrait": (1080, 1350),
    "landscape": (1200, 675),
    "preview": (1200, 630),
}
NBSP, NNBSP = "\u00a0", "\u202f"

ARABIC = (
    "لا يمكن أن تكون هناك عدالة دون مساءلة. على المحكمة الجنائية الدولية (ICC) أن تحمي "
    "الناجيات من العنف الجنسي، وأن تضمن ألا يفلت أي مرتكب من العقاب في عام 2024 وما بعده."
)
UKRAINIAN = (
    "Правосуддя на національному рівні недостатнє, щоб забезпечити задоволення потреб "
    "постраждалих від сексуального насильства, пов’язаного з конфліктом, і гарантії "
    "неповторення. Лише спільними зусиллями ми зробимо ці злочини видимими."
)
FRENCH = (
    f"Nous n’accepterons jamais l’impunité{NBSP}! La justice pour les survivantes n’est pas "
    f"négociable{NBSP}; elle leur est due, ici et maintenant, à La{NBSP}Haye comme partout "
    f"ailleurs. Qui d’autre le fera{NBSP}? Le temps presse{NBSP}: agissons."
)
FLAG, FAMILY, RAINBOW = "🇺🇦", "👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈"
EMOJI = (
    f"Justice for survivors cannot wait ✊🔥 We stand with Ukraine {FLAG} and every family "
    f"{FAMILY} {RAINBOW} 💜 and we will not be silenced 🕊\ufe0f"
)
FSI, PDI = "\u2068", "\u2069"
FLOOR = {"quote": 16.0}
OTHER_FLOOR = 11.0
TOO_LONG = " ".join(
    ["Every survivor deserves to be heard, believed and given justice by the Court."] * 40
)
CJK = "正義 must be done."

SYNTHETIC = {
    "title": "Synthetic statements in several scripts",
    "kind": "statement",
    "summary": "Quotes in Arabic, Ukrainian, French, with emoji, too long, and in an unbundled script.",
    "speakers": [
        {"name": "ليلى حداد", "role": "محامية في مجال حقوق الإنسان"},
        {"name": "Христина Кіт", "role": "Голова Асоціації жінок-юристок «ЮрФем»"},
        {
            "name": "Amélie Durand",
            "role": "Avocate, Fédération internationale pour les droits humains",
        },
        {"name": "Sam Rivera", "role": "Youth delegate"},
        {"name": "Long Speaker"},
        {"name": "Lin Wei"},
    ],
    "quotes": [
        {"text": ARABIC, "by": "ليلى حداد", "lang": "ar"},
        {"text": UKRAINIAN, "by": "Христина Кіт", "lang": "uk"},
        {"text": FRENCH, "by": "Amélie Durand", "lang": "fr"},
        {"text": EMOJI, "by": "Sam Rivera"},
        {"text": TOO_LONG, "by": "Long Speaker"},
        {"text": CJK, "by": "Lin Wei", "card": True},  # short: a card only when asked
    ],
}


def _shown(meta: Mapping[str, Any], text: str) -> str:
    """What the card shows of the quote: the whole quote, or its excerpt (with …)."""
    shown = meta.get("excerpt_text", text)
    if meta["excerpt"]:
        span = shown.removeprefix("… ").removesuffix(" …")
        assert span in text and span != text, shown  # a verbatim span, never a changed word
    return " ".join(w for w in re.split(r"[ \t\r\n]+", str(shown)) if w)


def assert_floor(path: str, meta: Mapping[str, Any]) -> None:
    """No text under the legibility floor when the card is seen 360 px wide."""
    for name, el in meta["elements"].items():
        seen = el["font_size"] * 360 / meta["width"]
        assert seen >= FLOOR.get(name, OTHER_FLOOR) - 1e-9, f"{path}: {name} at {seen:.1f} px"
        assert el["phone_size"] == round(seen, 2)


def _add_record(root: Path, date: str, slug: str, meta: Mapping[str, Any]) -> None:
    # JSON is valid YAML, and keeps every character exactly as written here.
    text = "---\n" + json.dumps(meta, ensure_ascii=False, indent=2) + "\n---\nBody.\n"
    (root / "content" / "asp23" / date / f"{slug}.md").write_text(text, encoding="utf-8")


def _context(project: Project) -> tuple[RenderContext, list[Day]]:
    content = load_content(project, "asp23")
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    return ctx, plan_days(content)


def _day(days: list[Day], date: str) -> Day:
    return next(d for d in days if d.key == date)


@dataclass(frozen=True)
class Synthetic:
    project: Project
    ctx: RenderContext
    day: Day
    rendered: Rendered


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthetic]:
    # Module-wide so the 18 synthetic cards are drawn once (in the process pool: > 8 cards).
    root = tmp_path_factory.mktemp("cards") / "project"
    root.mkdir()
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    _add_record(root, "2024-12-04", "synthetic", SYNTHETIC)
    project = load_project(root, environ={})
    ctx, days = _context(project)
    day = _day(days, "2024-12-04")
    yield Synthetic(project, ctx, day, render(day, ctx))


def _by_path(rendered: Rendered) -> dict[str, Any]:
    return {a.path: a for a in rendered.artifacts}


def _visible(line: str) -> str:
    # No-break spaces and bidi isolates are the point of some tests: show them as escapes.
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Zs", "Cf") and c != " " else c
        for c in line
    )


def _layout(rendered: Rendered) -> str:
    """The layout facts of every card as text that diffs well: boxes, sizes, each line."""
    out = []
    for artifact in sorted(rendered.artifacts, key=lambda a: a.path):
        meta = artifact.meta
        out.append(
            f"{artifact.path}: {meta['width']}x{meta['height']} {meta['direction']} "
            f"lang={meta['lang']} font_size={meta['font_size']}"
        )
        for name, el in meta["elements"].items():
            out.append(
                f"  {name}: box={el['box']} size={el['font_size']} {el['direction']} "
                f"anchor={el['anchor']} x={el['x']} baselines={el['baselines']}"
            )
            out.extend(f"    | {_visible(line)}" for line in el["lines"])
    return "\n".join(out) + "\n"


def _fonts_for(project: Project, size: str) -> dict[str, str]:
    spec = load_spec(project)
    return {name: spec.fonts[el.font] for name, el in spec.spec.sizes[size].text.items()}


def _cmap(path: str) -> set[int]:
    with TTFont(path) as font:
        return set(font.getBestCmap())


IGNORABLE = {0x200D, 0xFE0F, 0x2068, 0x2069}  # HarfBuzz draws these as nothing


def _check_card(
    project: Project, path: str, data: bytes, meta: Mapping[str, Any], background: str
) -> None:
    """Loose pixel checks, every character has a glyph, every line's ink stays in its box."""
    size = meta["size"]
    assert len(data) < 1_000_000, path
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == SIZES[size], path
    assert not image.info.keys() - {"dpi"}, f"{path}: metadata chunks {image.info}"
    bg = tuple(int(background[i : i + 2], 16) for i in (1, 3, 5))
    hist = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    ink = 1 - next(count for count, colour in hist if colour == bg) / (image.width * image.height)
    assert 0.03 < ink < 0.40, f"{path}: {ink:.3f} of the card is not background"
    element_fonts = _fonts_for(project, size)
    draw = ImageDraw.Draw(image)
    for name, block in meta["elements"].items():
        cmap = _cmap(element_fonts[name])
        for line in block["lines"]:
            missing = [c for c in line if ord(c) not in cmap and ord(c) not in IGNORABLE]
            assert not missing, f"{path}: {name}: no glyph for {missing}"
        font = fonts.load(element_fonts[name], block["font_size"])
        x, y, w, h = block["box"]
        for line, baseline in zip(block["lines"], block["baselines"], strict=True):
            if cardemoji.has_emoji(line):
                # Drawn in runs with the colour emoji font: check the measured advance.
                width = measure(
                    element_fonts[name], block["font_size"], line, block["direction"], meta["lang"]
                )
                start = {"l": block["x"], "r": block["x"] - width, "m": block["x"] - width / 2}
                left = start[block["anchor"][0]]
                assert x - 4 <= left and left + width <= x + w + 4, f"{path}: {line!r} overflows"
                continue
            left, top, right, bottom = draw.textbbox(
                (block["x"], baseline),
                line,
                font=font,
                anchor=block["anchor"],
                direction=block["direction"],
                language=meta["lang"],
            )
            # A few pixels of side bearing (a bold J reaches left of its origin) are allowed.
            assert x - 4 <= left and right <= x + w + 4, f"{path}: {name}: {line!r} overflows"
            assert y - 2 <= top and bottom <= y + h + 2, f"{path}: {name}: {line!r} overflows"


# -- every ASP23 quote, every size ------------------------------------------------------------


def test_every_asp23_quote_in_all_four_sizes(
    sample_project: Project, golden: Callable[[str, str], None]
) -> None:
    ctx, days = _context(sample_project)
    rendered = Rendered()
    for day in days:
        rendered = rendered + render(day, ctx)
    expected = {
        f"cards/{r.id}-{n}.{size}.png"
        for r in ctx.content.records
        for n, q in enumerate(r.quotes, start=1)
        if q.card
        for size in SIZES
    }
    assert len(expected) == 24
    assert {a.path for a in rendered.artifacts} == expected
    assert rendered.warnings == ()
    background = sample_project.settings.brand.background
    records = {r.id: r for r in ctx.content.records}
    for artifact in rendered.artifacts:
        record = records[artifact.sources[0]]
        number = int(artifact.path.split("-")[-1].split(".")[0])
        quote = record.quotes[number - 1]
        assert quote.card
        # Alt text: the whole quote verbatim, then speaker and role (or the quoted source),
        # event and date, in that order.
        assert artifact.alt is not None
        speaker = record.speaker(quote.by)
        who = [quote.by, speaker.role] if speaker and speaker.role else [quote.attribution]
        assert all(who)
        parts = [quote.text, *who, "ASP23", record.date.strftime("%B")]
        positions = [artifact.alt.find(p) for p in parts]
        assert -1 not in positions and positions == sorted(positions), artifact.alt
        # The quote is drawn whole or as a verbatim excerpt, isolated inside its marks.
        lines = artifact.meta["elements"]["quote"]["lines"]
        assert " ".join(lines) == f"“{FSI}{_shown(artifact.meta, quote.text)}{PDI}”"
        assert_floor(artifact.path, artifact.meta)
        assert artifact.meta["direction"] == "ltr"
        _check_card(sample_project, artifact.path, artifact.data, artifact.meta, background)
    golden("cards/asp23-layout.txt", _layout(rendered))
    # Same inputs, same bytes.
    again = render(_day(days, "2024-12-03"), ctx)
    first = _by_path(rendered)
    assert all(first[a.path].data == a.data for a in again.artifacts)


def test_chosen_size_is_the_largest_that_fits(sample_project: Project) -> None:
    ctx, days = _context(sample_project)
    cards = plan(_day(days, "2024-12-03"), ctx)
    spec = load_spec(sample_project)
    for job in cards.jobs:
        result = draw_card(job)
        chosen = result.meta["font_size"]
        el = canvas_box(spec.spec.sizes[job.size_name].text["quote"], job.size.width, job.phone)
        assert el.min_size <= chosen <= el.max_size
        if chosen < el.max_size:
            # One pixel larger, and the quote no longer fits: the search did not stop short.
            bigger = job.size.text["quote"].model_copy(
                update={"min_size": (chosen + 1) * job.phone.width / job.size.width}
            )
            size = job.size.model_copy(update={"text": {**job.size.text, "quote": bigger}})
            bigger_job = dataclasses.replace(job, size=size)
            # One pixel larger, the card shows less of the quote (or nothing fits).
            larger = draw_card(bigger_job)
            if larger.failed is None:
                assert len(larger.meta.get("excerpt_text", "")) < len(
                    result.meta.get("excerpt_text", job.quote) + "  "
                ), job.path


def test_build_writes_cards_with_alt_text_in_the_manifest(sample_project: Project) -> None:
    assert "aspdigest.render.cards:render" in DAY_RENDERERS
    now = dt.datetime(2024, 11, 30, 12, 0, tzinfo=dt.UTC)
    build(sample_project, "asp23", now=now)
    folder = sample_project.output_dir / "asp23" / "2024-12-02"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    entries = {e["path"]: e for e in manifest["artifacts"] if e["path"].startswith("cards/")}
    assert sorted(entries) == [f"cards/opening-1.{s}.png" for s in sorted(SIZES)]
    square = entries["cards/opening-1.square.png"]
    assert square["alt"].startswith(f"“{FSI}It is deplorable that some states are outraged")
    assert square["alt"].endswith(
        f"for the whole world.{PDI}” — Judge Tomoko Akane, President of the International Criminal "
        "Court. ASP23, December 2, 2024."
    )
    assert square["meta"]["size"] == "square" and square["meta"]["direction"] == "ltr"
    for entry in entries.values():
        assert_floor(entry["path"], entry["meta"])
    assert (folder / "cards" / "opening-1.square.png").stat().st_size == square["bytes"]


# -- synthetic scripts -------------------------------------------------------------------------


def _synthetic_quote(rendered: Rendered, number: int, size: str) -> Any:
    return _by_path(rendered)[f"cards/synthetic-{number}.{size}.png"]


def test_synthetic_cards_layout_and_pixels(
    synthetic: Synthetic, golden: Callable[[str, str], None]
) -> None:
    paths = {a.path for a in synthetic.rendered.artifacts}
    assert paths == {f"cards/synthetic-{n}.{s}.png" for n in (1, 2, 3, 4, 5) for s in SIZES}
    for artifact in synthetic.rendered.artifacts:
        assert_floor(artifact.path, artifact.meta)
        _check_card(
            synthetic.project,
            artifact.path,
            artifact.data,
            artifact.meta,
            synthetic.project.settings.brand.background,
        )
    golden("cards/synthetic-layout.txt", _layout(synthetic.rendered))


def test_parallel_drawing_gives_the_serial_bytes(synthetic: Synthetic) -> None:
    cards = plan(synthetic.day, synthetic.ctx)
    assert len(cards.jobs) > cards_module.PARALLEL_ABOVE  # so render() used the process pool
    serial = [(job.path, draw_card(job).png) for job in cards.jobs]
    drawn = [(a.path, a.data) for a in synthetic.rendered.artifacts]
    assert drawn == [(path, png) for path, png in serial if png is not None]


def _ink_bbox(image: Image.Image, background: str) -> tuple[int, int, int, int]:
    bg = Image.new("RGB", image.size, background)
    from PIL import ImageChops

    box = ImageChops.difference(image.convert("RGB"), bg).getbbox()
    assert box is not None
    return box


def _line_ink(font_file: str, size: int, text: str, anchor: str) -> tuple[int, int, int, int]:
    """Where a line's ink lands, drawn right to left from a fixed left (ls) or right (rs) end."""
    font = fonts.load(font_file, size)
    image = Image.new("RGB", (1400, size * 3), "#ffffff")
    x = 100 if anchor == "ls" else 1300
    ImageDraw.Draw(image).text(
        (x, size * 2),
        text,
        font=font,
        fill="#000000",
        anchor=anchor,
        direction="rtl",
        language="ar",
    )
    return _ink_bbox(image, "#ffffff")


def test_arabic_is_joined_right_to_left_and_right_aligned(synthetic: Synthetic) -> None:
    artifact = _synthetic_quote(synthetic.rendered, 1, "square")
    meta = artifact.meta
    quote = meta["elements"]["quote"]
    assert meta["direction"] == "rtl" and meta["lang"] == "ar"
    assert quote["anchor"] == "rs" and quote["direction"] == "rtl"
    # The whole card is mirrored: the quote box hugs the right margin, the band is on the right.
    x, _, w, _ = quote["box"]
    assert (x, w) == (1080 - 96 - 888, 888) and quote["x"] == x + w
    assert " ".join(quote["lines"]) == f"”{FSI}{_shown(meta, ARABIC)}{PDI}“"
    # A Latin-only speaker line would read left to right; this Arabic one reads right to left.
    assert meta["elements"]["speaker"]["direction"] == "rtl"
    # The footer's parts are bidi-isolated, so the date's day number stays with its month.
    assert meta["elements"]["footer"]["lines"] == ["\u2068ASP23\u2069 · \u20684 ديسمبر 2024\u2069"]
    font_file = fonts.font_path("CardSans-Regular.ttf").as_posix()
    size = quote["font_size"]
    # Joined: Raqm picks contextual forms, so the word is narrower than its letters drawn
    # one by one, and the basic (unshaped) engine measures the line differently.
    word = "المحكمة"
    raqm = fonts.load(font_file, size)
    letters = sum(raqm.getlength(c, direction="rtl") for c in word)
    assert raqm.getlength(word, direction="rtl", language="ar") < letters - size * 0.5
    basic = ImageFont.truetype(font_file, size, layout_engine=ImageFont.Layout.BASIC)
    first = quote["lines"][0]
    assert abs(basic.getlength(first) - raqm.getlength(first, direction="rtl")) > 5
    # Right to left: the opening mark (first in memory) is drawn at the right end of the first
    # line, the closing mark (last in memory) at the left end of the last line.
    # Dropping the opening mark shortens the line at its right end (the left end stays put);
    # dropping the closing mark shortens the last line at its left end.
    first_full = _line_ink(font_file, size, first, "ls")
    first_rest = _line_ink(font_file, size, first[1:], "ls")
    assert first_full[0] == first_rest[0] and first_full[2] > first_rest[2] + size // 4
    last = quote["lines"][-1]
    last_full = _line_ink(font_file, size, last, "rs")
    last_rest = _line_ink(font_file, size, last[:-1], "rs")
    assert last_full[2] == last_rest[2] and last_full[0] < last_rest[0] - size // 4
    # And in the card's own pixels, every line's ink ends at the box's right edge.
    image = Image.open(io.BytesIO(artifact.data)).convert("RGB")
    for baseline in quote["baselines"]:
        band = image.crop((x, baseline - size, x + w, baseline + size // 3))
        _, _, right, _ = _ink_bbox(band, synthetic.project.settings.brand.background)
        assert w - 8 <= right <= w, (baseline, right)


def test_ukrainian_card(synthetic: Synthetic) -> None:
    for size in SIZES:
        artifact = _synthetic_quote(synthetic.rendered, 2, size)
        assert artifact.meta["direction"] == "ltr" and artifact.meta["lang"] == "uk"
        shown = _shown(artifact.meta, UKRAINIAN)
        assert " ".join(artifact.meta["elements"]["quote"]["lines"]) == f"«{FSI}{shown}{PDI}»"
        assert artifact.meta["elements"]["footer"]["lines"] == [f"ASP23 · 4 грудня 2024{NNBSP}р."]
        assert artifact.alt.startswith(f"«{FSI}{UKRAINIAN}{PDI}» — Христина Кіт, Голова Асоціації")


def test_french_never_breaks_at_a_no_break_space(synthetic: Synthetic) -> None:
    for size in SIZES:
        card = _synthetic_quote(synthetic.rendered, 3, size)
        lines = card.meta["elements"]["quote"]["lines"]
        assert " ".join(lines) == f"«{NNBSP}{FSI}{_shown(card.meta, FRENCH)}{PDI}{NNBSP}»"
        assert len(lines) >= 2
        for line in lines:
            assert not line.startswith(("!", ";", "?", ":", "»", NNBSP, NBSP, "Haye")), line
            assert not line.endswith(("«", NNBSP, NBSP)), line
        joined = "\n".join(lines)
        for pair in (
            f"impunité{NBSP}!",
            f"négociable{NBSP};",
            f"La{NBSP}Haye",
            f"fera{NBSP}?",
            f"«{NNBSP}{FSI}Nous",
        ):
            if pair.split(NBSP)[0] in " ".join(lines):
                assert pair in joined, pair
    # The wrapper itself: a no-break space glues, a space breaks.
    font_file = fonts.font_path("CardSans-Regular.ttf").as_posix()
    parts = ["aaaa", f"bbbb{NBSP}cccc", "dddd"]
    width = int(fonts.load(font_file, 40).getlength(f"bbbb{NBSP}cccc")) + 1
    assert wrap(parts, font_file, 40, width, "ltr", "fr") == ["aaaa", f"bbbb{NBSP}cccc", "dddd"]
    assert wrap(parts, font_file, 40, width - 20, "ltr", "fr") is None


def _colourful(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Pixels in the box that are strongly saturated and none of the card's own colours."""
    own = {(0x4B, 0x2C, 0x83), (0xB0, 0x12, 0x4F), (0x4A, 0x4A, 0x50), (0xFF, 0xFF, 0xFF)}
    hsv = image.crop(box).convert("HSV")
    rgb = image.crop(box).convert("RGB")
    return sum(
        1
        for (_, sat, val), colour in zip(
            hsv.get_flattened_data(), rgb.get_flattened_data(), strict=True
        )
        if sat > 120 and val > 120 and colour not in own
    )


def test_flag_and_family_emoji_are_drawn_whole_and_in_colour(synthetic: Synthetic) -> None:
    from aspdigest.render import cardemoji

    # A flag and a ZWJ family are each one cluster, measured and drawn as one glyph.
    runs = cardemoji.runs(EMOJI)
    assert (FLAG, True) in runs and (FAMILY, True) in runs
    assert cardemoji.advance(FAMILY, 60) < cardemoji.advance("👨", 60) * 1.5
    flag, _ = cardemoji.image(FLAG, 60)
    w, h = flag.size
    top, bottom = flag.getpixel((w // 2, h // 3)), flag.getpixel((w // 2, h * 2 // 3))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[2] > 150 and top[0] < 80, top  # blue over
    assert bottom[0] > 200 and bottom[1] > 160 and bottom[2] < 80, bottom  # yellow
    # Noto Color Emoji draws families as a grey silhouette (its design since 15.1): whole,
    # one glyph wide, from the colour font's bitmap (light grey fill, dark outline). A ZWJ
    # sequence in colour: the rainbow flag, one glyph, mostly saturated colour.
    family, _ = cardemoji.image(FAMILY, 60)
    greys = family.convert("RGB").getcolors(1 << 16) or []
    assert sum(n for n, c in greys if c == (224, 224, 224)) > 300
    rainbow, _ = cardemoji.image(RAINBOW, 60)
    assert cardemoji.advance(RAINBOW, 60) == cardemoji.advance(FLAG, 60)
    assert _colourful(rainbow, (0, 0, *rainbow.size)) > 1500
    for size in SIZES:
        card = _synthetic_quote(synthetic.rendered, 4, size)
        quote = card.meta["elements"]["quote"]
        assert " ".join(quote["lines"]) == f"“{FSI}{_shown(card.meta, EMOJI)}{PDI}”"
        image = Image.open(io.BytesIO(card.data)).convert("RGB")
        ink = _colourful(image, tuple(quote["box"]))  # type: ignore[arg-type]
        assert ink > 500, f"{size}: emoji not in colour ({ink} coloured pixels)"
        # The flag's own blue and yellow are on the card.
        colours = set(image.crop(tuple(quote["box"])).get_flattened_data())  # type: ignore[arg-type]
        assert any(b > 150 and r < 60 and 60 < g < 130 for r, g, b in colours)
        assert any(r > 230 and 190 < g < 230 and b < 40 for r, g, b in colours)


def test_missing_emoji_font_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aspdigest.render import cardemoji

    monkeypatch.setattr(cardemoji, "EMOJI_FONT", tmp_path / "NotoColorEmoji.ttf")
    with pytest.raises(UserError) as info:
        cardemoji.require_emoji_font()
    assert str(info.value) == (
        f"cards: colour emoji need {tmp_path / 'NotoColorEmoji.ttf'}; install the Debian "
        "package fonts-noto-color-emoji and build again"
    )


def test_a_quote_too_long_gets_an_excerpt_card_in_every_size(synthetic: Synthetic) -> None:
    assert not [w for w in synthetic.rendered.warnings if "synthetic quote 5" in w]
    for size in SIZES:
        card = _synthetic_quote(synthetic.rendered, 5, size)
        assert card.meta["excerpt"] is True
        shown = card.meta["excerpt_text"]
        # Leading whole sentences, then "…": never a word changed, dropped or cut.
        assert shown.endswith(". …") and TOO_LONG.startswith(shown.removesuffix(" …"))
        lines = card.meta["elements"]["quote"]["lines"]
        assert " ".join(lines) == f"“{FSI}{shown}{PDI}”"
        assert TOO_LONG in (card.alt or "")  # the alt text keeps the whole quote


def test_an_explicit_excerpt_is_used_when_the_quote_is_too_long(sample_project: Project) -> None:
    ctx, days = _context(sample_project)
    cards = plan(_day(days, "2024-12-03"), ctx)
    job = next(j for j in cards.jobs if j.path == "cards/kit-general-debate-1.landscape.png")
    chosen = "After all, only justice at the international level"
    result = draw_card(dataclasses.replace(job, excerpt=chosen))
    assert result.meta["excerpt"] is True
    assert result.meta["excerpt_text"] == f"… {chosen} …"
    assert_floor(job.path, result.meta)


def test_character_without_a_glyph_skips_the_quote(synthetic: Synthetic) -> None:
    assert not any(a.path.startswith("cards/synthetic-6.") for a in synthetic.rendered.artifacts)
    assert [w for w in synthetic.rendered.warnings if "synthetic quote 6" in w] == [
        "cards: synthetic quote 6: skipped: no bundled font draws U+6B63 CJK UNIFIED "
        "IDEOGRAPH-6B63, U+7FA9 CJK UNIFIED IDEOGRAPH-7FA9 (in the quote); it would show as "
        "an empty box"
    ]


def test_a_card_per_script_for_people_to_look_at(synthetic: Synthetic, artifacts_dir: Path) -> None:
    for number, script in (
        (1, "arabic"),
        (2, "ukrainian"),
        (3, "french"),
        (4, "emoji"),
        (5, "excerpt"),
    ):
        for size in ("square", "landscape"):
            artifact = _synthetic_quote(synthetic.rendered, number, size)
            (artifacts_dir / f"{script}.{size}.png").write_bytes(artifact.data)
    assert len(list(artifacts_dir.glob("*.png"))) >= 8


def test_build_manifest_keeps_skip_warnings(synthetic: Synthetic) -> None:
    result = build(
        synthetic.project,
        "asp23",
        only=dt.date(2024, 12, 4),
        now=dt.datetime(2024, 11, 30, tzinfo=dt.UTC),
    )
    manifest = json.loads(
        (synthetic.project.output_dir / "asp23" / "2024-12-04" / "manifest.json").read_text()
    )
    assert [w for w in manifest["warnings"] if w.startswith("cards: ")] == list(
        w for w in synthetic.rendered.warnings
    )
    assert [w for w in result.warnings if "cards: " in w] == [
        "2024-12-04: cards: synthetic quote 6: skipped: no bundled font draws U+6B63 CJK UNIFIED "
        "IDEOGRAPH-6B63, U+7FA9 CJK UNIFIED IDEOGRAPH-7FA9 (in the quote); it would show as "
        "an empty box"
    ]


# -- fonts -----------------------------------------------------------------------------------


def test_bundled_fonts_cover_the_scripts_and_shape_arabic_like_noto_naskh() -> None:
    regular = _cmap(fonts.font_path("CardSans-Regular.ttf").as_posix())
    bold = _cmap(fonts.font_path("CardSans-Bold.ttf").as_posix())
    for text in ("Éé«»„“”’—€", "Правосуддя Київ ЇїЄєҐґ", "العدالة ٢٠٢٤ ،؛؟", "ΑΒΓ"):
        assert {ord(c) for c in text} - {32} <= regular & bold, text
    assert {ord(c) for c in "✊🔥💜🕊😀👏🙏"} <= regular
    total = sum(p.stat().st_size for p in fonts.FONTS_DIR.glob("*.ttf"))
    assert total < 2_000_000
    assert "SIL OPEN FONT LICENSE" in (fonts.FONTS_DIR / "OFL.txt").read_text()
    # The merge kept Noto Naskh Arabic's shaping: each Arabic word has the same advance.
    naskh = ImageFont.truetype(
        "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf",
        48,
        layout_engine=ImageFont.Layout.RAQM,
    )
    merged = fonts.load(fonts.font_path("CardSans-Regular.ttf").as_posix(), 48)
    for word in ARABIC.split(" "):
        if all(0x600 <= ord(c) <= 0x6FF for c in word):
            assert naskh.getlength(word, direction="rtl") == merged.getlength(word, direction="rtl")


def test_missing_raqm_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, sample_project: Project
) -> None:
    # The machine is changed, not the renderer: Pillow reports which features it has.
    available = {"raqm": False, "fribidi": False}
    monkeypatch.setattr(fonts.features, "check", lambda name: available.get(name, True))
    ctx, days = _context(sample_project)
    with pytest.raises(UserError) as caught:
        render(_day(days, "2024-12-02"), ctx)
    assert caught.value.lines() == [
        "cards: Pillow's Raqm text layout is not available, so Arabic would be drawn unjoined "
        "and left-to-right; install the Debian package libfribidi0 and build again"
    ]
    available["fribidi"] = True
    with pytest.raises(UserError, match="install the Debian package libraqm0 and build again"):
        render(_day(days, "2024-12-02"), ctx)


# -- the spec ----------------------------------------------------------------------------------


def _override(root: Path, edit: Callable[[str], str]) -> Project:
    source = (REPO / "src" / "aspdigest" / "templates" / "cards" / "cards.toml").read_text()
    target = root / "templates" / "cards" / "cards.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edit(source), encoding="utf-8")
    return load_project(root, environ={})


def test_low_contrast_stops_the_build_naming_the_pair(sample_root: Path) -> None:
    project = _override(
        sample_root, lambda s: s.replace('detail = "#4a4a50"', 'detail = "#9a9aa0"')
    )
    with pytest.raises(RenderError) as caught:
        load_spec(project)
    assert caught.value.lines() == [
        "templates/cards/cards.toml: colors.detail: text colour #9a9aa0 on background #ffffff "
        "has contrast 2.80:1; text needs at least 4.5:1"
    ]
    assert round(contrast("#000000", "#ffffff"), 2) == 21.0


def test_brand_colours_come_from_settings(sample_root: Path) -> None:
    settings = (sample_root / "aspdigest.toml").read_text()
    (sample_root / "aspdigest.toml").write_text(
        settings.replace('background = "#ffffff"', 'background = "#fdf6e3"').replace(
            'primary = "#4b2c83"', 'primary = "#1b4d3e"'
        )
    )
    project = load_project(sample_root, environ={})
    spec = load_spec(project)
    assert spec.colors["background"] == "#fdf6e3" and spec.colors["quote"] == "#1b4d3e"
    ctx, days = _context(project)
    artifact = render(_day(days, "2024-12-02"), ctx).artifacts[0]
    image = Image.open(io.BytesIO(artifact.data)).convert("RGB")
    assert image.getpixel((600, 5)) == (0xFD, 0xF6, 0xE3)
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20) or []}
    assert (0x1B, 0x4D, 0x3E) in colours  # the quote's solid strokes
    # A low-contrast brand is caught too, naming the spec file and both colours.
    (sample_root / "aspdigest.toml").write_text(
        settings.replace('accent = "#b0124f"', 'accent = "#f4a6c0"')
    )
    with pytest.raises(
        RenderError,
        match=r"cards\.toml: colors\.speaker: text colour #f4a6c0 on "
        r"background #ffffff has contrast 1\.9\d:1",
    ):
        load_spec(load_project(sample_root, environ={}))


def test_spec_problems_are_all_reported_one_line_each(sample_root: Path) -> None:
    def edit(text: str) -> str:
        return (
            text.replace(
                'text = "{role}"\nbox = [96, 842, 888, 100]',
                'text = "{title}"\nbox = [96, 842, 888, 100]',
            )
            .replace("box = [96, 946, 620, 62]", "box = [96, 1060, 620, 62]")
            .replace('quote = "brand.primary"', 'quote = "brand.purple"')
            .replace("min_size = 11.5\nmax_size = 14", "min_size = 15\nmax_size = 14", 1)
            .replace("min_size = 16\nmax_size = 26", "min_size = 12\nmax_size = 26", 1)
        )

    with pytest.raises(RenderError) as caught:
        load_spec(_override(sample_root, edit))
    assert caught.value.lines() == [
        'templates/cards/cards.toml: colors.quote: unknown brand colour "brand.purple"; known: '
        "brand.primary, brand.accent, brand.background, brand.text",
        "templates/cards/cards.toml: sizes.square.text.quote.min_size: 12 px is under the "
        "legibility floor of 16 px (sizes are phone pixels, the card seen 360 px wide)",
        "templates/cards/cards.toml: sizes.square.text.speaker: min_size 15 is above max_size 14",
        "templates/cards/cards.toml: sizes.square.text.role.text: unknown placeholder {title}; "
        "known: {quote}, {speaker}, {role}, {event}, {event_name}, {date}, {brand}, {mark}",
        "templates/cards/cards.toml: sizes.square.text.footer.box: [96, 1060, 620, 62] is not "
        "inside the 1080×1080 card",
    ]


def test_spec_shape_errors(sample_root: Path) -> None:
    project = _override(
        sample_root,
        lambda s: s.replace("[sizes.preview.text.quote]", "[sizes.preview.text.quotation]").replace(
            "max_lines = 2\nline_height = 1.15\nalign",
            "max_lines = 2\nline_height = 1.15\nwrap = true\nalign",
            1,
        ),
    )
    with pytest.raises(RenderError) as caught:
        load_spec(project)
    assert caught.value.lines() == [
        "templates/cards/cards.toml: sizes.square.text.brand.wrap: unknown key",
    ]
    project = _override(
        sample_root,
        lambda s: s.replace("[sizes.preview.text.quote]", "[sizes.preview.text.quotation]"),
    )
    with pytest.raises(RenderError) as caught:
        load_spec(project)
    assert caught.value.lines() == [
        'templates/cards/cards.toml: sizes.preview.text: needs a "quote" element',
    ]
    project = _override(sample_root, lambda s: s + "\n[oops\n")
    with pytest.raises(RenderError, match=r"^templates/cards/cards\.toml: invalid TOML: "):
        load_spec(project)


def test_spec_logo_image_is_drawn_mirrored_for_rtl(sample_root: Path) -> None:
    project = _override(
        sample_root,
        lambda s: s.replace(
            'logo = { box = [744, 944, 240, 64], align = "end" }',
            'logo = { path = "logo.png", box = [744, 944, 240, 64], align = "end" }',
        ),
    )
    Image.new("RGB", (320, 112), "#00a000").save(sample_root / "templates" / "cards" / "logo.png")
    record = {
        **SYNTHETIC,
        "quotes": [
            {"text": "Justice.", "by": "Sam Rivera", "card": True},
            {"text": "العدالة.", "by": "ليلى حداد", "lang": "ar", "card": True},
        ],
    }
    _add_record(sample_root, "2024-12-04", "logo", record)
    ctx, days = _context(project)
    found = _by_path(render(_day(days, "2024-12-04"), ctx))
    ltr = Image.open(io.BytesIO(found["cards/logo-1.square.png"].data)).convert("RGB")
    rtl = Image.open(io.BytesIO(found["cards/logo-2.square.png"].data)).convert("RGB")
    green = (0, 0xA0, 0)
    assert ltr.getpixel((960, 976)) == green and ltr.getpixel((120, 976)) != green
    assert rtl.getpixel((120, 976)) == green
    # A missing logo file is a spec problem, reported before any drawing.
    (sample_root / "templates" / "cards" / "logo.png").unlink()
    with pytest.raises(
        RenderError, match=r'sizes\.square\.logo\.path: image "logo\.png" not found'
    ):
        load_spec(project)


def test_day_without_card_quotes_renders_nothing(sample_project: Project) -> None:
    ctx, days = _context(sample_project)
    assert render(_day(days, "2024-12-04"), ctx) == Rendered()


def test_brand_logo_from_settings_png_and_svg_at_the_box_height(sample_root: Path) -> None:
    settings = (sample_root / "aspdigest.toml").read_text()
    (sample_root / "art").mkdir()
    Image.new("RGB", (400, 100), "#00a000").save(sample_root / "art" / "logo.png")
    (sample_root / "art" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="10">'
        '<rect width="40" height="10" fill="#0000c0"/></svg>'
    )
    for name, colour in (("logo.png", (0, 0xA0, 0)), ("logo.svg", (0, 0, 0xC0))):
        (sample_root / "aspdigest.toml").write_text(
            settings.replace("[brand]\n", f'[brand]\nlogo = "art/{name}"\n')
        )
        project = load_project(sample_root, environ={})
        ctx, days = _context(project)
        card = render(_day(days, "2024-12-02"), ctx).artifacts[0]
        image = Image.open(io.BytesIO(card.data)).convert("RGB")
        assert card.meta["size"] == "square"
        # The square's logo box is [744, 944, 240, 64]: 64 px high, so a 4:1 logo is
        # 240 × 60 (its width caps it), aligned to the end (right), centred vertically.
        ink = [
            (x, y)
            for x in range(700, 1000)
            for y in range(930, 1020)
            if image.getpixel((x, y)) == colour
        ]
        xs, ys = [x for x, _ in ink], [y for _, y in ink]
        assert (min(xs), max(xs)) == (744, 983), name
        assert max(ys) - min(ys) + 1 in (59, 60, 61), name
    (sample_root / "aspdigest.toml").write_text(
        settings.replace("[brand]\n", '[brand]\nlogo = "art/missing.png"\n')
    )
    with pytest.raises(RenderError) as caught:
        load_spec(load_project(sample_root, environ={}))
    assert caught.value.lines() == [
        'aspdigest.toml: brand.logo: "art/missing.png" is not a file in the project'
    ]


def test_brand_defaults_to_the_publisher(sample_root: Path) -> None:
    settings = (sample_root / "aspdigest.toml").read_text()
    lines = [ln for ln in settings.splitlines() if not ln.startswith("name = ")]
    (sample_root / "aspdigest.toml").write_text("\n".join(lines) + "\n")
    project = load_project(sample_root, environ={})
    assert project.settings.brand.name is None
    ctx, days = _context(project)
    card = render(_day(days, "2024-12-02"), ctx).artifacts[0]
    assert " ".join(card.meta["elements"]["brand"]["lines"]) == ctx.content.event.publisher
    assert ctx.content.event.publisher != "aspdigest"


def test_generated_conference_every_language_meets_the_floor(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate import generate

    root = generate(tmp_path / "synth", days=1, records=32, quotes=32, seed=4)
    project = load_project(root, environ={})
    content = load_content(project, "synth")
    ctx = RenderContext(project=project, content=content, env=make_environment(project))
    (day,) = plan_days(content)
    rendered = render(day, ctx)
    assert rendered.warnings == ()
    carded = [(r, n, q) for r in day.records for n, q in enumerate(r.quotes, 1) if q.card]
    assert {q.lang or "en" for _, _, q in carded} == {"en", "fr", "uk", "ar"}
    found = _by_path(rendered)
    for record, number, quote in carded:
        for size in SIZES:
            card = found[f"cards/{record.id}-{number}.{size}.png"]
            assert_floor(card.path, card.meta)
            _shown(card.meta, quote.text)  # whole, or a verbatim excerpt
            assert quote.text in (card.alt or "")


def test_a_spec_is_loaded_again_whenever_what_it_read_changes(sample_root: Path) -> None:
    # load_spec keeps a valid spec between calls (a build asks once per day and renderer):
    # the same project gives the same spec; a change to the spec's text, to a font file it
    # resolved or to the brand logo is seen at the next call, errors included.
    project = _override(sample_root, lambda s: s)
    first = load_spec(project)
    assert load_spec(project) is first
    assert load_spec(load_project(sample_root, environ={})) is first  # a new load, same files
    # A font beside the spec takes the place of the bundled one, and its removal is seen.
    font = REPO / "src" / "aspdigest" / "fonts" / "CardSans-Bold.ttf"
    beside = sample_root / "templates" / "cards" / "CardSans-Bold.ttf"
    beside.write_bytes(font.read_bytes())
    moved = load_spec(project)
    assert moved is not first and Path(moved.fonts["bold"]) == beside.resolve()
    beside.unlink()
    assert load_spec(project).fonts == first.fonts
    # A brand logo that disappears is reported, not remembered.
    Image.new("RGB", (400, 100), "#00a000").save(sample_root / "logo.png")
    settings = sample_root / "aspdigest.toml"
    settings.write_text(settings.read_text().replace("[brand]\n", '[brand]\nlogo = "logo.png"\n'))
    with_logo = load_project(sample_root, environ={})
    assert load_spec(with_logo).logo == str((sample_root / "logo.png").resolve())
    (sample_root / "logo.png").unlink()
    with pytest.raises(RenderError, match=r'brand\.logo: "logo\.png" is not a file'):
        load_spec(with_logo)
    # The spec's own text: a contrast problem written into it stops the next call.
    settings.write_text(settings.read_text().replace('logo = "logo.png"\n', ""))
    project = _override(
        sample_root, lambda s: s.replace('detail = "#4a4a50"', 'detail = "#9a9aa0"')
    )
    with pytest.raises(RenderError, match=r"colors\.detail: text colour #9a9aa0"):
        load_spec(project)


def test_drawable_is_layouts_verdict_at_the_minimum_sizes(synthetic: Synthetic) -> None:
    """Threads ask `drawable` before they attach a card; the cards renderer lays it out. The
    two must agree, on cards that fit and on cards an element of which does not."""
    ctx, days = _context(synthetic.project)
    jobs = [job for day in days for job in plan(day, ctx).jobs]
    variants = list(jobs)
    for job in jobs[::3]:  # each element's box cut to a sixth, one at a time
        for name, el in job.size.text.items():
            x, y, w, h = el.box
            small = el.model_copy(update={"box": (x, y, max(1, w // 6), max(1, h // 6))})
            size = job.size.model_copy(update={"text": {**job.size.text, name: small}})
            variants.append(dataclasses.replace(job, size=size))
            if name == "quote":  # where only a short excerpt fits: a record's own, if any
                middle = job.quote.split()[len(job.quote.split()) // 2 :][:2]
                variants.append(dataclasses.replace(job, size=size, excerpt=" ".join(middle)))
    verdicts = [
        (cards_module.drawable(job), not isinstance(cards_module.layout(job), str))
        for job in variants
    ]
    assert [mine for mine, _ in verdicts] == [theirs for _, theirs in verdicts]
    assert {mine for mine, _ in verdicts} == {True, False}  # both kinds were tried
