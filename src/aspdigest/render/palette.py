"""The digest's colours in light and dark mode, from the brand settings.

A helper of the email renderer. `light(brand)` returns the colours the digest uses besides
the brand's own (page, secondary text, rules); `dark(brand)` returns their dark-mode
counterparts, with the brand's primary and accent lightened until they keep WCAG's 4.5:1
contrast on the dark card (a brand purple that reads well on white is unreadable on
near-black). `contrast(a, b)` is the WCAG 2 contrast ratio, for tests and the renderer.
"""

from __future__ import annotations

from aspdigest.config import Brand

MIN_CONTRAST = 4.5  # WCAG 2 AA, normal text

DARK_PAGE = "#121016"
DARK_CARD = "#1e1b24"
DARK_TEXT = "#ecebf0"
DARK_META = "#b8b2c4"
DARK_RULE = "#3a3543"


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(color: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _mix(color: str, toward: str, share: float) -> str:
    mixed = (round(c + (t - c) * share) for c, t in zip(_rgb(color), _rgb(toward), strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def readable_on(color: str, background: str, target: float = MIN_CONTRAST + 0.5) -> str:
    """`color`, mixed with white in steps until it reaches `target` contrast on `background`
    (a margin over 4.5:1, so rounding never takes it under)."""
    for step in range(21):
        candidate = _mix(color, "#ffffff", step / 20)
        if contrast(candidate, background) >= target:
            return candidate
    return "#ffffff"


def light(brand: Brand) -> dict[str, str]:
    return {"page": "#f3f1f6", "meta": "#5c5766", "rule": "#e2dde9", "link": brand.primary}


def dark(brand: Brand) -> dict[str, str]:
    return {
        "page": DARK_PAGE,
        "background": DARK_CARD,
        "text": DARK_TEXT,
        "meta": DARK_META,
        "rule": DARK_RULE,
        "primary": readable_on(brand.primary, DARK_CARD),
        "accent": readable_on(brand.accent, DARK_CARD),
    }


WHITE = "#ffffff"
BLACK = "#000000"
REVIEW_CARD = "#ffffff"  # the review site's cards and page are near-white (review.css)
REVIEW_PAGE = "#f5f4f8"


def text_on(background: str) -> str:
    """White or black text, whichever reads on `background` (white when both do, as brand
    bars usually carry it)."""
    return WHITE if contrast(WHITE, background) >= MIN_CONTRAST else BLACK


def darkest_needed(color: str, background: str, target: float = MIN_CONTRAST) -> str:
    """`color` as it is when it reaches `target` contrast on `background`, else mixed toward
    black in steps until it does (a pale brand yellow becomes a readable dark ochre)."""
    for step in range(21):
        candidate = _mix(color, BLACK, step / 20)
        if contrast(candidate, background) >= target:
            return candidate
    return BLACK


def review(brand: Brand) -> dict[str, str]:
    """The review site's brand colours (CSS custom properties of review.css), each checked
    for WCAG's 4.5:1: the header bar and buttons in the brand's primary with white or black
    text on it, links and hover shades in the primary (or the accent) darkened where it would
    not read on the site's near-white page."""
    on_page = darkest_needed(brand.primary, REVIEW_PAGE)
    return {
        "brand": brand.primary,
        "brand-text": text_on(brand.primary),
        "brand-dark": darkest_needed(_mix(brand.primary, BLACK, 0.3), REVIEW_PAGE),
        "link": on_page,
        "accent": darkest_needed(brand.accent, REVIEW_PAGE),
    }
