"""The review site and the digests in a real browser: Debian's Chromium driven by Playwright.

Checks what only a browser can: the pages as people see them (five days, digest frames,
threads, no post over its limit), platform tabs by mouse and keyboard, WCAG 2.1 AA with
axe-core (from node_modules: `npm ci`), no horizontal overflow, and the live preview (an
approval click reaching the store; an edit reloading the open page; a broken record shown
as the CLI's lines). Screenshots go to tests/artifacts/<test>/ for people to look at.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from aspdigest.build import build
from aspdigest.config import load_project

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CLI = [sys.executable, "-m", "aspdigest"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DAYS = ["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"]
PLATFORMS = ["x", "bluesky", "mastodon", "threads", "linkedin"]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def _copy_sample(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(REPO / "content", root / "content")
    shutil.copytree(REPO / "schedules", root / "schedules")
    shutil.copy(REPO / "aspdigest.toml", root / "aspdigest.toml")
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(built_sample: Path) -> Path:
    """The sample as built once for the session, for the static-page tests: out/asp23/."""
    return built_sample / "out" / "asp23"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _url(path: Path) -> str:
    return path.resolve().as_uri()


def _overflow(page: Page) -> int:
    """How far the page is wider than the window (0: no horizontal scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def _shot(page: Page, folder: Path, name: str, width: int) -> Path:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_load_state("load")
    path = folder / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000
    return path


def _axe(page: Page, folder: Path, name: str) -> list[dict[str, Any]]:
    """Run axe-core on the page; write its report; return the serious and critical findings."""
    assert AXE.is_file(), f"{AXE} missing: run `npm ci` in {REPO}"
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                              iframes: false, resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
        }""",
        AXE_TAGS,
    )
    (folder / f"axe-{name}.json").write_text(json.dumps(found, indent=2) + "\n")
    return [v for v in found if v["impact"] in ("serious", "critical")]


# -- the static site ---------------------------------------------------------------------------


def test_index_lists_the_five_asp23_days(page: Page, site: Path, artifacts_dir: Path) -> None:
    page.goto(_url(site / "index.html"))
    days = page.locator(".day-list > li")
    expect(days).to_have_count(5)
    for i, key in enumerate(DAYS):
        link = days.nth(i).get_by_role("link")
        expect(link).to_have_attribute("href", f"{key}/index.html")
        date = dt.date.fromisoformat(key)
        expect(link).to_have_text(f"{date:%A}, {date:%B} {date.day}, 2024")
    expect(
        page.get_by_role("navigation", name="Conference days").get_by_role("link")
    ).to_have_count(5)
    for width in (375, 1280):
        _shot(page, artifacts_dir, "review-index", width)
        assert _overflow(page) == 0, width


def test_each_day_shows_its_digest_and_threads(page: Page, site: Path) -> None:
    for key in DAYS:
        page.goto(_url(site / key / "index.html"))
        manifest = json.loads((site / key / "manifest.json").read_text())
        digest = next(a for a in manifest["artifacts"] if a["path"] == "digest.html")
        expect(page.locator(".subject")).to_have_text(digest["meta"]["subject"])
        for width in ("375", "600"):
            frame = page.frame_locator(f'iframe[width="{width}"]')
            expect(frame.locator("body")).to_contain_text(digest["meta"]["subject"].split(" | ")[0])
        expect(page.get_by_role("tab")).to_have_count(5)
        expect(page.locator("#thread-x")).to_be_visible()
        for platform in PLATFORMS:
            data = json.loads((site / key / f"thread.{platform}.json").read_text())
            panel = page.locator(f"#thread-{platform}")
            shown = len(data["posts"]) + sum(len(q["posts"]) for q in data["quote_posts"])
            expect(panel.locator("li.post")).to_have_count(shown)
        # no post card over its platform's limit, by the page's own count either
        expect(page.locator(".post-over")).to_have_count(0)
        lengths = page.eval_on_selector_all(
            "li.post", "els => els.map(e => [+e.dataset.length, +e.dataset.limit])"
        )
        assert lengths and all(0 < n <= limit for n, limit in lengths), key


def test_switching_platform_shows_its_thread_and_carries_to_other_days(
    page: Page, site: Path
) -> None:
    page.goto(_url(site / "2024-12-03" / "index.html"))
    expect(page.locator("#thread-x")).to_be_visible()
    expect(page.locator("#thread-bluesky")).to_be_hidden()
    page.get_by_role("tab", name="Bluesky").click()
    expect(page.get_by_role("tab", name="Bluesky")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#thread-bluesky")).to_be_visible()
    expect(page.locator("#thread-x")).to_be_hidden()
    expect(page.get_by_role("tabpanel")).to_have_count(1)
    assert page.url.endswith("#thread-bluesky")
    expect(page.get_by_role("heading", name="Bluesky thread")).to_be_visible()
    # a link facet points at the full URL (the digest's: the closing post and quote posts)
    digest = "https://example.org/digest/asp23/2024-12-03/"
    link = page.locator(f'#thread-bluesky a.seg-link[href="{digest}"]').first
    expect(link).to_be_visible()
    expect(link).to_contain_text("example.org/digest/")
    page.locator('a[rel="next"]').click()
    expect(page.locator("h1")).to_contain_text("Day 3")
    expect(page.get_by_role("tab", name="Bluesky")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#thread-bluesky")).to_be_visible()


def test_keyboard_navigation(page: Page, site: Path) -> None:
    page.goto(_url(site / "2024-12-03" / "index.html"))
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    style = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                                   return [s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
    assert style[0] == "solid" and style[1] >= 2  # a focus ring people can see
    assert page.evaluate("document.activeElement.getBoundingClientRect().top") >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")  # the first thing in the content: the previous-day link
    assert page.evaluate("document.activeElement.textContent").strip() == "← Day 1"

    page.locator("#tab-x").focus()
    for key, expected in [
        ("ArrowRight", "bluesky"),
        ("ArrowRight", "mastodon"),
        ("End", "linkedin"),
        ("ArrowRight", "x"),
        ("ArrowLeft", "linkedin"),
        ("Home", "x"),
    ]:
        page.keyboard.press(key)
        assert page.evaluate("document.activeElement.id") == f"tab-{expected}", key
        expect(page.locator(f"#thread-{expected}")).to_be_visible()
    # Tab leaves the tab list for the open panel's content, not the other tabs
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Tab")
    inside = page.evaluate("document.activeElement.closest('#thread-bluesky') !== null")
    assert inside


def test_axe_finds_no_serious_or_critical_problems(
    page: Page, site: Path, artifacts_dir: Path
) -> None:
    pages = {"index": site / "index.html", **{f"day-{k}": site / k / "index.html" for k in DAYS}}
    report = {}
    for name, path in pages.items():
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(_url(path))
            report[f"{name}-{width}"] = _axe(page, artifacts_dir, f"{name}-{width}")
    # Everything a reviewer can open at once: every platform's posts, every alt text.
    page.goto(_url(site / "2024-12-03" / "index.html"))
    page.evaluate("""() => {
        document.querySelectorAll('[role="tabpanel"]').forEach(p => { p.hidden = false; });
        document.querySelectorAll("details").forEach(d => { d.open = true; });
    }""")
    report["day-2024-12-03-expanded"] = _axe(page, artifacts_dir, "day-2024-12-03-expanded")
    assert report == {key: [] for key in report}


def test_review_screenshots_and_no_horizontal_overflow(
    page: Page, site: Path, artifacts_dir: Path
) -> None:
    for key in DAYS:
        page.goto(_url(site / key / "index.html"))
        for width in (375, 1280):
            _shot(page, artifacts_dir, f"review-{key}", width)
            assert _overflow(page) == 0, (key, width)


def test_each_digest_fits_phone_and_desktop_widths(
    page: Page, site: Path, artifacts_dir: Path
) -> None:
    for key in DAYS:
        page.goto(_url(site / key / "digest.html"))
        for width in (375, 600):
            _shot(page, artifacts_dir, f"digest-{key}", width)
            assert _overflow(page) == 0, (key, width)
            assert page.evaluate("document.documentElement.scrollWidth") <= width


# -- the live preview --------------------------------------------------------------------------


class _Server:
    """`aspdigest preview` as a subprocess; its output lines readable with a timeout."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aspdigest", "preview", "asp23", "-C", str(root), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for("preview: ").split("preview: ", 1)[1].strip()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"preview never printed {text!r}; it printed: {self.seen}")

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def test_preview_approves_reloads_and_shows_errors(
    browser: Browser, sample_root: Path, artifacts_dir: Path
) -> None:
    from aspdigest.queue.approval import status
    from aspdigest.queue.plan import plan
    from aspdigest.store import open_project_store

    state = sample_root.parent / "state.sqlite"
    environ = {"ASPDIGEST_STATE_URL": f"sqlite:///{state}", "ASPDIGEST_APPROVER": "Browser Test"}
    project = load_project(sample_root, environ=environ)
    build(project, "asp23")
    with open_project_store(project) as store:
        plan(project, "asp23", store)
    server = _Server(sample_root, {**os.environ, **environ})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "2024-12-03/index.html")
        approve = page.get_by_role("button", name="Approve X thread")
        expect(approve).to_be_visible()
        expect(page.get_by_role("button", name="Approve everything for this day")).to_be_visible()
        expect(page.locator("#live")).to_contain_text("Live preview")
        assert _axe(page, artifacts_dir, "served-day") == []
        for width in (375, 1280):
            _shot(page, artifacts_dir, "served-day", width)
            assert _overflow(page) == 0
        page.set_viewport_size({"width": 1280, "height": 900})

        # The built page holds no status; the preview shows the store's, live.
        built_page = (sample_root / "out/asp23/2024-12-03/index.html").read_text()
        assert "data-status" not in built_page
        expect(page.locator(".approval-pointer")).to_be_hidden()
        row = page.locator('tr[data-channel="thread"][data-platform="x"]')
        expect(row).to_have_attribute("data-status", "planned")
        expect(row.locator(".badge")).to_have_text("planned")
        expect(row).to_contain_text("Not yet")
        expect(page.locator("th", has_text="Sends at (Europe/Amsterdam)")).to_be_visible()
        approve.click()
        expect(row).to_have_attribute("data-status", "approved", timeout=30_000)
        expect(row.locator(".badge")).to_have_text("approved")
        expect(row).to_contain_text("By Browser Test")
        expect(row.locator(".hashes summary")).to_have_text(
            re.compile(r"^\d+ approved files, all as built\s*$")
        )
        expect(row.locator(".hash-same").first).to_have_text("matches this build")
        expect(row.locator(".hash-changed")).to_have_count(0)
        expect(page.locator("#live")).to_have_text("Approved 1 delivery.")
        expect(page.get_by_role("button", name="Approve X thread")).to_have_count(0)
        assert (sample_root / "out/asp23/2024-12-03/index.html").read_text() == built_page

        # An approval from the CLI shows up on the open page without a reload.
        approved = subprocess.run(
            [*CLI, "approve", "asp23", "2024-12-03", "--channel", "digest", "-C", str(sample_root)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **environ},
        )
        assert approved.returncode == 0, approved.stderr
        digest_row = page.locator('tr[data-channel="digest"]')
        expect(digest_row).to_have_attribute("data-status", "approved", timeout=30_000)
        expect(page.get_by_role("button", name="Approve Email digest")).to_have_count(0)

        # The index counts what is approved, live too.
        page.goto(server.url)
        expect(page.locator("#store")).to_contain_text("2 of 50 planned deliveries approved.")
        day3 = page.locator('dl[data-facts-day="2024-12-03"]')
        expect(day3.locator(".live-approved dd")).to_have_text("2 of 11")
        expect(page.locator('dl[data-facts-day="2024-12-04"] .live-approved dd')).to_have_text(
            "0 of 6"
        )
        page.goto(server.url + "2024-12-03/index.html")
        expect(row).to_have_attribute("data-status", "approved")
        with open_project_store(project) as store:
            rows = {
                (s.channel, s.platform): s
                for s in status(store, "asp23")
                if s.date == dt.date(2024, 12, 3)
            }
        assert rows["thread", "x"].status == "approved"
        assert rows["thread", "x"].approved_by == "Browser Test"
        assert rows["thread", "x"].approved
        assert rows["digest", ""].status == "approved"  # by the CLI
        others = {s.status for k, s in rows.items() if k not in {("thread", "x"), ("digest", "")}}
        assert others == {"planned"}

        # Editing a record while the page is open: the page reloads with the change.
        record = sample_root / "content/asp23/2024-12-03/kit-general-debate.md"
        good = record.read_text()
        record.write_text(
            good.replace(
                'title: "Conflict-related sexual violence in Ukraine"',
                'title: "Justice for survivors in Ukraine"',
                1,
            )
        )
        assert "Justice for survivors in Ukraine" in record.read_text()
        expect(page.locator("#thread-x")).to_contain_text(
            "Justice for survivors in Ukraine", timeout=30_000
        )
        # the approved X thread changed under its approval: the page says so
        expect(row).to_contain_text("changed since approval")
        expect(row.locator(".hash-changed").first).to_have_text("differs from this build")

        # A broken record: the same one-line message the CLI prints, not the stale page.
        record.write_text(good.replace("order: 1", "order: 1\ntime: 6:30", 1))
        cli = subprocess.run(
            [sys.executable, "-m", "aspdigest", "check", "asp23", "-C", str(sample_root)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **environ},
        )
        message = cli.stderr.strip()
        assert message == (
            "content/asp23/2024-12-03/kit-general-debate.md: time: expected "
            '"HH:MM" in quotes, got the number 390'
        )
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "The drafts could not be rebuilt", timeout=30_000
        )
        expect(page.locator(".errors li")).to_have_text([message])
        assert _axe(page, artifacts_dir, "served-error") == []
        _shot(page, artifacts_dir, "served-error", 375)
        page.set_viewport_size({"width": 1280, "height": 900})
        record.write_text(good)
        expect(page.locator(".subject")).to_be_visible(timeout=30_000)
        assert not errors, errors
    finally:
        context.close()
        code = server.stop()
    assert code == 0, server.seen


def test_a_blocked_thread_shows_its_reason_visibly_and_accessibly(
    page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    root = _copy_sample(tmp_path / "blocked")
    event = root / "content/asp23/event.toml"
    hook = ("Words and more words. " * 140).strip()
    event.write_text(
        event.read_text().replace(
            '[days."2024-12-06"]\n', f'[days."2024-12-06"]\nhook = "{hook}"\n'
        )
    )
    build(load_project(root, environ={}), "asp23")
    why = (
        'content/asp23/event.toml: days."2024-12-06".hook: the day\'s LinkedIn post is over '
        "3000 characters even with only its hook and 3 highlight titles; shorten the hook or "
        "the titles"
    )
    page.goto(_url(root / "out/asp23/2024-12-06/index.html"))
    glance = page.get_by_role("list", name="At a glance")
    expect(glance.get_by_role("listitem").filter(has_text="LinkedIn: blocked")).to_be_visible()
    tab = page.get_by_role("tab", name="LinkedIn blocked")
    tab.click()
    panel = page.locator("#thread-linkedin")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="LinkedIn: blocked")).to_be_visible()
    note = panel.get_by_role("note")
    expect(note).to_be_visible()
    expect(note.locator(".blocked-reason")).to_have_text(why)
    expect(panel.locator("li.post")).to_have_count(0)
    # The other platforms are there as usual.
    page.get_by_role("tab", name="X").click()
    expect(page.locator("#thread-x li.post").first).to_be_visible()
    page.get_by_role("tab", name="LinkedIn blocked").click()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        assert _axe(page, artifacts_dir, f"blocked-{width}") == []
        assert _overflow(page) == 0
    _shot(page, artifacts_dir, "blocked", 375)
    page.goto(_url(root / "out/asp23/index.html"))
    expect(page.locator(".day-list > li").last).to_contain_text("LinkedIn blocked")
