"""Typographic quotation marks and writing direction for a quote's language.

A helper of the render stage. `marks(lang)` takes a BCP 47 tag and returns the frozen
`Marks` (opening and closing quotation marks, spaces French typography puts inside them,
and the script direction) that renderers wrap a verbatim quote in. The quote's own words
are never touched: only the marks around them depend on the language.

`wrap` also isolates the quote (U+2068 FIRST STRONG ISOLATE … U+2069 POP DIRECTIONAL
ISOLATE) inside its marks, on cards, in posts and in the digest alike: an Arabic quote in an
English post, or a quote holding its own (balanced) bidi controls, then cannot reorder the
marks or the text around it. `check` refuses unbalanced controls, so none can escape.

Babel ships no CLDR delimiters, so the table below copies CLDR's `quotationStart` /
`quotationEnd` for the languages a human-rights conference is likely to quote; any
other language falls back to the English curly quotes, which every reader recognises.
"""

from __future__ import annotations

from dataclasses import dataclass

NNBSP = "\u202f"  # narrow no-break space: French puts it inside « », and it never wraps
FSI = "\u2068"
PDI = "\u2069"


@dataclass(frozen=True)
class Marks:
    open: str
    close: str
    dir: str  # "ltr" or "rtl"

    def wrap(self, text: str) -> str:
        """The text in these marks, bidi-isolated inside them."""
        return f"{self.open}{FSI}{text}{PDI}{self.close}"


# Language (primary subtag, or full tag where a region differs) → (open, close).
_QUOTES: dict[str, tuple[str, str]] = {
    "en": ("“", "”"),
    "fr": ("«" + NNBSP, NNBSP + "»"),
    "fr-ch": ("«", "»"),
    "de": ("„", "“"),
    "de-ch": ("«", "»"),
    "nl": ("“", "”"),
    "es": ("«", "»"),
    "it": ("«", "»"),
    "pt": ("“", "”"),
    "pt-pt": ("«", "»"),
    "ru": ("«", "»"),
    "uk": ("«", "»"),
    "pl": ("„", "”"),
    "cs": ("„", "“"),
    "sk": ("„", "“"),
    "hr": ("„", "“"),
    "bs": ("„", "“"),
    "sr": ("„", "“"),
    "bg": ("„", "“"),
    "ro": ("„", "”"),
    "hu": ("„", "”"),
    "sv": ("”", "”"),
    "fi": ("”", "”"),
    "da": ("“", "”"),
    "nb": ("«", "»"),
    "no": ("«", "»"),
    "el": ("«", "»"),
    "tr": ("“", "”"),
    "ar": ("”", "“"),
    "fa": ("«", "»"),
    "he": ("”", "”"),
    "ur": ("”", "“"),
    "ja": ("「", "」"),
    "zh": ("“", "”"),
    "zh-hant": ("「", "」"),
    "ko": ("“", "”"),
    "sw": ("“", "”"),
    "am": ("«", "»"),
}
_RTL = frozenset({"ar", "fa", "he", "ur", "ps", "yi", "dv", "ckb", "sd", "ug"})


def direction(lang: str) -> str:
    """ "rtl" for a right-to-left language, else "ltr"."""
    return "rtl" if lang.split("-")[0].lower() in _RTL else "ltr"


def marks(lang: str) -> Marks:
    tag = lang.lower()
    parts = tag.split("-")
    # Try the full tag, then language-script / language-region, then the language alone.
    candidates = [tag, *("-".join(parts[:n]) for n in range(len(parts) - 1, 0, -1))]
    for candidate in candidates:
        if candidate in _QUOTES:
            opening, closing = _QUOTES[candidate]
            return Marks(opening, closing, direction(lang))
    opening, closing = _QUOTES["en"]
    return Marks(opening, closing, direction(lang))
