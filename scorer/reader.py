"""Stream a CSV from bytes to batches of parsed records, refusing what is not a UTF-8 CSV.

The file is never read whole: bytes → (gunzip, with a bomb guard) → UTF-8 decoder → Python's
csv module, which follows RFC 4180 quoting (embedded commas, quotes and newlines), yields
``batch_size`` records at a time with each record's row number and starting line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO

from scorer.errors import FileRefused

MAX_FIELD = 1024 * 1024  # one cell; a larger one is almost surely not a CSV
BOMB_RATIO = 200  # decompressed / compressed bytes
BOMB_FLOOR = 256 * 1024 * 1024  # ratios only matter past this many decompressed bytes
READ_SIZE = 1024 * 1024

csv.field_size_limit(MAX_FIELD)

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (or an Excel .xlsx file); export it as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file; export it as CSV",
    b"%PDF": "a PDF document, not a CSV",
    b"\x89PNG": "a PNG image, not a CSV",
    b"PAR1": "a Parquet file, not a CSV",
    b"BZh": "bzip2-compressed; use gzip (.csv.gz) or plain CSV",
    b"\xfd7zXZ": "xz-compressed; use gzip (.csv.gz) or plain CSV",
}


@dataclass(slots=True)
class RecordBatch:
    records: list[list[str]]
    row_numbers: list[int]
    lines: list[int]


def sniff(first: bytes) -> None:
    """Refuse well-known non-CSV formats by their first bytes."""
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused("the file is UTF-16 encoded; save it as UTF-8 CSV", code="NOT_UTF8")
    for magic, what in _MAGIC.items():
        if first.startswith(magic):
            raise FileRefused(f"the file is {what}", code="NOT_CSV")


class _Counting(io.RawIOBase):
    """Counts bytes, refuses a gzip bomb, maps zlib errors to a refusal."""

    def __init__(self, source: IO[bytes], compressed_size: int) -> None:
        self._src = source
        self._gzip = False
        self._z: zlib._Decompress | None = None
        self._pending = b""
        self._eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.sha256 = hashlib.sha256()  # of the object's bytes as stored
        self._compressed_size = compressed_size
        head = self._src.read(4)
        self.bytes_in += len(head)
        self.sha256.update(head)
        if head[:2] == b"\x1f\x8b":
            self._gzip = True
            self._z = zlib.decompressobj(wbits=31)
            self._pending = self._inflate(head)
        else:
            self._pending = head

    @property
    def compressed(self) -> bool:
        return self._gzip

    def readable(self) -> bool:
        return True

    def _inflate(self, data: bytes) -> bytes:
        assert self._z is not None
        try:
            out = self._z.decompress(data)
            while self._z.eof and self._z.unused_data:  # concatenated gzip members
                rest = self._z.unused_data
                self._z = zlib.decompressobj(wbits=31)
                out += self._z.decompress(rest)
        except zlib.error as exc:
            raise FileRefused(
                f"the gzip data is corrupt ({exc}); compress the file again",
                code="GZIP_CORRUPT",
            ) from exc
        return out

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            chunk = self._src.read(READ_SIZE)
            self.bytes_in += len(chunk)
            self.sha256.update(chunk)
            if not chunk:
                self._eof = True
                if self._gzip and self._z is not None and not self._z.eof:
                    raise FileRefused(
                        "the gzip data ends early (truncated upload?); upload the whole file",
                        code="GZIP_CORRUPT",
                    )
                break
            self._pending = self._inflate(chunk) if self._gzip else chunk
        if self.bytes_out == 0:
            sniff(self._pending[:4])
        if b"\x00" in self._pending:
            raise FileRefused(
                f"the file contains NUL bytes (after {self.bytes_out} bytes); it is binary, "
                "not a text CSV",
                code="BINARY_CONTENT",
            )
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_out += n
        if self._gzip and self.bytes_out > BOMB_FLOOR:
            ratio = self.bytes_out / max(self.bytes_in, 1)
            if ratio > BOMB_RATIO:
                raise FileRefused(
                    f"the gzip data expands more than {BOMB_RATIO}× (decompression bomb?); "
                    "refused. Upload the CSV uncompressed or split it",
                    code="DECOMPRESSION_BOMB",
                )
        return n


class CsvStream:
    """Iterates record batches; ``header`` is read on construction."""

    def __init__(self, source: IO[bytes], compressed_size: int = 0, batch_size: int = 32768):
        self.batch_size = batch_size
        self._raw = _Counting(source, compressed_size)
        buffered = io.BufferedReader(self._raw, buffer_size=READ_SIZE)
        self._text = io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="strict", newline="")
        # the reader counts the physical lines it pulls (line_num): no per-line Python wrapper
        self._reader = csv.reader(self._text, strict=True)
        self.rows_read = 0
        self._deferred: UnicodeDecodeError | FileRefused | None = None  # see units()
        self._eof = False
        self._lines_read = 0
        self.header = self._read_header()
        self._lines_read = self._reader.line_num

    @property
    def bytes_in(self) -> int:
        return self._raw.bytes_in

    @property
    def bytes_decoded(self) -> int:
        return self._raw.bytes_out

    @property
    def compressed(self) -> bool:
        return self._raw.compressed

    def drain(self) -> str:
        """Read what is left of the source (after the last record) and return its sha256."""
        while self._raw.readinto(bytearray(READ_SIZE)):
            pass
        return self._raw.sha256.hexdigest()

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _refusal(exc, self._reader.line_num) from exc

    def _read_header(self) -> list[str]:
        while True:
            rec = self._next()
            if rec is None:
                raise FileRefused("the file is empty; it needs a header and rows", code="EMPTY")
            if rec:
                return rec

    def batches(self) -> Iterator[RecordBatch]:
        """Parsed batches of ``batch_size`` records (the last one shorter)."""
        # the hot loop of a run: locals only, one append per record, row numbers as a range
        reader = self._reader
        size = self.batch_size
        records: list[list[str]] = []
        lines: list[int] = []
        first_row = self.rows_read + 1
        start = reader.line_num + 1
        try:
            for rec in reader:
                line = start
                start = reader.line_num + 1
                if not rec:  # blank line: not a record
                    continue
                records.append(rec)
                lines.append(line)
                if len(records) >= size:
                    self.rows_read += len(records)
                    yield RecordBatch(records, list(range(first_row, self.rows_read + 1)), lines)
                    first_row = self.rows_read + 1
                    records, lines = [], []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _refusal(exc, reader.line_num) from exc
        if records:
            self.rows_read += len(records)
            yield RecordBatch(records, list(range(first_row, self.rows_read + 1)), lines)

    def units(self) -> Iterator[LineUnit]:
        """The same batches as ``batches()``, as their unparsed lines, for parsing elsewhere.

        A run of lines with no quote and no blank line holds one record per line, so it is cut
        without parsing; anything else is parsed here just far enough to find where the batch
        ends. Errors surface in the order ``batches()`` meets them: a read error found while
        reading ahead waits until the lines before it are used up.
        """
        size = self.batch_size
        pending: list[str] = []
        lines_done = self._reader.line_num  # the header's lines
        while True:
            self._fill(pending, size)
            if not pending:
                self._raise_deferred()
                return
            take = pending if len(pending) <= size else pending[:size]
            complete = len(take) == size or self._deferred is None
            if complete and _one_record_per_line(take):
                if take is pending:
                    pending = []
                else:
                    del pending[:size]
                unit = LineUnit(take, lines_done + 1, self.rows_read + 1, len(take), simple=True)
            else:
                unit = self._parse_unit(pending, lines_done)
            lines_done += len(unit.lines)
            self.rows_read += unit.records
            if unit.records:  # trailing blank lines are no batch
                yield unit

    def _fill(self, pending: list[str], want: int) -> None:
        if self._deferred is not None or self._eof or len(pending) >= want:
            return
        before = len(pending)
        try:
            pending.extend(islice(self._text, want - before))
        except (UnicodeDecodeError, FileRefused) as exc:
            self._deferred = exc  # the lines read before it stay in ``pending``
        self._lines_read += len(pending) - before
        if self._deferred is None and len(pending) < want:
            self._eof = True

    def _raise_deferred(self) -> None:
        exc = self._deferred
        if isinstance(exc, UnicodeDecodeError):
            raise _refusal(exc, self._lines_read) from exc
        if exc is not None:
            raise exc

    def _parse_unit(self, pending: list[str], lines_done: int) -> LineUnit:
        """Parse from ``pending`` (reading on as needed) up to ``batch_size`` records."""
        taken: list[str] = []

        def feed() -> Iterator[str]:
            i = 0
            while True:
                if i == len(taken):
                    if not pending:
                        self._fill(pending, self.batch_size)
                        if not pending:
                            self._raise_deferred()
                            return
                    taken.extend(pending)
                    pending.clear()
                yield taken[i]
                i += 1

        reader = csv.reader(feed(), strict=True)
        records = 0
        try:
            for rec in reader:
                if rec:
                    records += 1
                    if records == self.batch_size:
                        break
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _refusal(exc, lines_done + reader.line_num) from exc
        # the feeder may have handed over lines the reader has not consumed (never past a record)
        used = reader.line_num
        if used < len(taken):
            pending[:0] = taken[used:]
            del taken[used:]
        return LineUnit(taken, lines_done + 1, self.rows_read + 1, records, simple=False)


@dataclass(slots=True)
class LineUnit:
    """The physical lines holding one batch of records, not yet parsed."""

    lines: list[str]
    first_line: int  # line number of lines[0] (the header is line 1)
    first_row: int  # row number of the first record
    records: int
    simple: bool  # one record per line: no quote, no blank line


def parse_unit(unit: LineUnit) -> RecordBatch:
    """The RecordBatch ``CsvStream.batches()`` gives for the same lines."""
    rows = list(range(unit.first_row, unit.first_row + unit.records))
    reader = csv.reader(unit.lines, strict=True)
    if unit.simple:
        records = list(reader)
        return RecordBatch(records, rows, list(range(unit.first_line, unit.first_line + len(rows))))
    records, lines = [], []
    start = unit.first_line
    for rec in reader:
        line = start
        start = unit.first_line + reader.line_num
        if rec:
            records.append(rec)
            lines.append(line)
    return RecordBatch(records, rows, lines)


_BLANK = ("\n", "\r\n", "\r")


def _one_record_per_line(lines: list[str]) -> bool:
    """No quote, no blank line and no line long enough to hold an oversized field."""
    text = "".join(lines)
    if '"' in text:
        return False
    if any(lines.count(b) for b in _BLANK):
        return False
    return len(text) <= MAX_FIELD or max(map(len, lines)) <= MAX_FIELD


def _refusal(exc: UnicodeDecodeError | csv.Error, line: int) -> FileRefused:
    """The refusal for a decoding or CSV error after ``line`` physical lines were read."""
    if isinstance(exc, UnicodeDecodeError):
        return FileRefused(
            f"the file is not UTF-8 text (invalid byte near line {line + 1}); save it as UTF-8 CSV",
            code="NOT_UTF8",
        )
    msg = str(exc)
    if "NUL" in msg:
        return FileRefused(
            f"the file contains NUL bytes (line {line}); it is binary, not a text CSV",
            code="BINARY_CONTENT",
        )
    if "field larger" in msg:
        return FileRefused(
            f"a value near line {line} is larger than {MAX_FIELD // 1024} KiB; "
            "is a quote left open?",
            code="FIELD_TOO_LARGE",
        )
    return FileRefused(
        f"the CSV is malformed near line {line} ({msg}); check the quoting",
        code="MALFORMED_CSV",
    )
