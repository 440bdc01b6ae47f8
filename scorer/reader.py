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
        self._lines = _LineCounter(self._text)
        self._reader = csv.reader(self._lines, strict=True)
        self.rows_read = 0
        self.header = self._read_header()

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
        except UnicodeDecodeError as exc:
            raise FileRefused(
                f"the file is not UTF-8 text (invalid byte near line {self._lines.count + 1}); "
                "save it as UTF-8 CSV",
                code="NOT_UTF8",
            ) from exc
        except csv.Error as exc:
            line = self._lines.count
            msg = str(exc)
            if "NUL" in msg:
                raise FileRefused(
                    f"the file contains NUL bytes (line {line}); it is binary, not a text CSV",
                    code="BINARY_CONTENT",
                ) from exc
            if "field larger" in msg:
                raise FileRefused(
                    f"a value near line {line} is larger than {MAX_FIELD // 1024} KiB; "
                    "is a quote left open?",
                    code="FIELD_TOO_LARGE",
                ) from exc
            raise FileRefused(
                f"the CSV is malformed near line {line} ({msg}); check the quoting",
                code="MALFORMED_CSV",
            ) from exc

    def _read_header(self) -> list[str]:
        while True:
            rec = self._next()
            if rec is None:
                raise FileRefused("the file is empty; it needs a header and rows", code="EMPTY")
            if rec:
                return rec

    def batches(self) -> Iterator[RecordBatch]:
        batch = RecordBatch([], [], [])
        start = self._lines.count + 1
        while True:
            rec = self._next()
            if rec is None:
                break
            line = start
            start = self._lines.count + 1
            if not rec:  # blank line: not a record
                continue
            self.rows_read += 1
            batch.records.append(rec)
            batch.row_numbers.append(self.rows_read)
            batch.lines.append(line)
            if len(batch.records) >= self.batch_size:
                yield batch
                batch = RecordBatch([], [], [])
        if batch.records:
            yield batch


class _LineCounter:
    """Iterates text lines (keeping their endings) and counts them, for line numbers."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.count = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = self._text.readline()
        if not line:
            raise StopIteration
        self.count += 1
        return line
