"""A stop request (SIGTERM) that cannot be lost.

The CLI's signal handler raises Interrupted at once, but an exception raised inside a library
call can be swallowed (botocore retries on any exception during a request). So the handler also
sets ``requested``, and the run checks it between batches and before anything becomes visible.

Once the main thread starts writing its run's manifest, the run's outcome is decided: the
handler no longer raises (an exception in the middle of the write could leave a committed
manifest behind a "stopped before committing" error, exit 1), and the CLI exits as the manifest
says. Nothing after the commit calls ``check``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from scorer.errors import Interrupted

requested = threading.Event()
_decided: set[int] = set()  # threads whose run is committing or committed
_decided_guard = threading.Lock()


def check() -> None:
    if requested.is_set():
        raise Interrupted("stopped by a signal before committing; the input stays pending")


def decided() -> bool:
    """Whether the calling thread is writing, or has written, its run's manifest."""
    return threading.get_ident() in _decided


@contextlib.contextmanager
def committing() -> Iterator[None]:
    """Around the manifest write: from its start the run is not interrupted; if the write fails
    the run is not decided after all, and a stop request stops it again."""
    ident = threading.get_ident()
    check()  # asked to stop before the commit began: nothing becomes visible
    with _decided_guard:
        _decided.add(ident)
    try:
        yield
    except BaseException:
        with _decided_guard:
            _decided.discard(ident)
        raise
