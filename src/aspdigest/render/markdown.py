"""Record bodies (Markdown) as sanitised HTML and as plain text.

A helper of the render stage. `to_html(markdown)` returns HTML that is safe to put in an
email: markdown-it-py renders CommonMark with raw HTML switched off (a `<script>` in a
body stays visible text), then nh3 keeps only the tags and attributes in the allow-list
below and only http(s)/mailto links. `to_text(markdown)` returns the same content as
plain paragraphs for the text part, every link followed by its full URL.
Nothing a record says is ever trusted as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

ALLOWED_TAGS = frozenset({"p", "br", "a", "em", "strong", "code", "ul", "ol", "li", "blockquote"})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def to_html(source: str) -> str:
    """CommonMark → HTML, then through the allow-list; empty text gives ''."""
    if not source.strip():
        return ""
    raw = _MD.render(source)
    cleaned: str = nh3.clean(
        raw,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
    )
    return cleaned.strip()


def _inline(children: Sequence[Token]) -> str:
    out: list[str] = []
    links: list[str] = []
    starts: list[int] = []
    for tok in children:
        if tok.type in ("text", "code_inline"):
            out.append(tok.content)
        elif tok.type == "softbreak":
            out.append(" ")
        elif tok.type == "hardbreak":
            out.append("\n")
        elif tok.type == "link_open":
            links.append(str(tok.attrs.get("href", "")))
            starts.append(len(out))
        elif tok.type == "link_close" and links:
            url = links.pop()
            label = "".join(out[starts.pop() :])
            if url and url != label and f"mailto:{label}" != url:
                out.append(f" ({url})")
        elif tok.type == "image":
            out.append(tok.content or "")
    return "".join(out)


def to_text(source: str) -> str:
    """CommonMark → plain paragraphs separated by blank lines; links keep their URL."""
    if not source.strip():
        return ""
    blocks: list[tuple[str, int]] = []  # (text, number of its outermost list, or 0)
    lists: list[list[int]] = []  # per open list: [next number], or [] for bullets
    outermost = 0
    prefix = ""
    quote_depth = 0
    for tok in _MD.parse(source):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            outermost += not lists
            start = tok.attrs.get("start", 1) if tok.type == "ordered_list_open" else None
            lists.append([] if start is None else [int(start or 1)])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            if lists and lists[-1]:
                prefix = f"{lists[-1][0]}. "
                lists[-1][0] += 1
            else:
                prefix = "- "
        elif tok.type == "blockquote_open":
            quote_depth += 1
        elif tok.type == "blockquote_close":
            quote_depth -= 1
        elif tok.type == "inline":
            indent = "  " * max(len(lists) - 1, 0)
            line = indent + prefix + _inline(tok.children or [])
            prefix = ""
            if quote_depth:
                line = "\n".join("> " * quote_depth + part for part in line.split("\n"))
            blocks.append((line, outermost if lists else 0))
        elif tok.type in ("fence", "code_block"):
            blocks.append((tok.content.rstrip("\n"), 0))
        elif tok.type == "hr":
            blocks.append(("* * *", 0))
    # List items sit on consecutive lines; other blocks are separated by a blank line.
    out = ""
    previous = 0
    for text, in_list in blocks:
        if out:
            out += "\n" if in_list and in_list == previous else "\n\n"
        out += text
        previous = in_list
    return out
