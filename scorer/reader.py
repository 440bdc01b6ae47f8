"""Stream a CSV from bytes to batches of records, refusing what is not a UTF-8 CSV.

The file is never read whole: bytes → (gunzip, bounded, with a bomb guard) → strict UTF-8 decoding →
blocks of whole lines. A block with no quote, no blank line and no lone CR holds exactly one
record per line and goes to Arrow's CSV parser as it is (a ``TextUnit``, parsed into string
columns). Anything else goes line by line to Python's csv module, which follows RFC 4180 quoting
(embedded commas, quotes and newlines) (a ``LineUnit``). Both give the same records, each with its
row number and the physical line it starts on; units can be parsed in another process.
The byte source and the rules for lines and quote-free blocks live in ``scorer.csvtext``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import IO

from scorer.budget import Budget
from scorer.codes import Code
from scorer.csvtext import (
    BLANK,
    MAX_LINE,
    BlockScan,
    Counting,
    complete_utf8,
    count_lines,
    first_line_end,
    last_line_end,
    line_too_long,
    one_record_per_line,
    refusal,
    scan_records,
    simple,
    split_lines,
)
from scorer.errors import FileRefused
from scorer.units import Batch, LineUnit, ScannedUnit, TextUnit, Unit, parse_unit

BLOCK_CHARS = 2 * 1024 * 1024  # text per unit at most (a unit also stops near batch_size rows)


class CsvStream:
    """Iterates units (or parsed batches) of records; ``header`` is read on construction.

    A unit holds about ``batch_size`` records and at most ``block_chars`` of text (more only
    when one record is longer). ``delimiter`` is one character, or a rule that picks it from
    the header's first line (see ``dialect.delimiter_rule``).
    """

    def __init__(
        self,
        source: IO[bytes],
        compressed_size: int = 0,
        batch_size: int = 32768,
        block_chars: int = BLOCK_CHARS,
        budget: Budget | None = None,
        delimiter: str | Callable[[str], str] = ",",
    ):
        self.batch_size = batch_size
        self.block_chars = block_chars
        self._raw = Counting(source, compressed_size, budget)
        self._undecoded = b""  # the start of a UTF-8 sequence cut off by a chunk's end
        self._text = ""  # decoded and not yet handed out; always starts at a line's start
        self._started = False  # a BOM is dropped at the very start only
        self._eof = False
        self._deferred: FileRefused | None = None  # raised once the text before it is used
        self._dropped = 0  # bytes read but never to be handed out (from an invalid byte on)
        self._pending: list[str] = []  # lines for the csv module, not yet in a unit
        self._held = b""  # with ``scan_cuts``: whole lines holding a quote …
        self._held_at = 0  # … not yet in a unit from this byte on, this line on (of ``_held``)
        self._held_line = 0
        self._scan: BlockScan | None = None  # of ``_held``, once
        self._lines = 0  # physical lines handed out (header included)
        self._chars_per_line = 0.0
        self.rows_read = 0
        # cut units by the quotes' parity where it provably agrees with the csv module (see
        # ``csvtext.scan_records``): the same units, found without parsing (the shard plan)
        self.scan_cuts = False
        self._units: Iterator[Unit] | None = None
        self._first: Unit | None = None  # looked at by ``first_unit``, not yet handed out
        self.delimiter = delimiter if isinstance(delimiter, str) else ","
        self.header = self._read_header(None if isinstance(delimiter, str) else delimiter)

    @property
    def bytes_in(self) -> int:
        return self._raw.bytes_in

    @property
    def compressed(self) -> bool:
        return self._raw.compressed

    @property
    def trailing_zeros(self) -> int:
        return self._raw.trailing_zeros

    @property
    def handed_out(self) -> int:
        """Offset in the (plain) file of the first byte not yet handed out in a unit — where the
        next record starts: what was read, less what is held decoded, split or undecoded.
        scorer.shards cuts shards there (it is exact only between units, where it is read)."""
        held = (
            self._dropped
            + len(self._undecoded)
            + len(self._text.encode())
            + len("".join(self._pending).encode())
            + len(self._held)
            - self._held_at
        )
        return self._raw.bytes_out - held

    @property
    def lines_out(self) -> int:
        """Physical lines handed out so far (the header's included)."""
        return self._lines

    def drain(self) -> str:
        """Read what is left of the source (after the last record) and return its sha256."""
        while self._raw.read_chunk():
            pass
        return self._raw.sha256.hexdigest()

    # --- decoding --------------------------------------------------------------------------------
    def _more(self) -> bool:
        """Decode the next chunk onto ``_text``; False once nothing more will come."""
        if self._eof or self._deferred is not None:
            return False
        try:
            data = self._raw.read_chunk()
        except FileRefused as exc:
            self._defer(exc)
            return False
        if not data:
            self._eof = True
            if self._undecoded:  # the file ends inside a UTF-8 sequence
                self._defer(None)
            return False
        data = self._undecoded + data
        cut = complete_utf8(data)
        try:
            text = data[:cut].decode("utf-8")
        except UnicodeDecodeError as exc:
            self._dropped += len(data) - exc.start
            self._text += self._unbom(data[: exc.start].decode("utf-8"))
            self._defer(None)
            return True
        self._undecoded = data[cut:]
        self._text += self._unbom(text)
        return True

    def _unbom(self, text: str) -> str:
        if not self._started and text:
            self._started = True
            return text.removeprefix("\ufeff")
        return text

    def _defer(self, exc: FileRefused | None) -> None:
        """Stop reading at an error; the whole lines before it are still handed out first."""
        end = max(self._text.rfind("\n"), self._text.rfind("\r")) + 1
        self._dropped += len(self._text[end:].encode())
        self._text = self._text[:end]
        if exc is None:
            line = self._lines + len(self._pending) + count_lines(self._text) + 1
            exc = FileRefused(
                f"the file is not UTF-8 text (invalid byte near line {line}); save it as UTF-8 CSV",
                code=Code.NOT_UTF8,
            )
        self._deferred = exc

    def _raise_deferred(self) -> None:
        if self._deferred is not None:
            raise self._deferred

    # --- taking text -----------------------------------------------------------------------------
    def _next_line(self) -> str | None:
        """One physical line (with its line end); None at the end."""
        while True:
            final = self._eof or self._deferred is not None
            cut = first_line_end(self._text, final=final)
            if cut:
                line, self._text = self._text[:cut], self._text[cut:]
                return line
            if final:
                line, self._text = self._text, ""
                return line or None
            if len(self._text) > MAX_LINE:
                raise line_too_long(self._lines)
            self._more()

    def _take_block(self) -> str:
        """Whole lines: about ``batch_size`` of them, at most ``block_chars`` (unless a single
        line is longer); "" at the end."""
        want = self.block_chars
        if self._chars_per_line:
            want = min(want, max(1, int(self.batch_size * self._chars_per_line)))
        while len(self._text) <= want and self._more():
            pass
        while True:
            final = self._eof or self._deferred is not None
            text = self._text
            if final and len(text) <= want:
                self._text = ""
                return text
            cut = last_line_end(text, want, final=final)
            if cut:
                self._text = text[cut:]
                return text[:cut]
            if len(text) > MAX_LINE:
                raise line_too_long(self._lines)
            if not final:  # one line longer than ``want``: read on to its end
                self._more()
            want = len(self._text)

    # --- header ----------------------------------------------------------------------------------
    def _read_header(self, rule: Callable[[str], str] | None) -> list[str]:
        blank = 0  # empty lines before the header (no record)
        first = self._next_line()
        while first in BLANK:
            blank += 1
            first = self._next_line()
        if first is None:
            self._raise_deferred()
            raise FileRefused("the file is empty; it needs a header and rows", code=Code.EMPTY)
        if rule is not None:
            self.delimiter = rule(first.rstrip("\r\n"))

        def feed() -> Iterator[str]:
            yield str(first)
            while True:
                line = self._next_line()
                if line is None:
                    self._raise_deferred()
                    return
                yield line

        reader = csv.reader(feed(), strict=True, delimiter=self.delimiter)
        try:
            line = next(reader)
        except csv.Error as exc:
            raise refusal(exc, blank + reader.line_num) from exc
        self._lines = blank + reader.line_num
        # the header's own width and length guess how many characters a batch of rows takes
        self._chars_per_line = max(8.0, sum(map(len, line)) + len(line))
        return line

    # --- units -----------------------------------------------------------------------------------
    def first_unit(self) -> Unit | None:
        """The first unit ``units()`` will hand out (None for a header-only file), read now
        so a file-wide choice can be made from it."""
        if self._units is None:
            self._units = self._cut()
        if self._first is None:
            self._first = next(self._units, None)
        return self._first

    def units(self) -> Iterator[Unit]:
        """The file's records after the header, cut into units in file order.

        Errors surface in file order: a read error met while reading ahead waits until the
        lines before it are used up.
        """
        if self._units is None:
            self._units = self._cut()
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._units

    def _cut(self) -> Iterator[Unit]:
        while True:
            if self._pending:
                lines = self._line_unit()
                self._lines += len(lines.lines)
                unit: Unit = lines
            elif self._held:
                scanned = self._held_unit()
                if scanned is None:  # the csv module's path takes the lines
                    continue
                self._lines += scanned.lines
                unit = scanned
            else:
                block = self._take_block()
                if not block:
                    self._raise_deferred()
                    return
                if not simple(block):
                    if self.scan_cuts:
                        self._held = block.encode()
                    else:
                        self._pending = split_lines(block)
                    continue
                n = block.count("\n") + (not block.endswith("\n"))
                unit = TextUnit(block, self._lines + 1, self.rows_read + 1, n, self.delimiter)
                self._lines += n
                self._chars_per_line = len(block) / n
            self.rows_read += unit.records
            if unit.records:  # trailing blank lines are no batch
                yield unit

    def batches(self, *, threads: bool = False) -> Iterator[Batch]:
        """``units()`` parsed here."""
        for unit in self.units():
            yield parse_unit(unit, threads=threads)

    def _line_unit(self) -> LineUnit:
        """Up to ``batch_size`` records from the pending lines (reading on if a quoted value
        runs past them)."""
        pending = self._pending
        size = self.batch_size
        take = pending[:size]
        if one_record_per_line(take):
            del pending[: len(take)]
            return LineUnit(
                take, self._lines + 1, self.rows_read + 1, len(take), True, self.delimiter
            )
        if self.scan_cuts and (scanned := self._scanned_unit()) is not None:
            return scanned
        taken: list[str] = []

        def feed() -> Iterator[str]:
            i = 0
            while True:
                if i == len(taken):
                    if not pending:  # inside a quoted value at the end of the block
                        block = self._take_block()
                        if not block:
                            self._raise_deferred()
                            return
                        pending.extend(split_lines(block))
                    taken.extend(pending)
                    pending.clear()
                yield taken[i]
                i += 1

        reader = csv.reader(feed(), strict=True, delimiter=self.delimiter)
        records = 0
        try:
            for rec in reader:
                if rec:
                    records += 1
                if records == size or (not pending and reader.line_num == len(taken)):
                    break
        except csv.Error as exc:
            raise refusal(exc, self._lines + reader.line_num) from exc
        used = reader.line_num  # the reader never reads past the record it returns
        if used < len(taken):
            pending[:0] = taken[used:]
            del taken[used:]
        return LineUnit(taken, self._lines + 1, self.rows_read + 1, records, False, self.delimiter)

    def _held_unit(self) -> ScannedUnit | None:
        """``_line_unit``'s unit of the held lines, cut from their bytes by one scan of the
        block (``BlockScan``); None: the lines are now pending for the csv module's path (with
        what was read on, as the csv module would have read it)."""
        first = True
        while True:
            if self._scan is None:
                self._scan = BlockScan(self._held, self.delimiter)
            found = self._scan.cut(self._held_line, self.batch_size, simple_first=first)
            if found is None or not found.open:
                break
            # a quoted value runs past the lines: read on, as the csv module's feed does
            # the lines read on with are the csv module's (not counted by a refusal met now)
            held = self._held[self._held_at :]
            self._let_go()
            block = self._take_block()
            self._held = held + block.encode()
            if not block:
                found = None  # the file ends (or a read error waits) inside a quoted value
                break
            first = False  # ``_line_unit`` looks at the lines before reading on only
        if found is None:
            self._pending = split_lines(self._held[self._held_at :].decode())
            self._let_go()
            return None
        start = self._held_at
        data = self._held[start : start + found.end]
        self._held_at += found.end
        self._held_line += found.lines
        if self._held_at == len(self._held):
            self._let_go()
        return ScannedUnit(
            data,
            found.lines,
            self._lines + 1,
            self.rows_read + 1,
            found.records,
            found.simple,
            self.delimiter,
        )

    def _let_go(self) -> None:
        self._held, self._held_at, self._held_line, self._scan = b"", 0, 0, None

    def _scanned_unit(self) -> LineUnit | None:
        """``_line_unit``'s unit found by ``scan_records``; None: the csv module must say (the
        pending lines then hold what was read on, as the csv module would have read it)."""
        pending = self._pending
        while True:
            found = scan_records("".join(pending), self.delimiter, self.batch_size)
            if found is None:
                return None
            if not found.open:
                break
            # a quoted value runs past the lines: read on, as the csv module's feed does
            # the lines read on with are the csv module's (not counted by a refusal met now)
            taken = pending[:]
            pending.clear()
            block = self._take_block()
            pending[:0] = taken
            if not block:
                return None  # the file ends (or a read error waits) inside a quoted value
            pending.extend(split_lines(block))
        taken = pending[: found.lines]
        del pending[: found.lines]
        return LineUnit(
            taken, self._lines + 1, self.rows_read + 1, found.records, False, self.delimiter
        )
