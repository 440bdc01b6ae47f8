"""The running app in a real headless Chromium: form, prediction, upload, every page.

Starts ``streamlit run ui/app.py`` on a free port against the moto bucket (as ``make demo``
does), drives it with Playwright through Debian's chromium, and saves a screenshot of each step
into tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.registry import Registry
from tests.conftest import free_port
from tests.ui.conftest import add_version
from tests.ui.support import Seeded, claims_with_bad_rows, seed_runs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 90_000  # the first prediction imports PyCaret and unpickles the model


@pytest.fixture
def server(bucket: str, s3, s3_registry: str, tmp_path: Path) -> Iterator[tuple[str, Seeded]]:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make system-deps)")
    seeded = seed_runs(s3, bucket, s3_registry)
    port = free_port()
    env = {
        **os.environ,
        "DROPSCORE_BUCKET": bucket,
        "DROPSCORE_REGISTRY": s3_registry,
        "DROPSCORE_MODEL": "claims",
        "DROPSCORE_UI_MODE": "local",
    }
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "streamlit"), "run", "ui/app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
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
        yield url, seeded
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_app_in_a_real_browser(server, s3_registry: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    url, seeded = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    card = Registry(s3_registry).resolve("claims")
    number = next(f for f in card.features if f.kind == "number" and f.max is not None)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)

        def settled(name: str, height: int = 1600) -> None:
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            page.wait_for_timeout(800)  # let charts finish drawing for the screenshot
            assert page.locator('[data-testid="stException"]').count() == 0
            assert "Traceback" not in page.content()
            page.set_viewport_size({"width": 1400, "height": height})  # the app scrolls inside
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            page.set_viewport_size({"width": 1400, "height": 1600})

        # Predict: the form from the card, one value beyond the training range, predict
        page.goto(f"{url}/predict")  # / is the overview
        expect(page.get_by_role("heading", name="Predict")).to_be_visible()
        expect(page.get_by_text("Local mode — no sign-in")).to_be_visible()
        settled("01-predict-form")
        field = page.get_by_label(number.name, exact=True)
        field.fill(str(int(number.max * 2)))
        field.press("Tab")
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_text(f"Predicted {card.target}")).to_be_visible()
        expect(page.get_by_text("above the training range")).to_be_visible()
        expect(page.get_by_text("Method — exact (linear)")).to_be_visible()
        settled("02-prediction")

        # the same page for a classification model with other columns: no code change
        income = Registry(s3_registry).resolve("income")
        page.get_by_role("combobox", name="Model").first.click()
        page.get_by_role("option", name="income").click()
        expect(page.get_by_label(income.feature_names[0], exact=True)).to_be_visible()
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_text(f"Predicted {income.target}")).to_be_visible()
        expect(page.get_by_text("probability ").first).to_be_visible()
        settled("03-classification")

        # Score a file: an upload with bad rows
        page.goto(f"{url}/score")
        expect(page.get_by_role("heading", name="Score a file")).to_be_visible()
        content, bad = claims_with_bad_rows(60)
        upload = ARTIFACTS / "upload-with-bad-rows.csv"
        upload.write_bytes(content)
        page.locator('input[type="file"]').set_input_files(str(upload))
        page.get_by_role("button", name=f"Score with {card.ref}").click()
        expect(page.get_by_text(f"{60 - bad} of 60 rows scored")).to_be_visible()
        settled("04-score-result")
        page.get_by_role("tab", name=f"Rejected rows ({bad})").click()
        expect(page.get_by_text("WRONG_TYPE").first).to_be_attached()  # a canvas grid cell
        settled("05-score-rejected")

        # Runs: the list, then one run's drift
        page.goto(f"{url}/runs")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        expect(page.get_by_text("5 of 5 runs")).to_be_visible()
        settled("06-runs")
        drifted = seeded.run_keys["incoming/2026/claims-drifted.csv"]
        page.goto(f"{url}/runs?run={drifted}")
        expect(page.get_by_text("Drift per feature (PSI)")).to_be_visible()
        expect(page.get_by_text("Drifted:")).to_be_visible()
        settled("07-run-drift", height=2400)
        bad_run = seeded.run_keys["incoming/2026/claims-with-bad-rows.csv"]
        page.goto(f"{url}/runs?run={bad_run}")
        page.get_by_role("tab", name="Rejected rows (3)").click()
        expect(page.get_by_text("TOO_MANY_FIELDS").first).to_be_attached()
        settled("08-run-rejected")

        # Models: a second version, promoted (local mode may promote)
        new = add_version(s3_registry, "claims")
        page.goto(f"{url}/models")
        expect(page.get_by_role("heading", name="Versions")).to_be_visible()
        expect(page.get_by_text("production → v1")).to_be_visible()
        settled("09-models")
        page.get_by_label("Note (required): why this version").fill("browser test")
        page.get_by_label("Note (required): why this version").press("Tab")
        page.get_by_text(f"Yes: batch runs from now on use v{new}").click()
        page.get_by_role("button", name=f"Promote v{new} to production").click()
        expect(page.get_by_text(f"claims v{new} is now production.")).to_be_visible()
        expect(page.get_by_text(f"production → v{new}")).to_be_visible()
        expect(page.get_by_role("button", name="Promote v1 to production")).to_be_disabled()
        settled("10-models-promoted")
        browser.close()
