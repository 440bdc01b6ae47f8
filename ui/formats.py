"""One number format per kind of column, on every page: counts, amounts, shares (pure)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COUNT_FORMAT = "%,d"  # rows, runs: whole numbers with thousands separators
AMOUNT_FORMAT = "%,.2f"  # predictions, money-like values: two decimals, thousands separators
SHARE_FORMAT = "percent"  # probabilities and shares
SECONDS_FORMAT = "%,.2f"


def fmt_number(value: object) -> str:
    """A number as text the way every table shows its kind: integers as integers, 1,234.57,
    small values with 4 significant digits; scientific only outside ordinary magnitudes."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1e15 or abs(x) < 1e-4:
        return f"{x:.3e}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def fmt_share(value: float) -> str:
    return f"{value:.1%}"


def number_format(values: pd.Series) -> str:
    """The table format for a column of numbers: counts when all are whole, else amounts."""
    finite = values[np.isfinite(values)]
    whole = bool(len(finite)) and bool((finite == finite.round()).all())
    return COUNT_FORMAT if whole else AMOUNT_FORMAT
