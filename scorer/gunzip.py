"""gzip → bytes, linear in the input and bounded in memory: the one decompressor of the scorer's
reader, the UI's uploads (through the reader) and the ledger checker.

Any number of concatenated members (valid gzip), then optionally zero bytes (tape and some tools
pad to a block size; ``gzip -d`` ignores them with a warning); anything else after a member is
refused, as is a truncated or corrupt stream. Two things keep it linear and flat whatever the
members look like: compressed input is handed to zlib in ``SLICE``-byte pieces (zlib copies the
rest of its input at every member's end, so that copy is at most a slice, not the rest of the
file), and output comes out ``max_length``-bounded into a list joined once per ``read`` (never a
``bytes +=`` per member, which made a 1 MB file of 24,000 small members quadratic).

The bomb rule: the decompressed size may not pass ``max_out`` bytes, and once past
``BOMB_FLOOR`` it may not be more than ``BOMB_RATIO`` times the compressed bytes consumed so far.
Both are checked after every output piece of at most ``read``'s ``n`` bytes, so a bomb is refused
with memory at a few MiB, not at its decompressed size.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import Any

from scorer.codes import Code
from scorer.errors import FileRefused

BOMB_RATIO = 200  # decompressed / compressed bytes
BOMB_FLOOR = 32 * 1024 * 1024  # the ratio only matters past this many decompressed bytes (below
# the reader's 64 MiB line limit, so a bomb of one endless line is called a bomb)
MAX_OUT = 20 * 1024**3  # default cap on the decompressed size (DROPSCORE_MAX_DECOMPRESSED_MB)
READ_SIZE = 1024 * 1024  # compressed bytes read from the source at a time
SLICE = 16 * 1024  # compressed bytes handed to zlib at a time
MAGIC = b"\x1f\x8b"


def is_gzip(head: bytes) -> bool:
    return head[:2] == MAGIC


class Gunzip(io.RawIOBase):
    """The decompressed bytes of a gzip stream read with ``read_raw(n)``; ``head`` is bytes
    already read from it (a sniffed prefix)."""

    def __init__(
        self, read_raw: Callable[[int], bytes], *, head: bytes = b"", max_out: int = MAX_OUT
    ) -> None:
        super().__init__()
        self._read_raw = read_raw
        self._buf = memoryview(head)  # compressed bytes read, not yet all handed to zlib
        self._pos = 0  # what of ``_buf`` zlib has been given
        self._before = 0  # compressed bytes in buffers before ``_buf``
        self._z = zlib.decompressobj(wbits=31)
        self._started = False  # the current member has been given bytes
        self._padding = False  # past the last member: only zero bytes may follow
        self._eof = False
        self.max_out = max_out
        self.bytes_out = 0
        self.trailing_zeros = 0  # padding bytes after the last member

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    @property
    def consumed(self) -> int:
        """Compressed bytes zlib has used so far."""
        return self._before + self._pos - len(self._z.unconsumed_tail)

    def read(self, n: int | None = READ_SIZE) -> bytes:
        """Up to ``n`` decompressed bytes (at least one unless the stream has ended)."""
        want = READ_SIZE if n is None or n < 0 else max(1, n)
        out: list[bytes] = []
        got = 0
        while got < want and not self._eof:
            data = self._z.unconsumed_tail or self._next_slice()
            if not data:
                continue  # a refill, the padding or the end: the loop's condition decides
            try:
                piece = self._z.decompress(data, want - got)
            except zlib.error as exc:
                raise FileRefused(
                    f"the gzip data is corrupt ({exc}); compress the file again",
                    code=Code.GZIP_CORRUPT,
                ) from exc
            self._started = True
            if piece:
                out.append(piece)
                got += len(piece)
                self.bytes_out += len(piece)
                self._check_bomb()
            if self._z.eof:  # a member ended: what followed it goes back to the buffer
                self._pos -= len(self._z.unused_data)
                self._z = zlib.decompressobj(wbits=31)
                self._started = False
        return b"".join(out)

    def _next_slice(self) -> bytes:
        """The next compressed bytes for zlib; b"" after refilling, skipping padding or ending."""
        if self._pos >= len(self._buf):
            chunk = self._read_raw(READ_SIZE)
            if not chunk:
                self._end()
                return b""
            self._before += len(self._buf)
            self._buf, self._pos = memoryview(chunk), 0
        if not self._started and (self._padding or self._buf[self._pos] == 0):
            self._skip_zeros()  # a member never starts with a zero byte: this is padding
            return b""
        data = bytes(self._buf[self._pos : self._pos + SLICE])
        self._pos += len(data)
        return data

    def _skip_zeros(self) -> None:
        self._padding = True
        rest = self._buf[self._pos :]
        nonzero = len(bytes(rest).lstrip(b"\x00"))
        if nonzero:
            at = self.consumed + len(rest) - nonzero
            raise FileRefused(
                f"the gzip data is followed by bytes that are neither a gzip member nor zero "
                f"padding (at byte {at}); the file is damaged or not one gzip file — compress "
                "it again",
                code=Code.GZIP_CORRUPT,
            )
        self.trailing_zeros += len(rest)
        self._pos = len(self._buf)

    def _end(self) -> None:
        if self._started:  # inside a member
            raise FileRefused(
                "the gzip data ends early (truncated upload?); upload the whole file",
                code=Code.GZIP_CORRUPT,
            )
        if self.consumed == 0:
            raise FileRefused("the gzip data is empty", code=Code.GZIP_CORRUPT)
        self._eof = True

    def _check_bomb(self) -> None:
        out = self.bytes_out
        if out > self.max_out:
            raise FileRefused(
                f"the gzip data expands to more than {self.max_out // (1024 * 1024):,} MiB, the "
                "limit (DROPSCORE_MAX_DECOMPRESSED_MB); refused as a decompression bomb. Split "
                "the file or raise the limit",
                code=Code.DECOMPRESSION_BOMB,
            )
        if out > BOMB_FLOOR and out > BOMB_RATIO * max(self.consumed, 1):
            raise FileRefused(
                f"the gzip data expands more than {BOMB_RATIO}× (decompression bomb?); "
                "refused. Upload the CSV uncompressed or split it",
                code=Code.DECOMPRESSION_BOMB,
            )
