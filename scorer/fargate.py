"""Dask workers as Fargate tasks for one run (adapter for ``--cluster`` on AWS).

The scorer task that runs the file (the coordinator) hosts the Dask scheduler itself and starts
the workers with ECS RunTask; nothing is created at run time: the worker task definition, its
roles and its security group come from the stack (infra/template.yaml) through the environment.
Three layers keep a worker from outliving its run:
1. ``FargateWorkers`` stops every task it started when its block ends: success, exception, or
   SIGTERM (the CLI's handler raises ``Interrupted``, which unwinds through the block);
2. each worker runs ``dask worker --death-timeout``: it exits by itself once its scheduler has
   been gone that long (a coordinator killed with SIGKILL);
3. ``stop_orphans`` (for the sweep) stops workers whose coordinator task no longer runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from scorer import interrupt
from scorer.errors import BadArgument, Interrupted, WorkersUnavailable

log = logging.getLogger("dropscore.scorer")

# The security groups in infra/template.yaml open exactly these ports (tests/infra checks it).
SCHEDULER_PORT = 8786
WORKER_PORT = 8788
NANNY_PORT = 8789
DEATH_TIMEOUT_S = 120  # a worker whose scheduler is gone this long exits (and its task stops)
START_TIMEOUT_S = 300.0  # image pull and ENI attach usually take 20-60 s on Fargate
CONTAINER = "worker"  # the container's name in the worker task definition
ROLE_TAG = "dropscore:role"  # the scorer's role may stop only tasks tagged ROLE_TAG=worker
RUN_TAG = "dropscore:run"
COORDINATOR_TAG = "dropscore:coordinator"
STARTED_BY_PREFIX = "dropscore"
NO_COORDINATOR = "none"  # started outside ECS: only stop_orphans(run_id) stops its workers
_DESCRIBE_MAX = 100  # DescribeTasks takes at most 100 tasks per call
METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"
# FargateConfig's fields ← the variables the stack sets on the scorer and sweep tasks
ENV = {
    "cluster": "DROPSCORE_ECS_CLUSTER",
    "task_definition": "DROPSCORE_WORKER_TASK_DEFINITION",
    "subnets": "DROPSCORE_SUBNETS",
    "security_groups": "DROPSCORE_WORKER_SECURITY_GROUP",
    "max_workers": "DROPSCORE_MAX_WORKERS",
    "worker_cpu": "DROPSCORE_WORKER_CPU",
}


@dataclass(frozen=True, slots=True)
class FargateConfig:
    """Where and how worker tasks run; the stack passes each field to the scorer's tasks."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    max_workers: int = 16
    worker_cpu: int = 1024  # CPU units of the worker task (1024 = 1 vCPU)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FargateConfig:
        def get(field: str) -> str:
            return environ.get(ENV[field], "").strip()

        def ids(field: str) -> tuple[str, ...]:
            return tuple(x.strip() for x in get(field).split(",") if x.strip())

        missing = [ENV[f] for f in ("cluster", "task_definition", "subnets", "security_groups")]
        missing = [name for name in missing if not environ.get(name, "").strip()]
        if missing:
            raise BadArgument(
                "Dask workers on Fargate need " + ", ".join(missing) + " (the stack's scorer "
                "and sweep tasks have them; elsewhere use --cluster local or tcp://HOST:PORT)"
            )
        numbers = {}
        for field, default in (("max_workers", 16), ("worker_cpu", 1024)):
            text = get(field) or str(default)
            if not text.isdigit() or int(text) < 1:
                raise BadArgument(f"{ENV[field]} must be a positive whole number, not '{text}'")
            numbers[field] = int(text)
        return cls(
            cluster=get("cluster"),
            task_definition=get("task_definition"),
            subnets=ids("subnets"),
            security_groups=ids("security_groups"),
            **numbers,
        )

    @property
    def nthreads(self) -> int:
        return max(1, self.worker_cpu // 1024)

    @property
    def family(self) -> str:
        """``…:task-definition/NAME-worker:3`` or ``NAME-worker:3`` → ``NAME-worker``."""
        return self.task_definition.rsplit("/", 1)[-1].split(":", 1)[0]


def config_if_present(environ: Mapping[str, str]) -> FargateConfig | None:
    """The stack's worker configuration when this task has it (its cluster is set), else None:
    the sweep then has no Fargate workers to look after."""
    if not environ.get(ENV["cluster"], "").strip():
        return None
    return FargateConfig.from_env(environ)


@dataclass(frozen=True, slots=True)
class Coordinator:
    """The task this process runs in: its ARN (workers are tagged with it) and private IP
    (where the workers find the scheduler)."""

    arn: str
    ip: str

    def scheduler_address(self, port: int = SCHEDULER_PORT) -> str:
        return f"tcp://{self.ip}:{port}"


def coordinator_from_metadata(environ: Mapping[str, str]) -> Coordinator:
    """This task's ARN and private IP from the ECS task metadata endpoint v4."""
    uri = environ.get(METADATA_ENV, "").strip()
    if not uri.startswith("http://"):
        raise BadArgument(
            f"Dask workers on Fargate are started from an ECS task ({METADATA_ENV} is not set)"
        )
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=5) as resp:  # noqa: S310
            doc = json.loads(resp.read())
        ip = next(
            addr
            for container in doc.get("Containers", [])
            for network in container.get("Networks", [])
            for addr in network.get("IPv4Addresses", [])
        )
        return Coordinator(arn=str(doc["TaskARN"]), ip=str(ip))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise WorkersUnavailable(
            f"cannot read this task's address from the ECS metadata endpoint ({exc}); "
            "the scheduler needs it to tell workers where to connect"
        ) from exc


def run_digest(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def started_by(run_id: str, coordinator: str = "") -> str:
    """``dropscore/<coordinator task id>/<digest of the run id>``: ECS keeps it on the task and
    lists by it, so the sweep can tell whose workers a task is (max 128 chars, [A-Za-z0-9/_-])."""
    task_id = coordinator.rsplit("/", 1)[-1] if coordinator else NO_COORDINATOR
    return f"{STARTED_BY_PREFIX}/{task_id}/{run_digest(run_id)}"


def _parse_started_by(value: str) -> tuple[str, str] | None:
    """(coordinator task id, run digest) of one of our workers, else None."""
    parts = value.split("/")
    if len(parts) != 3 or parts[0] != STARTED_BY_PREFIX:
        return None
    return parts[1], parts[2]


def worker_command(scheduler: str, name: str, nthreads: int) -> list[str]:
    """Arguments of ``dask worker`` (the task definition's entry point) for one worker task."""
    return [
        scheduler,
        "--name", name,
        "--nworkers", "1",
        "--nthreads", str(nthreads),
        "--worker-port", str(WORKER_PORT),
        "--nanny-port", str(NANNY_PORT),
        "--no-dashboard",
        "--death-timeout", str(DEATH_TIMEOUT_S),
        "--local-directory", "/tmp/dask-worker-space",
    ]  # fmt: skip


def ecs_client() -> Any:
    import boto3

    session = boto3.session.Session()
    return session.client("ecs", region_name=session.region_name or "us-east-1")


def _aws_error(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Message") or exc)


class FargateWorkers:
    """``n`` Dask worker tasks for one run, connected to ``scheduler``; stopped when the block
    ends. ``with FargateWorkers(config, scheduler=…, run_id=…, n=4) as workers:`` returns once
    every task is RUNNING (or raises WorkersUnavailable, having stopped what it started)."""

    def __init__(
        self,
        config: FargateConfig,
        *,
        scheduler: str,
        run_id: str,
        n: int,
        coordinator: str = "",
        ecs: Any = None,
        start_timeout: float = START_TIMEOUT_S,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if n < 1:
            raise BadArgument(f"a run needs at least one worker, not {n}")
        self.config = config
        self.scheduler = scheduler
        self.run_id = run_id
        self.n = min(n, config.max_workers)  # the stack's cap (MaxWorkers) bounds the bill
        if self.n < n:
            log.warning("dask workers capped", extra={"asked": n, "max_workers": self.n})
        self.coordinator = coordinator
        self.ecs = ecs if ecs is not None else ecs_client()
        self.start_timeout = start_timeout
        self.poll_s = poll_s
        self._clock = clock
        self._sleep = sleep
        self.task_arns: list[str] = []  # every task RunTask returned, in order
        self._stopped: set[str] = set()

    def __enter__(self) -> FargateWorkers:
        try:
            self.start()
            self.wait_running()
        except BaseException:
            self.stop()  # __exit__ does not run when __enter__ raises
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- start -----------------------------------------------------------------------------------
    def start(self) -> None:
        """One RunTask per worker (each gets its own Dask name; Dask refuses a second worker of
        the same name); each task is recorded at once, so a failure halfway still stops what
        was started."""
        digest = run_digest(self.run_id)
        while len(self.task_arns) < self.n:
            interrupt.check()
            name = f"{digest[:12]}-{len(self.task_arns)}"
            command = worker_command(self.scheduler, name, self.config.nthreads)
            try:
                resp = self.ecs.run_task(
                    cluster=self.config.cluster,
                    taskDefinition=self.config.task_definition,
                    count=1,
                    launchType="FARGATE",
                    networkConfiguration={
                        "awsvpcConfiguration": {
                            "subnets": list(self.config.subnets),
                            "securityGroups": list(self.config.security_groups),
                            "assignPublicIp": "DISABLED",
                        }
                    },
                    overrides={"containerOverrides": [{"name": CONTAINER, "command": command}]},
                    startedBy=started_by(self.run_id, self.coordinator),
                    tags=[
                        {"key": ROLE_TAG, "value": "worker"},
                        {"key": RUN_TAG, "value": self.run_id[:256]},
                        {"key": COORDINATOR_TAG, "value": self.coordinator or NO_COORDINATOR},
                    ],
                )
            except Interrupted:
                raise
            except Exception as exc:  # botocore's ClientError/BotoCoreError: not imported here
                raise WorkersUnavailable(
                    f"ECS refused to start Dask workers for run {digest}: {_aws_error(exc)}"
                ) from exc
            self.task_arns += [t["taskArn"] for t in resp.get("tasks", [])]
            failures = resp.get("failures") or []
            if failures or not resp.get("tasks"):
                reasons = sorted({f"{f.get('reason', '?')} {f.get('detail', '')}".strip()
                                  for f in failures}) or ["no task started"]  # fmt: skip
                raise WorkersUnavailable(
                    f"ECS started {len(self.task_arns)} of {self.n} Dask workers "
                    f"({'; '.join(reasons)}); raise the account's Fargate quota or lower "
                    "MaxWorkers, then retry (the input stays pending)"
                )
        log.info(
            "dask workers started",
            extra={"workers": len(self.task_arns), "scheduler": self.scheduler},
        )

    def wait_running(self) -> None:
        """Until every task is RUNNING; a task that stops first, or the timeout, is an error
        that names the reason ECS gives."""
        deadline = self._clock() + self.start_timeout
        while True:
            interrupt.check()
            tasks = list(self._describe(self.task_arns))
            ended = [t for t in tasks if t.get("lastStatus", "").lower() in _AFTER_RUNNING]
            if ended:
                why = "; ".join(
                    sorted({str(t.get("stoppedReason") or t.get("stopCode") or "stopped")
                            for t in ended})
                )  # fmt: skip
                raise WorkersUnavailable(
                    f"{len(ended)} of {len(self.task_arns)} Dask worker tasks stopped before "
                    f"they ran: {why}"
                )
            running = sum(t.get("lastStatus", "").lower() == "running" for t in tasks)
            if running == len(self.task_arns):
                return
            if self._clock() >= deadline:
                raise WorkersUnavailable(
                    f"only {running} of {len(self.task_arns)} Dask worker tasks were running "
                    f"after {self.start_timeout:g} s (image pull, capacity or network); the "
                    "input stays pending"
                )
            self._sleep(self.poll_s)

    def _describe(self, arns: Sequence[str]) -> Iterator[dict[str, Any]]:
        for i in range(0, len(arns), _DESCRIBE_MAX):
            resp = self.ecs.describe_tasks(
                cluster=self.config.cluster, tasks=list(arns[i : i + _DESCRIBE_MAX])
            )
            yield from resp.get("tasks", [])

    # --- stop ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every task this run started; never raises (the run's outcome is decided
        elsewhere): a task it could not stop is logged, and its death timeout and the sweep's
        ``stop_orphans`` end it."""
        reason = f"dropscore run {run_digest(self.run_id)} ended"
        left = [a for a in self.task_arns if a not in self._stopped]
        for arn in left:
            if _stop_task(self.ecs, self.config.cluster, arn, reason):
                self._stopped.add(arn)
        if left:
            log.info("dask workers stopped", extra={"workers": len(self._stopped)})

    @property
    def stopped(self) -> bool:
        return set(self.task_arns) <= self._stopped


_AFTER_RUNNING = {"deactivating", "stopping", "deprovisioning", "stopped", "deleted"}


def _stop_task(ecs: Any, cluster: str, arn: str, reason: str) -> bool:
    """One StopTask, tried twice: a second SIGTERM (or a throttle) must not leave it running."""
    for attempt in (1, 2):
        try:
            ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255])
            return True
        except Interrupted:
            continue  # already recorded in interrupt.requested; finish stopping first
        except Exception as exc:  # botocore's errors: logged, the other layers end the task
            if attempt == 2:
                log.warning(
                    "could not stop a Dask worker task",
                    extra={"task": arn, "error": _aws_error(exc)},
                )
    return False


def stop_orphans(config: FargateConfig, *, run_id: str | None = None, ecs: Any = None) -> list[str]:
    """Stop running worker tasks of this stack that no coordinator will stop: with ``run_id``,
    every worker of that run; without, every worker whose coordinator task is no longer
    running (stopped, or forgotten by ECS). Returns the ARNs it stopped."""
    ecs = ecs if ecs is not None else ecs_client()
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=config.cluster, family=config.family
    ):
        arns += page.get("taskArns", [])
    workers = []  # (arn, coordinator task id, run digest)
    for i in range(0, len(arns), _DESCRIBE_MAX):
        resp = ecs.describe_tasks(cluster=config.cluster, tasks=arns[i : i + _DESCRIBE_MAX])
        for task in resp.get("tasks", []):
            parsed = _parse_started_by(task.get("startedBy", ""))
            if parsed and task.get("lastStatus", "").lower() not in _AFTER_RUNNING:
                workers.append((task["taskArn"], *parsed))
    if run_id is not None:
        digest = run_digest(run_id)
        doomed = [arn for arn, _, d in workers if d == digest]
    else:
        coordinators = sorted({c for _, c, _ in workers if c != NO_COORDINATOR})
        alive = _running(ecs, config.cluster, coordinators)
        doomed = [arn for arn, c, _ in workers if c != NO_COORDINATOR and c not in alive]
    stopped = []
    for arn in doomed:
        if _stop_task(ecs, config.cluster, arn, "dropscore: the run's coordinator is gone"):
            stopped.append(arn)
    if stopped:
        log.info("orphan dask workers stopped", extra={"workers": len(stopped)})
    return stopped


def _running(ecs: Any, cluster: str, task_ids: list[str]) -> set[str]:
    """The ids among ``task_ids`` of tasks ECS still has and that have not begun to stop."""
    alive = set()
    for i in range(0, len(task_ids), _DESCRIBE_MAX):
        resp = ecs.describe_tasks(cluster=cluster, tasks=task_ids[i : i + _DESCRIBE_MAX])
        for task in resp.get("tasks", []):  # a task ECS forgot is in "failures" (MISSING)
            status = task.get("lastStatus", "").lower()
            desired = task.get("desiredStatus", "").lower()
            if status not in _AFTER_RUNNING and desired != "stopped":
                alive.add(task["taskArn"].rsplit("/", 1)[-1])
    return alive


@contextlib.contextmanager
def fargate_cluster(
    config: FargateConfig,
    *,
    run_id: str,
    n: int,
    environ: Mapping[str, str],
    ecs: Any = None,
    scheduler_port: int = SCHEDULER_PORT,
    connect_timeout: float = START_TIMEOUT_S,
) -> Iterator[str]:
    """A Dask scheduler in this process, listening on this task's private address, and ``n``
    Fargate workers connected to it: yields the scheduler's address for ``distributed.Client``.
    When the block ends, however it ends, the workers are stopped and the scheduler closes."""
    from distributed import Client, LocalCluster

    me = coordinator_from_metadata(environ)
    with contextlib.ExitStack() as stack:
        # 0.0.0.0: the workers reach it on the task's private IP (the security groups decide
        # who); no dashboard, and the scheduler's HTTP endpoint on loopback only; no local
        # workers: the work goes to Fargate
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=0,
                host="0.0.0.0",  # noqa: S104
                scheduler_port=scheduler_port,
                protocol="tcp",
                processes=True,
                dashboard_address="127.0.0.1:0",
                scheduler_kwargs={"dashboard": False},
            )
        )
        address = me.scheduler_address(scheduler_port)
        workers = stack.enter_context(  # exits first: workers stop before the scheduler closes
            FargateWorkers(
                config,
                scheduler=address,
                run_id=run_id,
                n=n,
                coordinator=me.arn,
                ecs=ecs,
                start_timeout=connect_timeout,
            )
        )
        with Client(cluster) as dask_client:
            try:
                dask_client.wait_for_workers(len(workers.task_arns), timeout=connect_timeout)
            except TimeoutError as exc:
                have = len(dask_client.scheduler_info(n_workers=-1).get("workers", {}))
                raise WorkersUnavailable(
                    f"{have} of {len(workers.task_arns)} Dask workers connected to the "
                    f"scheduler at {address} within {connect_timeout:g} s; check the subnets' "
                    "routes and that the scorer and worker security groups are the stack's"
                ) from exc
        yield str(cluster.scheduler_address)
