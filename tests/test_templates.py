"""render/templates.py: strict, escaping by extension, project overrides, localised dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
import pytest

from aspdigest.config import Project, load_project
from aspdigest.inputs import DEFAULT_TEMPLATES
from aspdigest.render.templates import make_environment


def _project(tmp_path: Path, templates: dict[str, str]) -> Project:
    root = tmp_path / "p"
    for name, text in templates.items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    return load_project(root, environ={})


def test_undefined_names_fail_loudly(tmp_path: Path) -> None:
    env = make_environment(_project(tmp_path, {"t.txt.j2": "{{ missing }}"}))
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        env.get_template("t.txt.j2").render()


def test_autoescape_follows_the_extension(tmp_path: Path) -> None:
    body = "{{ value }}"
    project = _project(tmp_path, {"a.html.j2": body, "a.mjml.j2": body, "a.txt.j2": body})
    env = make_environment(project)
    value = '<script>alert("x")</script>'
    assert env.get_template("a.html.j2").render(value=value) == (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    )
    assert env.get_template("a.mjml.j2").render(value=value).startswith("&lt;script")
    assert env.get_template("a.txt.j2").render(value=value) == value


def test_project_templates_override_defaults_file_by_file(tmp_path: Path) -> None:
    defaults = sorted(
        p.relative_to(DEFAULT_TEMPLATES).as_posix() for p in DEFAULT_TEMPLATES.rglob("*.j2")
    )
    project = _project(tmp_path, {"mine.txt.j2": "project's own"})
    env = make_environment(project)
    assert env.get_template("mine.txt.j2").render() == "project's own"
    if defaults:  # a default not overridden still comes from the package
        name = defaults[0]
        assert env.loader is not None
        _, filename, _ = env.loader.get_source(env, name)
        assert filename is not None and filename.startswith(str(DEFAULT_TEMPLATES))
        overriding = _project(tmp_path / "o", {name: "overridden"})
        assert make_environment(overriding).get_template(name).render() == "overridden"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "December 2, 2024 · 1:15 PM"),
        ("fr", "2 décembre 2024 · 13:15"),
        ("en-GB", "2 December 2024 · 13:15"),
    ],
)
def test_dates_and_times_are_localised(tmp_path: Path, locale: str, expected: str) -> None:
    env = make_environment(
        _project(tmp_path, {"d.txt.j2": "{{ d | format_date }} · {{ t | format_time }}"})
    )
    text = env.get_template("d.txt.j2").render(
        d=dt.date(2024, 12, 2), t=dt.time(13, 15), locale=locale
    )
    # CLDR uses a narrow no-break space before AM/PM; compare on plain spaces.
    assert text.replace("\u202f", " ").replace("\xa0", " ") == expected
