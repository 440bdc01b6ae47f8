"""The Predict form's rules, field by field (pure): typed text → the value sent, or the reason."""

from __future__ import annotations

import pytest

from scorer.card import Feature
from ui import form

PLAIN = Feature("bmi", "number", min=15.0, max=50.0, typical=30.689999999999998)
WHOLE = Feature("children", "number", integer=True, typical=1.0)
OPTIONAL = Feature("score", "number", nullable=True, typical=0.5)


@pytest.mark.parametrize(
    ("feat", "typed", "sent", "value", "error"),
    [
        (PLAIN, "30.23", "30.23", 30.23, None),
        (PLAIN, " 30.23 ", "30.23", 30.23, None),
        (PLAIN, "1e3", "1e3", 1000.0, None),
        (PLAIN, "-0.5", "-0.5", -0.5, None),
        (PLAIN, "1e309", "1e309", None, "too large"),
        (PLAIN, "abc", "abc", None, "is not a number"),
        (PLAIN, "inf", "inf", None, "is not a number"),
        (PLAIN, "nan", "nan", None, "is not a number"),
        (PLAIN, "1,000", "1,000", None, "is not a number"),
        (PLAIN, "1_000", "1_000", None, "is not a number"),
        (PLAIN, "", "", None, "needs a number"),
        (OPTIONAL, "", "", None, None),
        (OPTIONAL, "   ", "", None, None),
        (WHOLE, "2.7", "2.7", None, "whole numbers only"),
        (WHOLE, "3", "3", 3.0, None),
        (WHOLE, "3.0", "3.0", 3.0, None),
    ],
    ids=[
        "a decimal is used as typed",
        "surrounding spaces are trimmed",
        "an exponent is a number",
        "a negative number",
        "1e309 is refused: not finite",
        "text is refused",
        "'inf' is refused",
        "'nan' is refused",
        "a thousands separator is refused",
        "an underscore is refused",
        "a required number cannot be empty",
        "an optional number left empty is missing",
        "blanks in an optional number are missing",
        "a fraction in a whole-number field is refused, not truncated",
        "a whole number in a whole-number field",
        "3.0 is a whole number",
    ],
)
def test_what_is_typed_is_what_is_sent_or_refused(
    feat: Feature, typed: str, sent: str, value: float | None, error: str | None
) -> None:
    entry = form.read_number(feat, typed)
    assert entry.text == sent
    assert entry.value == value
    if error is None:
        assert entry.error is None
    else:
        assert entry.error is not None
        assert error in entry.error


def test_the_starting_text_is_short_and_is_what_is_used() -> None:
    assert form.default_text(PLAIN) == "30.69"
    assert form.read_number(PLAIN, form.default_text(PLAIN)).value == 30.69
    assert form.default_text(WHOLE) == "1"
    assert form.default_text(Feature("x", "number")) == ""
