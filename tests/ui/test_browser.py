"""The running app in a real headless Chromium: form, prediction, upload, every page.

Starts ``streamlit run ui/app.py`` on a free port against the moto bucket (as ``make demo``
does), drives it with Playwright through Debian's chromium, and saves a screenshot of each step
into tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import pytest

from scorer.registry import Registry
from tests.ui.conftest import ARTIFACTS, add_version, new_page, settled
from tests.ui.support import claims_with_bad_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_app_in_a_real_browser(server, browser, s3_registry: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    url, seeded = server
    card = Registry(s3_registry).resolve("claims")
    number = next(f for f in card.features if f.kind == "number" and f.max is not None)
    page = new_page(browser, 1400, 1600)

    # Predict: the form from the card, one value beyond the training range, predict
    page.goto(f"{url}/predict")  # / is the overview
    expect(page.get_by_role("heading", name="Predict")).to_be_visible()
    expect(page.get_by_text("Local mode — no sign-in")).to_be_visible()
    settled(page, "01-predict-form")
    field = page.get_by_label(number.name, exact=True)
    field.fill(str(int(number.max * 2)))
    field.press("Tab")
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_text(f"Predicted {card.target}")).to_be_visible()
    expect(page.get_by_text("above the training range")).to_be_visible()
    expect(page.get_by_text("Method — exact (linear)")).to_be_visible()
    settled(page, "02-prediction")

    # the same page for a classification model with other columns: no code change
    income = Registry(s3_registry).resolve("income")
    page.get_by_role("combobox", name="Model").first.click()
    page.get_by_role("option", name="income").click()
    expect(page.get_by_label(income.feature_names[0], exact=True)).to_be_visible()
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_text(f"Predicted {income.target}")).to_be_visible()
    expect(page.get_by_text("probability ").first).to_be_visible()
    settled(page, "03-classification")

    # Score a file: an upload with bad rows
    page.goto(f"{url}/score")
    expect(page.get_by_role("heading", name="Score a file")).to_be_visible()
    content, bad = claims_with_bad_rows(60)
    upload = ARTIFACTS / "upload-with-bad-rows.csv"
    upload.write_bytes(content)
    page.locator('input[type="file"]').set_input_files(str(upload))
    page.get_by_role("button", name=f"Score with {card.ref}").click()
    expect(page.get_by_text(f"{60 - bad} of 60 rows scored")).to_be_visible()
    settled(page, "04-score-result")
    page.get_by_role("tab", name=f"Rejected rows ({bad})").click()
    expect(page.get_by_text("WRONG_TYPE").first).to_be_attached()  # a canvas grid cell
    settled(page, "05-score-rejected")

    # Runs: the list, then one run's drift
    page.goto(f"{url}/runs")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.get_by_text("5 of 5 runs")).to_be_visible()
    settled(page, "06-runs")
    drifted = seeded.run_keys["incoming/2026/claims-drifted.csv"]
    page.goto(f"{url}/runs?run={drifted}")
    expect(page.get_by_text("Drift per feature (PSI)")).to_be_visible()
    expect(page.get_by_text("Drifted:")).to_be_visible()
    settled(page, "07-run-drift", height=2400)
    bad_run = seeded.run_keys["incoming/2026/claims-with-bad-rows.csv"]
    page.goto(f"{url}/runs?run={bad_run}")
    page.get_by_role("tab", name="Rejected rows (3)").click()
    expect(page.get_by_text("TOO_MANY_FIELDS").first).to_be_attached()
    settled(page, "08-run-rejected")

    # Models: a second version, promoted (local mode may promote)
    new = add_version(s3_registry, "claims")
    page.goto(f"{url}/models")
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    expect(page.get_by_text("production → v1")).to_be_visible()
    settled(page, "09-models")
    page.get_by_label("Note (required): why this version").fill("browser test")
    page.get_by_label("Note (required): why this version").press("Tab")
    page.get_by_text(f"Yes: batch runs from now on use v{new}").click()
    page.get_by_role("button", name=f"Promote v{new} to production").click()
    expect(page.get_by_text(f"claims v{new} is now production.")).to_be_visible()
    expect(page.get_by_text(f"production → v{new}")).to_be_visible()
    expect(page.get_by_role("button", name="Promote v1 to production")).to_be_disabled()
    settled(page, "10-models-promoted")
