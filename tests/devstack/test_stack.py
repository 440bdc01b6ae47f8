"""The demo's Stack stops what it started, and what those started in sessions of their own (the
watcher's runs and their Dask workers) even when their parent had to be killed."""

from __future__ import annotations

import sys
import time

import psutil

from devstack.demo import Stack

# a child that ignores SIGTERM (a watcher waiting for its running event) and has started a
# grandchild in a session of its own (that event's run), which outlives it when it is killed
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
time.sleep(300)
"""


def test_stop_kills_what_outlives_a_killed_child() -> None:
    stack = Stack()
    proc = stack.start("stubborn", [sys.executable, "-c", STUBBORN])
    deadline = time.monotonic() + 30
    while not psutil.Process(proc.pid).children():
        assert time.monotonic() < deadline, "the grandchild did not start"
        time.sleep(0.1)
    [grandchild] = psutil.Process(proc.pid).children()
    stack.stop(grace_s=1)
    assert proc.returncode is not None  # killed after the grace
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
