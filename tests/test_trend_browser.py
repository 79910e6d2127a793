"""The dashboard in a real browser: Debian's chromium, headless, driven by playwright, network blocked.

`playwright install` (a browser download) is never used: the tests launch /usr/bin/chromium, which
`make test` installs when missing. Without it they skip, saying so.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from test_trend import FORMULA, SCRIPT, hostile_history

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
HEADINGS = ["Standing privileged access by tier", "Eligible, active and activated assignments",
            "Global Administrators, break-glass accounts, assignments outside PIM", "Activations per week",
            "Control pass rate", "Access reviews per cycle", "Principals with the most standing privilege"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed at /usr/bin/chromium "
                                       "(`make test` installs it: apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()


class Visit:
    """One page load with every request, blocked request, console error and dialog recorded."""

    def __init__(self, browser, path: Path, width: int = 1280):
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=True)
        self.context.route("**/*", self._route)
        page = self.page = self.context.new_page()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri(), wait_until="load")

    def _route(self, route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def assert_clean(self, path: Path) -> None:
        assert self.blocked == [], f"network requests attempted: {self.blocked}"
        assert self.requests == [path.as_uri()], self.requests
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs

    def close(self) -> None:
        self.context.close()


def not_blank(png: Path) -> None:
    assert png.stat().st_size > 20_000
    image = Image.open(png).convert("L")
    assert max(ImageStat.Stat(image).stddev) > 20, "screenshot is (nearly) one colour"
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 30


@pytest.fixture(scope="module")
def sample_dashboard(sample_history, tmp_path_factory):
    from importlib import resources

    from typer.testing import CliRunner

    from pimtrail.cli import app

    folder = tmp_path_factory.mktemp("dashboard")
    config = folder / "pimtrail.toml"
    config.write_text((resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text())
    out = folder / "dashboard.html"
    result = CliRunner().invoke(app, ["trend", "--db", sample_history, "--config", str(config),
                                      "--out", str(out), "--csv", str(folder / "csv")])
    assert result.exit_code == 0, result.output
    with (folder / "csv" / "snapshots.csv").open(newline="") as handle:
        snapshots = list(csv.DictReader(handle))
    return out, snapshots


def test_sample_dashboard_in_chromium(browser, sample_dashboard, tmp_path):
    path, snapshots = sample_dashboard
    visit = Visit(browser, path)
    page = visit.page
    try:
        assert page.locator("svg.chart").count() == 6
        for name in ("standing", "assignments", "identity", "activations", "passrate", "reviews"):
            svg = page.locator(f'svg.chart[data-chart="{name}"]')
            assert svg.count() == 1 and svg.bounding_box()["width"] > 500, name
        headings = page.locator("h2").all_inner_texts()
        assert all(h in headings for h in HEADINGS), headings
        assert page.get_by_role("img", name="Standing privileged access by tier").count() == 1
        latest, first = snapshots[-1], snapshots[0]
        card = page.locator(".kpis li").first
        assert card.locator(".label").inner_text() == "Standing privileged access"
        assert card.locator(".value").inner_text() == latest["standing_total"]
        reading = page.locator("#standing figcaption").inner_text()
        assert f"down from {first['standing_total']} to {latest['standing_total']} since 1 July 2026" in reading
        tips = page.locator('svg.chart[data-chart="standing"] g.tip > title').all_text_contents()
        assert len(tips) == len(snapshots) and tips[-1].startswith(f"30 Sep 2026: {latest['standing_total']} ")
        # the inline script runs (its hash is in the CSP): filtering the status changes
        rows = page.locator("#status-changes tbody tr")
        total = rows.count()
        page.locator('input[data-filter="status-changes"]').fill("PIM-STD")
        visible = [r for r in rows.all() if r.is_visible()]
        assert 0 < len(visible) < total and all("PIM-STD" in r.inner_text() for r in visible)
        page.locator('input[data-filter="status-changes"]').fill("")
        assert page.locator("#top-standing tbody tr").count() >= 3
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        not_blank(shot)
        visit.assert_clean(path)
    finally:
        visit.close()


def test_narrow_screen_and_print(browser, sample_dashboard, tmp_path):
    path, _ = sample_dashboard
    visit = Visit(browser, path, width=390)
    page = visit.page
    try:
        # the page itself does not scroll sideways: wide charts and tables scroll in their own box
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator(".kpis li").first.bounding_box()["width"] < 200  # two cards a row
        page.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)
        not_blank(tmp_path / "narrow.png")
        page.emulate_media(media="print")
        assert not page.locator("nav.toc").is_visible()
        assert page.locator("svg.chart").first.is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
        visit.assert_clean(path)
    finally:
        visit.close()


def test_hostile_names_do_not_run_in_the_browser(browser, cli, export, db, tmp_path):
    hostile_history(cli, export, db)
    path = tmp_path / "hostile.html"
    assert cli("trend", "--db", db, "--out", path).exit_code == 0
    visit = Visit(browser, path)
    page = visit.page
    try:
        assert page.locator("script").count() == 1 and page.locator("img").count() == 0
        assert page.locator("h1").inner_text() == "<img src=x onerror=alert(2)>"
        names = page.locator("#top-standing tbody tr td:nth-child(2)").all_inner_texts()
        assert FORMULA in names and SCRIPT in names  # shown as text, not run
        page.locator('input[data-filter="top-standing"]').fill("<script>")
        assert [r.inner_text() for r in page.locator("#top-standing tbody tr").all() if r.is_visible()] != []
        visit.assert_clean(path)
    finally:
        visit.close()


@pytest.mark.parametrize("case", ["single", "empty"])
def test_short_histories_show_their_message(browser, cli, export, db, sample_history, tmp_path, case):
    path = tmp_path / f"{case}.html"
    if case == "single":
        assert cli("collect", "--source", export(), "--db", db).exit_code in (0, 3)
        assert cli("trend", "--db", db, "--out", path).exit_code == 0
        expected = "Only one snapshot in the selected range"
    else:
        assert cli("trend", "--db", sample_history, "--from", "2027-01-01", "--out", path).exit_code == 0
        expected = "No snapshots between 1 January 2027"
    visit = Visit(browser, path)
    try:
        notice = visit.page.get_by_role("status")
        assert notice.is_visible() and expected in notice.inner_text()
        assert visit.page.locator("svg.chart").count() == (4 if case == "single" else 0)
        visit.page.screenshot(path=str(tmp_path / f"{case}.png"), full_page=True)
        assert Image.open(io.BytesIO((tmp_path / f"{case}.png").read_bytes())).size[1] > 200
        visit.assert_clean(path)
    finally:
        visit.close()
