"""Where shards are scored: ``--cluster none|local[:N]|tcp://HOST:PORT`` and the Dask client.

``local[:N]`` starts a ``LocalCluster`` of N single-threaded worker processes (default: the
cores) the first time a run of this process needs it, and keeps it for the process's later
runs (a sweep scores many files). Dask starts worker processes with *spawn*: a worker never
inherits a process that already loaded an OpenMP model (LightGBM hangs in a child forked after
that), and the model reaches each worker pickled, once per run. ``tcp://…`` connects to a
scheduler someone else runs (Fargate workers in AWS).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from scorer.errors import BadArgument, DropscoreError

NONE = "none"


class ClusterUnavailable(DropscoreError):
    """The Dask cluster could not be started or reached, or lost the run's shards for good;
    the input stays pending."""

    code = "CLUSTER_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A parsed ``--cluster`` value."""

    kind: str  # none | local | tcp
    workers: int = 0  # local: worker processes (0: one per core)
    address: str = ""  # tcp: the scheduler

    def __str__(self) -> str:
        if self.kind == "local":
            return f"local:{self.workers}" if self.workers else "local"
        return self.address or NONE


def parse(text: str | None) -> ClusterSpec:
    """BadArgument for anything but none, local, local:N or tcp://HOST:PORT."""
    value = (text or NONE).strip().lower()
    if value in ("", NONE, "off"):
        return ClusterSpec(NONE)
    if value == "local":
        return ClusterSpec("local")
    if value.startswith("local:") and value[6:].isdigit() and int(value[6:]) > 0:
        return ClusterSpec("local", workers=int(value[6:]))
    if value.startswith("tcp://"):
        host, _, port = value[6:].rpartition(":")
        if host and port.isdigit():
            return ClusterSpec("tcp", address=value)
    raise BadArgument(
        f"--cluster must be none, local, local:N (N worker processes) or tcp://HOST:PORT "
        f"(a Dask scheduler), not '{text}'"
    )


def shard_bytes(text: str | None) -> int | None:
    """``--shard-over-mb``: files above this many MB (as stored) are sharded, in shards of
    about that size; None (unset, 'off') never shards. Fractions are allowed (tests)."""
    value = (text or "").strip().lower()
    if value in ("", "off", "none"):
        return None
    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if not mb > 0:
        raise BadArgument(f"--shard-over-mb must be a positive number of MB or 'off', not '{text}'")
    return max(1, int(mb * 1024 * 1024))


_lock = threading.Lock()
_clients: dict[ClusterSpec, Any] = {}


def client(spec: ClusterSpec) -> Any:
    """The Dask client for ``spec``, started (local) or connected (tcp) once per process."""
    with _lock:
        found = _clients.get(spec)
        if found is not None and found.status == "running":
            return found
        from distributed import Client, LocalCluster

        # Dask's own INFO lines (scheduler and nanny start/stop) are not the run's story
        logging.getLogger("distributed").setLevel(logging.WARNING)
        try:
            if spec.kind == "local":
                n = spec.workers or max(1, len(os.sched_getaffinity(0)))
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # no fixed port to collide on
                    host="127.0.0.1",
                )
                made = Client(cluster)
            else:
                made = Client(spec.address, timeout="30s")
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise ClusterUnavailable(
                f"the Dask cluster '{spec}' could not be started or reached ({exc}); check "
                "--cluster (or run with --cluster none); the input stays pending"
            ) from exc
        _clients[spec] = made
        return made


def worker_count(dask_client: Any) -> int:
    return len(dask_client.scheduler_info().get("workers", {}))


@atexit.register
def close_all() -> None:
    """Stop the local clusters this process started (and their worker processes)."""
    with _lock:
        for made in _clients.values():
            cluster = getattr(made, "cluster", None)
            try:
                made.close()
                if cluster is not None:
                    cluster.close()
            except Exception:  # noqa: S110 - best effort at exit
                pass
        _clients.clear()
