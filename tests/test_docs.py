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
