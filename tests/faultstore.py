"""Fault injection as a wrapper around a real store (local, or S3 over the moto server).

``FaultyStore(inner)`` is a ``scorer.storage.Store`` that passes every call on to ``inner`` and
applies the faults added to it: an error instead of a call (the Nth write into an object, a
commit, a listing, a HEAD), a read cut after some bytes, or an action run right after a real
call (a rival writer acting in the window between two of the code's own calls). The
``faulty_store`` fixture (tests/conftest.py) puts it behind ``storage.for_url`` for the store
that serves one URL, so the product code under test is unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from scorer.errors import StorageUnavailable
from scorer.storage import ObjectInfo, Store, Writer

#: the calls a fault can name: the Store's methods, plus a writer's ``write`` and ``commit``
CALLS = {
    "head",
    "open_read",
    "read",  # a read from a stream open_read gave (``after_bytes`` decides where it fails)
    "read_with_etag",
    "list_objects",
    "delete",
    "replace_if",
    "open_write",
    "write",
    "commit",
    "abort_uploads",
}


def unavailable(what: str = "injected fault") -> StorageUnavailable:
    """What the adapter raises for a storage failure (a cut connection, an endless 5xx)."""
    return StorageUnavailable(f"cannot reach storage: {what}")


@dataclass
class Fault:
    """Fires on matching calls from the ``nth`` on, ``times`` times (0: cleared)."""

    call: str
    match: str  # substring of the URL (or prefix) the call names; "" matches any
    error: Exception | None = None  # raised instead of the call (or, for "read", mid-stream)
    after: Callable[[], object] | None = None  # run right after the real call returned
    nth: int = 1
    times: int = 1
    after_bytes: int = 0  # "read": bytes handed out before the error
    seen: int = 0  # matching calls so far
    hits: int = 0  # times it fired

    def fires(self, call: str, url: str) -> bool:
        if call != self.call or self.match not in url:
            return False
        self.seen += 1
        if self.seen < self.nth or self.hits >= self.times:
            return False
        self.hits += 1
        return True


class FaultyStore:
    """A Store that passes calls on to ``inner`` and applies the faults added to it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []  # (call, url) in order, for assertions

    def add(self, call: str, match: str = "", **kw: Any) -> Fault:
        if call not in CALLS:
            raise ValueError(f"no call {call!r}; one of {sorted(CALLS)}")
        fault = Fault(call, match, **kw)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        for fault in self.faults:
            fault.times = 0

    def _before(self, call: str, url: str) -> list[Fault]:
        """Raise a fault's error for this call, or return the faults to run after it."""
        self.calls.append((call, url))
        fired = [f for f in self.faults if f.fires(call, url)]
        for fault in fired:
            if fault.error is not None and call != "read":
                raise fault.error
        return fired

    @staticmethod
    def _after(fired: list[Fault]) -> None:
        for fault in fired:
            if fault.after is not None:
                fault.after()

    # --- the Store interface ---------------------------------------------------------------------
    def head(self, url: str, version_id: str | None = None) -> ObjectInfo:
        fired = self._before("head", url)
        info = self.inner.head(url, version_id)
        self._after(fired)
        return info

    def open_read(
        self, url: str, version_id: str | None = None, *, if_match: str | None = None
    ) -> IO[bytes]:
        fired = self._before("open_read", url)
        stream = self.inner.open_read(url, version_id, if_match=if_match)
        self._after(fired)
        cut = [f for f in self.faults if f.fires("read", url)]
        if cut and cut[0].error is not None:
            return _CutStream(stream, cut[0].after_bytes, cut[0].error)  # type: ignore[return-value]
        return stream

    def read_with_etag(self, url: str) -> tuple[bytes, str]:
        fired = self._before("read_with_etag", url)
        got = self.inner.read_with_etag(url)
        self._after(fired)
        return got

    def list_objects(self, prefix_url: str) -> Iterator[ObjectInfo]:
        fired = self._before("list_objects", prefix_url)
        yield from self.inner.list_objects(prefix_url)
        self._after(fired)

    def delete(self, url: str) -> None:
        fired = self._before("delete", url)
        self.inner.delete(url)
        self._after(fired)

    def replace_if(self, url: str, data: bytes, etag: str | None) -> None:
        fired = self._before("replace_if", url)
        self.inner.replace_if(url, data, etag)
        self._after(fired)

    def open_write(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> Writer:
        fired = self._before("open_write", url)
        writer = self.inner.open_write(
            url,
            create_only=create_only,
            identical_ok=identical_ok,
            metadata=metadata,
            expected=expected,
        )
        self._after(fired)
        return _FaultyWriter(self, writer)  # type: ignore[return-value]

    def abort_uploads(self, prefix_url: str) -> int:
        fired = self._before("abort_uploads", prefix_url)
        n = self.inner.abort_uploads(prefix_url)
        self._after(fired)
        return n


class _FaultyWriter:
    """A real Writer whose ``write`` and ``commit`` calls pass the store's faults first; the
    rest (size, sha256, abort, discard) is the real writer's."""

    def __init__(self, store: FaultyStore, inner: Writer) -> None:
        self._store = store
        self._inner = inner
        self._discarded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, data: bytes) -> None:
        fired = self._store._before("write", self._inner.url)
        self._inner.write(data)
        self._store._after(fired)

    def commit(self) -> None:
        fired = self._store._before("commit", self._inner.url)
        self._inner.commit()
        self._store._after(fired)

    def discard(self) -> None:
        self._inner.discard()
        self._discarded = True

    # leaving the ``with`` is Writer's own: commit (above, through the faults) or abort
    __enter__ = Writer.__enter__
    __exit__ = Writer.__exit__


class _CutStream(io.RawIOBase):
    """A real stream that raises ``error`` once ``limit`` bytes were handed out."""

    def __init__(self, inner: IO[bytes], limit: int, error: Exception) -> None:
        super().__init__()
        self._inner = inner
        self._left = limit
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._left <= 0:
            raise self._error
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._inner.read(want)
        self._left -= len(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()
