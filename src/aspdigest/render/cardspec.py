"""The card spec: where everything on a quote card goes, read from templates/cards/cards.toml.

A helper of the render stage, used by `render/cards.py`. `load_spec(project)` finds the
spec (the project's `templates/cards/cards.toml` if it has one, else the default shipped in
`aspdigest/templates/cards/`), validates it, resolves `brand.*` colours from the project's
[brand] settings, checks that every text colour reaches a 4.5:1 contrast ratio (WCAG AA)
against the background, and returns a frozen `LoadedSpec`. Every problem is reported, one
line each, as a `RenderError`; a designer changes this data, never the code.

Type sizes are stated in phone pixels: what a reader sees when the card is shown `[phone]
width` (360) pixels wide, as in a phone feed. The legibility floor (a quote never under 16
px, any other line never under 11 px, at that width) is enforced here: a spec may raise it,
never lower it. `canvas_box` turns an element's phone sizes into the card's own pixels.
"""

from __future__ import annotations

import math
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from aspdigest.config import Brand, Project
from aspdigest.errors import Problem, RenderError
from aspdigest.inputs import template_dirs
from aspdigest.render.fonts import font_path

SPEC_NAME = "cards/cards.toml"
MIN_CONTRAST = 4.5
# What a text element's `text` may contain; `quote` is already wrapped in quotation marks.
# `mark` is the quote language's opening quotation mark, for a large decorative glyph.
PLACEHOLDERS = ("quote", "speaker", "role", "event", "event_name", "date", "brand", "mark")
# The legibility floor, in pixels on a phone showing the card PHONE_WIDTH pixels wide.
PHONE_WIDTH = 360
QUOTE_FLOOR = 16
TEXT_FLOOR = 11
LOGO_TYPES = (".png", ".svg")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_BRAND_COLOURS = ("primary", "accent", "background", "text")


def _as_tuple(value: Any) -> Any:
    # TOML has arrays only; the models keep tuples so a loaded spec stays immutable.
    return tuple(value) if isinstance(value, list) else value


# x, y, width, height in pixels, from the card's top-left corner
Box = Annotated[tuple[int, int, int, int], BeforeValidator(_as_tuple)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TextBox(_Strict):
    """One text element: what it says, where, and the range of sizes it may be drawn at."""

    text: str
    box: Box
    font: str = "regular"
    color: str
    # In phone pixels (see [phone]); the card's own pixels are these × card width / phone width.
    min_size: float = Field(ge=1, le=200)
    max_size: float = Field(ge=1, le=200)
    line_height: float = Field(1.25, ge=0.8, le=3.0)
    # Arabic needs more room between lines than Latin (taller marks, deeper descenders).
    line_height_rtl: float | None = Field(None, ge=0.8, le=3.0)
    max_lines: int | None = Field(None, ge=1)
    align: Literal["start", "center", "end"] = "start"
    valign: Literal["top", "middle", "bottom"] = "top"
    # Context that may be left off a card when it does not fit at min_size (a very long
    # role); the alt text still carries it. The quote is never optional.
    optional: bool = False


class Shape(_Strict):
    """A filled rectangle (bands, rules); decoration, so no contrast rule applies."""

    box: Box
    color: str


class Logo(_Strict):
    """Where the logo goes: drawn at the box's height (narrower if the box is too narrow).

    The image is `path` (relative to the spec's folder) or, without one, `brand.logo` from
    aspdigest.toml; with neither, the box stays empty.
    """

    path: str | None = None
    box: Box
    align: Literal["start", "center", "end"] = "end"


class CardSize(_Strict):
    width: int = Field(ge=100, le=4000)
    height: int = Field(ge=100, le=4000)
    shapes: Annotated[tuple[Shape, ...], BeforeValidator(_as_tuple)] = ()
    logo: Logo | None = None
    text: dict[str, TextBox]


class Phone(_Strict):
    """How the card is judged: shown `width` pixels wide, no text under these sizes."""

    width: int = Field(PHONE_WIDTH, ge=100, le=PHONE_WIDTH)
    quote_min: float = Field(QUOTE_FLOOR, ge=QUOTE_FLOOR)
    text_min: float = Field(TEXT_FLOOR, ge=TEXT_FLOOR)


class CardSpec(_Strict):
    phone: Phone
    colors: dict[str, str]
    fonts: dict[str, str]
    sizes: dict[str, CardSize]


class LoadedSpec(BaseModel):
    """A valid spec with its colours resolved to #rrggbb and its fonts to file paths."""

    model_config = ConfigDict(frozen=True)

    path: str  # as messages show it
    folder: str
    spec: CardSpec
    colors: dict[str, str]
    fonts: dict[str, str]
    logo: str | None = None  # brand.logo resolved to a file path, when set

    def floor(self, element: str) -> float:
        phone = self.spec.phone
        return phone.quote_min if element == "quote" else phone.text_min


def canvas_box(el: TextBox, card_width: int, phone: Phone) -> TextBox:
    """The element with its sizes in the card's pixels: the smallest whole size at or above
    the phone minimum, the largest at or below the phone maximum."""
    scale = card_width / phone.width
    low = math.ceil(el.min_size * scale - 1e-9)
    high = max(low, math.floor(el.max_size * scale + 1e-9))
    return el.model_copy(update={"min_size": low, "max_size": high})


def phone_px(canvas_size: float, card_width: int, phone_width: int = PHONE_WIDTH) -> float:
    """A size in the card's pixels as seen on a phone showing the card phone_width wide."""
    return canvas_size * phone_width / card_width


def find_spec(project: Project) -> Path:
    for folder in template_dirs(project):
        if (folder / SPEC_NAME).is_file():
            return folder / SPEC_NAME
    raise RenderError(f"{SPEC_NAME}: card spec not found in the project or the package")


# A build asks for the spec once per day in the cards renderer and again in the social
# renderer's card index: parsing, validating and checking the contrast of the same text each
# time cost ~2 ms a call. A loaded spec is reused while the spec's text and the brand settings
# are the same and every file it resolved (fonts, logos) still resolves the same way;
# anything else loads it again, errors included (only a valid spec is kept).
_LOADED: dict[tuple[str, str, str, str], LoadedSpec] = {}


def load_spec(project: Project) -> LoadedSpec:
    path = find_spec(project)
    shown = project.relative(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError([Problem(shown, "", f"invalid TOML: {exc}")]) from None
    key = (str(path), shown, text, project.settings.brand.model_dump_json())
    known = _LOADED.get(key)
    if known is not None and _still_resolves(known, project, path):
        return known
    loaded = _load_spec(project, path, shown, text)
    if len(_LOADED) >= 8:
        _LOADED.clear()
    _LOADED[key] = loaded
    return loaded


def _still_resolves(loaded: LoadedSpec, project: Project, path: Path) -> bool:
    """Whether the files a valid spec named resolve now as they did when it was loaded."""
    for role, name in loaded.spec.fonts.items():
        file = font_path(name, path.parent)
        if str(file) != loaded.fonts.get(role) or not file.is_file():
            return False
    for size in loaded.spec.sizes.values():
        logo = size.logo.path if size.logo is not None else None
        if logo is not None and not (path.parent / logo).is_file():
            return False
    problems: list[Problem] = []
    return _brand_logo(project, problems) == loaded.logo and not problems


def _load_spec(project: Project, path: Path, shown: str, text: str) -> LoadedSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RenderError([Problem(shown, "", f"invalid TOML: {exc}")]) from None
    try:
        spec = CardSpec.model_validate(raw)
    except ValidationError as exc:
        raise RenderError(
            Problem(shown, ".".join(str(p) for p in err["loc"]), _message(err))
            for err in exc.errors()
        ) from None
    problems: list[Problem] = []
    colors = _resolve_colors(spec, project.settings.brand, shown, problems)
    fonts = {}
    for role, name in spec.fonts.items():
        file = font_path(name, path.parent)
        if not file.is_file():
            problems.append(Problem(shown, f"fonts.{role}", f'font file "{name}" not found'))
        fonts[role] = str(file)
    for size_name, size in spec.sizes.items():
        _check_size(size_name, size, spec, shown, problems)
        if (
            size.logo is not None
            and size.logo.path is not None
            and not (path.parent / size.logo.path).is_file()
        ):
            problems.append(
                Problem(
                    shown,
                    f"sizes.{size_name}.logo.path",
                    f'image "{size.logo.path}" not found beside the spec',
                )
            )
    logo = _brand_logo(project, problems)
    if not problems:
        problems.extend(_contrast_problems(spec, colors, shown))
    if problems:
        raise RenderError(problems)
    return LoadedSpec(
        path=shown, folder=str(path.parent), spec=spec, colors=colors, fonts=fonts, logo=logo
    )


def _brand_logo(project: Project, problems: list[Problem]) -> str | None:
    name = project.settings.brand.logo
    if name is None:
        return None
    file = (project.root / name).resolve()
    where = "aspdigest.toml"
    if not file.is_relative_to(project.root.resolve()) or not file.is_file():
        problems.append(Problem(where, "brand.logo", f'"{name}" is not a file in the project'))
        return None
    if file.suffix.lower() not in LOGO_TYPES:
        problems.append(Problem(where, "brand.logo", f'"{name}" must be a .png or .svg file'))
        return None
    return str(file)


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key missing"
    return str(err["msg"])


def _resolve_colors(
    spec: CardSpec, brand: Brand, shown: str, problems: list[Problem]
) -> dict[str, str]:
    out = {}
    for key, value in spec.colors.items():
        if value.startswith("brand."):
            name = value.removeprefix("brand.")
            if name not in _BRAND_COLOURS:
                problems.append(
                    Problem(
                        shown,
                        f"colors.{key}",
                        f'unknown brand colour "{value}"; '
                        f"known: {', '.join('brand.' + c for c in _BRAND_COLOURS)}",
                    )
                )
                continue
            value = str(getattr(brand, name))
        if not _HEX.match(value):
            problems.append(
                Problem(
                    shown, f"colors.{key}", f'expected "#rrggbb" or "brand.<colour>", got "{value}"'
                )
            )
            continue
        out[key] = value.lower()
    if "background" not in spec.colors:
        problems.append(Problem(shown, "colors.background", "required key missing"))
    return out


def _check_size(
    name: str, size: CardSize, spec: CardSpec, shown: str, problems: list[Problem]
) -> None:
    where = f"sizes.{name}"
    if "quote" not in size.text:
        problems.append(Problem(shown, f"{where}.text", 'needs a "quote" element'))
    boxes: list[tuple[str, Box]] = [
        (f"{where}.shapes[{i}]", s.box) for i, s in enumerate(size.shapes)
    ]
    if size.logo is not None:
        boxes.append((f"{where}.logo", size.logo.box))
    for el_name, el in size.text.items():
        field = f"{where}.text.{el_name}"
        boxes.append((field, el.box))
        floor = spec.phone.quote_min if el_name == "quote" else spec.phone.text_min
        if el.min_size < floor:
            problems.append(
                Problem(
                    shown,
                    f"{field}.min_size",
                    f"{el.min_size:g} px is under the legibility floor of {floor:g} px "
                    f"(sizes are phone pixels, the card seen {spec.phone.width} px wide)",
                )
            )
        if el.min_size > el.max_size:
            problems.append(
                Problem(shown, field, f"min_size {el.min_size:g} is above max_size {el.max_size:g}")
            )
        if el.font not in spec.fonts:
            problems.append(Problem(shown, f"{field}.font", f'no font role "{el.font}" in [fonts]'))
        if el.color not in spec.colors:
            problems.append(Problem(shown, f"{field}.color", f'no colour "{el.color}" in [colors]'))
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(el.text) if f is not None}
        except ValueError as exc:
            problems.append(Problem(shown, f"{field}.text", f"bad placeholder: {exc}"))
            continue
        unknown = sorted(fields - set(PLACEHOLDERS))
        if unknown:
            problems.append(
                Problem(
                    shown,
                    f"{field}.text",
                    f"unknown placeholder {{{unknown[0]}}}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                )
            )
        if el_name == "quote" and el.text != "{quote}":
            problems.append(Problem(shown, f"{field}.text", 'must be exactly "{quote}"'))
        if el_name == "quote" and el.optional:
            problems.append(Problem(shown, f"{field}.optional", "the quote is never optional"))
    for shape_i, shape in enumerate(size.shapes):
        if shape.color not in spec.colors:
            problems.append(
                Problem(
                    shown,
                    f"{where}.shapes[{shape_i}].color",
                    f'no colour "{shape.color}" in [colors]',
                )
            )
    for field, (x, y, w, h) in boxes:
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > size.width or y + h > size.height:
            problems.append(
                Problem(
                    shown,
                    f"{field}.box",
                    f"[{x}, {y}, {w}, {h}] is not inside the {size.width}×{size.height} card",
                )
            )


# -- contrast (WCAG 2.x relative luminance) -----------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _contrast_problems(spec: CardSpec, colors: dict[str, str], shown: str) -> list[Problem]:
    background = colors["background"]
    used = sorted({el.color for size in spec.sizes.values() for el in size.text.values()})
    problems = []
    for key in used:
        ratio = contrast(colors[key], background)
        if ratio < MIN_CONTRAST:
            problems.append(
                Problem(
                    shown,
                    f"colors.{key}",
                    f"text colour {colors[key]} on background {background} has contrast "
                    f"{ratio:.2f}:1; text needs at least {MIN_CONTRAST}:1",
                )
            )
    return problems
