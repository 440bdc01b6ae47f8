"""Row validation against the card (pure): parsed records in, model-ready frame + rejections out.

Every value is checked explicitly instead of trusting pandas' inference: only plain decimal
numbers are numbers (no '1_000', no 'inf', no '1,5' — unless the file's dialect has decimal
commas, then no '1.5'), an empty or whitespace-only value is missing, a category is looked up by
the category rule (``scorer.categories``), and a row with the wrong number of fields is rejected
rather than padded or truncated.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from scorer import categories, dialect
from scorer.codes import Code
from scorer.schema import HeaderPlan
from scorer.units import ColumnBatch

NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_ANCHORED_NUMBER = f"^(?:{NUMBER_RE})$"
_NON_FINITE = pa.array(
    ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"]
)
_WHITESPACE = categories.WHITESPACE  # every character Python's str.strip() removes
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


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
    valid_cells: list[pa.Array] = field(default_factory=list)
    # categories of the valid rows as positions in the card's list: -1 unseen, -2 missing
    category_codes: dict[str, np.ndarray] = field(default_factory=dict)
    # positions of the columns whose valid cells cannot start a spreadsheet formula
    formula_safe: frozenset[int] = frozenset()


# model input → {row of the frame: (column or "", why)}
Refuse = Callable[[pd.DataFrame], dict[int, tuple[str, str]]]


def check_batch(
    records: list[list[str]],
    row_numbers: list[int],
    lines: list[int],
    plan: HeaderPlan,
    refuse: Refuse | None = None,
) -> CheckedBatch:
    """Check records of any shape: a row with the wrong number of fields is rejected."""
    n = len(records)
    widths = np.fromiter(map(len, records), dtype=np.int64, count=n)
    code = np.full(n, None, dtype=object)
    col_of = np.full(n, "", dtype=object)
    code[widths < plan.width] = Code.TOO_FEW_FIELDS
    code[widths > plan.width] = Code.TOO_MANY_FIELDS
    shaped = np.flatnonzero(widths == plan.width)
    shaped_records = records if len(shaped) == n else [records[i] for i in shaped]
    # one transpose in C instead of a list comprehension per column
    cells = list(zip(*shaped_records, strict=True)) if len(shaped) else [()] * plan.width
    columns = [pa.array(col, pa.string()) for col in cells]
    return _check(
        columns,
        shaped,
        code,
        col_of,
        plan,
        lambda i: (row_numbers[i], lines[i], records[i]),
        refuse,
    )


def check_columns(
    batch: ColumnBatch, plan: HeaderPlan, refuse: Refuse | None = None
) -> CheckedBatch:
    """Check records that are string columns already (every row has the batch's width)."""
    if len(batch.columns) != plan.width:  # every row too short or too long
        return check_batch(batch.records, batch.row_numbers, batch.lines, plan, refuse)
    n = batch.n
    return _check(
        batch.columns,
        np.arange(n),
        np.full(n, None, dtype=object),
        np.full(n, "", dtype=object),
        plan,
        lambda i: (batch.first_row + i, batch.first_line + i, batch.record(i)),
        refuse,
    )


def _check(
    columns: list[pa.Array],
    shaped: np.ndarray,
    code: np.ndarray,
    col_of: np.ndarray,
    plan: HeaderPlan,
    row_of: Callable[[int], tuple[int, int, list[str]]],
    refuse: Refuse | None = None,
) -> CheckedBatch:
    """The shared core: ``columns`` hold the cells of the rows at ``shaped`` (positions in the
    batch); ``code``/``col_of`` already carry the width problems of the other rows. ``refuse``
    (only after the model failed on the batch) names the valid rows the model cannot take;
    they are rejected as MODEL_REFUSED with its reason."""
    m = len(shaped)
    values_of: dict[str, np.ndarray] = {}
    warn: Counter[str] = Counter()
    col_warn: dict[str, Counter[str]] = {}
    pending: list[np.ndarray] = []  # per feature: the rows that get a warning if scored
    codes: dict[str, np.ndarray] = {}
    normalised_of: dict[str, np.ndarray] = {}  # rows whose category was found by its fold
    plain_numbers: list[int] = []  # columns of numbers with no blank cell
    for feat, idx in zip(plan.features, plan.feature_index, strict=True):
        raw = columns[idx]
        stripped = pc.utf8_trim(raw, _WHITESPACE)
        empty = _arrow_bool(pc.equal(pc.binary_length(stripped), 0))
        if feat.kind == "number":
            if plan.decimal == ",":
                is_num, values = _comma_numbers(stripped)
            else:
                is_num, values = parse_numbers(stripped)
            finite = np.isfinite(values)
            bad_type = ~empty & ~is_num
            non_finite = is_num & ~finite
            if bad_type.any():
                words = _arrow_bool(pc.is_in(pc.utf8_lower(stripped), value_set=_NON_FINITE))
                non_finite |= bad_type & words
                bad_type &= ~words
            _mark(code, col_of, shaped, bad_type, Code.WRONG_TYPE, feat.name)
            _mark(code, col_of, shaped, non_finite, Code.NON_FINITE, feat.name)
            values[empty] = np.nan
            outside = np.zeros(m, dtype=bool)
            if feat.min is not None and feat.max is not None:
                with np.errstate(invalid="ignore"):
                    outside = finite & ((values < feat.min) | (values > feat.max))
            pending.append(outside)
            values_of[feat.name] = values
            if not empty.any() and len(raw) and pc.all(pc.equal(raw, stripped)).as_py():
                plain_numbers.append(idx)  # each valid cell is a bare number: never a formula
        else:
            code_of, normalised = _category_codes(raw, empty, feat.categories)
            objects = _category_objects(stripped, code_of, feat.categories)
            # a card without categories (none seen in training) warns about none
            pending.append(code_of == -1 if feat.categories else np.zeros(m, dtype=bool))
            if normalised.any():
                normalised_of[feat.name] = normalised
            codes[feat.name] = code_of
            values_of[feat.name] = objects
        if not feat.nullable:
            _mark(code, col_of, shaped, empty, Code.MISSING_VALUE, feat.name)

    ok = code == None  # noqa: E711 - elementwise comparison
    valid = np.flatnonzero(ok)
    why: dict[int, str] = {}
    if refuse is not None and len(valid):
        in_valid = ok[shaped]
        candidates = pd.DataFrame({name: vals[in_valid] for name, vals in values_of.items()})
        for pos, (column, reason) in refuse(candidates).items():
            row = int(valid[pos])
            code[row], col_of[row], why[row] = Code.MODEL_REFUSED, column, reason
        ok = code == None  # noqa: E711
        valid = np.flatnonzero(ok)
    if len(valid) == m:
        frame = pd.DataFrame(values_of, copy=False)
        valid_cells = list(columns)
        in_shaped = None
    else:
        in_shaped = ok[shaped]
        frame = pd.DataFrame({name: vals[in_shaped] for name, vals in values_of.items()})
        keep = pa.array(in_shaped)
        valid_cells = [col.filter(keep) for col in columns]
        codes = {name: c[in_shaped] for name, c in codes.items()}
    for mask, feat in zip(pending, plan.features, strict=True):
        count = int(mask.sum() if in_shaped is None else mask[in_shaped].sum())
        if count:
            wcode = Code.OUT_OF_RANGE if feat.kind == "number" else Code.UNSEEN_CATEGORY
            warn[wcode] += count
            col_warn.setdefault(feat.name, Counter())[wcode] += count
    for name, mask in normalised_of.items():
        count = int(mask.sum() if in_shaped is None else mask[in_shaped].sum())
        if count:
            warn[Code.CATEGORY_NORMALISED] += count
            col_warn.setdefault(name, Counter())[Code.CATEGORY_NORMALISED] += count

    rejections = []
    for i in np.flatnonzero(~ok):
        row, line, record = row_of(int(i))
        what, column = str(code[i]), str(col_of[i])
        rejections.append(
            Rejection(
                row_number=row,
                line=line,
                column=column,
                code=what,
                message=why.get(int(i)) or _message(what, column, record, plan),
                raw=_raw_line(record),
            )
        )
    return CheckedBatch(
        frame, valid, rejections, warn, col_warn, valid_cells, codes, frozenset(plain_numbers)
    )


def parse_numbers(stripped: pa.Array | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(is a plain decimal number, its float value or NaN) for each stripped cell.

    Only ASCII decimals are numbers (RE2's \\d is ASCII); Arrow's parser rounds correctly,
    like ``float``, and gives inf for a decimal too large for a float.
    """
    arr = stripped if isinstance(stripped, pa.Array) else pa.array(stripped, pa.string())
    if len(arr) and pc.all(pc.ascii_is_decimal(arr)).as_py():  # whole numbers: no regex needed
        is_num = np.ones(len(arr), dtype=bool)
    else:
        is_num = _arrow_bool(pc.match_substring_regex(arr, _ANCHORED_NUMBER))
    only = arr if is_num.all() else pc.if_else(is_num, arr, pa.scalar(None, pa.string()))
    try:
        values = _arrow_float(pc.cast(only, pa.float64()))
    except pa.ArrowInvalid:  # pragma: no cover - Arrow parses every match; float() agrees
        texts = arr.to_pylist()
        values = np.array([float(t) if ok else np.nan for t, ok in zip(texts, is_num, strict=True)])
    return is_num, values


def _comma_numbers(stripped: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``parse_numbers`` for a file whose decimal mark is ',': '31,4' is 31.4; '31.4' is not
    a number here (a thousands separator or the other mark: never guessed)."""
    point = _arrow_bool(pc.match_substring(stripped, "."))
    is_num, values = parse_numbers(pc.replace_substring(stripped, ",", ".", max_replacements=1))
    is_num &= ~point
    values[point] = np.nan
    return is_num, values


def _category_codes(
    raw: pa.Array, empty: np.ndarray, seen: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``seen``: -1 unseen, -2 missing; found only by case/inner space) per cell.

    Exact cells are found in one vectorised lookup; only the distinct cells left over go
    through the category rule (``scorer.categories``), once each.
    """
    found = pc.index_in(raw, value_set=pa.array(seen, pa.string()))
    code_of = np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
    code_of[empty] = -2
    normalised = np.zeros(len(code_of), dtype=bool)
    left = code_of == -1
    if seen and left.any():
        rows = np.flatnonzero(left)
        cells = raw.take(pa.array(rows))
        distinct = pc.unique(cells)
        index = categories.index(seen)
        matches = [index.match(v) for v in distinct.to_pylist()]
        where = np.asarray(pc.index_in(cells, value_set=distinct), np.int64)
        code_of[rows] = np.array([mt.position for mt in matches], np.int64)[where]
        normalised[rows] = np.array([mt.normalised for mt in matches], bool)[where]
    return code_of, normalised


def _category_objects(stripped: pa.Array, code_of: np.ndarray, seen: tuple[str, ...]) -> np.ndarray:
    """What the model gets: the seen category a cell stands for (so a variant predicts as the
    clean value does), NaN for a missing cell, the trimmed cell for an unseen one."""
    objects = np.empty(len(code_of), dtype=object)
    known = code_of >= 0
    if known.all():
        return np.asarray(seen, dtype=object)[code_of]
    objects[known] = np.asarray(seen, dtype=object)[code_of[known]]
    objects[code_of == -2] = np.nan
    unseen = np.flatnonzero(code_of == -1)
    if len(unseen):
        objects[unseen] = _objects(stripped.take(pa.array(unseen)))
    return objects


def _objects(arr: pa.Array) -> np.ndarray:
    """A writable object array of ``arr``'s strings, each distinct string made once."""
    enc = arr.dictionary_encode()
    vocab = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    return vocab[enc.indices.to_numpy(zero_copy_only=False)]


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


def _message(code: str, column: str, record: list[str], plan: HeaderPlan) -> str:
    if code == Code.TOO_FEW_FIELDS:
        return f"row has {len(record)} fields, the header has {plan.width}; add the missing ones"
    if code == Code.TOO_MANY_FIELDS:
        return (
            f"row has {len(record)} fields, the header has {plan.width}; "
            "quote values that contain commas"
        )
    value = record[plan.header.index(column)] if column in plan.header else ""
    if code == Code.MISSING_VALUE:
        return f"'{column}' is empty; the model needs a value (training data had none missing)"
    if code == Code.NON_FINITE:
        return f"'{column}' is {value.strip()!r}; only finite numbers can be scored"
    if code == Code.WRONG_TYPE:
        # a comma-decimal file has its own reading of '.' and ',' (scorer/dialect.py)
        hint = (
            _number_hint(value.strip())
            if plan.decimal == "."
            else dialect.number_hint(value, plan.decimal)
        )
        return f"'{column}' is {_clip(value)!r}, not a number{hint}"
    return code


def _number_hint(value: str) -> str:
    """What to fix in a number written for people: '1,5' (decimal comma), '20,000.0' (thousands
    separators), or '1,234', which could be either, so both are named."""
    decimal = bool(_DECIMAL_COMMA.fullmatch(value))
    thousands = bool(_THOUSANDS.fullmatch(value))
    if decimal and thousands:
        return (
            "; if ',' is the decimal separator use '.', if it separates thousands remove it "
            "(1,234 → 1.234 or 1234)"
        )
    if thousands:
        return "; remove the thousands separators (20,000.5 → 20000.5)"
    if decimal:
        return "; use '.' as the decimal separator"
    return ""


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _raw_line(record: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(record)
    return buf.getvalue()
