"""An independent count of a CSV's records, for the ledger checker (scorer.check).

Not the scorer's streaming reader, and not the csv module either: its field size limit is
process-wide state (the reader sets it to refuse huge cells), so a checker that lifted it
would change it under every scoring thread. The rules here are the csv module's.
"""

from __future__ import annotations

import io
from typing import IO, Any

from scorer import gunzip


def count_records(fh: IO[bytes] | io.RawIOBase, delimiter: str = ",") -> int:
    """Data records in a CSV byte stream (gzip or plain): non-blank records after the header;
    ``delimiter``: the dialect the run read the file in (its manifest's ``input.dialect``).

    Not the scorer's streaming reader: the rules of Python's csv module (default dialect, not
    strict) followed here, so no cell is too long to count — outputs may hold a cell at the
    reader's limit plus a safety apostrophe — and no process-wide csv setting is touched. A
    blank line is not a record (the scorer's rule), quoted newlines stay inside their record.
    """
    raw: io.BufferedReader = io.BufferedReader(fh if isinstance(fh, io.RawIOBase) else Tee(fh))
    if gunzip.is_gzip(raw.peek(2)):  # the scorer's decompressor: linear, bounded, bomb rule
        raw = io.BufferedReader(gunzip.Gunzip(raw.read), gunzip.READ_SIZE)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    n = 0
    quoted = False  # inside a quoted cell that goes on past the line's end
    for line in text:  # newline="": split at \r, \n and \r\n, as the csv module reads
        body = line.rstrip("\r\n")
        if not quoted:
            if not body:
                continue  # a blank line: the csv module gives [], not a record
            if '"' not in body:
                n += 1
                continue
        state = _scan(body, _IN_QUOTES if quoted else _FIELD_START, delimiter)
        quoted = state == _IN_QUOTES
        n += not quoted
    n += quoted  # a quote left open at the end: the lenient csv module still gives the record
    return max(n - 1, 0)


_FIELD_START, _IN_FIELD, _IN_QUOTES, _QUOTE_IN_QUOTES = range(4)


def _scan(body: str, state: int, delimiter: str) -> int:
    """The csv module's field states over one line (its end not included): a quote opens a
    quoted cell only at a cell's start, '""' inside one is a quote, a stray character after
    the closing quote continues the cell unquoted."""
    i, n = 0, len(body)
    while i < n:
        if state == _IN_QUOTES:
            j = body.find('"', i)
            if j < 0:
                return _IN_QUOTES
            state, i = _QUOTE_IN_QUOTES, j + 1
        elif state == _IN_FIELD:
            j = body.find(delimiter, i)
            if j < 0:
                return _IN_FIELD
            state, i = _FIELD_START, j + 1
        else:
            c = body[i]
            if c == '"':
                state = _IN_QUOTES  # opens a quoted cell, or a doubled quote inside one
            elif c == delimiter:
                state = _FIELD_START
            else:
                state = _IN_FIELD
            i += 1
    return state


class Tee(io.RawIOBase):
    """Any readable binary stream as a RawIOBase; with ``digest``, hashes what passes through."""

    def __init__(self, src: IO[bytes], digest: Any = None) -> None:
        self._src = src
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._src.read(len(buf))
        if self._digest is not None:
            self._digest.update(data)
        buf[: len(data)] = data
        return len(data)
