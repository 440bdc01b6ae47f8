"""Runs, overview, deep links and outages in a real headless Chromium, desktop and phone sizes
(issue 16). Screenshots go to tests/artifacts/ for people to look at."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.ui.conftest import IDLE, app_env, new_page, settled, streamlit_app
from tests.ui.support import outside_training, put_and_score, seed_runs
from tests.ui.test_runs import put_and_score_sharded

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
SHOT_HEIGHT = 1800  # screenshots this tall: the app scrolls inside


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
    env = {**os.environ, **app_env(bucket, s3_registry)}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        page = new_page(browser, width, height)
        t0 = time.perf_counter()
        page.goto(url)
        expect(page.get_by_role("heading", name="dropscore")).to_be_visible()
        expect(page.get_by_text("Runs today (UTC)")).to_be_visible()
        first_load = time.perf_counter() - t0
        settled(page, f"u1-{size}-01-overview", height=SHOT_HEIGHT)

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
        settled(page, f"u1-{size}-02-runs-alerts", height=SHOT_HEIGHT)

        page.goto(f"{url}/runs?run={outside}")
        expect(page.get_by_role("heading", name="claims-outside.csv")).to_be_visible()
        expect(page.get_by_text("ok · major").first).to_be_visible()
        expect(page.get_by_text("does not look like the data").first).to_be_visible()
        settled(page, f"u1-{size}-03-run-header", height=SHOT_HEIGHT)
        heading = page.get_by_role("heading", name="claims-outside.csv")
        box = heading.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= width  # the title fits the screen
        page.get_by_role("tab", name="Warnings").click()
        expect(page.get_by_text("Row by row")).to_be_visible()
        settled(page, f"u1-{size}-04-warnings-by-row", height=SHOT_HEIGHT)

        # how a run was executed: a sharded run names its shards and Dask workers
        page.goto(f"{url}/runs?run={sharded}")
        expect(page.get_by_role("heading", name="sharded.csv")).to_be_visible()
        expect(page.get_by_text(f"Ran in {shards} shards on 1 Dask worker")).to_be_visible()
        settled(page, f"u1-{size}-04b-sharded-run", height=SHOT_HEIGHT)

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
        settled(page, f"u1-{size}-05-filters-kept", height=SHOT_HEIGHT)

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
    env = {
        **os.environ,
        **app_env(bucket, s3_registry),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    width, height = SIZES[size]
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        page = new_page(browser, width, height)
        timings = {}
        for path in ("runs", "predict"):
            t0 = time.perf_counter()
            page.goto(f"{url}/{path}")
            message = f"Cannot reach the bucket '{bucket}' at 127.0.0.1:{port}"
            expect(page.get_by_text(message)).to_be_visible()
            timings[path] = time.perf_counter() - t0
            expect(page.get_by_role("button", name="Retry")).to_be_visible()
            assert "http://127.0.0.1" not in page.inner_text("body")
            settled(page, f"u1-{size}-06-outage-{path}", height=SHOT_HEIGHT)
        page.get_by_role("button", name="Retry").click()
        expect(page.get_by_role("button", name="Retry")).to_be_visible()  # still down: again
        page.close()
    print(
        f"\n[outage] {size}: message after "
        + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
    )
