"""What the Predict form accepts, field by field (pure): the text a person typed is used as
typed or refused with the reason — never rounded, clamped or replaced by an earlier value."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from scorer.card import Feature

# a plain decimal number: digits with an optional '.', optional exponent (no thousands separators,
# no 'inf'/'nan' words, no '_' — Python's float() would take those)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Entry:
    """One number field: the text sent to the scorer ("" = missing), its value, or why not."""

    text: str
    value: float | None
    error: str | None = None


def default_text(feat: Feature) -> str:
    """The field's starting text: the training median to 6 significant digits (30.69, not
    30.689999999999998: the text shown is the value used, so a short one is honest too); empty
    when the card has none."""
    typical = feat.typical
    if not isinstance(typical, int | float) or not math.isfinite(float(typical)):
        return ""
    number = float(f"{float(typical):.6g}")
    return str(int(number)) if number.is_integer() else repr(number)


def read_number(feat: Feature, text: str) -> Entry:
    """The typed text as the value the model gets, or the reason it is refused."""
    typed = text.strip()
    if not typed:
        if feat.nullable:
            return Entry("", None)
        return Entry(
            "", None, f"'{feat.name}' needs a number: the model never saw it missing in training"
        )
    if not _NUMBER.fullmatch(typed):
        return Entry(
            typed,
            None,
            f"'{typed[:40]}' is not a number; write digits with '.' for decimals "
            "(no thousands separators)",
        )
    value = float(typed)
    if not math.isfinite(value):
        return Entry(typed, None, f"{typed[:40]} is too large to be a number the model can use")
    if feat.integer and not value.is_integer():
        return Entry(
            typed,
            None,
            f"'{feat.name}' takes whole numbers only (every training value was whole); "
            f"{typed} is not one and is not rounded for you",
        )
    return Entry(typed, value)


def value_text(value: Any) -> str:
    """A value as the page shows it: numbers at full precision (what was used)."""
    if value is None:
        return "missing"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
