"""How long `autotts report` takes and how responsive its trace viewer stays on a large cell.

Evaluates SC@64, CMC (β=1) and Parallel-Probe@64 on one shared store, writes a report with
their traces, and prints: report time per phase, events and bytes of the traces per cell;
then (when /usr/bin/chromium and playwright are present) opens the viewer headless and
times the first episode, switching question, switching run and stepping through an episode.

    .venv/bin/python bench/report.py [--store Qwen3-8B/aime25] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from autotts.evaluation import evaluate
from autotts.report import ReportOptions, build_report
from autotts.store import load_store

PP64 = "parallel-probe:chains=64,T=40,warm_up=15,prune_patience=7,burst=1,max_steps=100"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def browser_timings(viewer: Path) -> None:
    if not Path("/usr/bin/chromium").is_file():
        print("viewer: /usr/bin/chromium not found, browser timings skipped")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        t = time.perf_counter()
        page.goto(viewer.as_uri())
        page.wait_for_selector("#grid tbody tr")
        print(f"viewer: first episode shown            {1000 * (time.perf_counter() - t):7.0f} ms")
        t = time.perf_counter()
        page.select_option("#family", "Parallel-Probe")
        page.wait_for_function("document.querySelector('#summary').textContent.startsWith('Parallel-Probe@64')")
        page.wait_for_selector("#grid tbody tr")
        print(f"viewer: Parallel-Probe@64 cell opened    {1000 * (time.perf_counter() - t):7.0f} ms")
        for label, key, check in (
            ("next question (same run)", "ArrowDown", "document.querySelector('#questions .sel').textContent === '1'"),
            ("next run (new chunk)", "PageDown", "document.querySelector('#run').value === '1'"),
        ):
            t = time.perf_counter()
            page.keyboard.press(key)
            page.wait_for_function(check)
            print(f"viewer: {label:32s} {1000 * (time.perf_counter() - t):7.0f} ms")
        page.keyboard.press("Home")
        n = int(page.eval_on_selector("#slider", "s => s.max"))
        t = time.perf_counter()
        steps = min(n, 200)
        for _ in range(steps):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.querySelector('#step').textContent.startsWith('step {steps} of')")
        per = 1000 * (time.perf_counter() - t) / max(1, steps)
        print(f"viewer: one step (of {n} in the episode)   {per:7.1f} ms")
        # The same steps timed inside the page (render only, no keyboard round trip).
        per_js = page.evaluate(
            "() => { const t = performance.now(); for (let i = 0; i <= 200; i++) setStep(i); "
            "return (performance.now() - t) / 201; }"
        )
        print(f"viewer: one step, render time in the page {per_js:7.1f} ms")
        errors = page.locator("#error").inner_text()
        print(f"viewer: errors shown: {errors or 'none'}")
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/autotts-replay"))
    ap.add_argument("--store", default="Qwen3-8B/aime25")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    store = load_store(Path(args.data) / f"{args.store}.json")
    t = time.perf_counter()
    cells = evaluate(store, ["sc:n=64", "cmc:beta=1.0", PP64], runs=100, backend="serial")
    print(f"evaluate 3 cells: {time.perf_counter() - t:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        results.write_text(json.dumps([c.to_record() for c in cells]))
        phases: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        rep = build_report(
            [results],
            Path(tmp) / "report",
            ReportOptions(stores=[store], trace=["all"], resamples=2000),
            progress=lambda what, d, n: phases.append((what, time.perf_counter())),
        )
        total = time.perf_counter() - t0
        prev = t0
        for what, at in phases:
            print(f"  {at - prev:6.1f} s  before: {what}")
            prev = at
        print(f"report total: {total:.1f} s")
        for c in rep.traced:
            size = folder_bytes(Path(tmp) / "report" / "traces" / c.id)
            print(f"traces {c.method:20s} {c.events:>10,} actions  {size / 1e6:6.2f} MB on disk ({c.runs} run files)")
        store_js = Path(tmp) / "report" / "traces" / "s0.js"
        print(f"store data for the viewer: {store_js.stat().st_size / 1e6:.2f} MB")
        browser_timings(Path(tmp) / "report" / "viewer.html")


if __name__ == "__main__":
    main()
