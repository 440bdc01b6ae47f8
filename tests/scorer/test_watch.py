"""``scorer watch`` runs each event as a child process: a child that dies while something it
started still holds its stderr must not block watch, and nothing of it may outlive it; the
child scores with watch's --cluster/--shard-over-mb (a big file in shards, the same bytes)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

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


def test_watch_hands_its_cluster_settings_to_each_event_it_scores(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    """`watch --cluster local:1 --shard-over-mb` (the cluster from DROPSCORE_CLUSTER): the
    event's child scores the file in shards, with the bytes `score --cluster none` gives."""
    import boto3

    from tests.scorer.test_events import eventbridge
    from tests.scorer.test_s3_runs import cli, manifests, put_sample

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"{bucket}-scaled")["QueueUrl"]
    key = "incoming/scaled.csv"
    version = put_sample(s3, bucket, key, rows=400, seed=9)  # ~20 KB: shards of 4 KB
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge(key, version, bucket)))
    done = cli(
        "watch", "--bucket", bucket, "--queue", queue, "--once", "--shard-over-mb", "0.004",
        env={"DROPSCORE_CLUSTER": "local:1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [manifest] = manifests(s3, bucket).values()
    assert manifest["status"] == "ok"
    assert manifest["shards"] > 1
    alone = f"s3://{bucket}/adhoc/none"
    one = cli(
        "score", f"s3://{bucket}/{key}", "--registry", s3_registry, "--model", "claims",
        "--out", alone, "--cluster", "none",
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    sharded = s3.get_object(Bucket=bucket, Key=manifest["outputs"]["predictions"]["key"])
    single = s3.get_object(Bucket=bucket, Key="adhoc/none/predictions.csv")
    assert sharded["Body"].read() == single["Body"].read()


def test_watch_refuses_cluster_settings_that_cannot_work(bucket: str) -> None:
    from tests.scorer.test_s3_runs import cli

    done = cli("watch", "--bucket", bucket, "--queue", "q", "--cluster", "local:0")
    assert done.returncode == 2
    assert "error [BAD_ARGUMENT]: --cluster must be none, local" in done.stderr
