"""Format output CSV bytes (pure): predictions and rejected rows, safe to open in a spreadsheet.

A cell that starts with = + - @ TAB or CR and is not a plain number could run as a formula in
Excel/Sheets; it is written with a leading apostrophe. Numbers, including negative ones, are kept.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from scorer.card import ModelCard
from scorer.schema import probability_columns
from scorer.validate import NUMBER_RE, Rejection

_RISKY = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = rf"^\s*{NUMBER_RE}\s*$"
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")
REJECTED_HEADER = ("row_number", "line", "column", "code", "message", "raw")


def safe_cells(values: pa.Array) -> pa.Array:
    starts = pc.match_substring_regex(values, _RISKY)
    if not pc.any(starts).as_py():  # the common case: nothing to check further
        return values
    risky = pc.and_(starts, pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)


def safe_text(value: str) -> str:
    return str(safe_cells(pa.array([value], pa.string()))[0].as_py())


def header_line(columns: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([safe_text(c) for c in columns])
    return buf.getvalue().encode()


def prediction_columns(header: tuple[str, ...], card: ModelCard) -> list[str]:
    cols = [*header, "row_number", "prediction"]
    if card.task != "classification":
        return cols
    return [*cols, "prediction_score", *probability_columns(card)]


def predictions_csv(
    columns: list[pa.Array],
    row_numbers: np.ndarray,
    values: np.ndarray,
    score: np.ndarray | None,
    formula_safe: frozenset[int] = frozenset(),
    proba: np.ndarray | None = None,
) -> bytes:
    """CSV lines (no header) for scored rows: the input's columns (the scored rows' cells as
    given) + row_number + prediction (+ prediction_score + one probability per class)."""
    if not len(row_numbers):
        return b""
    arrays = [col if j in formula_safe else safe_cells(col) for j, col in enumerate(columns)]
    names = [f"c{j}" for j in range(len(columns))]
    arrays.append(pa.array(row_numbers, pa.int64()))
    names.append("row_number")
    if values.dtype == object:
        arrays.append(safe_cells(pa.array([str(v) for v in values], pa.string())))
    else:
        arrays.append(pa.array(values, pa.float64()))
    names.append("prediction")
    if score is not None:
        arrays.append(pa.array(score, pa.float64()))
        names.append("prediction_score")
    if proba is not None:
        for k in range(proba.shape[1]):
            arrays.append(pa.array(np.ascontiguousarray(proba[:, k]), pa.float64()))
            names.append(f"p{k}")
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(arrays, names=names), buf, _OPTIONS)
    return buf.getvalue()


def rejected_csv(rows: list[Rejection]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for r in rows:
        writer.writerow(
            [
                r.row_number,
                r.line,
                safe_text(r.column),
                r.code,
                safe_text(r.message),
                safe_text(r.raw),
            ]
        )
    return buf.getvalue().encode()
