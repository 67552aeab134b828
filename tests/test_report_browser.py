"""The report's pages in a real headless browser: Debian's chromium driven by Playwright.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium`` (CI
installs the Debian package). The tests skip, saying why, when it is absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autotts.evaluation import evaluate
from autotts.report import ReportOptions, build_report
from autotts.store.synthetic import synthesize
from tests.test_report import full_record

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    stores = [
        synthesize("small", seed=s, model="synthetic-small", benchmark=b) for s, b in ((11, "aime24"), (12, "aime25"))
    ]
    cells = evaluate(
        stores,
        ["sc:n=1", "sc:n=8", "cmc:beta=0.0", "cmc:beta=1.0", "parallel-probe:chains=8"],
        runs=6,
        backend="serial",
    )
    results = root / "results.json"
    results.write_text(json.dumps([full_record(c) for c in cells]))
    build_report(
        [results], root / "report", ReportOptions(stores=stores[1:], reference="sc:n=8", trace=["all"], resamples=200)
    )
    return root / "report"


class Watch:
    """Console errors, page errors and every URL a page requested."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))


def test_index_renders_tables_and_figures_offline(browser: Any, report_dir: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    page.goto((report_dir / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.locator("table.main").count() == 1
    assert page.locator("table").count() >= 4  # main, two frontier tables, comparisons
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and all(w > 300 for w in widths)
    assert "SC@8" in page.locator("table.main").inner_text()
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    assert watch.errors == []
    assert all(u.startswith(("file:", "data:")) for u in watch.urls), watch.urls
    page.close()


def test_viewer_click_through_with_the_keyboard(browser: Any, report_dir: Path, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    page.goto((report_dir / "viewer.html").as_uri())
    page.wait_for_selector("#grid tbody tr")
    families = page.eval_on_selector_all("#family option", "os => os.map(o => o.value)")
    assert families == ["SC", "CMC", "Parallel-Probe"]
    page.select_option("#family", "Parallel-Probe")
    page.wait_for_function("document.querySelector('#summary').textContent.startsWith('Parallel-Probe@8')")
    page.locator("#questions button").nth(3).click()
    page.wait_for_function("document.querySelector('#questions .sel').textContent === '3'")
    rows = page.locator("#grid tbody tr").count()
    assert 1 <= rows <= 8  # at most 8 chains
    assert "stop point" in page.locator("#stop").inner_text()
    assert page.locator("#grid td.ok, #grid td.bad, #grid td.err").count() > 0

    page.keyboard.press("Home")
    assert page.locator("#step").inner_text().startswith("step 0 of")
    assert page.locator("#grid tbody tr").count() == 0
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert page.locator("#step").inner_text().startswith("step 3 of")
    assert page.locator("#grid tbody tr").count() >= 1
    page.keyboard.press("End")
    assert "stop point" in page.locator("#stop").inner_text()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("document.querySelector('#questions .sel').textContent === '4'")
    page.keyboard.press("PageDown")
    page.wait_for_function("document.querySelector('#run').value === '1'")
    assert page.locator("#questions .sel").inner_text() == "4"

    page.select_option("#family", "CMC")
    page.wait_for_function("document.querySelector('#summary').textContent.startsWith('CMC')")
    knobs = page.eval_on_selector_all("#knob option", "os => os.map(o => o.textContent)")
    assert knobs == ["β = 0", "β = 1"]
    page.screenshot(path=str(tmp_path / "viewer.png"))
    assert page.locator("#error").inner_text() == ""
    assert watch.errors == []
    page.close()


def test_viewer_reports_a_trace_that_does_not_add_up(browser: Any, report_dir: Path, tmp_path: Path) -> None:
    # Corrupt one recorded cost: the viewer re-derives every episode's cost and must say so.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(report_dir, copy)
    meta_path = copy / "traces" / "c0" / "meta.js"  # the cell the viewer opens first
    text = meta_path.read_text()
    data = json.loads(text[len("autottsMeta(") : -len(");\n")])
    data["cost"][0][0] += 1
    meta_path.write_text("autottsMeta(" + json.dumps(data) + ");\n")
    page = browser.new_page()
    page.goto((copy / "viewer.html").as_uri())
    page.wait_for_function("document.querySelector('#error').textContent.length > 0")
    assert "adds up to" in page.locator("#error").inner_text()
    page.close()
