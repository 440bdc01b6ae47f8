"""The pure parts of scorer/fargate.py: the configuration the stack passes in, the worker's
command line, the identity ECS keeps on each worker, and this task's address from a real HTTP
metadata endpoint. The lifecycle against ECS is in tests/infra/test_fargate_workers.py."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from scorer import fargate
from scorer.errors import BadArgument, WorkersUnavailable
from scorer.fargate import Coordinator, FargateConfig, FargateWorkers

ENV = {
    "DROPSCORE_ECS_CLUSTER": "arn:aws:ecs:us-east-1:123456789012:cluster/ds",
    "DROPSCORE_WORKER_TASK_DEFINITION": "arn:aws:ecs:us-east-1:1234:task-definition/ds-worker:7",
    "DROPSCORE_SUBNETS": "subnet-a, subnet-b",
    "DROPSCORE_WORKER_SECURITY_GROUP": "sg-w",
    "DROPSCORE_MAX_WORKERS": "4",
    "DROPSCORE_WORKER_CPU": "4096",
}  # fmt: skip


def test_config_comes_from_the_stacks_environment() -> None:
    config = FargateConfig.from_env(ENV)
    assert config == FargateConfig(
        cluster=ENV["DROPSCORE_ECS_CLUSTER"],
        task_definition=ENV["DROPSCORE_WORKER_TASK_DEFINITION"],
        subnets=("subnet-a", "subnet-b"),
        security_groups=("sg-w",),
        max_workers=4,
        worker_cpu=4096,
    )
    assert config.family == "ds-worker"
    assert config.nthreads == 4  # one Dask thread per vCPU of the worker task
    bare = FargateConfig.from_env({**ENV, "DROPSCORE_MAX_WORKERS": "", "DROPSCORE_WORKER_CPU": ""})
    assert (bare.max_workers, bare.worker_cpu, bare.nthreads) == (16, 1024, 1)
    assert (
        FargateConfig.from_env({**ENV, "DROPSCORE_WORKER_TASK_DEFINITION": "ds-worker"}).family
        == "ds-worker"
    )


def test_a_missing_setting_is_named_not_guessed() -> None:
    env = {k: v for k, v in ENV.items() if k not in ("DROPSCORE_SUBNETS", "DROPSCORE_ECS_CLUSTER")}
    with pytest.raises(BadArgument) as caught:
        FargateConfig.from_env(env)
    assert caught.value.code == "BAD_ARGUMENT"
    assert "DROPSCORE_ECS_CLUSTER, DROPSCORE_SUBNETS" in caught.value.message
    assert "--cluster local" in caught.value.message  # what to do instead


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_worker_count_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(BadArgument, match="DROPSCORE_MAX_WORKERS must be a positive whole"):
        FargateConfig.from_env({**ENV, "DROPSCORE_MAX_WORKERS": value})


def test_a_run_needs_a_worker_and_is_capped_by_the_stack() -> None:
    config = FargateConfig.from_env(ENV)
    with pytest.raises(BadArgument):
        FargateWorkers(config, scheduler="tcp://10.0.0.1:8786", run_id="r", n=0, ecs=object())
    capped = FargateWorkers(config, scheduler="tcp://10.0.0.1:8786", run_id="r", n=50, ecs=object())
    assert capped.n == 4  # MaxWorkers bounds the bill whatever a run asks for


def test_the_worker_command_pins_the_ports_the_security_groups_open() -> None:
    command = fargate.worker_command("tcp://10.1.2.3:8786", "abc-0", 2)
    assert command[0] == "tcp://10.1.2.3:8786"
    flags = {"--no-dashboard"}
    options = {
        c: command[i + 1] for i, c in enumerate(command) if c.startswith("--") and c not in flags
    }
    assert options["--worker-port"] == "8788"
    assert options["--nanny-port"] == "8789"
    assert options["--nthreads"] == "2"
    assert options["--nworkers"] == "1"
    assert options["--death-timeout"] == str(fargate.DEATH_TIMEOUT_S)
    assert "--no-dashboard" in command  # 8787 stays closed: nothing listens there


def test_the_dask_cli_accepts_the_worker_command() -> None:
    """The options exist in the installed `dask worker` (the image runs the same venv)."""
    from click.testing import CliRunner
    from distributed.cli.dask_worker import main

    help_text = CliRunner().invoke(main, ["--help"]).output
    for option in fargate.worker_command("tcp://x:8786", "n", 1):
        if option.startswith("--"):
            assert option in help_text, option


def test_started_by_says_whose_worker_a_task_is() -> None:
    coordinator = "arn:aws:ecs:us-east-1:123456789012:task/ds/0123456789abcdef0123456789abcdef"
    run_id = "claims@3/" + "x" * 300
    value = fargate.started_by(run_id, coordinator)
    # ECS: at most 128 letters, digits, hyphens, slashes and underscores
    assert re.fullmatch(r"[A-Za-z0-9/_-]{1,128}", value)
    assert value.split("/")[:2] == ["dropscore", "0123456789abcdef0123456789abcdef"]
    assert value != fargate.started_by(run_id + "y", coordinator)
    assert fargate.started_by(run_id).split("/")[1] == fargate.NO_COORDINATOR


TASK = {
    "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/ds/abc",
    "Containers": [{"Name": "scorer", "Networks": [{"IPv4Addresses": ["10.0.3.17"]}]}],
}


@pytest.fixture
def metadata() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/v4/abc/task"
            body = json.dumps(TASK).encode() if found else b"{}"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v4/abc"
    server.shutdown()


def test_the_coordinator_knows_its_task_and_address(metadata: str) -> None:
    me = fargate.coordinator_from_metadata({fargate.METADATA_ENV: metadata})
    assert me == Coordinator(arn=TASK["TaskARN"], ip="10.0.3.17")
    assert me.scheduler_address() == "tcp://10.0.3.17:8786"


def test_outside_ecs_or_without_metadata_the_coordinator_says_why(metadata: str) -> None:
    with pytest.raises(BadArgument, match="started from an ECS task"):
        fargate.coordinator_from_metadata({})
    with pytest.raises(WorkersUnavailable, match="metadata endpoint"):
        fargate.coordinator_from_metadata({fargate.METADATA_ENV: metadata + "/gone"})
