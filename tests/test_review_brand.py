"""Issue 20, item 7: the review site wears the brand's colours, checked for contrast, and the
served day page's Approve buttons never wrap. `render/palette.py`'s contrast helpers, then the
built and served pages in Debian's Chromium (Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from aspdigest.build import build
from aspdigest.config import Brand, load_project
from aspdigest.render.palette import MIN_CONTRAST, contrast, darkest_needed, review, text_on
from test_browser import CHROMIUM_ARGS, _Server

PALE = "#ffd166"  # a brand yellow: white text on it is unreadable (1.5:1)
GREEN = "#00703c"  # a brand green that reads on white (the cards require that of `primary`)


def test_text_on_picks_white_or_black_by_contrast() -> None:
    assert text_on("#4b2c83") == "#ffffff"
    assert text_on(PALE) == "#000000"
    assert contrast("#000000", PALE) >= MIN_CONTRAST > contrast("#ffffff", PALE)


def test_darkest_needed_keeps_a_readable_colour_and_darkens_one_that_is_not() -> None:
    assert darkest_needed("#4b2c83", "#ffffff") == "#4b2c83"  # already 10:1
    darker = darkest_needed(PALE, "#f5f4f8")
    assert darker != PALE and contrast(darker, "#f5f4f8") >= MIN_CONTRAST
    assert contrast(PALE, "#f5f4f8") < MIN_CONTRAST


def test_review_colours_all_read() -> None:
    for primary in ("#4b2c83", PALE, "#00a3e0", "#777777"):
        colours = review(Brand(primary=primary, accent=PALE))
        assert colours["brand"] == primary
        assert contrast(colours["brand-text"], primary) >= MIN_CONTRAST
        for name in ("link", "brand-dark", "accent"):
            assert contrast(colours[name], "#f5f4f8") >= MIN_CONTRAST, (primary, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _rgb(hex_colour: str) -> str:
    value = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(value[i : i + 2], 16) for i in (0, 2, 4)))


@pytest.mark.browser
def test_the_site_uses_the_brand_colour_with_readable_text(
    browser: Browser, sample_root: Path
) -> None:
    config = sample_root / "aspdigest.toml"
    config.write_text(config.read_text().replace('primary = "#4b2c83"', f'primary = "{GREEN}"', 1))
    project = load_project(sample_root, environ={})
    assert project.settings.brand.primary == GREEN
    build(project, "asp23")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto((sample_root / "out/asp23/2024-12-03/index.html").resolve().as_uri())
        header = page.locator("header.site")
        assert header.evaluate("e => getComputedStyle(e).backgroundColor") == _rgb(GREEN)
        name = page.locator(".site-name a")
        assert name.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
        selected = page.locator('[role="tab"][aria-selected="true"]').first
        assert selected.evaluate("e => getComputedStyle(e).backgroundColor") == _rgb(GREEN)
        link = page.locator("main a").first
        assert link.evaluate("e => getComputedStyle(e).color") == _rgb(GREEN)
    finally:
        page.close()


def _lines(page: Page, selector: str) -> list[tuple[str, int]]:
    """Each matching button's text and how many lines it takes (distinct line boxes of its
    text, from a Range's client rects)."""
    result: list[tuple[str, int]] = page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].filter(b => b.offsetParent).map(b => {
            const r = document.createRange();
            r.selectNodeContents(b);
            const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
            return [b.textContent, tops.size];
        })""",
        selector,
    )
    return result


@pytest.mark.browser
def test_served_approve_buttons_never_wrap(
    browser: Browser, sample_root: Path, artifacts_dir: Path
) -> None:
    import datetime as dt

    from aspdigest.queue.approval import approve
    from aspdigest.queue.plan import plan
    from aspdigest.store import open_project_store

    state = sample_root.parent / "state.sqlite"
    # A long approver name in the approved threads' rows squeezes the column of the Approve
    # buttons left on the digest and quote rows: the layout that broke "Approv / e".
    who = "Alexandra Konstantinopoulou-Worthington"
    environ = {"ASPDIGEST_STATE_URL": f"sqlite:///{state}", "ASPDIGEST_APPROVER": who}
    project = load_project(sample_root, environ=environ)
    build(project, "asp23")
    with open_project_store(project) as store:
        plan(project, "asp23", store)
        approve(project, store, "asp23", dt.date(2024, 12, 3), channel="thread", by=who)
    server = _Server(sample_root, {**os.environ, **environ})
    try:
        for width in (375, 1280):
            page = browser.new_page(viewport={"width": width, "height": 900})
            try:
                page.goto(server.url + "2024-12-03/index.html")
                expect(page.get_by_role("button", name="Approve Email digest")).to_be_visible()
                expect(page.get_by_role("button", name="Approve X quote posts")).to_be_visible()
                page.screenshot(path=str(artifacts_dir / f"approve-buttons-{width}.png"))
                buttons = [b for b in _lines(page, "button") if b[0].startswith("Approve")]
                assert any(text == "Approve" for text, _ in buttons), buttons
                assert [b for b in buttons if b[1] != 1] == [], (width, buttons)
            finally:
                page.close()
    finally:
        server.stop()
