"""Hostile gzip files built in memory, small to keep: members by the ten thousand, a bomb of
gigabytes from a few MB (built block by block, with a correct CRC), zero padding."""

from __future__ import annotations

import gzip
import struct
import zlib

from tests.reliability.hostile import HEADER, ROWS

BLOCK = 8 * 1024 * 1024  # bytes between full flushes in a bomb


def members(count: int, rows_per_member: int) -> tuple[bytes, int]:
    """The header in one member, then ``count`` members of ``rows_per_member`` valid rows each
    (one row repeated: each member is tiny compressed and much larger decompressed, the shape
    that made decompression quadratic). Returns the file and its number of rows."""
    member = gzip.compress(((ROWS[0] + "\n") * rows_per_member).encode(), mtime=0)
    head = gzip.compress((HEADER + "\n").encode(), mtime=0)
    return head + member * count, count * rows_per_member


def bomb(size: int) -> bytes:
    """A valid single-member gzip of the header and ``size`` bytes of valid rows, ~1000:1."""
    line = (ROWS[0] + "\n").encode()
    block = line * (BLOCK // len(line))
    head = (HEADER + "\n").encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: we frame it
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    # after a full flush nothing refers back, so one block's compressed bytes can be repeated
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    n = max(1, size // len(block))
    tail = c.flush()
    crc = _crc32_repeated(zlib.crc32(head), zlib.crc32(block), len(block), n)
    total = len(head) + n * len(block)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
    return header + first + again * n + tail + trailer


def padded(data: bytes, zeros: int) -> bytes:
    """A gzip file followed by zero padding (tape blocks, some tools)."""
    return data + b"\x00" * zeros


def _crc32_repeated(crc: int, block_crc: int, block_len: int, n: int) -> int:
    """crc32(A + B * n) from crc(A), crc(B), len(B): B * 2^k by doubling."""
    while n:
        if n & 1:
            crc = crc32_combine(crc, block_crc, block_len)
        block_crc = crc32_combine(block_crc, block_crc, block_len)
        block_len *= 2
        n >>= 1
    return crc


# --- zlib's crc32_combine (not exposed by Python's zlib) -------------------------------------
def _gf2_times(mat: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B from crc(A), crc(B) and len(B)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2
