"""Issue 20, item 7: `preview` ignores editor temp files, and alt text dates the quote in the
thread's language."""

from __future__ import annotations

import time
from pathlib import Path

from aspdigest.preview import PreviewConfig, editor_temp, start

TEMP_NAMES = (".#keynote.md", "keynote.md~", ".keynote.md.swp", "4913", "keynote.tmp", ".hidden")


def test_editor_temp_files_are_recognised() -> None:
    assert all(editor_temp(name) for name in TEMP_NAMES)
    assert all(editor_temp(f"/p/content/asp23/2024-12-02/{n}") for n in TEMP_NAMES)
    assert not any(
        editor_temp(name) for name in ("keynote.md", "event.toml", "asp23.toml", "a-4913.md")
    )


def _wait(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_preview_neither_rebuilds_for_nor_logs_editor_temp_files(sample_root: Path) -> None:
    lines: list[str] = []
    preview = start(
        PreviewConfig(root=sample_root, event="asp23", port=0, watch=True, by="t"),
        log=lines.append,
    )
    try:
        time.sleep(0.5)  # the watcher is up
        day = sample_root / "content/asp23/2024-12-02"
        for name in TEMP_NAMES:
            (day / name).write_text("an editor's scratch\n")
        assert not _wait(lambda: any(line.startswith("changed") for line in lines), 2.0), lines
        record = day / "opening.md"
        record.write_text(record.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        assert _wait(lambda: any(line.startswith("changed") for line in lines), 30), lines
        changed = [line for line in lines if line.startswith("changed")]
        assert changed[0].startswith(f"changed {record.name}: rebuilt asp23"), changed
        assert not any(name in line for line in lines for name in TEMP_NAMES)
    finally:
        preview.stop()


def test_alt_text_context_is_in_the_thread_language_not_the_quote_language(
    tmp_path: Path,
) -> None:
    import json
    import shutil

    from aspdigest.build import build
    from aspdigest.config import load_project

    root = tmp_path / "project"
    shutil.copytree(Path(__file__).parent / "fixtures/project", root)
    record = root / "content/demo/2025-03-10/keynote.md"
    text = record.read_text(encoding="utf-8").replace(
        '  - text: "If the Court collapses, the rule of law collapses."\n',
        "  - text: \"Si la Cour s'effondre, l'État de droit s'effondre.\"\n    lang: fr\n",
    )
    assert "lang: fr" in text
    record.write_text(text, encoding="utf-8")
    build(load_project(root, environ={}), "demo")
    thread = json.loads((root / "out/demo/2025-03-10/thread.bluesky.json").read_text())
    assert thread["language"] == "en"
    alts = [
        m["alt"]
        for p in [*thread["posts"], *(p for q in thread["quote_posts"] for p in q["posts"])]
        for m in p["media"]
    ]
    assert alts, "the French quote has a card"
    assert all("Si la Cour s’effondre" in a or "Si la Cour s'effondre" in a for a in alts), alts
    assert any(a.endswith("DemoConf, March 10, 2025.") for a in alts), alts
    assert not any("mars" in a for a in alts), alts
