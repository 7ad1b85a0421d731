"""Lint the MJML we generate before mjml-python compiles it.

A helper of the email renderer (render stage). `lint(source, path)` takes the MJML text
a template produced and returns nothing, or raises one `RenderError` listing every
problem as `path: line N: message`. MRML, the Rust compiler behind mjml-python, does not
validate: a misspelt attribute or a tag in the wrong place is dropped or passed through
silently, and the email quietly looks wrong in Outlook. So we accept only the tags and
attributes below (copied from the MJML 4 documentation, for the components a digest
uses), in the places MJML allows them, and every image needs alt text.
"""

from __future__ import annotations

import difflib
from html.parser import HTMLParser

from aspdigest.errors import Problem, RenderError

_PADDING = frozenset({"padding", "padding-top", "padding-bottom", "padding-left", "padding-right"})
_BORDER = frozenset(
    {"border", "border-top", "border-bottom", "border-left", "border-right", "border-radius"}
)
_FONT = frozenset(
    {
        "color",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "line-height",
        "letter-spacing",
        "text-decoration",
        "text-transform",
    }
)
_BACKGROUND = frozenset(
    {
        "background-color",
        "background-url",
        "background-repeat",
        "background-size",
        "background-position",
        "background-position-x",
        "background-position-y",
    }
)
_BODY_COMMON = frozenset({"css-class", "mj-class"})

ATTRIBUTES: dict[str, frozenset[str]] = {
    "mjml": frozenset({"lang", "dir", "owa"}),
    "mj-head": frozenset(),
    "mj-title": frozenset(),
    "mj-preview": frozenset(),
    "mj-attributes": frozenset(),
    "mj-style": frozenset({"inline"}),
    "mj-font": frozenset({"name", "href"}),
    "mj-breakpoint": frozenset({"width"}),
    "mj-body": frozenset({"background-color", "width", "css-class"}),
    "mj-wrapper": _BODY_COMMON
    | _PADDING
    | _BORDER
    | _BACKGROUND
    | {"full-width", "text-align", "gap"},
    "mj-section": _BODY_COMMON
    | _PADDING
    | _BORDER
    | _BACKGROUND
    | {"direction", "full-width", "text-align"},
    "mj-group": _BODY_COMMON | {"background-color", "direction", "vertical-align", "width"},
    "mj-column": _BODY_COMMON
    | _PADDING
    | _BORDER
    | {
        "background-color",
        "inner-background-color",
        "inner-border",
        "inner-border-radius",
        "direction",
        "vertical-align",
        "width",
    },
    "mj-text": _BODY_COMMON | _PADDING | _FONT | {"align", "container-background-color", "height"},
    "mj-button": _BODY_COMMON
    | _PADDING
    | _FONT
    | _BORDER
    | {
        "align",
        "background-color",
        "container-background-color",
        "height",
        "href",
        "inner-padding",
        "name",
        "rel",
        "target",
        "text-align",
        "title",
        "vertical-align",
        "width",
    },
    "mj-image": _BODY_COMMON
    | _PADDING
    | _BORDER
    | {
        "align",
        "alt",
        "container-background-color",
        "fluid-on-mobile",
        "height",
        "href",
        "name",
        "rel",
        "sizes",
        "src",
        "srcset",
        "target",
        "title",
        "usemap",
        "width",
    },
    "mj-divider": _BODY_COMMON
    | _PADDING
    | {
        "align",
        "border-color",
        "border-style",
        "border-width",
        "container-background-color",
        "width",
    },
    "mj-spacer": _BODY_COMMON | _PADDING | {"container-background-color", "height"},
    "mj-table": _BODY_COMMON
    | _PADDING
    | _FONT
    | {
        "align",
        "border",
        "cellpadding",
        "cellspacing",
        "container-background-color",
        "role",
        "table-layout",
        "width",
    },
    "mj-raw": frozenset({"position"}),
}

# mj-attributes children set defaults: mj-all and mj-class take any known attribute.
_ANY_ATTRIBUTE = frozenset().union(*ATTRIBUTES.values())
_CONTENT = frozenset(
    {"mj-text", "mj-button", "mj-image", "mj-divider", "mj-spacer", "mj-table", "mj-raw"}
)
PARENTS: dict[str, frozenset[str]] = {
    "mjml": frozenset({""}),
    "mj-head": frozenset({"mjml"}),
    "mj-body": frozenset({"mjml"}),
    **{
        t: frozenset({"mj-head"})
        for t in ("mj-title", "mj-preview", "mj-attributes", "mj-style", "mj-font", "mj-breakpoint")
    },
    "mj-wrapper": frozenset({"mj-body"}),
    "mj-section": frozenset({"mj-body", "mj-wrapper"}),
    "mj-group": frozenset({"mj-section"}),
    "mj-column": frozenset({"mj-section", "mj-group"}),
    **{t: frozenset({"mj-column"}) for t in _CONTENT},
}
PARENTS["mj-raw"] = frozenset({"mj-column", "mj-body", "mj-section", "mj-wrapper", "mj-head"})
# Tags whose content is HTML (or text) that MJML copies through as it is.
_ENDING = frozenset(
    {"mj-text", "mj-button", "mj-table", "mj-raw", "mj-title", "mj-preview", "mj-style"}
)


class _Linter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[tuple[int, str]] = []

    def _add(self, message: str) -> None:
        self.problems.append((self.getpos()[0], message))

    @property
    def _ending(self) -> str | None:
        return next((t for t in reversed(self.stack) if t in _ENDING), None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        parent = self.stack[-1] if self.stack else ""
        if parent == "mj-attributes":
            self._default(tag, attrs)
            return
        if not tag.startswith("mj") or tag == "mjx":
            self._html(tag, attrs)
            return
        ending = self._ending
        if ending is not None:
            self._add(
                f"<{tag}> inside <{ending}> is copied into the HTML as it is; "
                f"close <{ending}> first"
            )
            return
        if tag not in ATTRIBUTES:
            self._add(
                f"unknown MJML tag <{tag}>; MJML would not render it (known: "
                f"{', '.join(sorted(ATTRIBUTES))})"
            )
        else:
            if parent not in PARENTS[tag]:
                where = f"inside <{parent}>" if parent else "at the top level"
                allowed = " or ".join(f"<{p}>" for p in sorted(PARENTS[tag]) if p)
                self._add(f"<{tag}> is not allowed {where}; put it in {allowed or 'nothing'}")
            self._attributes(tag, attrs, ATTRIBUTES[tag])
            if tag == "mj-image":
                self._alt(tag, attrs)
        if not closed:
            self.stack.append(tag)

    def _attributes(
        self, tag: str, attrs: list[tuple[str, str | None]], allowed: frozenset[str]
    ) -> None:
        for name, _ in attrs:
            if name in allowed:
                continue
            close = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.8)
            if close:
                self._add(
                    f'unknown attribute "{name}" on <{tag}>; did you mean "{close[0]}"? '
                    "MJML would drop it silently"
                )
            else:
                self._add(
                    f'unknown attribute "{name}" on <{tag}>; MJML would drop it silently '
                    f"(allowed: {', '.join(sorted(allowed)) or 'none'})"
                )

    def _alt(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        alt = dict(attrs).get("alt")
        if alt is None or not alt.strip():
            self._add(
                f"<{tag}> has no alt text; every image needs one for screen readers "
                "and for clients that block images"
            )

    def _default(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("mj-all", "mj-class"):
            allowed = _ANY_ATTRIBUTE | ({"name"} if tag == "mj-class" else set())
            self._attributes(tag, attrs, frozenset(allowed))
            if tag == "mj-class" and "name" not in dict(attrs):
                self._add('<mj-class> needs a name="…"')
        elif tag in ATTRIBUTES and tag.startswith("mj-"):
            self._attributes(tag, attrs, ATTRIBUTES[tag] - {"mj-class"})
        else:
            self._add(f"<{tag}> cannot set defaults inside <mj-attributes>")

    def _html(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._ending is None:
            where = f"<{self.stack[-1]}>" if self.stack else "the document"
            self._add(
                f"HTML <{tag}> directly inside {where} would be dropped; wrap it in "
                "<mj-text> or <mj-raw>"
            )
        elif tag == "img":
            self._alt(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        in_defaults = bool(self.stack) and self.stack[-1] == "mj-attributes"
        if not tag.startswith("mj") or (in_defaults and tag != "mj-attributes"):
            return
        if tag in self.stack:
            while self.stack:
                top = self.stack.pop()
                if top == tag:
                    return
                self._add(f"<{top}> is not closed before </{tag}>")
        else:
            self._add(f"</{tag}> closes a tag that is not open")

    def handle_data(self, data: str) -> None:
        if (
            data.strip()
            and self._ending is None
            and self.stack
            and self.stack[-1] != "mj-attributes"
        ):
            text = " ".join(data.split())
            shown = text if len(text) <= 40 else text[:37] + "…"
            self._add(
                f'text "{shown}" directly inside <{self.stack[-1]}> would be dropped; '
                "put it in <mj-text>"
            )


def lint(source: str, path: str) -> None:
    """Raise one RenderError naming every problem in `source`, or return quietly."""
    linter = _Linter()
    linter.feed(source)
    linter.close()
    problems = list(linter.problems)
    for tag in reversed(linter.stack):
        problems.append((linter.getpos()[0], f"<{tag}> is never closed"))
    if not source.lstrip().startswith("<mjml"):
        problems.insert(0, (1, "the template must produce an <mjml> document"))
    if problems:
        raise RenderError([Problem(path, f"line {line}", message) for line, message in problems])
