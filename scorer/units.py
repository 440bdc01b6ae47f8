"""The pieces a CSV stream is cut into (``scorer.reader``) and their parsing into batches.

A unit is whole physical lines holding whole records, with the row number of its first record
and the line it starts on: a ``TextUnit`` (quote-free, one record per line: Arrow's CSV parser
reads it into string columns), a ``LineUnit`` (lines for Python's csv module, which follows
RFC 4180 quoting), or a ``ScannedUnit`` (a ``LineUnit``'s lines kept as the bytes they take, cut
by the shard plan's quote scan). Units are plain values: they can be parsed in another process.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from scorer.csvtext import MAX_FIELD, refusal, split_lines


@dataclass(slots=True)
class TextUnit:
    """Whole lines with no quote, no blank line and no lone CR: one record per line."""

    text: str
    first_line: int  # line number of the first line (the header is line 1)
    first_row: int  # row number of the first record
    records: int
    delimiter: str = ","


@dataclass(slots=True)
class LineUnit:
    """The physical lines holding a batch of records, for the csv module."""

    lines: list[str]
    first_line: int
    first_row: int
    records: int
    simple: bool  # one record per line: no quote, no blank line
    delimiter: str = ","


@dataclass(slots=True)
class ScannedUnit:
    """The physical lines of a ``LineUnit`` as the UTF-8 bytes they take, cut by the quote scan
    (the shard plan's pass, ``CsvStream.scan_cuts``): the same unit, its lines not split."""

    data: bytes
    lines: int  # physical lines
    first_line: int
    first_row: int
    records: int
    simple: bool
    delimiter: str = ","

    def as_lines(self) -> LineUnit:
        return LineUnit(
            split_lines(self.data.decode()),
            self.first_line,
            self.first_row,
            self.records,
            self.simple,
            self.delimiter,
        )


Unit = TextUnit | LineUnit | ScannedUnit


@dataclass(slots=True)
class RecordBatch:
    """Records as lists of cells (any shape), with their row numbers and starting lines."""

    records: list[list[str]]
    row_numbers: list[int]
    lines: list[int]


@dataclass(slots=True)
class ColumnBatch:
    """Records of one width as Arrow string columns; record i has row first_row + i and sits
    on line first_line + i."""

    columns: list[pa.Array]
    first_row: int
    first_line: int
    n: int

    def record(self, i: int) -> list[str]:
        return [str(col[i].as_py()) for col in self.columns]

    @property
    def records(self) -> list[list[str]]:
        return [list(r) for r in zip(*(c.to_pylist() for c in self.columns), strict=True)]

    @property
    def row_numbers(self) -> list[int]:
        return list(range(self.first_row, self.first_row + self.n))

    @property
    def lines(self) -> list[int]:
        return list(range(self.first_line, self.first_line + self.n))


Batch = RecordBatch | ColumnBatch


def parse_unit(unit: Unit, *, threads: bool = False) -> Batch:
    """The records of a unit: Arrow columns for a ``TextUnit`` of one width, else lists."""
    if isinstance(unit, ScannedUnit):
        unit = unit.as_lines()
    if isinstance(unit, TextUnit):
        columns = _arrow_columns(unit.text, threads, unit.delimiter)
        if columns is not None:
            return ColumnBatch(columns, unit.first_row, unit.first_line, unit.records)
        unit = LineUnit(
            split_lines(unit.text),
            unit.first_line,
            unit.first_row,
            unit.records,
            True,
            unit.delimiter,
        )
    rows = list(range(unit.first_row, unit.first_row + unit.records))
    reader = csv.reader(unit.lines, strict=True, delimiter=unit.delimiter)
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        if unit.simple:
            records = list(reader)
            return RecordBatch(
                records, rows, list(range(unit.first_line, unit.first_line + len(rows)))
            )
        start = unit.first_line
        for rec in reader:
            line = start
            start = unit.first_line + reader.line_num
            if rec:
                records.append(rec)
                lines.append(line)
    except csv.Error as exc:
        raise refusal(exc, unit.first_line - 1 + reader.line_num) from exc
    return RecordBatch(records, rows, lines)


def _arrow_columns(text: str, threads: bool, delimiter: str = ",") -> list[pa.Array] | None:
    """The cells of quote-free one-record-per-line text as string columns, or None when the
    lines do not all have the first line's width or a cell is over ``MAX_FIELD``."""
    first = text.find("\n")
    width = (text[:first] if first >= 0 else text).count(delimiter) + 1
    names = [f"c{j}" for j in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode()),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=threads),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False, double_quote=False, escape_char=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,
            ),
        )
    except pa.ArrowInvalid:  # rows of another width: the csv module tells which
        return None
    columns = [col.combine_chunks() for col in table.columns]
    if len(text) > MAX_FIELD:
        for col in columns:
            longest = pc.max(pc.binary_length(col)).as_py()
            if longest is not None and longest > MAX_FIELD:  # bytes ≥ characters
                return None
    return columns
