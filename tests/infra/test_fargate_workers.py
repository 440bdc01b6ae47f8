"""Dask workers on Fargate, against the stack deployed into moto: `FargateWorkers` starts the
worker family privately with the configuration the stack gives the scorer's tasks, and every task
it started is STOPPED when the block ends — after success, an exception, or a SIGTERM (and after a
whole `score --cluster fargate:2` run, which scores the bytes of `--cluster none`); tasks
that stop before running fail the run clearly; `stop_orphans` stops the workers of a coordinator
that is gone and leaves a live coordinator's alone, and `scorer sweep` calls it.

moto starts a Fargate task as RUNNING and, by default, lets it progress to STOPPED as soon as it
is described; the `tasks_keep_running` fixture makes them stay RUNNING until stopped (moto's
state manager), the way a healthy worker does."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from infra_support import Stack, client

from scorer import fargate, interrupt
from scorer.errors import Interrupted, WorkersUnavailable
from scorer.fargate import FargateConfig, FargateWorkers, stop_orphans

SCHEDULER = "tcp://10.0.0.5:8786"


def moto_api(endpoint: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/{path}", data=json.dumps(body).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def tasks_keep_running(moto_endpoint: str) -> Iterator[None]:
    transition = {"progression": "manual", "times": 1_000_000}
    moto_api(moto_endpoint, "set-transition", {"model_name": "ecs::task", "transition": transition})
    yield
    moto_api(moto_endpoint, "unset-transition", {"model_name": "ecs::task"})


@pytest.fixture
def ecs(moto_endpoint: str) -> Any:
    return client("ecs", moto_endpoint)


def task_env(endpoint: str, stack: Stack, logical: str) -> dict[str, str]:
    td = client("ecs", endpoint).describe_task_definition(taskDefinition=stack.resources[logical])[
        "taskDefinition"
    ]
    (container,) = td["containerDefinitions"]
    return {e["name"]: e["value"] for e in container["environment"]}


@pytest.fixture(scope="module")
def config(moto_endpoint: str, stack: Stack) -> FargateConfig:
    """Exactly what the stack gives the scorer task, read back from moto's ECS, except for moto's
    limits: its CloudFormation drops the network mode (asserted on the template in
    test_stack_moto.py) and its RunTask needs a container-level memory as a number, which the
    worker's definition (rightly, on Fargate) leaves to the task. So the stack's worker
    definition is registered once more, as is plus those two, and workers run from that."""
    ecs = client("ecs", moto_endpoint)
    stacked = FargateConfig.from_env(task_env(moto_endpoint, stack, "ScorerTaskDefinition"))
    td = ecs.describe_task_definition(taskDefinition=stacked.task_definition)["taskDefinition"]
    (container,) = td["containerDefinitions"]
    copy = ecs.register_task_definition(
        family=td["family"],
        containerDefinitions=[{**container, "memory": int(td.get("memory") or 8192)}],
        volumes=td["volumes"],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
    )["taskDefinition"]
    assert copy["family"] == stacked.family
    return dataclasses.replace(stacked, task_definition=copy["taskDefinitionArn"])


def start_coordinator(ecs: Any, stack: Stack, config: FargateConfig) -> str:
    """A task in moto standing in for the coordinator (the scorer task hosting the scheduler):
    what matters is its ARN and whether it runs. Its own small family, because moto's RunTask
    needs a container memory, which the scorer's task definition (rightly) leaves to the task."""
    family = f"{stack.params['Name']}-coordinator-stand-in"
    ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "scorer", "image": "scorer", "memory": 512}],
    )
    (task,) = ecs.run_task(
        cluster=config.cluster,
        taskDefinition=family,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(config.subnets),
                "securityGroups": [stack.resources["ScorerSecurityGroup"]],
                "assignPublicIp": "DISABLED",
            }
        },
    )["tasks"]
    return str(task["taskArn"])


def statuses(ecs: Any, config: FargateConfig, arns: list[str]) -> list[str]:
    tasks = ecs.describe_tasks(cluster=config.cluster, tasks=arns)["tasks"]
    assert len(tasks) == len(arns)
    return [t["lastStatus"] for t in tasks]


def record_run_task(ecs: Any) -> list[dict[str, Any]]:
    """The RunTask requests as the client sends them (botocore's own event hook)."""
    calls: list[dict[str, Any]] = []
    ecs.meta.events.register(
        "provide-client-params.ecs.RunTask", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_the_stack_gives_the_scorer_and_the_sweep_what_workers_need(
    moto_endpoint: str, stack: Stack
) -> None:
    config = FargateConfig.from_env(task_env(moto_endpoint, stack, "ScorerTaskDefinition"))
    name = stack.params["Name"]
    assert config.task_definition == stack.resources["WorkerTaskDefinition"]
    assert config.family == f"{name}-worker"
    assert config.subnets == tuple(stack.params["PrivateSubnetIds"].split(","))
    assert config.security_groups == (stack.resources["WorkerSecurityGroup"],)
    assert (config.max_workers, config.worker_cpu, config.nthreads) == (16, 2048, 2)
    sweep = FargateConfig.from_env(task_env(moto_endpoint, stack, "SweepTaskDefinition"))
    assert sweep == config  # the sweep shards big files too, and stops orphans
    td = client("ecs", moto_endpoint).describe_task_definition(taskDefinition=config.family)
    (worker,) = td["taskDefinition"]["containerDefinitions"]
    assert worker["name"] == fargate.CONTAINER  # the name RunTask's override addresses
    assert worker["entryPoint"] == ["dask", "worker"]
    assert worker["image"].endswith(f"/{stack.resources['ScorerRepository']}:t1")  # same image
    assert worker["readonlyRootFilesystem"] is True


@pytest.mark.usefixtures("tasks_keep_running")
def test_workers_start_privately_and_are_stopped_after_success(
    moto_endpoint: str, stack: Stack, config: FargateConfig, ecs: Any
) -> None:
    run_id = f"claims@3/{uuid.uuid4().hex}"
    coordinator = start_coordinator(ecs, stack, config)
    calls = record_run_task(ecs)
    with FargateWorkers(
        config, scheduler=SCHEDULER, run_id=run_id, n=3, coordinator=coordinator, ecs=ecs
    ) as workers:
        arns = list(workers.task_arns)
        assert len(arns) == 3
        assert statuses(ecs, config, arns) == ["RUNNING"] * 3
        tasks = ecs.describe_tasks(cluster=config.cluster, tasks=arns, include=["TAGS"])["tasks"]
    assert statuses(ecs, config, arns) == ["STOPPED"] * 3
    assert statuses(ecs, config, [coordinator]) == ["RUNNING"]  # only its own workers

    assert len(calls) == 3
    for i, call in enumerate(calls):
        assert call["taskDefinition"] == config.task_definition
        assert call["cluster"] == config.cluster
        assert call["launchType"] == "FARGATE"
        assert call["networkConfiguration"] == {
            "awsvpcConfiguration": {
                "subnets": list(stack.params["PrivateSubnetIds"].split(",")),
                "securityGroups": [stack.resources["WorkerSecurityGroup"]],
                "assignPublicIp": "DISABLED",
            }
        }
        ((override),) = call["overrides"]["containerOverrides"]
        command = override["command"]
        assert override["name"] == "worker"
        assert command[0] == SCHEDULER
        assert command[command.index("--name") + 1].endswith(f"-{i}")  # Dask names are unique
        assert command[command.index("--death-timeout") + 1] == str(fargate.DEATH_TIMEOUT_S)
    # what ECS recorded: the worker family, in a private subnet, tagged with the run
    for task in tasks:
        assert task["taskDefinitionArn"] == config.task_definition
        assert task["group"] == f"family:{config.family}"
        assert task["startedBy"] == fargate.started_by(run_id, coordinator)
        tags = {t["key"]: t["value"] for t in task["tags"]}
        assert tags == {"dropscore:role": "worker", "dropscore:run": run_id,
                        "dropscore:coordinator": coordinator}  # fmt: skip
    # the network interfaces ECS attached (moto does not return a task's attachments): in the
    # workers' group only, in the private subnets, without a public IP
    enis = client("ec2", moto_endpoint).describe_network_interfaces(
        Filters=[{"Name": "group-id", "Values": list(config.security_groups)}]
    )["NetworkInterfaces"]
    assert len(enis) >= 3
    for eni in enis:
        assert [g["GroupId"] for g in eni["Groups"]] == list(config.security_groups)
        assert eni["SubnetId"] in config.subnets
        assert "Association" not in eni
    ecs.stop_task(cluster=config.cluster, task=coordinator)


@pytest.mark.usefixtures("tasks_keep_running")
def test_an_exception_inside_the_block_stops_every_worker(
    stack: Stack, config: FargateConfig, ecs: Any
) -> None:
    started: list[str] = []

    def a_run_that_fails() -> None:
        with FargateWorkers(config, scheduler=SCHEDULER, run_id="r-fail", n=2, ecs=ecs) as w:
            started.extend(w.task_arns)
            assert statuses(ecs, config, started) == ["RUNNING"] * 2
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        a_run_that_fails()
    assert statuses(ecs, config, started) == ["STOPPED"] * 2


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_sigterm_inside_the_block_stops_every_worker(
    stack: Stack, config: FargateConfig, ecs: Any
) -> None:
    from scorer.__main__ import _on_sigterm  # the CLI's own handler: it raises Interrupted

    started: list[str] = []

    def a_run_that_is_stopped() -> None:
        with FargateWorkers(config, scheduler=SCHEDULER, run_id="r-term", n=2, ecs=ecs) as w:
            started.extend(w.task_arns)
            os.kill(os.getpid(), signal.SIGTERM)
            # not reached: the handler raises first. Not signal.pause(): the signal may land on
            # another thread (Dask's, a client's) after this one is asleep in pause(), and the
            # Python handler runs only when this thread runs bytecode again — a hang
            for _ in range(600):
                time.sleep(0.05)
            pytest.fail("SIGTERM did not stop the run within 30 s")

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with pytest.raises(Interrupted):
            a_run_that_is_stopped()
    finally:
        signal.signal(signal.SIGTERM, previous)
        interrupt.requested.clear()
    assert len(started) == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2


def test_workers_that_stop_before_running_fail_the_run_clearly(
    stack: Stack, config: FargateConfig, ecs: Any
) -> None:
    """Without the fixture moto's tasks end as soon as they are described: like a worker whose
    image cannot be pulled. The run fails with WORKERS_UNAVAILABLE, and nothing is left."""
    workers = FargateWorkers(config, scheduler=SCHEDULER, run_id="r-dies", n=2, ecs=ecs)
    with pytest.raises(WorkersUnavailable, match="stopped before they ran") as caught, workers:
        pytest.fail("the block must not run without workers")
    assert caught.value.code == "WORKERS_UNAVAILABLE"
    assert len(workers.task_arns) == 2
    assert workers.stopped
    assert statuses(ecs, config, workers.task_arns) == ["STOPPED"] * 2


def test_ecs_refusing_runtask_fails_the_run_clearly(config: FargateConfig, ecs: Any) -> None:
    wrong = FargateConfig(
        cluster=config.cluster,
        task_definition=f"{config.family}-gone:1",
        subnets=config.subnets,
        security_groups=config.security_groups,
    )
    workers = FargateWorkers(wrong, scheduler=SCHEDULER, run_id="r-none", n=1, ecs=ecs)
    with pytest.raises(WorkersUnavailable, match="ECS refused to start Dask workers"), workers:
        pytest.fail("the block must not run without workers")
    assert workers.task_arns == []


@pytest.mark.usefixtures("tasks_keep_running")
def test_stop_orphans_stops_the_workers_of_a_dead_coordinator_only(
    stack: Stack, config: FargateConfig, ecs: Any
) -> None:
    def leave_running(run_id: str, coordinator: str) -> list[str]:
        # a coordinator killed with SIGKILL: its workers were started and nothing stopped them
        workers = FargateWorkers(
            config, scheduler=SCHEDULER, run_id=run_id, n=2, coordinator=coordinator, ecs=ecs
        )
        workers.start()
        workers.wait_running()
        return workers.task_arns

    dead, alive = start_coordinator(ecs, stack, config), start_coordinator(ecs, stack, config)
    orphans = leave_running("r-orphaned", dead)
    kept = leave_running("r-live", alive)
    ecs.stop_task(cluster=config.cluster, task=dead, reason="killed")

    stopped = stop_orphans(config, ecs=ecs)
    assert set(orphans) <= set(stopped)
    assert not set(kept) & set(stopped)
    assert statuses(ecs, config, orphans) == ["STOPPED"] * 2
    assert statuses(ecs, config, kept) == ["RUNNING"] * 2
    assert stop_orphans(config, ecs=ecs) == []  # nothing left to stop

    # a run being redone: every worker of that run, whoever started it
    assert sorted(stop_orphans(config, run_id="r-live", ecs=ecs)) == sorted(kept)
    assert statuses(ecs, config, kept) == ["STOPPED"] * 2
    ecs.stop_task(cluster=config.cluster, task=alive)


# --- the whole coordinator: a scheduler here, Fargate workers connected to it --------------------
@pytest.fixture
def metadata(moto_endpoint: str, stack: Stack, config: FargateConfig, ecs: Any) -> Iterator[str]:
    """The ECS task metadata endpoint of a coordinator task (a moto task) whose private IP is
    this machine's loopback, served over real HTTP."""
    coordinator = start_coordinator(ecs, stack, config)
    doc = {
        "TaskARN": coordinator,
        "Containers": [{"Name": "scorer", "Networks": [{"IPv4Addresses": ["127.0.0.1"]}]}],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(doc).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v4/task-1"
    server.shutdown()
    ecs.stop_task(cluster=config.cluster, task=coordinator)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_containers_here(ecs: Any, processes: list[subprocess.Popen[bytes]]) -> None:
    """Stand in for Fargate's container runtime: after each RunTask, run the task's container
    command (the worker definition's entry point `dask worker` + the override) on this machine,
    on free ports instead of the fixed ones (this machine is shared)."""

    def started(params: dict[str, Any], **_: Any) -> None:
        (override,) = params["overrides"]["containerOverrides"]
        command = list(override["command"])
        for flag in ("--worker-port", "--nanny-port"):
            command[command.index(flag) + 1] = str(free_port())
        dask = str(Path(sys.executable).parent / "dask")
        processes.append(
            subprocess.Popen([dask, "worker", *command], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        )  # fmt: skip

    ecs.meta.events.register("provide-client-params.ecs.RunTask", started)


@pytest.mark.usefixtures("tasks_keep_running")
def test_fargate_cluster_runs_work_on_the_workers_it_started_then_stops_them(
    config: FargateConfig, ecs: Any, metadata: str
) -> None:
    from distributed import Client

    processes: list[subprocess.Popen[bytes]] = []
    run_containers_here(ecs, processes)
    calls = record_run_task(ecs)
    try:
        with (
            fargate.fargate_cluster(
                config,
                run_id="r-cluster",
                n=2,
                environ={fargate.METADATA_ENV: metadata},
                ecs=ecs,
                scheduler_port=free_port(),
                connect_timeout=120,
            ) as address,
            Client(address) as client,
        ):
            names = {w["name"] for w in client.scheduler_info()["workers"].values()}
            assert names == {c["overrides"]["containerOverrides"][0]["command"][2]
                             for c in calls}  # fmt: skip
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        # every task of this run is stopped: none is left for the sweep to find
        assert stop_orphans(config, run_id="r-cluster", ecs=ecs) == []
        # and the worker processes end with their scheduler, cleanly (on Fargate the container
        # exits and its task stops even if StopTask had failed): ~5 s here
        assert [proc.wait(timeout=60) for proc in processes] == [0, 0]
    finally:
        for proc in processes:
            proc.kill()
            proc.wait(10)
    assert len(calls) == 2


@pytest.mark.usefixtures("tasks_keep_running")
def test_workers_that_never_connect_fail_the_run_and_are_stopped(
    config: FargateConfig, ecs: Any, metadata: str
) -> None:
    """RunTask succeeds but no worker reaches the scheduler (a wrong route or group)."""
    started: list[str] = []
    ecs.meta.events.register(
        "after-call.ecs.RunTask",
        lambda parsed, **_: started.extend(t["taskArn"] for t in parsed.get("tasks", [])),
    )
    with (
        pytest.raises(WorkersUnavailable, match="0 of 1 Dask workers connected") as caught,
        fargate.fargate_cluster(
            config,
            run_id="r-unreachable",
            n=1,
            environ={fargate.METADATA_ENV: metadata},
            ecs=ecs,
            scheduler_port=free_port(),
            connect_timeout=3,
        ),
    ):
        pytest.fail("the block must not run without workers")
    assert caught.value.code == "WORKERS_UNAVAILABLE"
    assert len(started) == 1
    assert statuses(ecs, config, started) == ["STOPPED"]


# --- a whole sharded run with --cluster fargate:N, through the command line --------------------
@pytest.fixture
def scorer_task(
    monkeypatch: pytest.MonkeyPatch, config: FargateConfig, ecs: Any, metadata: str
) -> list[subprocess.Popen[bytes]]:
    """This process as the stack's scorer task: the worker settings the stack gives it, its
    metadata endpoint, ECS (moto) whose RunTask starts real `dask worker` processes here, and a
    free scheduler port instead of 8786 (this machine is shared). Yields the worker processes."""
    for field, name in fargate.ENV.items():
        value = getattr(config, field)
        monkeypatch.setenv(name, ",".join(value) if isinstance(value, tuple) else str(value))
    monkeypatch.setenv(fargate.METADATA_ENV, metadata)
    monkeypatch.setattr(fargate, "ecs_client", lambda: ecs)
    monkeypatch.setattr(fargate, "SCHEDULER_PORT", free_port())
    processes: list[subprocess.Popen[bytes]] = []
    run_containers_here(ecs, processes)
    previous = signal.getsignal(signal.SIGTERM)  # main() installs the CLI's handler
    yield processes
    signal.signal(signal.SIGTERM, previous)
    for proc in processes:
        proc.kill()
        proc.wait(10)


def messy_claims(folder: Path, rows: int, seed: int) -> Path:
    """Sample rows with a quoted two-line cell in every 7th row and a non-number age (a row the
    model rejects) in every 11th."""
    from training.sample_data import generate

    path = folder / "claims.csv"
    frame = generate(rows, seed=seed).drop(columns=["charges"])
    frame["region"] = frame["region"].where(frame.index % 7 != 3, "a, quoted\nregion")
    frame["age"] = frame["age"].astype(str).where(frame.index % 11 != 5, "forty")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def claims_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~25 KB of sample rows (quoted cells, rows the model rejects among them): many shards."""
    return messy_claims(tmp_path_factory.mktemp("fargate-run"), 500, seed=7)


def score_cli(
    src: Path, out: Path, registry: str, cluster_arg: str, shard_mb: str = "0.004"
) -> int:
    from scorer import cliutil
    from scorer.__main__ import main
    from scorer.cli import build_parser

    return cliutil.run(
        main,
        ["score", str(src), "--registry", registry, "--model", "claims", "--out", str(out),
         "--workers", "0", "--cluster", cluster_arg, "--shard-over-mb", shard_mb],
        parser=build_parser,
    )  # fmt: skip


def ended(processes: list[subprocess.Popen[bytes]]) -> list[int | None]:
    """The worker processes end with their scheduler (on Fargate: the container exits)."""
    return [proc.wait(timeout=60) for proc in processes]


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_run_on_fargate_workers_scores_the_bytes_of_one_process_then_stops_them(
    tmp_path: Path,
    trained_registry: str,
    claims_csv: Path,
    config: FargateConfig,
    ecs: Any,
    scorer_task: list[subprocess.Popen[bytes]],
) -> None:
    started: list[str] = []
    ecs.meta.events.register(
        "after-call.ecs.RunTask",
        lambda parsed, **_: started.extend(t["taskArn"] for t in parsed.get("tasks", [])),
    )
    one, sharded = tmp_path / "none", tmp_path / "fargate"
    assert score_cli(claims_csv, one, trained_registry, "none") == 0
    assert started == []  # --cluster none starts nothing
    assert score_cli(claims_csv, sharded, trained_registry, "fargate:2") == 0

    for name in ("predictions.csv", "rejected.csv"):
        assert (sharded / name).read_bytes() == (one / name).read_bytes(), name
    manifest = json.loads((sharded / "manifest.json").read_text())
    alone = json.loads((one / "manifest.json").read_text())
    assert manifest["status"] == alone["status"] == "partial"
    assert manifest["rows_in"] == alone["rows_in"] == 500
    for field in ("rows_scored", "rows_rejected", "rejected_by_code", "warnings_by_code",
                  "alerts", "distributions"):  # fmt: skip
        assert manifest[field] == alone[field], field
    for name, entry in manifest["outputs"].items():
        assert entry["sha256"] == alone["outputs"][name]["sha256"], name
    assert manifest["shards"] >= 2
    assert manifest["workers"] == 2
    assert "shards" not in alone  # a run in one process writes no shards field
    assert alone["workers"] == 0
    # the run's workers: two tasks, both STOPPED once it committed; nothing left for the sweep
    assert len(started) == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2
    assert stop_orphans(config, run_id=manifest["run_id"], ecs=ecs) == []
    assert ended(scorer_task) == [0, 0]


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_small_file_starts_no_more_workers_than_it_has_shards(
    tmp_path: Path,
    trained_registry: str,
    claims_csv: Path,
    config: FargateConfig,
    ecs: Any,
    scorer_task: list[subprocess.Popen[bytes]],
) -> None:
    """fargate:4 for a file of one and a half shards (as its size says before the planning pass
    counts them): two worker tasks, not four (a task without a shard is billed for nothing)."""
    started: list[str] = []
    ecs.meta.events.register(
        "after-call.ecs.RunTask",
        lambda parsed, **_: started.extend(t["taskArn"] for t in parsed.get("tasks", [])),
    )
    shard_mb = claims_csv.stat().st_size / 1.5 / (1024 * 1024)
    out = tmp_path / "fargate"
    assert score_cli(claims_csv, out, trained_registry, "fargate:4", repr(shard_mb)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"] == 2
    assert len(started) == manifest["workers"] == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2
    assert ended(scorer_task) == [0, 0]


def kill_a_busy_worker(
    processes: list[subprocess.Popen[bytes]],
    killed: list[int],
    deadline_s: float = 180,
    everyone: bool = False,
) -> None:
    """From another Dask client on the run's scheduler: once a worker is scoring a shard, kill
    its `dask worker` process and the worker process under it (SIGKILL) — what a Fargate task
    whose container dies does to the run; ``everyone``: every worker's, at that moment."""
    import psutil
    from distributed import Client

    address = f"tcp://127.0.0.1:{fargate.SCHEDULER_PORT}"
    deadline = time.monotonic() + deadline_s
    watcher = None
    while watcher is None and time.monotonic() < deadline:
        try:
            watcher = Client(address, timeout="2s")
        except OSError:
            time.sleep(0.2)
    if watcher is None:
        return
    try:
        while len(watcher.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = watcher.run(os.getpid)
        while time.monotonic() < deadline:
            busy = [w for w, tasks in watcher.processing().items() if tasks and w in pids]
            if busy:
                for address in list(pids) if everyone else busy[:1]:
                    worker = psutil.Process(pids[address])
                    container = next(p for p in processes if p.pid == worker.ppid())
                    for proc in (psutil.Process(container.pid), worker):
                        proc.kill()
                    killed.append(container.pid)
                return
            time.sleep(0.005)
    finally:
        watcher.close()


@pytest.fixture(scope="module")
def bigger_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~1 MB of sample rows with quoted cells and rejected rows."""
    return messy_claims(tmp_path_factory.mktemp("fargate-kill"), 20_000, seed=11)


def score_here(src: Path, out: Path, registry: str, cluster_arg: str) -> dict[str, Any]:
    """A run as `score` makes it (its run_scope, the cluster parsed from the environment), with
    units of 64 rows so that the file's ~1 MB makes ~20 shards of 50 KB; its manifest."""
    from scorer import cluster, runs, service, storage
    from scorer.layout import ObjectVersion
    from scorer.registry import Registry
    from scorer.shards import Scale

    model = service.load_model(Registry(registry), "claims")
    spec = cluster.parse(cluster_arg, environ=os.environ)
    with cluster.run_scope():
        runs.score(ObjectVersion("", str(src)), str(out), model, "claims-v1-fargate-kill",
                   info=storage.head(str(src)), batch_rows=64, workers=0,
                   scale=Scale(spec, 50_000))  # fmt: skip
    return dict(json.loads((out / "manifest.json").read_text()))


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_fargate_worker_killed_mid_run_leaves_one_manifest_and_the_same_bytes(
    tmp_path: Path,
    trained_registry: str,
    bigger_csv: Path,
    config: FargateConfig,
    ecs: Any,
    scorer_task: list[subprocess.Popen[bytes]],
) -> None:
    """One of two worker tasks dies mid-run (its processes SIGKILLed): Dask scores its shards on
    the other, the run commits one manifest with the bytes of `--cluster none`, and every task
    the run started is STOPPED (the dead one included: ECS would stop it; the run asks too)."""
    started: list[str] = []
    ecs.meta.events.register(
        "after-call.ecs.RunTask",
        lambda parsed, **_: started.extend(t["taskArn"] for t in parsed.get("tasks", [])),
    )
    one, sharded = tmp_path / "none", tmp_path / "fargate"
    alone = score_here(bigger_csv, one, trained_registry, "none")
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_busy_worker, args=(scorer_task, killed), daemon=True)
    killer.start()
    manifest = score_here(bigger_csv, sharded, trained_registry, "fargate:2")
    killer.join(timeout=60)
    assert killed, "no worker was busy while the run was scoring"

    assert sorted(p.name for p in sharded.iterdir()) == sorted(p.name for p in one.iterdir())
    for name in ("predictions.csv", "rejected.csv"):
        assert (sharded / name).read_bytes() == (one / name).read_bytes(), name
    for field in ("status", "rows_in", "rows_scored", "rows_rejected", "rejected_by_code",
                  "warnings_by_code", "alerts", "distributions"):  # fmt: skip
        assert manifest[field] == alone[field], field
    assert manifest["shards"] >= 10
    assert len(started) == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2
    assert stop_orphans(config, run_id=manifest["run_id"], ecs=ecs) == []
    codes = {p.pid: p.wait(timeout=60) for p in scorer_task}
    assert codes == {p.pid: (-signal.SIGKILL if p.pid in killed else 0) for p in scorer_task}


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_run_whose_fargate_workers_all_die_fails_in_time_and_stays_pending(
    tmp_path: Path,
    trained_registry: str,
    bigger_csv: Path,
    config: FargateConfig,
    ecs: Any,
    scorer_task: list[subprocess.Popen[bytes]],
) -> None:
    """Every worker task dies mid-run (Fargate replaces none): after --cluster-timeout without
    a worker the run stops waiting for workers that will not come and ends CLUSTER_UNAVAILABLE
    — no manifest, the input pending for a retry or the sweep — and every task it started is
    STOPPED."""
    from scorer.cluster import ClusterUnavailable

    started: list[str] = []
    ecs.meta.events.register(
        "after-call.ecs.RunTask",
        lambda parsed, **_: started.extend(t["taskArn"] for t in parsed.get("tasks", [])),
    )
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_a_busy_worker, args=(scorer_task, killed), kwargs={"everyone": True},
        daemon=True,
    )  # fmt: skip
    killer.start()
    out = tmp_path / "fargate"
    failed: list[BaseException] = []

    def run() -> None:
        try:
            score_here(bigger_csv, out, trained_registry, "fargate:2")
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=120)
    assert not runner.is_alive(), "the run still waits for workers that will never come"
    assert len(killed) == 2, "the workers were not both busy killing"
    (exc,) = failed
    assert isinstance(exc, ClusterUnavailable), exc
    assert "the input stays pending" in exc.message
    assert not (out / "manifest.json").exists()
    assert len(started) == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2


@pytest.mark.usefixtures("tasks_keep_running")
def test_a_run_that_fails_on_fargate_workers_stops_them_and_stays_pending(
    tmp_path: Path,
    trained_registry: str,
    claims_csv: Path,
    config: FargateConfig,
    ecs: Any,
    scorer_task: list[subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The input vanishes once the shards are planned and the workers asked for: every shard
    fails on its worker, the run ends CLUSTER_UNAVAILABLE (exit 1, no manifest), and the
    workers are stopped all the same."""
    src = tmp_path / "claims.csv"
    src.write_bytes(claims_csv.read_bytes())
    started: list[str] = []

    def runtask_returned(parsed: dict[str, Any], **_: Any) -> None:
        started.extend(t["taskArn"] for t in parsed.get("tasks", []))
        src.unlink(missing_ok=True)  # the coordinator has scanned it; the workers will not find it

    ecs.meta.events.register("after-call.ecs.RunTask", runtask_returned)
    out = tmp_path / "out"
    assert score_cli(src, out, trained_registry, "fargate:2") == 1
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("error [CLUSTER_UNAVAILABLE]: the Dask cluster lost a shard")
    assert not (out / "manifest.json").exists()
    assert len(started) == 2
    assert statuses(ecs, config, started) == ["STOPPED"] * 2
    assert ended(scorer_task) == [0, 0]


@pytest.mark.usefixtures("tasks_keep_running")
def test_the_sweep_stops_the_workers_a_killed_coordinator_left_running(
    monkeypatch: pytest.MonkeyPatch,
    stack: Stack,
    config: FargateConfig,
    ecs: Any,
    s3_registry: str,
    bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scorer sweep` in the stack's sweep task (its worker settings in the environment)."""
    from scorer import cliutil
    from scorer.__main__ import main

    def leave_running(run_id: str, coordinator: str) -> list[str]:
        workers = FargateWorkers(
            config, scheduler=SCHEDULER, run_id=run_id, n=2, coordinator=coordinator, ecs=ecs
        )
        workers.start()
        workers.wait_running()
        return workers.task_arns

    dead, alive = start_coordinator(ecs, stack, config), start_coordinator(ecs, stack, config)
    orphans = leave_running("r-sweep-orphaned", dead)
    kept = leave_running("r-sweep-live", alive)
    ecs.stop_task(cluster=config.cluster, task=dead, reason="SIGKILL")
    for field, name in fargate.ENV.items():
        value = getattr(config, field)
        monkeypatch.setenv(name, ",".join(value) if isinstance(value, tuple) else str(value))
    monkeypatch.setattr(fargate, "ecs_client", lambda: ecs)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cliutil.run(main, ["sweep", "--bucket", bucket, "--model", "claims"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "sweep: stopped 2 orphaned Dask worker(s)" in capsys.readouterr().err
    assert statuses(ecs, config, orphans) == ["STOPPED"] * 2
    assert statuses(ecs, config, kept) == ["RUNNING"] * 2  # a live run's workers are its own
    stop_orphans(config, run_id="r-sweep-live", ecs=ecs)
    ecs.stop_task(cluster=config.cluster, task=alive)
