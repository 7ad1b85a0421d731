"""The README documents every command, every content field and every setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel

from aspdigest.cli import app
from aspdigest.config import Settings
from aspdigest.records import DayInfo, EventMeta, Handles, RecordMeta

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(command: Any, prefix: str) -> list[str]:
    if getattr(command, "commands", None):
        names = []
        for name, sub in sorted(command.commands.items()):
            names += _commands(sub, f"{prefix} {name}")
        return names
    return [prefix]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def test_every_command_has_a_readme_section() -> None:
    commands = _commands(typer.main.get_command(app), "aspdigest")
    assert "aspdigest check" in commands
    missing = [c for c in commands if f"### `{c}" not in README]
    assert missing == [], f"README lacks a '### `command …`' section for: {missing}"


def test_every_record_field_is_documented() -> None:
    missing = []
    for name, field in RecordMeta.model_fields.items():
        if f"`{name}`" not in README:
            missing.append(name)
        nested = _nested_model(field.annotation)
        for key, sub in nested.model_fields.items() if nested else ():
            written = sub.alias or key  # `from`, not the Python name `from_`
            if f"`{name}[].{written}`" not in README:
                missing.append(f"{name}[].{written}")
    assert missing == []


def test_every_event_field_is_documented() -> None:
    missing = [n for n in EventMeta.model_fields if f"`{n}`" not in README]
    missing += [
        f"days.<date>.{n}" for n in DayInfo.model_fields if f"`days.<date>.{n}`" not in README
    ]
    missing += [
        f"handles.<name>.{n}" for n in Handles.model_fields if f"`handles.<name>.{n}`" not in README
    ]
    assert missing == []


def test_every_setting_is_documented() -> None:
    missing = []
    for section, field in Settings.model_fields.items():
        model = _nested_model(field.annotation)
        assert model is not None
        for key, sub in model.model_fields.items():
            if f"`{section}.{sub.alias or key}`" not in README:
                missing.append(f"{section}.{sub.alias or key}")
    assert missing == []


SRC = Path(__file__).resolve().parents[1] / "src" / "aspdigest"


def _module_table() -> set[str]:
    """The names in the first column of the README's module table (`x.py`, `pkg/`)."""
    start = README.index("| module | stage |")
    names: set[str] = set()
    for line in README[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        names.update(part.strip().strip("`") for part in first.split(","))
    return names


def test_every_module_in_the_readme_table_exists() -> None:
    table = _module_table()
    assert "artifacts.py" in table
    assert sorted(name for name in table if not (SRC / name).exists()) == []


def test_every_module_is_in_the_readme_table() -> None:
    # A package named as `pkg/` covers its modules; queue/ and store/ name each module.
    table = _module_table()
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("migrations",) or rel.name == "__main__.py":
            continue  # alembic's scripts; `python -m aspdigest`
        if len(rel.parts) > 1 and f"{rel.parts[0]}/" in table:
            continue
        if rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        if rel.as_posix() not in table:
            missing.append(rel.as_posix())
    assert missing == []
