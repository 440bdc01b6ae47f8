"""Which CSV dialect a file is written in, decided from the file itself and never guessed.

Files saved by spreadsheets in European locales separate columns with ';' and write decimals
with ',' (`31,4`). A header that names every column the model needs when split on ';' (and not
on ',') makes the file semicolon-separated. In such a file the decimal mark is decided once,
from the number cells of its first batch: only `31,4` forms → ','; only `31.4` forms → '.';
both → the file is refused; neither (whole numbers only) → '.'. Later cells in the other form
are rejected as WRONG_TYPE with a hint; thousands separators are never guessed. A
comma-separated file keeps the plain rules ('.' decimals only).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from scorer import categories
from scorer.card import ModelCard
from scorer.codes import Code
from scorer.errors import FileRefused
from scorer.reader import CsvStream
from scorer.schema import HeaderPlan, plan_header
from scorer.units import ColumnBatch, parse_unit

COMMA_NUMBER = r"[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?"
POINT_NUMBER = r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?"
# digits in groups of three: '20,000.0', '1.234,5', '1 234', "1'234"
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:([.,'\u00a0\u202f ])\d{3})(?:\1\d{3})*(?:[.,]\d+)?")


def delimiter_rule(card: ModelCard) -> Callable[[str], str]:
    """The rule ``CsvStream`` applies to the header's first line: ';' only when that split, and
    not the ',' split, names every column the model needs."""
    required = [f.name for f in card.features if f.required]
    return lambda line: delimiter_of(line, required)


def delimiter_of(line: str, required: Sequence[str]) -> str:
    """';' when the header line split on ';', and not on ',', names every ``required`` column."""
    if required and not _names(line, ",", required) and _names(line, ";", required):
        return ";"
    return ","


def _names(line: str, delimiter: str, required: Sequence[str]) -> bool:
    try:
        fields = next(csv.reader([line], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return False
    return set(required) <= set(fields)


def plan_file(stream: CsvStream, card: ModelCard) -> HeaderPlan:
    """The header plan of the stream's file, with its dialect: a semicolon file's decimal mark
    is decided from its first batch (read now; ``stream.units()`` still hands it out)."""
    plan = plan_header(stream.header, card)
    if stream.delimiter == ",":
        return plan
    plan = dataclasses.replace(plan, delimiter=stream.delimiter)
    unit = stream.first_unit()
    if unit is None:
        return plan
    batch = parse_unit(unit)
    numbers = [
        (feat.name, idx)
        for feat, idx in zip(plan.features, plan.feature_index, strict=True)
        if feat.kind == "number"
    ]
    if isinstance(batch, ColumnBatch) and len(batch.columns) == plan.width:
        cells = {name: batch.columns[idx] for name, idx in numbers}
    else:
        shaped = [r for r in batch.records if len(r) == plan.width]
        cells = {name: pa.array([r[idx] for r in shaped], pa.string()) for name, idx in numbers}
    return dataclasses.replace(plan, decimal=decimal_mark(cells))


def decimal_mark(cells: dict[str, pa.Array]) -> str:
    """',' or '.' from number cells (by column), or FileRefused when both forms occur."""
    comma: tuple[str, str] | None = None  # (column, an example cell)
    point: tuple[str, str] | None = None
    for name, col in cells.items():
        stripped = pc.utf8_trim(col, categories.WHITESPACE)
        if comma is None:
            comma = _example(stripped, COMMA_NUMBER, name)
        if point is None:
            point = _example(stripped, POINT_NUMBER, name)
    if comma and point:
        raise FileRefused(
            f"the numbers mix decimal marks: '{comma[0]}' has {comma[1]!r} (decimal comma) and "
            f"'{point[0]}' has {point[1]!r} (decimal point); save the file with one decimal mark",
            code=Code.MIXED_DECIMAL_MARKS,
        )
    return "," if comma else "."


def _example(stripped: pa.Array, pattern: str, name: str) -> tuple[str, str] | None:
    hits = stripped.filter(pc.match_substring_regex(stripped, f"^(?:{pattern})$"))
    return (name, str(hits[0].as_py())) if len(hits) else None


def number_hint(value: str, decimal: str) -> str:
    """Why a cell is not a number, when its form says so (for the WRONG_TYPE message)."""
    value = value.strip()
    plain = re.fullmatch(COMMA_NUMBER, value) or re.fullmatch(POINT_NUMBER, value)
    if _GROUPED.fullmatch(value) and not plain:
        return "; write numbers without thousands separators"
    if decimal == "," and re.fullmatch(POINT_NUMBER, value):
        return (
            "; this file writes decimals with ',' (decided from its first rows): write "
            f"{value.replace('.', ',')!r}, and no thousands separators"
        )
    if decimal == "." and re.fullmatch(COMMA_NUMBER, value):
        return "; use '.' as the decimal separator"
    return ""
