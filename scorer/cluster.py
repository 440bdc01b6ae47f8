"""Where shards are scored: ``--cluster none|local[:N]|tcp://HOST:PORT|fargate[:N]`` and the
Dask client.

``local[:N]`` starts a ``LocalCluster`` of N single-threaded worker processes (default: the
cores) the first time a run of this process needs it, and keeps it for the process's later
runs (a sweep scores many files). Dask starts worker processes with *spawn*: a worker never
inherits a process that already loaded an OpenMP model (LightGBM hangs in a child forked after
that), and the model reaches each worker pickled, once per run. ``tcp://…`` connects to a
scheduler someone else runs, within ``--cluster-timeout`` seconds.

``fargate[:N]`` lives for one run, not for the process: the first shard of a run hosts a Dask
scheduler in this process and starts N worker tasks with ECS RunTask (``scorer.fargate``); they
are stopped when the run's ``run_scope`` ends, however it ends. One such run at a time per
process: the scheduler's port is the one the security groups open.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from scorer import fargate
from scorer.codes import Code
from scorer.errors import BadArgument, DropscoreError

NONE = "none"
DEFAULT_TIMEOUT_S = 30.0  # how long Client(tcp://…) tries to reach a scheduler


class ClusterUnavailable(DropscoreError):
    """The Dask cluster could not be started or reached, or lost the run's shards for good;
    the input stays pending."""

    code = Code.CLUSTER_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A parsed ``--cluster`` value."""

    kind: str  # none | local | tcp | fargate
    workers: int = 0  # local: worker processes (0: one per core); fargate: worker tasks
    address: str = ""  # tcp: the scheduler
    timeout: float = DEFAULT_TIMEOUT_S  # tcp: seconds to reach the scheduler
    aws: fargate.FargateConfig | None = None  # fargate: from the stack's environment

    def __str__(self) -> str:
        if self.kind in ("local", "fargate"):
            return f"{self.kind}:{self.workers}" if self.workers else self.kind
        return self.address or NONE


def parse(
    text: str | None, *, timeout: str | None = None, environ: Mapping[str, str] | None = None
) -> ClusterSpec:
    """BadArgument for anything but none, local, local:N, tcp://HOST:PORT or fargate[:N]
    (which also needs the stack's variables in ``environ``: ``FargateConfig.from_env``)."""
    value = (text or NONE).strip().lower()
    seconds = _timeout(timeout)
    if value in ("", NONE, "off"):
        return ClusterSpec(NONE)
    if value == "local":
        return ClusterSpec("local")
    if value.startswith("local:") and value[6:].isdigit() and int(value[6:]) > 0:
        return ClusterSpec("local", workers=int(value[6:]))
    if value.startswith("tcp://"):
        host, _, port = value[6:].rpartition(":")
        if host and port.isdigit():
            return ClusterSpec("tcp", address=value, timeout=seconds)
    if value == "fargate" or (
        value.startswith("fargate:") and value[8:].isdigit() and int(value[8:]) > 0
    ):
        env = os.environ if environ is None else environ
        config = fargate.FargateConfig.from_env(env)
        if not env.get(fargate.METADATA_ENV, "").strip():
            raise BadArgument(
                "--cluster fargate runs in the stack's scorer or sweep task "
                f"({fargate.METADATA_ENV} is not set); elsewhere use --cluster local or "
                "tcp://HOST:PORT"
            )
        asked = int(value[8:]) if value != "fargate" else config.max_workers
        # the stack's cap (MaxWorkers) bounds the bill
        return ClusterSpec("fargate", workers=min(asked, config.max_workers), aws=config)
    raise BadArgument(
        f"--cluster must be none, local, local:N (N worker processes), tcp://HOST:PORT "
        f"(a Dask scheduler) or fargate[:N] (N Fargate worker tasks), not '{text}'"
    )


def _timeout(text: str | None) -> float:
    value = (text or "").strip().lower()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise BadArgument(f"--cluster-timeout must be a positive number of seconds, not '{text}'")
    return seconds


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


@dataclass(slots=True)
class _RunScope:
    stack: contextlib.ExitStack
    client: Any = None  # the run's fargate client, once started


_fargate_lock = threading.Lock()  # one scheduler on fargate.SCHEDULER_PORT at a time
_scope: contextvars.ContextVar[_RunScope | None] = contextvars.ContextVar(
    "dropscore_cluster_scope", default=None
)


@contextlib.contextmanager
def run_scope() -> Iterator[None]:
    """The lifetime of one run's cluster (``fargate``): what ``client`` starts inside it is
    stopped when it ends. Enter it in the thread that runs the run."""
    with contextlib.ExitStack() as stack:
        token = _scope.set(_RunScope(stack))
        try:
            yield
        finally:
            _scope.reset(token)


def client(spec: ClusterSpec, *, run_id: str = "", shards: int | None = None) -> Any:
    """The Dask client for ``spec``, started (local) or connected (tcp) once per process;
    for ``fargate``, started for the run and stopped when its ``run_scope`` ends, with no
    more worker tasks than ``shards`` (the most shards the run's file can be cut into): one
    without a shard is billed for nothing."""
    if spec.kind == "fargate":
        return _fargate_client(spec, run_id, shards)
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
                made = Client(spec.address, timeout=f"{spec.timeout:g}s")
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise ClusterUnavailable(
                f"the Dask cluster '{spec}' could not be started or reached ({exc}); check "
                "--cluster and --cluster-timeout (or run with --cluster none); the input stays "
                "pending"
            ) from exc
        _clients[spec] = made
        return made


def _fargate_client(spec: ClusterSpec, run_id: str, shards: int | None) -> Any:
    """A scheduler here and min(``spec.workers``, ``shards``) Fargate workers, for the current
    run_scope."""
    scope = _scope.get()
    if scope is not None and scope.client is not None:
        return scope.client
    if scope is None or spec.aws is None or not run_id:
        raise ClusterUnavailable(
            "Fargate workers are started for one run of the scorer's command line (score, "
            "event, sweep); use --cluster local or tcp://HOST:PORT here"
        )
    from distributed import Client

    stack = scope.stack
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # a second sharded run of this process (sweep --concurrency) waits for the port
    _fargate_lock.acquire()
    stack.callback(_fargate_lock.release)  # registered first: released last
    address = stack.enter_context(
        fargate.fargate_cluster(
            spec.aws,
            run_id=run_id,
            n=max(1, min(spec.workers, shards or spec.workers)),
            environ=os.environ,
            scheduler_port=fargate.SCHEDULER_PORT,
        )
    )
    try:
        scope.client = stack.enter_context(Client(address, timeout=f"{spec.timeout:g}s"))
        return scope.client
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(
            f"the Dask scheduler this task hosts at {address} could not be reached ({exc}); "
            "the input stays pending"
        ) from exc


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
