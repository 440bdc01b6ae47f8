"""Row validation against the card (pure): parsed records in, model-ready frame + rejections out.

Every value is checked explicitly instead of trusting pandas' inference: only plain decimal
numbers are numbers (no '1_000', no 'inf', no '1,5'), an empty value is missing, and a row with
the wrong number of fields is rejected rather than padded or truncated.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from scorer.schema import HeaderPlan

NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(NUMBER_RE)
_ANCHORED_NUMBER = f"^(?:{NUMBER_RE})$"
_NON_FINITE = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"}
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


@dataclass(frozen=True, slots=True)
class Rejection:
    row_number: int  # 1-based data record number (the header is not a record)
    line: int  # 1-based physical line where the record starts (the header is line 1)
    column: str
    code: str
    message: str
    raw: str  # the record as it was, re-encoded as one CSV line


@dataclass(slots=True)
class CheckedBatch:
    frame: pd.DataFrame  # model input for the valid rows, card feature order
    valid: np.ndarray  # positions (in the batch) of the valid rows
    rejections: list[Rejection]
    warnings: Counter[str] = field(default_factory=Counter)
    column_warnings: dict[str, Counter[str]] = field(default_factory=dict)
    # every column's cells of the valid rows, as given (the output repeats them)
    valid_cells: list[tuple[str, ...]] = field(default_factory=list)


def check_batch(
    records: list[list[str]], row_numbers: list[int], lines: list[int], plan: HeaderPlan
) -> CheckedBatch:
    n = len(records)
    widths = np.fromiter(map(len, records), dtype=np.int64, count=n)
    code = np.full(n, None, dtype=object)
    col_of = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)
    code[widths < plan.width] = "TOO_FEW_FIELDS"
    code[widths > plan.width] = "TOO_MANY_FIELDS"
    shaped = np.flatnonzero(widths == plan.width)
    shaped_records = records if len(shaped) == n else [records[i] for i in shaped]
    # one transpose in C instead of a list comprehension per column
    cells: list[tuple[str, ...]] = list(zip(*shaped_records, strict=True))
    m = len(shaped_records)

    columns: dict[str, object] = {}
    warn: Counter[str] = Counter()
    col_warn: dict[str, Counter[str]] = {}
    pending: list[tuple[str, np.ndarray, np.ndarray]] = []  # (column, positions, warn mask)
    for feat, idx in zip(plan.features, plan.feature_index, strict=True):
        raw = cells[idx] if m else ()
        stripped = list(map(str.strip, raw))
        empty = np.fromiter(map(len, stripped), dtype=np.int64, count=m) == 0
        if feat.kind == "number":
            is_num, values = parse_numbers(stripped)
            finite = np.isfinite(values)
            bad_type = ~empty & ~is_num
            non_finite = is_num & ~finite
            word_nonfinite = np.zeros(m, dtype=bool)
            if bad_type.any():
                lowered = np.fromiter(
                    (s.lower() in _NON_FINITE for s in stripped), dtype=bool, count=m
                )
                word_nonfinite = bad_type & lowered
            _mark(code, col_of, shaped, bad_type & ~word_nonfinite, "WRONG_TYPE", feat.name)
            _mark(code, col_of, shaped, non_finite | word_nonfinite, "NON_FINITE", feat.name)
            values[empty] = np.nan
            outside = np.zeros(len(values), dtype=bool)
            if feat.min is not None and feat.max is not None:
                with np.errstate(invalid="ignore"):
                    outside = finite & ((values < feat.min) | (values > feat.max))
            pending.append((feat.name, shaped, outside))
            columns[feat.name] = values
        else:
            values_obj = np.empty(m, dtype=object)
            values_obj[:] = raw
            values_obj[empty] = np.nan
            if feat.categories:
                seen = frozenset(feat.categories)
                known = np.fromiter(map(seen.__contains__, raw), dtype=bool, count=m)
                unseen = ~empty & ~known
            else:
                unseen = np.zeros(m, dtype=bool)
            pending.append((feat.name, shaped, unseen))
            columns[feat.name] = values_obj
        if not feat.nullable:
            _mark(code, col_of, shaped, empty, "MISSING_VALUE", feat.name)

    valid = np.flatnonzero(code == None)  # noqa: E711 - elementwise comparison
    if len(valid) == m:
        valid_in_shaped = np.ones(m, dtype=bool)
        frame = pd.DataFrame({name: np.asarray(vals) for name, vals in columns.items()})
        valid_cells = cells
    else:
        valid_in_shaped = np.isin(shaped, valid)
        frame = pd.DataFrame(
            {name: np.asarray(vals)[valid_in_shaped] for name, vals in columns.items()}
        )
        keep = np.flatnonzero(valid_in_shaped).tolist()
        if len(keep) > 1:
            pick = itemgetter(*keep)
            valid_cells = [pick(col) for col in cells]
        else:
            valid_cells = [tuple(col[i] for i in keep) for col in cells]
    for (name, _pos, mask), feat in zip(pending, plan.features, strict=True):
        count = int(mask[valid_in_shaped].sum())
        if count:
            wcode = "OUT_OF_RANGE" if feat.kind == "number" else "UNSEEN_CATEGORY"
            warn[wcode] += count
            col_warn.setdefault(name, Counter())[wcode] += count

    rejections = []
    for i in np.flatnonzero(code != None):  # noqa: E711
        rejections.append(
            Rejection(
                row_number=row_numbers[i],
                line=lines[i],
                column=str(col_of[i]),
                code=str(code[i]),
                message=_message(str(code[i]), str(col_of[i]), records[i], plan, detail[i]),
                raw=_raw_line(records[i]),
            )
        )
    return CheckedBatch(frame, valid, rejections, warn, col_warn, valid_cells)


def parse_numbers(stripped: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(is a plain decimal number, its float value or NaN) for each stripped cell.

    ASCII cells go through Arrow (RE2 agrees with Python's ``re`` on ASCII for this pattern, and
    its parser rounds correctly, like ``float``); a cell with other characters is matched by
    Python's ``re`` and, if it matches (Unicode digits), has no finite value.
    """
    m = len(stripped)
    arr = pa.array(stripped, pa.string())
    ascii_ok = pc.string_is_ascii(arr)
    if pc.all(ascii_ok).as_py() is not False:
        is_num = _arrow_bool(pc.match_substring_regex(arr, _ANCHORED_NUMBER))
        ascii_mask = np.ones(m, dtype=bool)
    else:
        is_num = np.fromiter(map(bool, map(_NUMBER.fullmatch, stripped)), dtype=bool, count=m)
        ascii_mask = _arrow_bool(ascii_ok)
    castable = is_num & ascii_mask
    only = arr if castable.all() else pc.if_else(castable, arr, pa.scalar(None, pa.string()))
    try:
        values = _arrow_float(pc.cast(only, pa.float64()))
    except pa.ArrowInvalid:  # pragma: no cover - Arrow parses every ASCII match; float() agrees
        values = np.array(
            [float(t) if ok else np.nan for t, ok in zip(stripped, castable, strict=True)]
        )
    return is_num, values


def _arrow_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_float(arr: pa.Array) -> np.ndarray:
    # nulls become NaN; a writable copy because callers blank out empty cells in place
    return np.array(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def _mark(
    code: np.ndarray,
    col_of: np.ndarray,
    positions: np.ndarray,
    mask: np.ndarray,
    what: str,
    column: str,
) -> None:
    """Record a problem on rows that have none yet (the first problem of a row wins)."""
    targets = positions[mask]
    free = targets[code[targets] == None]  # noqa: E711
    code[free] = what
    col_of[free] = column


def _message(code: str, column: str, record: list[str], plan: HeaderPlan, _d: str) -> str:
    if code == "TOO_FEW_FIELDS":
        return f"row has {len(record)} fields, the header has {plan.width}; add the missing ones"
    if code == "TOO_MANY_FIELDS":
        return (
            f"row has {len(record)} fields, the header has {plan.width}; "
            "quote values that contain commas"
        )
    value = record[plan.header.index(column)] if column in plan.header else ""
    if code == "MISSING_VALUE":
        return f"'{column}' is empty; the model needs a value (training data had none missing)"
    if code == "NON_FINITE":
        return f"'{column}' is {value.strip()!r}; only finite numbers can be scored"
    if code == "WRONG_TYPE":
        hint = (
            "; use '.' as the decimal separator" if _DECIMAL_COMMA.fullmatch(value.strip()) else ""
        )
        return f"'{column}' is {_clip(value)!r}, not a number{hint}"
    return code


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _raw_line(record: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(record)
    return buf.getvalue()
