"""The cost of a run: Fargate list prices against hand-computed figures, the task's size from a
real HTTP task metadata endpoint (a local server serving what ECS serves), and the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from scorer import cost, taskinfo
from scorer.cost import TaskSize
from scorer.manifest import Manifest
from tests.conftest import ROOT

USE1 = "us-east-1"


@pytest.mark.parametrize(
    ("size", "seconds", "billed", "usd"),
    [
        # 1 vCPU, 2 GB, 10 s → the one-minute minimum: (0.04048 + 2 × 0.004445) / 60
        (TaskSize("fargate", 1, 2, "x86_64", False, USE1), 10, 60, 0.000823),
        # 4 vCPU, 8 GB, one hour on Graviton: 4 × 0.03238 + 8 × 0.00356 = 0.158
        (TaskSize("fargate", 4, 8, "arm64", False, USE1), 3600, 3600, 0.158),
        # the same hour on x86 Spot at the assumed 70 % off: (4 × 0.04048 + 8 × 0.004445) × 0.3
        (TaskSize("fargate", 4, 8, "x86_64", True, USE1), 3600, 3600, 0.059244),
        # Frankfurt, 0.5 vCPU / 1 GB, 90.2 s → 91 s: (0.5 × 0.04656 + 0.00511) × 91 / 3600
        (TaskSize("fargate", 0.5, 1, "x86_64", False, "eu-central-1"), 90.2, 91, 0.000718),
    ],
    ids=[
        "1 vCPU 2 GB for 10 s is billed a minute",
        "4 vCPU 8 GB for an hour on arm64",
        "4 vCPU 8 GB for an hour on Spot",
        "a part second is billed as a whole second in eu-central-1",
    ],
)
def test_cost_of_a_run_matches_the_hand_computed_list_price(
    size: TaskSize, seconds: float, billed: int, usd: float
) -> None:
    c = cost.estimate(size, seconds)
    assert c["billed_s"] == billed
    assert c["usd"] == pytest.approx(usd, abs=5e-7)
    assert ("Spot prices vary" in c["note"]) == size.spot


@pytest.mark.parametrize(
    ("size", "why"),
    [
        (TaskSize("local", 2), "outside Fargate"),
        (TaskSize("fargate", None, None, region=USE1), "size is unknown"),
        (TaskSize("fargate", 1, 2, region="ap-south-2"), "no list price"),
    ],
    ids=["a local run has no money figure", "an unknown size", "a region without a price"],
)
def test_no_figure_is_invented(size: TaskSize, why: str) -> None:
    c = cost.estimate(size, 5)
    assert c["usd"] is None
    assert why in c["note"]


# what ${ECS_CONTAINER_METADATA_URI_V4}/task returns on Fargate (shape of the AWS docs' example)
TASK_METADATA: dict[str, Any] = {
    "Cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/dropscore",
    "TaskARN": "arn:aws:ecs:eu-west-1:111122223333:task/dropscore/158d1c8083dd49d6b527399fd6414f5c",
    "Family": "dropscore-scorer",
    "Revision": "7",
    "DesiredStatus": "RUNNING",
    "KnownStatus": "RUNNING",
    "Limits": {"CPU": 2, "Memory": 4096},
    "PullStartedAt": "2026-11-29T10:00:01.1Z",
    "PullStoppedAt": "2026-11-29T10:00:09.9Z",
    "AvailabilityZone": "eu-west-1b",
    "LaunchType": "FARGATE",
    "Containers": [
        {
            "DockerId": "158d1c8083dd49d6b527399fd6414f5c-1234567890",
            "Name": "scorer",
            "Image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/dropscore-scorer:latest",
            "Limits": {"CPU": 2, "Memory": 4096},
            "Type": "NORMAL",
        }
    ],
    "ClockDrift": {"ClockErrorBound": 0.5, "ReferenceTimestamp": "2026-11-29T10:00:00Z"},
    "EphemeralStorageMetrics": {"Utilized": 261, "Reserved": 20496},
}


@pytest.fixture
def metadata_endpoint() -> Iterator[str]:
    """A tiny HTTP server answering like the ECS agent: JSON at <uri>/task."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(TASK_METADATA).encode() if self.path == "/v4/abc/task" else b"{}"
            self.send_response(200 if self.path == "/v4/abc/task" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v4/abc"
    server.shutdown()


def test_the_task_size_comes_from_the_metadata_endpoint(metadata_endpoint: str) -> None:
    env = {"ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint, "DROPSCORE_CAPACITY": "spot"}
    size = taskinfo.from_environment(env, machine="aarch64")
    assert size == TaskSize("fargate", 2.0, 4.0, "arm64", True, "eu-west-1")
    c = cost.estimate(size, 30)  # a minute of 2 vCPU + 4 GB on Graviton Spot in Ireland
    assert c["usd"] == pytest.approx((2 * 0.03238 + 4 * 0.00356) / 60 * 0.3, abs=5e-7)


def test_outside_a_task_or_with_the_endpoint_down_there_is_no_figure() -> None:
    local = taskinfo.from_environment({}, machine="x86_64")
    assert (local.where, local.architecture) == ("local", "x86_64")
    down = taskinfo.from_environment({"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/v4"})
    assert (down.where, down.vcpu) == ("fargate", None)
    assert cost.estimate(down, 1)["usd"] is None


def test_a_scored_file_records_task_size_and_cost_in_its_manifest(
    tmp_path: Path, trained_registry: str, sample_csv: Path, metadata_endpoint: str
) -> None:
    env = {
        "ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint,
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "scorer", "score", str(sample_csv), "--registry", trained_registry,
         "--model", "claims", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    m = Manifest.from_json((out / "manifest.json").read_text())
    assert m.task.where == "fargate"
    assert (m.task.vcpu, m.task.memory_gb, m.task.region) == (2.0, 4.0, "eu-west-1")
    assert m.cost.billed_s == max(60, -(-m.duration_s // 1))
    per_s = (2 * cost.ON_DEMAND[("eu-west-1", m.task.architecture)][0]) + 4 * (
        cost.ON_DEMAND[("eu-west-1", m.task.architecture)][1]
    )
    assert m.cost.usd == pytest.approx(per_s * m.cost.billed_s / 3600, abs=5e-7)


def test_an_old_manifest_without_cost_still_loads() -> None:
    old = {"run_id": "claims-v1-0000000000000000", "status": "ok", "input": {}, "model": {}}
    m = Manifest.from_json(json.dumps(old))
    assert (m.task.to_dict(), m.cost.to_dict(), m.event_bus) == ({}, {}, None)
