"""The one Jinja2 environment every renderer uses.

Used by the render stage. `make_environment(project)` looks up a template first in the
project's own templates folder, then in the defaults shipped in the package
(`aspdigest/templates/`), file by file. Undefined names raise (StrictUndefined), and
autoescaping follows the file name: `.html.j2`/`.mjml.j2`/`.xml.j2` escape, `.txt.j2` does not.
Filters give dates and times in the event's language with Babel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from typing import Any

import jinja2
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal

from aspdigest.cachedir import cache_dir
from aspdigest.config import Project
from aspdigest.errors import Problem, RenderError
from aspdigest.inputs import template_dirs

_ESCAPED = (".html.j2", ".mjml.j2", ".xml.j2", ".svg.j2")


def _autoescape(name: str | None) -> bool:
    return bool(name) and str(name).endswith(_ESCAPED)


def _locale(ctx: Any) -> str:
    locale = ctx.get("locale")
    return str(locale).replace("-", "_") if locale else "en"


@jinja2.pass_context
def _date(ctx: Any, value: dt.date, format: str = "long") -> str:
    return format_date(value, format=format, locale=_locale(ctx))


@jinja2.pass_context
def _time(ctx: Any, value: dt.time | None, format: str = "short") -> str:
    if value is None:
        return ""
    # A bare wall-clock time: format it without any zone conversion.
    return format_time(value, format=format, locale=_locale(ctx))


@jinja2.pass_context
def _datetime(ctx: Any, value: dt.datetime, format: str = "medium") -> str:
    return format_datetime(value, format=format, locale=_locale(ctx))


@jinja2.pass_context
def _number(ctx: Any, value: float) -> str:
    return format_decimal(value, locale=_locale(ctx))


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache of compiled templates, which never fails a build: a folder that
    cannot be written only means the next run compiles again."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


_OPTIONS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "autoescape": _autoescape,
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
# Jinja2 keys its bytecode by template file and source checksum, not by the options that
# shaped the code: the folder name carries those (and Jinja2's version), so a change to either
# never reuses code compiled the old way.
_CACHE_NAME = (
    "jinja-"
    + hashlib.sha256(
        repr(
            (
                jinja2.__version__,
                sorted((k, getattr(v, "__name__", v)) for k, v in _OPTIONS.items()),
            )
        ).encode()
    ).hexdigest()[:16]
)


def make_environment(project: Project | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(d)) for d in template_dirs(project)]
        ),
        # Compiling the ~24 templates cost ~0.2 s of every build; loading them is ~10 ms.
        bytecode_cache=_BytecodeCache(str(cache_dir() / _CACHE_NAME)),
        # An environment lives for one build (or one preview page): its templates cannot
        # change under it, and checking each file's time at every render (tens of thousands
        # of renders in a large build) cost more than the rendering of a short post.
        auto_reload=False,
        **_OPTIONS,
    )
    env.filters.update(
        format_date=_date, format_time=_time, format_datetime=_datetime, format_number=_number
    )
    return env


def render_template(env: jinja2.Environment, name: str, values: dict[str, Any]) -> str:
    """Render one template; a template mistake becomes a one-line RenderError, not a traceback."""
    try:
        return env.get_template(name).render(**values)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            [Problem(exc.filename or name, f"line {exc.lineno}", exc.message or "")]
        ) from None
    except jinja2.UndefinedError as exc:
        raise RenderError([Problem(name, "", str(exc))]) from None
