"""Which characters may pass from the team's files into what aspdigest writes.

Used by the first stage (`records.py` validates every text field with it), by the
subscriber import, by the message builder (every text that reaches a mail header) and by
the CLI (everything printed to a terminal). Pure functions of a string; stdlib only.

Why a module of its own: a character that is harmless in a paragraph is an attack in a
header (CR/LF), on a terminal (ESC), in a quote card (an unclosed right-to-left override
that escapes its quotation marks) or in a spreadsheet cell (a leading `=`). One list of
what is refused keeps `check`, `subscribers import` and the renderers agreeing.
"""

from __future__ import annotations

import email.errors
import email.header
import re
import unicodedata

# Bidi controls: embeddings and overrides are closed by PDF, isolates by PDI.
_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")  # LRE RLE LRO RLO
_PDF = "\u202c"
_ISOLATES = frozenset("\u2066\u2067\u2068")  # LRI RLI FSI
_PDI = "\u2069"
BIDI_CONTROLS = _EMBEDDINGS | _ISOLATES | {_PDF, _PDI}

# C0 and C1 controls and DEL, except tab and newline; noncharacters; lone surrogates.
# U+FEFF too: inside text it is a stray byte order mark, and X refuses any post holding one.
_REFUSED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufeff"
    + "".join(f"\\U{plane:04x}fffe\\U{plane:04x}ffff" for plane in range(17))
    + "]"
)
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# Line and paragraph separators too: a terminal (or `splitlines`) breaks the line there.
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff]"
)


def codepoint(char: str) -> str:
    """`U+001B (ESCAPE)`: how messages name a character a person cannot see."""
    name = unicodedata.name(char, "")
    if not name and ord(char) in _C0_NAMES:  # DELETE (0x7F) too
        name = _C0_NAMES.get(ord(char), "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


_C0_NAMES = {0: "NULL", 8: "BACKSPACE", 9: "TAB", 10: "LINE FEED", 13: "CARRIAGE RETURN"}
_C0_NAMES |= {0x1B: "ESCAPE", 0x7F: "DELETE", 0x0B: "LINE TABULATION", 0x0C: "FORM FEED"}


def bidi_problem(text: str) -> str | None:
    """Why the bidi controls in `text` are unbalanced, or None when every one is closed."""
    stack: list[str] = []
    for char in text:
        if char in _EMBEDDINGS or char in _ISOLATES:
            stack.append(char)
        elif char == _PDF:
            if not stack or stack[-1] not in _EMBEDDINGS:
                return f"contains {codepoint(char)} with nothing to close; remove it"
            stack.pop()
        elif char == _PDI:
            # A PDI also closes any embeddings opened inside its isolate (UAX #9, X6a).
            while stack and stack[-1] in _EMBEDDINGS:
                stack.pop()
            if not stack:
                return f"contains {codepoint(char)} with nothing to close; remove it"
            stack.pop()
        elif char == "\n" and stack:  # every paragraph resets the bidi state
            break
    if stack:
        closer = (
            "U+2069 (POP DIRECTIONAL ISOLATE)"
            if stack[-1] in _ISOLATES
            else ("U+202C (POP DIRECTIONAL FORMATTING)")
        )
        return f"contains {codepoint(stack[-1])} that is never closed; close it with {closer} or remove it"
    return None


def text_problem(text: str, *, single_line: bool = False) -> str | None:
    """Why `text` cannot be published as it is, or None.

    Refused everywhere: C0/C1 controls other than tab and newline, noncharacters, lone
    surrogates and unbalanced bidi controls. With `single_line` (text bound for a mail
    header), line breaks are refused too, and so is an RFC 2047 encoded word that decodes
    to any of the above: a mail program would decode it.
    """
    found = _REFUSED.search(text)
    if found:
        return f"contains {_kind(found.group())} {codepoint(found.group())}; remove it"
    if single_line:
        found = _LINE_BREAKS.search(text)
        if found:
            return f"contains a line break, {codepoint(found.group())}; keep it on one line"
    bidi = bidi_problem(text)
    if bidi:
        return bidi
    if single_line:
        for word in _ENCODED_WORD.findall(text):
            decoded = decode_encoded_words(word)
            inner = _REFUSED.search(decoded) or _LINE_BREAKS.search(decoded)
            if inner:
                return (
                    f'contains the encoded word "{word}", which decodes to '
                    f"{codepoint(inner.group())}; write the text itself"
                )
    return None


def _kind(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "the lone surrogate"
    if code == 0xFEFF:
        return "the stray byte order mark"
    if code >= 0xFDD0 and (code <= 0xFDEF or code & 0xFFFE == 0xFFFE):
        return "the noncharacter"
    return "the control character"


def decode_encoded_words(text: str) -> str:
    """`text` with its RFC 2047 encoded words decoded, as a mail program would show it."""
    if "=?" not in text:
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (email.errors.HeaderParseError, UnicodeError, LookupError, ValueError):
        return text


def terminal_safe(text: str) -> str:
    """`text` with every control and bidi character shown as an escape, for printing.

    Newlines stay (the caller prints lines); everything that would move the cursor, clear
    the screen, retitle the window or reorder what follows is written as `\\x1b`, `\\u202e`.
    """

    def escape(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _TERMINAL_UNSAFE.sub(escape, text)


def line_problem(text: str) -> str | None:
    """Why `text` cannot be written into a mail header as it stands, or None.

    The message builder's last check: controls, noncharacters, lone surrogates and line
    breaks, in the text itself. Unlike `text_problem(single_line=True)` it does not look
    inside encoded words: the builder encodes any text holding "=?" itself, so a mail
    program shows such a word as written instead of decoding it.
    """
    found = _REFUSED.search(text)
    if found:
        return f"contains {_kind(found.group())} {codepoint(found.group())}; remove it"
    found = _LINE_BREAKS.search(text)
    if found:
        return f"contains a line break, {codepoint(found.group())}; keep it on one line"
    return None
