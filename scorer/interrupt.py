"""A stop request (SIGTERM) that cannot be lost.

The CLI's signal handler raises Interrupted at once, but an exception raised inside a library
call can be swallowed (botocore retries on any exception during a request). So the handler also
sets ``requested``, and the run checks it between batches and before anything becomes visible.
"""

from __future__ import annotations

import threading

from scorer.errors import Interrupted

requested = threading.Event()


def check() -> None:
    if requested.is_set():
        raise Interrupted("stopped by a signal before committing; the input stays pending")
