"""``scorer watch`` runs each event as a child process: a child that dies while something it
started still holds its stderr must not block watch, and nothing of it may outlive it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from scorer.watch import run_child

# A run killed mid-file whose descendant (a forked worker) lives on, holding the run's stderr.
KILLED_RUN = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(str(child.pid))
sys.stdin.read()
print("error [INTERNAL]: killed mid-run", file=sys.stderr, flush=True)
os._exit(137)
"""


def test_a_child_killed_mid_run_does_not_block_watch_and_leaves_nothing(tmp_path: Path) -> None:
    pid_file = tmp_path / "descendant.pid"
    t0 = time.monotonic()
    code, tail = run_child([sys.executable, "-c", KILLED_RUN, str(pid_file)], b"{}", timeout=120)
    waited = time.monotonic() - t0
    assert (code, tail.strip()) == (137, "error [INTERNAL]: killed mid-run")
    assert waited < 60, f"watch waited {waited:.0f} s on a dead run's descendants"
    descendant = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(descendant) and time.monotonic() < deadline:
        if psutil.Process(descendant).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(descendant) or (
        psutil.Process(descendant).status() == psutil.STATUS_ZOMBIE
    ), "the dead run's descendant still runs"


def test_a_child_that_overruns_its_time_is_killed_with_its_group(tmp_path: Path) -> None:
    code, _ = run_child([sys.executable, "-c", "import time; time.sleep(300)"], b"", timeout=1)
    assert code == -9
