"""Which training columns become features, and of which kind (pure, no I/O).

Row ids are left out by default: a model that learns from an id extrapolates from it, so a later
batch with higher ids gets different predictions for the same rows. ``--ignore``/``--keep`` and
``--categorical``/``--numeric`` let the user decide instead; every choice is written in the card.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scorer.card import IgnoredColumn
from scorer.errors import BadArgument
from training import profile
from training.errors import TrainingDataError

MIN_ID_ROWS = 20  # fewer rows say too little about uniqueness to call a column an id
TEXT_ID_SHARE = 0.95  # distinct share of a text column that can never generalise as a category
NAMED_ID_SHARE = 0.5  # distinct share that, with an id-like name, makes a column an id

# An id is named 'id' as a word of its name ('customer_id', 'CustomerID', 'orderId', 'SK_ID_CURR')
# or is one of the names tables give their keys; 'Unnamed: 0' is the index pandas writes unnamed.
# 'index' or 'key' only as the whole name: 'body_mass_index' is a measurement.
_ID_WORDS = frozenset({"id", "ids", "uuid", "guid"})
_ID_NAMES = frozenset({"key", "pk", "index", "idx", "row", "rowid", "no", "nr", "number"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")
_CODE = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9_\-./:#]*$")  # 'C-00123', 'AB12345', 'x_9'


@dataclass(frozen=True, slots=True)
class ColumnChoices:
    """The user's say over columns (CLI options), each a tuple of column names."""

    ignore: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """The training frame reduced to target + features, kinds applied, and what was left out."""

    frame: pd.DataFrame
    ignored: tuple[IgnoredColumn, ...]
    numeric: frozenset[str]  # forced --numeric: the user chose, no '--categorical?' hint


def split_names(text: str | None) -> tuple[str, ...]:
    """'a, b,c' → ('a', 'b', 'c'); a column name with a comma cannot be given this way."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def id_name(name: str) -> bool:
    """Named like an identifier: 'Id', 'customer_id', 'CustomerID', 'orderId', 'uuid', 'key' …"""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.strip())  # customerId → customer Id
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
    if name.strip().lower().startswith("unnamed"):
        return True
    return bool(_ID_WORDS.intersection(words)) or "".join(words) in _ID_NAMES


def id_reason(name: str, series: pd.Series) -> str | None:
    """Why ``series`` looks like an identifier rather than a feature, or None.

    Whole numbers unique per row are ids when they are a run (1…n in any order) or increase row
    by row; text is an id when nearly every value is distinct (no category of it would ever be
    seen again); any column named like an id is one when at least half its values are distinct.
    A number with fractions (a measurement) is never an id by its values alone.
    """
    present = series.dropna()
    n = len(series)
    if n < MIN_ID_ROWS or present.empty:
        return None
    distinct = int(present.nunique())
    share = distinct / n
    if profile.is_number(series):
        values = present.to_numpy(dtype=float)
        whole = bool(np.all(np.mod(values, 1) == 0))
        if whole and len(present) == n and distinct == n:
            lo, hi = int(values.min()), int(values.max())
            if hi - lo + 1 == n:
                return f"unique per row and sequential ({lo}…{hi}): looks like a row id"
            if bool(np.all(np.diff(values) > 0)):
                return f"unique per row and increasing ({lo}…{hi}): looks like a row id"
    else:
        text = present.astype(str).str.strip()
        if share >= TEXT_ID_SHARE:
            sample = text.iloc[0]
            if bool(text.str.fullmatch(_UUID).all()):
                shape = "UUIDs"
            elif bool(text.str.fullmatch(_CODE).all()):
                shape = f"codes like {sample!r}"
            else:
                shape = f"text like {sample[:30]!r}"
            return (
                f"{share:.0%} of its values are distinct {shape}: looks like an identifier "
                "(no category of it would be seen again)"
            )
    if id_name(name) and share >= NAMED_ID_SHARE:
        return f"named like an identifier with {share:.0%} distinct values"
    return None


def as_codes(series: pd.Series) -> pd.Series:
    """A number column as category text: whole numbers without '.0' (1.0 → '1'), as an input
    file writes codes and the scorer compares them; missing stays missing."""
    if not profile.is_number(series):
        return series

    def text(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(float(v))

    values = series.astype(object)
    return values.map(lambda v: np.nan if pd.isna(v) else text(v))


def plan_columns(frame: pd.DataFrame, target: str, choices: ColumnChoices) -> ColumnPlan:
    """Apply the user's choices and the id detection to the training frame."""
    columns = [str(c) for c in frame.columns]
    named = {
        "--ignore": choices.ignore,
        "--keep": choices.keep,
        "--categorical": choices.categorical,
        "--numeric": choices.numeric,
    }
    for option, names in named.items():
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise BadArgument(
                f"{option} names {_quoted(unknown)}, not a column of the training data; "
                f"columns are: {', '.join(columns)}"
            )
        if target in names:
            raise BadArgument(f"{option} names the target '{target}'; it is never a feature")
    _disjoint("--ignore", choices.ignore, "--keep", choices.keep)
    _disjoint("--categorical", choices.categorical, "--numeric", choices.numeric)
    _disjoint("--ignore", choices.ignore, "--categorical", choices.categorical)
    _disjoint("--ignore", choices.ignore, "--numeric", choices.numeric)
    for name in choices.numeric:
        s = frame[name]
        if not profile.is_number(s):
            bad = s.dropna().astype(str)
            bad = bad[pd.to_numeric(bad, errors="coerce").isna()]
            shown = ", ".join(repr(v) for v in bad.unique()[:3])
            raise TrainingDataError(
                f"--numeric '{name}': the column holds text ({shown}), not numbers; leave it out "
                "of --numeric or clean the values"
            )
    chosen = {*choices.keep, *choices.categorical, *choices.numeric}  # named: never an id
    ignored = [IgnoredColumn(n, "--ignore") for n in choices.ignore]
    for name in columns:
        if name == target or name in chosen or name in choices.ignore:
            continue
        reason = id_reason(name, frame[name])
        if reason is not None:
            ignored.append(IgnoredColumn(name, reason))
    left_out = {i.column for i in ignored}
    kept = [c for c in columns if c not in left_out]
    if kept == [target]:
        raise TrainingDataError(
            f"every column besides the target was left out as an id ({_quoted(sorted(left_out))})"
            "; name the ones that are features with --keep"
        )
    out = frame[kept].copy()
    for name in choices.categorical:
        out[name] = as_codes(out[name])
    ordered = tuple(sorted(ignored, key=lambda i: columns.index(i.column)))
    return ColumnPlan(out, ordered, frozenset(choices.numeric))


def _disjoint(a: str, names_a: Sequence[str], b: str, names_b: Sequence[str]) -> None:
    both = [n for n in names_a if n in names_b]
    if both:
        raise BadArgument(f"{_quoted(both)} named in both {a} and {b}; choose one")


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)
