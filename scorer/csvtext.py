"""The reader's lower half: the stored bytes as counted, hashed, gunzipped chunks, and the rules
for cutting CSV text into physical lines and quote-free blocks (one record per line).

The csv module has no per-reader field limit, only the process-wide ``csv.field_size_limit``: it
is set here once, at import, before any thread reads; no other code may change it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from typing import IO

import numpy as np

from scorer import gunzip
from scorer.budget import Budget
from scorer.codes import Code
from scorer.errors import FileRefused
from scorer.gunzip import Gunzip, is_gzip

MAX_FIELD = 1024 * 1024  # one cell; a larger one is almost surely not a CSV
MAX_LINE = 64 * 1024 * 1024  # one physical line
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


def sniff(first: bytes) -> None:
    """Refuse well-known non-CSV formats by their first bytes."""
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused("the file is UTF-16 encoded; save it as UTF-8 CSV", code=Code.NOT_UTF8)
    for magic, what in _MAGIC.items():
        if first.startswith(magic):
            raise FileRefused(f"the file is {what}", code=Code.NOT_CSV)


class Counting:
    """The object's bytes as chunks: counted and hashed as stored, gunzipped if gzip (see
    ``scorer.gunzip``: linear, bounded, with the bomb rule), NUL bytes turned into refusals;
    ``budget`` (if any) sees every read of the source."""

    def __init__(
        self, source: IO[bytes], compressed_size: int, budget: Budget | None = None
    ) -> None:
        self._src = source
        self._budget = budget
        self._gunzip: Gunzip | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.sha256 = hashlib.sha256()  # of the object's bytes as stored
        self._compressed_size = compressed_size
        head = self._read_raw(4)
        if is_gzip(head):
            max_out = budget.limits.max_decompressed_bytes if budget else gunzip.MAX_OUT
            self._gunzip = Gunzip(self._read_raw, head=head, max_out=max_out)
            self._pending = b""
        else:
            self._pending = head

    @property
    def compressed(self) -> bool:
        return self._gunzip is not None

    @property
    def trailing_zeros(self) -> int:
        """Zero bytes after the last gzip member (padding, ignored as ``gzip -d`` does)."""
        return self._gunzip.trailing_zeros if self._gunzip is not None else 0

    def _read_raw(self, n: int) -> bytes:
        chunk = self._src.read(n)
        self.bytes_in += len(chunk)
        self.sha256.update(chunk)
        if self._budget is not None:
            self._budget.check(self.bytes_in)
        return chunk

    def read_chunk(self) -> bytes:
        """The next chunk of (decompressed) content; b"" at the end."""
        if self._pending:
            data, self._pending = self._pending, b""
        elif self._gunzip is not None:
            data = self._gunzip.read(READ_SIZE)
        else:
            data = self._read_raw(READ_SIZE)
        if self.bytes_out == 0:
            sniff(data[:4])
        if b"\x00" in data:
            raise FileRefused(
                f"the file contains NUL bytes (after {self.bytes_out + data.index(0)} bytes); "
                "it is binary, not a text CSV",
                code=Code.BINARY_CONTENT,
            )
        self.bytes_out += len(data)
        return data


BLANK = ("\n", "\r\n", "\r")
_EXTRA_CHARS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # line breaks to str.splitlines() only
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """Physical lines as a text reader with newline='' gives them (ends on \\n, \\r\\n, \\r)."""
    # one search per character: many times faster than the character class over a block
    if not any(c in text for c in _EXTRA_CHARS):
        return text.splitlines(keepends=True)
    return _LINE.findall(text)


def simple(text: str) -> bool:
    """One record per line: no quote, no blank line, every CR part of a CRLF."""
    if '"' in text or text.startswith(("\n", "\r")) or "\n\n" in text:
        return False
    if "\r" not in text:  # the common case: no need to look for CRs
        return True
    return "\n\r\n" not in text and text.count("\r") == text.count("\r\n")


def one_record_per_line(lines: list[str]) -> bool:
    """No quote, no blank line and no line long enough to hold an oversized field."""
    text = "".join(lines)
    if '"' in text:
        return False
    if any(lines.count(b) for b in BLANK):
        return False
    return len(text) <= MAX_FIELD or max(map(len, lines)) <= MAX_FIELD


def count_lines(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def first_line_end(text: str, *, final: bool) -> int:
    """Index just after the first line end of ``text``; 0 if none is certain yet."""
    n = text.find("\n")
    r = text.find("\r", 0, n if n >= 0 else len(text))
    if r < 0:
        return n + 1
    if r + 1 < len(text):
        return r + 2 if text[r + 1] == "\n" else r + 1
    return r + 1 if final else 0  # a CR at the end may be the first half of a CRLF


def last_line_end(text: str, limit: int, *, final: bool) -> int:
    """Index just after the last line end that starts before ``limit``; 0 if none."""
    n = text.rfind("\n", 0, limit)
    r = text.rfind("\r", 0, limit)
    if r <= n:
        return n + 1
    if r + 1 < len(text):
        return r + 2 if text[r + 1] == "\n" else r + 1
    if final:
        return r + 1
    return n + 1


def complete_utf8(data: bytes) -> int:
    """Length of ``data`` without a UTF-8 sequence cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def line_too_long(lines: int) -> FileRefused:
    return FileRefused(
        f"line {lines + 1} is longer than {MAX_LINE // (1024 * 1024)} MiB; is a quote left open "
        "or is this not a CSV?",
        code=Code.FIELD_TOO_LARGE,
    )


def refusal(exc: csv.Error, line: int) -> FileRefused:
    """The refusal for a CSV error after ``line`` physical lines were read."""
    msg = str(exc)
    if "NUL" in msg:
        return FileRefused(
            f"the file contains NUL bytes (line {line}); it is binary, not a text CSV",
            code=Code.BINARY_CONTENT,
        )
    if "field larger" in msg:
        return FileRefused(
            f"a value near line {line} is larger than {MAX_FIELD // 1024} KiB; "
            "is a quote left open?",
            code=Code.FIELD_TOO_LARGE,
        )
    return FileRefused(
        f"the CSV is malformed near line {line} ({msg}); check the quoting",
        code=Code.MALFORMED_CSV,
    )


_QUOTE, _LF, _CR = 34, 10, 13


@dataclass(frozen=True, slots=True)
class Scanned:
    """Where the first records of some whole lines end, found by ``scan_records``."""

    lines: int  # lines the records take (blank lines between them included)
    records: int  # records (blank lines outside quotes are none)
    open: bool  # the text ends inside a quoted value, before ``count`` records


@dataclass(frozen=True, slots=True)
class Cut:
    """The reader's next unit in whole lines of UTF-8 bytes, found by ``cut_records``."""

    lines: int
    records: int
    end: int  # bytes the lines take
    simple: bool  # one record per line: no quote, no blank line (``one_record_per_line``)
    open: bool  # the bytes end inside a quoted value, before ``count`` records


def scan_records(text: str, delimiter: str, count: int) -> Scanned | None:
    """The csv module's record ends in ``text`` (whole physical lines, starting at a record's
    start), found from the quotes' parity alone: up to ``count`` non-empty records. None when
    that is not provably what the csv module (strict, doubled quotes) reads: a quote that
    opens other than right after a delimiter, a line end or a closing quote, or closes other
    than right before one of those (a quote inside an unquoted cell, an error), or a record
    long enough to hold an oversized field. Then the caller asks the csv module.

    Why parity is enough there: if every quote that parity calls opening stands where a field
    starts (or right after a closing one: a doubled quote) and every closing one stands where a
    field ends (or right before an opening one), the csv module is inside a quoted value exactly
    where an odd number of quotes lie behind, so a record ends at each line end with an even
    number behind it, and a record is empty only when it is one blank line."""
    found = cut_records(text.encode(), delimiter, count, simple_first=False)
    return None if found is None else Scanned(found.lines, found.records, found.open)


def cut_records(
    data: bytes, delimiter: str, count: int, *, simple_first: bool = True
) -> Cut | None:
    """``scan_records`` over the bytes of whole lines, with the byte offset where the records
    end (see ``BlockScan.cut``)."""
    return BlockScan(data, delimiter).cut(0, count, simple_first=simple_first)


class BlockScan:
    """One scan of whole lines of UTF-8 bytes, from which the planning pass cuts unit after unit
    (``cut``) without scanning the rest of the block again."""

    def __init__(self, data: bytes, delimiter: str) -> None:
        sep = ord(delimiter)
        self.usable = not (sep >= 0x80 or sep in (_QUOTE, _LF, _CR))
        arr = np.frombuffer(data, dtype=np.uint8)
        n = self.n = len(arr)
        if not self.usable or n == 0:
            return
        quotes = self.quotes = np.flatnonzero(arr == _QUOTE)
        # physical line ends (exclusive): LF, a CR not followed by LF, the end of the text
        ends = np.flatnonzero(arr == _LF)
        if b"\r" in data:
            crs = np.flatnonzero(arr == _CR)
            lone = crs[(crs + 1 >= n) | (arr[np.minimum(crs + 1, n - 1)] != _LF)]
            if len(lone):  # rare: sorting costs more than the rest of the scan
                ends = np.sort(np.concatenate((ends, lone)))
        ends = ends + 1
        if len(ends) == 0 or ends[-1] != n:
            ends = np.append(ends, n)
        self.ends = ends
        starts = np.concatenate(([0], ends[:-1]))
        self.width = width = ends - starts
        first = arr[starts]
        self.blank = blank = ((width == 1) & ((first == _LF) | (first == _CR))) | (
            (width == 2) & (first == _CR) & (arr[np.minimum(starts + 1, n - 1)] == _LF)
        )
        # the last quote parity calls misplaced (-1: none); a unit starting after it is sound
        opening, closing = quotes[0::2], quotes[1::2]
        opening = opening[opening > 0]
        closing = closing[closing + 1 < n]
        ok = (sep, _LF, _CR, _QUOTE)
        bad = np.concatenate(
            (opening[~np.isin(arr[opening - 1], ok)], closing[~np.isin(arr[closing + 1], ok)])
        )
        self.last_bad = int(bad.max()) if len(bad) else -1
        # quotes before each line end, counted per line (quotes are fewer than line ends: placing
        # them among the ends costs a third of placing every end among them)
        per_line = np.bincount(np.searchsorted(ends, quotes, side="right"), minlength=len(ends))
        even = np.cumsum(per_line) % 2 == 0
        self.closed = bool(even[-1])
        self.last = last = np.flatnonzero(even)  # the line each record ends on
        lines_in = np.diff(np.concatenate(([-1], last)))
        spans = np.diff(np.concatenate(([0], ends[last])))
        big = np.flatnonzero(spans > MAX_FIELD)
        self.last_big = int(big[-1]) if len(big) else -1  # the last record over MAX_FIELD
        opened = n - (ends[last[-1]] if len(last) else 0)  # the unfinished record's bytes
        self.open_big = not self.closed and opened > MAX_FIELD
        self.taken = np.cumsum(~((lines_in == 1) & blank[last]))  # records so far

    def cut(self, line: int, count: int, *, simple_first: bool = True) -> Cut | None:
        """``cut_records`` of the bytes from ``line`` on (a record's start: 0, or where the
        last cut ended) — what scanning those bytes alone would give, as every test there is
        local to a quote, a line or a record. Offsets are from that line's start.

        With ``simple_first``, first the reader's own test (``CsvStream._line_unit``): when the
        first ``count`` lines (or all, if fewer) hold no quote and no blank line, they are one
        unit of one record per line. None also where bytes and characters might disagree about
        ``MAX_FIELD`` (a line of more than ``MAX_FIELD`` bytes there): the reader's own path
        decides."""
        if not self.usable:
            return None
        if self.n == 0:
            return Cut(0, 0, 0, False, False)
        ends, quotes = self.ends, self.quotes
        lines = len(ends) - line
        at = int(ends[line - 1]) if line else 0
        if simple_first:
            k = min(count, lines)
            end_k = int(ends[line + k - 1])
            q = int(np.searchsorted(quotes, at))
            if (q == len(quotes) or quotes[q] >= end_k) and not self.blank[line : line + k].any():
                if end_k - at <= MAX_FIELD or self.width[line : line + k].max() <= MAX_FIELD:
                    return Cut(k, k, end_k - at, True, False)
                return None  # a line over MAX_FIELD bytes may be under it in characters
        if self.last_bad >= at:
            return None
        r = int(np.searchsorted(self.last, line))  # the first record from ``line`` on
        if self.last_big >= r or self.open_big:
            return None  # the csv module decides about a value that may be over the limit
        taken = self.taken
        before = int(taken[r - 1]) if r else 0
        total = int(taken[-1]) if len(taken) else 0
        if total - before >= count:
            j = int(np.searchsorted(taken, before + count))
            end = int(ends[self.last[j]])
            return Cut(int(self.last[j]) + 1 - line, count, end - at, False, False)
        return Cut(lines, total - before, self.n - at, False, not self.closed)
