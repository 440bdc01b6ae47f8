"""`make demo`'s stack end to end: it starts, scores its first file, a bigger one in shards on a
local Dask cluster (the bytes of one process) and one dropped like a user would, then Ctrl-C in
the middle of a sharded run leaves no process behind."""

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
        deadline = time.monotonic() + 480  # trains the sample model on a fresh checkout
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
        assert manifest.get("shards", 0) == 0  # a small drop runs in one process
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

        # the big sample file was a sharded run, with the bytes of one process
        sharded = sharded_manifest(s3)
        assert sharded.get("shards", 0) >= 2, (sharded, text)
        assert sharded["workers"] == 2  # local:2
        assert f"scored in {sharded['shards']} shards on 2 Dask workers" in text
        assert "see it at http://127.0.0.1:" in text
        assert "/runs?run=sharded/big%20claims/claims-v" in text
        one = score_in_one_process(s3, sharded, env, tmp_path)
        for name, entry in sharded["outputs"].items():
            body = s3.get_object(Bucket="dropscore", Key=entry["key"])["Body"].read()
            assert body == one[name], name

        # Ctrl-C while a sharded run is on its Dask workers: nothing of it is left
        s3.copy_object(
            Bucket="dropscore",
            Key="incoming/user/big again.csv",
            CopySource={"Bucket": "dropscore", "Key": "incoming/sharded/big claims.csv"},
        )
        deadline = time.monotonic() + 120
        while not any("multiprocessing" in " ".join(cmdline(p)) for p in tree(demo.pid)):
            assert time.monotonic() < deadline, "no Dask worker started for the second big file"
            time.sleep(0.5)
    finally:
        children = tree(demo.pid) if demo.poll() is None else []
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    time.sleep(1)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [cmdline(p) for p in alive]
    assert demo.returncode == 0


def tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def sharded_manifest(s3) -> dict:  # type: ignore[no-untyped-def]
    listed = s3.list_objects_v2(Bucket="dropscore", Prefix="scored/sharded/big claims/")
    [key] = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/manifest.json")]
    return json.loads(s3.get_object(Bucket="dropscore", Key=key)["Body"].read())


def score_in_one_process(s3, manifest: dict, env: dict, tmp: Path) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """The demo's big file scored again by `scorer score --cluster none`: its output files."""
    src = tmp / "big claims.csv"
    body = s3.get_object(
        Bucket="dropscore", Key=manifest["input"]["key"], VersionId=manifest["input"]["version_id"]
    )["Body"].read()
    src.write_bytes(body)
    model = f"{manifest['model']['name']}@{manifest['model']['version']}"
    out = tmp / "one process"
    args = ["score", str(src), "--registry", "s3://dropscore/models", "--model", model]
    args += ["--out", str(out), "--cluster", "none", "--workers", "0"]
    subprocess.run(
        [sys.executable, "-m", "scorer", *args],
        cwd=ROOT,
        env={**env, "AWS_ENDPOINT_URL": env["DROPSCORE_S3_ENDPOINT"]},
        check=True,
        capture_output=True,
    )
    return {name: (out / f"{name}.csv").read_bytes() for name in manifest["outputs"]}
