"""A small load test: 5 browser sessions at once, each predicting and browsing the runs for a
minute against one running app. Latencies are printed (`-s`), not asserted; what is asserted is
what users would see: every prediction answered, every page opened, no error on any page."""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import pytest

from scorer.registry import Registry
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 5
SECONDS = float(os.environ.get("DROPSCORE_TEST_LOAD_SECONDS", "60"))


def _session(url: str, target: str, until: float, out: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    timings: dict[str, list[float]] = {"predict": [], "runs page": []}
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            idle = '[data-testid="stApp"][data-test-script-state="notRunning"]'
            page.goto(f"{url}/predict")  # / is the overview
            expect(page.get_by_role("heading", name="Predict")).to_be_visible()
            while time.monotonic() < until:
                page.wait_for_selector(idle)
                t0 = time.monotonic()
                page.get_by_role("button", name="Predict").click()
                expect(page.get_by_text(f"Predicted {target}")).to_be_visible()
                page.wait_for_selector(idle)
                timings["predict"].append(time.monotonic() - t0)
                t0 = time.monotonic()
                page.goto(f"{url}/runs")
                expect(page.get_by_role("heading", name="Runs")).to_be_visible()
                page.wait_for_selector(idle)
                timings["runs page"].append(time.monotonic() - t0)
                if page.locator('[data-testid="stException"]').count() or (
                    "Traceback" in page.content()
                ):
                    errors.append("an error was shown on a page")
                page.goto(f"{url}/predict")
                expect(page.get_by_role("heading", name="Predict")).to_be_visible()
            browser.close()
    except Exception as exc:  # reported by the test, with the session's other results
        errors.append(f"{type(exc).__name__}: {exc}")
    out["timings"] = timings
    out["errors"] = errors


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{name}: n={len(values)} median {statistics.median(values) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def test_five_sessions_predict_and_browse_for_a_minute(server, s3_registry: str) -> None:
    url, _seeded = server
    target = Registry(s3_registry).resolve("claims").target
    until = time.monotonic() + SECONDS
    results: list[dict[str, Any]] = [{} for _ in range(SESSIONS)]
    threads = [
        threading.Thread(target=_session, args=(url, target, until, results[i]))
        for i in range(SESSIONS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 600)
    predict = [v for r in results for v in r.get("timings", {}).get("predict", [])]
    runs = [v for r in results for v in r.get("timings", {}).get("runs page", [])]
    print(
        f"\n{SESSIONS} browser sessions for {SECONDS:.0f} s (wall time in the browser, "
        "click → answer shown):"
    )
    print("  " + _summary("predict", predict))
    print("  " + _summary("runs page", runs))
    errors = [e for r in results for e in r.get("errors", ["session did not finish"])]
    assert errors == []
    assert all(r["timings"]["predict"] for r in results)  # every session got answers
    assert all(r["timings"]["runs page"] for r in results)
