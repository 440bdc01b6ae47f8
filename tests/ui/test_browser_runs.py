"""Runs, overview, deep links and outages in a real headless Chromium, desktop and phone sizes
(issue 16). Screenshots go to tests/artifacts/ for people to look at."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.ui.support import outside_training, put_and_score, seed_runs
from tests.ui.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.ui.test_runs import put_and_score_sharded

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
WAIT_MS = 60_000
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@contextmanager
def streamlit(env: dict[str, str], log: Path) -> Iterator[str]:
    """``streamlit run ui/app.py`` on a free port with ``env``; yields its URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "streamlit"), "run", "ui/app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true"],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"streamlit did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def app_env(bucket: str, registry: str) -> dict[str, str]:
    return {
        "DROPSCORE_BUCKET": bucket,
        "DROPSCORE_REGISTRY": registry,
        "DROPSCORE_MODEL": "claims",
        "DROPSCORE_UI_MODE": "local",
    }


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make system-deps)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def settle(page, name: str, height: int = 1800) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(700)  # charts and the graph finish drawing
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})  # the app scrolls inside
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)


@pytest.mark.parametrize("size", list(SIZES))
def test_runs_alerts_deep_links_and_filters(
    browser, bucket, s3, s3_registry, tmp_path, size
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    seeded = seed_runs(s3, bucket, s3_registry)
    outside = put_and_score(
        s3, bucket, "incoming/2026/claims-outside.csv", outside_training(), s3_registry, "claims"
    )
    sharded, shards = put_and_score_sharded(s3, bucket, "incoming/big/sharded.csv", s3_registry)
    width, height = SIZES[size]
    with streamlit(app_env(bucket, s3_registry), tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(WAIT_MS)
        t0 = time.perf_counter()
        page.goto(url)
        expect(page.get_by_role("heading", name="dropscore")).to_be_visible()
        expect(page.get_by_text("Runs today (UTC)")).to_be_visible()
        first_load = time.perf_counter() - t0
        settle(page, f"u1-{size}-01-overview")

        # every page has its own URL, and a run has its own link
        for path, heading in (
            ("predict", "Predict"), ("score", "Score a file"), ("runs", "Runs"),
            ("models", "Models"),
        ):  # fmt: skip
            page.goto(f"{url}/{path}")
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            expect(page.get_by_text("Page not found")).to_have_count(0)
        t0 = time.perf_counter()
        page.goto(f"{url}/runs")
        expect(page.get_by_text("7 of 7 runs")).to_be_visible()
        list_render = time.perf_counter() - t0
        # the far-outside run is not a plain ok: its status and its alerts say so
        expect(page.get_by_text("ok · major drift").first).to_be_attached()
        expect(page.get_by_text("major drift", exact=False).first).to_be_attached()
        settle(page, f"u1-{size}-02-runs-alerts")

        page.goto(f"{url}/runs?run={outside}")
        expect(page.get_by_role("heading", name="claims-outside.csv")).to_be_visible()
        expect(page.get_by_text("ok · major").first).to_be_visible()
        expect(page.get_by_text("does not look like the data").first).to_be_visible()
        settle(page, f"u1-{size}-03-run-header")
        heading = page.get_by_role("heading", name="claims-outside.csv")
        box = heading.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= width  # the title fits the screen
        page.get_by_role("tab", name="Warnings").click()
        expect(page.get_by_text("Row by row")).to_be_visible()
        settle(page, f"u1-{size}-04-warnings-by-row")

        # how a run was executed: a sharded run names its shards and Dask workers
        page.goto(f"{url}/runs?run={sharded}")
        expect(page.get_by_role("heading", name="sharded.csv")).to_be_visible()
        expect(page.get_by_text(f"Ran in {shards} shards on 1 Dask worker")).to_be_visible()
        settle(page, f"u1-{size}-04b-sharded-run")

        # filters survive opening a run and coming back
        page.goto(f"{url}/runs")
        search = page.get_by_label("Input contains")
        search.fill("2026")
        search.press("Enter")
        expect(page.get_by_text("4 of 7 runs")).to_be_visible()
        page.wait_for_selector(IDLE)  # a click during a rerun can land on the old widget
        page.get_by_role("combobox", name="Open a run").click()
        page.keyboard.type("claims-week-47")  # narrows the list: on a phone it is long
        page.get_by_role("option").filter(has_text="claims-week-47").first.click()
        expect(page.get_by_role("heading", name="claims-week-47.csv")).to_be_visible()
        page.wait_for_selector(IDLE)  # a click during the run page's rerun can be lost
        page.get_by_role("button", name="All runs").click()
        expect(page.get_by_text("4 of 7 runs")).to_be_visible()
        expect(page.get_by_label("Input contains")).to_have_value("2026")
        settle(page, f"u1-{size}-05-filters-kept")

        # a new run shows up after Refresh
        put_and_score(
            s3, bucket, "incoming/2026/claims-late.csv", outside_training(50, 7), s3_registry,
            "claims",
        )  # fmt: skip
        page.get_by_role("button", name="Refresh").click()
        expect(page.get_by_text("5 of 8 runs")).to_be_visible()
        page.close()
    assert seeded.run_keys
    print(f"\n[pages] {size}: first load {first_load:.2f} s, runs list {list_render:.2f} s")


@pytest.mark.parametrize("size", list(SIZES))
def test_an_outage_is_named_within_seconds_with_a_retry(
    browser, bucket, s3_registry, tmp_path, size
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # nothing listens here once closed
    env = {**app_env(bucket, s3_registry), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    width, height = SIZES[size]
    with streamlit(env, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(WAIT_MS)
        timings = {}
        for path in ("runs", "predict"):
            t0 = time.perf_counter()
            page.goto(f"{url}/{path}")
            message = f"Cannot reach the bucket '{bucket}' at 127.0.0.1:{port}"
            expect(page.get_by_text(message)).to_be_visible()
            timings[path] = time.perf_counter() - t0
            expect(page.get_by_role("button", name="Retry")).to_be_visible()
            assert "http://127.0.0.1" not in page.inner_text("body")
            settle(page, f"u1-{size}-06-outage-{path}")
        page.get_by_role("button", name="Retry").click()
        expect(page.get_by_role("button", name="Retry")).to_be_visible()  # still down: again
        page.close()
    print(
        f"\n[outage] {size}: message after "
        + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
    )
