"""The Predict page in a real headless Chromium, desktop and phone: a number refused inline,
then a prediction with its base value and exactly labelled contributions."""

from __future__ import annotations

import pytest

from scorer.registry import Registry
from tests.ui.conftest import new_page, settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": (1400, 1400), "phone": (390, 844)}


def test_predict_shows_inline_errors_base_value_and_labelled_contributions(  # type: ignore[no-untyped-def]
    server,
    browser,
    s3_registry: str,
) -> None:
    from playwright.sync_api import expect

    url, _ = server
    card = Registry(s3_registry).resolve("claims")
    whole = next(f for f in card.features if f.kind == "number" and f.integer)
    decimal = next(f for f in card.features if f.kind == "number" and not f.integer)
    for size, (width, height) in SIZES.items():
        page = new_page(browser, width, height)

        page.goto(f"{url}/predict")  # / is the overview
        expect(page.get_by_role("heading", name="Predict")).to_be_visible()
        page.get_by_label(whole.name, exact=True).fill("2.7")
        page.get_by_label(decimal.name, exact=True).fill("30.23")
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_text("takes whole numbers only")).to_be_visible()
        expect(page.get_by_text("Not predicted: 1 field")).to_be_visible()
        expect(page.get_by_text(f"Predicted {card.target}")).to_have_count(0)
        page.get_by_text("takes whole numbers only").scroll_into_view_if_needed()
        settled(page, f"predict-{size}-1-refused")

        page.get_by_label(whole.name, exact=True).fill("3")
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_text(f"Predicted {card.target}")).to_be_visible()
        expect(page.get_by_text("Base value", exact=True)).to_be_visible()
        expect(page.get_by_text("exact (linear)").first).to_be_visible()
        expect(page.get_by_text("Method — exact (linear)")).to_be_visible()
        page.get_by_text("Values used").click()
        expect(page.get_by_text("Exactly what the model was given")).to_be_visible()
        page.get_by_text("Base value", exact=True).scroll_into_view_if_needed()
        settled(page, f"predict-{size}-2-explained")
        page.close()
