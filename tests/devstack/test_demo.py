"""`make demo`'s stack end to end: it starts, scores its first file and one dropped like a user
would, then Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port
from training.sample_data import TARGET, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_stack_scores_a_dropped_file_and_stops_cleanly(tmp_path: Path) -> None:
    import boto3

    s3_port, ui_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{s3_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DROPSCORE_"))}
    env.update(
        DROPSCORE_S3_ENDPOINT=endpoint,
        DROPSCORE_UI_PORT=str(ui_port),
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "devstack.demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        text = log.read_text()
        assert f"aws --endpoint-url {endpoint} s3 cp" in text
        assert "scored: s3://dropscore/scored/demo/first claims/" in text
        # the first file shows rejected rows too: the three bad rows made from the card
        assert "status=partial rows_in=503 scored=500 rejected=3" in text

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        row = generate(1, seed=5).drop(columns=[TARGET]).to_csv(index=False)
        s3.put_object(Bucket="dropscore", Key="incoming/user/drop 1.csv", Body=row.encode())
        manifest = None
        deadline = time.monotonic() + 60
        while manifest is None and time.monotonic() < deadline:
            for obj in s3.list_objects_v2(Bucket="dropscore", Prefix="scored/user/drop 1/").get(
                "Contents", []
            ):
                if obj["Key"].endswith("manifest.json"):
                    manifest = json.loads(
                        s3.get_object(Bucket="dropscore", Key=obj["Key"])["Body"].read()
                    )
            time.sleep(1)
        assert manifest is not None, log.read_text()
        assert (manifest["status"], manifest["rows_in"], manifest["rows_scored"]) == ("ok", 1, 1)
        # the run's event reaches the demo's console as one line (rule source dropscore → SQS)
        line = "[event] Run Completed: s3://dropscore/incoming/user/drop 1.csv ok, 1 in / 1 scored"
        deadline = time.monotonic() + 30
        while line not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        assert log.read_text().count(line) == 1
        # the sample job (rate(1 minute)) fires from the demo's local scheduler
        deadline = time.monotonic() + 100
        while "job demo-every-minute occurrence" not in log.read_text():  # its summary line
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(2)
        assert "(complete)" in log.read_text().split("job demo-every-minute occurrence", 1)[1]
    finally:
        children = psutil.Process(demo.pid).children(recursive=True) if demo.poll() is None else []
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    time.sleep(1)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert demo.returncode == 0
