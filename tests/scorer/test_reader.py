"""The reader against Python's own csv module: whatever the text, block size and batch size,
the same records, row numbers, starting lines and refusals (Arrow parses quote-free blocks, the
csv module everything else, so the two must never disagree)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer import csvtext
from scorer.errors import FileRefused
from scorer.reader import CsvStream
from scorer.units import ColumnBatch, ScannedUnit, TextUnit, parse_unit

PIECES = [
    "a", "1", "2.5", "31,4", "", " ", "é", "日本", '"q,1"', '"q;1"', '"multi\nline"',
    '"multi\r\nline"', '"x""y"', '"bad"x', 'a"b', "\u2028", "\x0b", "\x85",
]  # fmt: skip
# "," stands for the file's delimiter (";" in a semicolon file)
SEPARATORS = [",", ",", ",", "\n", "\n", "\r\n", "\r", "\n\n", "\r\n\r\n"]


def reference(data: bytes, delimiter: str = ",") -> object:
    """What a stdlib reader over the whole text finds: (header, [(record, line)]) or a code.

    Like the scorer it reads as a stream: a NUL byte is refused at once (it is checked per
    chunk of bytes), an invalid UTF-8 byte only after the whole lines before it were parsed.
    """
    if b"\x00" in data:
        return "BINARY_CONTENT"
    deferred = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode("utf-8")
        text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1]
        deferred = "NOT_UTF8"
    reader = csv.reader(
        io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True, delimiter=delimiter
    )
    header, rows, start = None, [], 1
    try:
        for rec in reader:
            line, start = start, reader.line_num + 1
            if not rec:
                continue
            if header is None:
                header = rec
            else:
                rows.append((rec, line))
    except csv.Error as exc:
        if deferred and "unexpected end" in str(exc):  # a quoted value cut by the bad byte
            return deferred
        return "MALFORMED_CSV"
    if deferred:
        return deferred
    return "EMPTY" if header is None else (header, rows)


def ours(
    data: bytes, batch_size: int, block_chars: int, delimiter: str | Callable[[str], str] = ","
) -> object:
    try:
        stream = CsvStream(
            io.BytesIO(data), batch_size=batch_size, block_chars=block_chars, delimiter=delimiter
        )
        rows: list[tuple[list[str], int]] = []
        for batch in stream.batches():
            assert batch.row_numbers == list(range(len(rows) + 1, len(rows) + len(batch.lines) + 1))
            rows += zip(batch.records, batch.lines, strict=True)
        assert stream.rows_read == len(rows)
        return stream.header, rows
    except FileRefused as exc:
        return exc.code


def texts_with(delimiter: str) -> st.SearchStrategy[str]:
    separators = [s.replace(",", delimiter) for s in SEPARATORS]
    return st.builds(
        lambda eol, body, bom: (
            ("\ufeff" if bom else "") + delimiter.join(["h1", "h2", "h3"]) + eol + "".join(body)
        ),
        st.sampled_from(["\n", "\r\n", "\r"]),
        st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(separators)).map("".join)),
        st.booleans(),
    )


texts = texts_with(",")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from([(1, 1), (3, 5), (50, 7), (2, 64), (32768, 1 << 21)]))
def test_records_lines_and_refusals_match_the_csv_module(text: str, sizes: tuple[int, int]) -> None:
    assert ours(text.encode(), *sizes) == reference(text.encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts_with(";"), st.sampled_from([(1, 1), (3, 5), (50, 7), (32768, 1 << 21)]))
def test_semicolon_files_match_the_csv_module_too(text: str, sizes: tuple[int, int]) -> None:
    data = text.encode()
    assert ours(data, *sizes, delimiter=";") == reference(data, ";")
    # a rule that picks ';' from the header line reads the same
    assert ours(data, *sizes, delimiter=lambda line: ";") == reference(data, ";")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(0, 10_000), st.sampled_from([b"\xff", b"\xe6", b"\x00", b"\xc3"]))
def test_a_bad_byte_anywhere_is_refused_in_file_order(text: str, at: int, bad: bytes) -> None:
    data = text.encode()
    at %= len(data) + 1
    data = data[:at] + bad + data[at:]
    for sizes in [(3, 5), (32768, 1 << 21)]:
        assert ours(data, *sizes) == reference(data)


def test_quote_free_lines_become_arrow_columns_and_anything_else_falls_back() -> None:
    unit = TextUnit("a,b\n1,x\n2,y\r\n3,z", first_line=2, first_row=1, records=4)
    batch = parse_unit(unit)
    assert isinstance(batch, ColumnBatch)
    assert [c.type for c in batch.columns] == [pa.string(), pa.string()]
    assert batch.records == [["a", "b"], ["1", "x"], ["2", "y"], ["3", "z"]]
    assert batch.row_numbers == [1, 2, 3, 4]
    assert batch.lines == [2, 3, 4, 5]
    ragged = TextUnit("1,x\n2\n3,z,extra\n", first_line=5, first_row=4, records=3)
    fallback = parse_unit(ragged)
    assert not isinstance(fallback, ColumnBatch)
    assert fallback.records == [["1", "x"], ["2"], ["3", "z", "extra"]]
    assert fallback.row_numbers == [4, 5, 6]
    assert fallback.lines == [5, 6, 7]


def test_a_big_clean_file_is_read_as_arrow_columns_in_bounded_units() -> None:
    rows = 50_000
    text = "n,c\n" + "".join(f"{i},v{i % 7}\n" for i in range(rows))
    stream = CsvStream(io.BytesIO(text.encode()), batch_size=4096)
    units = list(stream.units())
    assert all(isinstance(u, TextUnit) for u in units)
    assert sum(u.records for u in units) == rows == stream.rows_read
    assert max(u.records for u in units) < 3 * 4096  # about batch_size rows per unit
    starts = [1 + sum(x.records for x in units[:i]) for i in range(len(units))]
    assert [u.first_row for u in units] == starts


def test_semicolon_lines_become_arrow_columns_with_commas_inside_cells() -> None:
    unit = TextUnit("31,4;x,y\n2;z\n", first_line=2, first_row=1, records=2, delimiter=";")
    batch = parse_unit(unit)
    assert isinstance(batch, ColumnBatch)
    assert batch.records == [["31,4", "x,y"], ["2", "z"]]


def test_the_first_unit_can_be_looked_at_before_the_units_are_handed_out() -> None:
    text = "n;c\n" + "".join(f"{i};v{i}\n" for i in range(100))
    stream = CsvStream(io.BytesIO(text.encode()), batch_size=16, delimiter=";")
    first = stream.first_unit()
    assert first is not None
    assert first.first_row == 1
    assert stream.first_unit() is first  # looking twice reads nothing more
    units = list(stream.units())
    assert units[0] is first
    assert sum(u.records for u in units) == 100 == stream.rows_read
    assert CsvStream(io.BytesIO(b"n;c\n"), delimiter=";").first_unit() is None


def cuts(data: bytes, batch_size: int, block_chars: int, scan: bool, delimiter: str = ",") -> list:
    """Every unit as the reader hands it out (with the byte offset and line count after it),
    then the refusal's code and message: what a shard plan is made of."""
    got: list = []
    try:
        stream = CsvStream(
            io.BytesIO(data), batch_size=batch_size, block_chars=block_chars, delimiter=delimiter
        )
        stream.scan_cuts = scan
        got.append((stream.header, stream.handed_out, stream.lines_out))
        for unit in stream.units():
            # a unit the scan cut from bytes must be the reader's unit once its lines are split
            shown = unit.as_lines() if isinstance(unit, ScannedUnit) else unit
            got.append((repr(shown), stream.handed_out, stream.lines_out, stream.rows_read))
    except FileRefused as exc:
        got.append((exc.code, exc.message))
    return got


WELL_FORMED = ["a", "1", "", " ", "é", '"q,1"', '"multi\nline"', '"multi\r\nline"', '"x""y"',
               '""', '""""', '"\r"', '"\n\n"', '"a\rb"', "\u2028", "\x85"]  # fmt: skip
well_formed = st.builds(
    lambda eol, body, bom, tail: (
        ("\ufeff" if bom else "") + "h1,h2,h3" + eol + "".join(body) + tail
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.tuples(st.sampled_from(WELL_FORMED), st.sampled_from(SEPARATORS)).map("".join)),
    st.booleans(),
    st.sampled_from(["", "", '"open\n', 'a"b\n', '"bad"x\n', "\r", "\n\n"]),  # trouble at the end
)
SIZES = [(1, 1), (2, 3), (3, 5), (50, 7), (2, 64), (4, 200), (32768, 1 << 21)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(well_formed, texts), st.sampled_from(SIZES))
def test_units_cut_by_the_quote_scan_are_the_csv_modules(text: str, sizes: tuple[int, int]) -> None:
    """The shard plan's fast cuts (quote parity where it provably agrees, the csv module
    elsewhere) give the reader's units exactly: the same lines, rows, line numbers, byte
    offsets and refusals, at every block and unit size."""
    data = text.encode()
    assert cuts(data, *sizes, scan=True) == cuts(data, *sizes, scan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    well_formed,
    st.integers(0, 10_000),
    st.sampled_from([b"\xff", b"\xe6", b"\x00", b"\xc3", b'"', b"\r", b"\n"]),
    st.sampled_from(SIZES),
)
def test_units_cut_by_the_quote_scan_survive_a_bad_byte_anywhere(
    text: str, at: int, bad: bytes, sizes: tuple[int, int]
) -> None:
    data = text.encode()
    at %= len(data) + 1
    data = data[:at] + bad + data[at:]
    assert cuts(data, *sizes, scan=True) == cuts(data, *sizes, scan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    well_formed,
    st.integers(0, 10_000),
    st.sampled_from([b"\xff", b"\xe6", b"\x00", b"\xc3"]),
    st.sampled_from(SIZES[:4]),
    st.integers(1, 9),
)
def test_the_quote_scan_refuses_a_bad_byte_read_in_small_chunks_the_same(
    text: str, at: int, bad: bytes, sizes: tuple[int, int], chunk: int
) -> None:
    """Bytes read a few at a time: the bad byte is met while the scan holds lines (reading on
    past a quoted value), and the refusal still names the reader's line."""
    data = text.encode()
    at %= len(data) + 1
    data = data[:at] + bad + data[at:]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvtext, "READ_SIZE", chunk)
        assert cuts(data, *sizes, scan=True) == cuts(data, *sizes, scan=False)


def test_the_plan_pass_cuts_quoted_blocks_as_bytes_and_they_parse_as_the_readers() -> None:
    text = "h1,h2\n" + "".join(f'{i},"a\n{i}"\n' if i % 3 else f"{i},b\n" for i in range(200))
    plain = list(CsvStream(io.BytesIO(text.encode()), batch_size=16).units())
    stream = CsvStream(io.BytesIO(text.encode()), batch_size=16)
    stream.scan_cuts = True
    scanned = list(stream.units())
    assert all(isinstance(u, ScannedUnit) for u in scanned)  # no line lists on this path
    assert [parse_unit(u) for u in scanned] == [parse_unit(u) for u in plain]
    assert sum(u.records for u in scanned) == 200 == stream.rows_read


def test_the_quote_scan_answers_for_well_formed_quoting_only() -> None:
    from scorer.csvtext import Scanned, scan_records

    text = 'a,"b\nc",d\n\n"x""y",2\r\n"open\n'
    assert scan_records(text, ",", 10) == Scanned(lines=5, records=2, open=True)
    assert scan_records(text, ",", 1) == Scanned(lines=2, records=1, open=False)
    assert scan_records('a;"b\nc";d\n', ";", 5) == Scanned(lines=2, records=1, open=False)
    for bad in ('a,b"c\n', 'a,"b"c\n', 'a, "b"\n', 'a,"b" \n'):  # the csv module must say
        assert scan_records(bad, ",", 5) is None
    big = '"' + "x" * (1024 * 1024) + '"\n'  # may be over the csv module's field limit
    assert scan_records(big, ",", 5) is None
