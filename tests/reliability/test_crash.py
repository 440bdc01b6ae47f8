"""Crashes: a real SIGKILL at named points of a real run (DROPSCORE_FAULT, see
storage.base.Settings), then a rerun; and a real SIGTERM in the middle of a file. The ledger
holds after each."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from scorer import service, storage
from scorer.layout import ObjectVersion
from tests.reliability.conftest import (
    cli_proc,
    ledger,
    manifests,
    open_uploads,
    put,
    run_event,
    sample_csv,
    scored_versions,
)
from tests.scorer.test_events import eventbridge

PART = storage.MIN_PART_SIZE  # 5 MiB parts, so a ~7 MiB predictions.csv spans two
ROWS = 140_000


@pytest.fixture(scope="module")
def big_csv() -> bytes:
    return sample_csv(ROWS, seed=21)


@pytest.fixture(scope="module")
def reference(
    big_csv: bytes, trained_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """predictions.csv of an uninterrupted run of the same bytes (once per module, on local
    files: the bytes are the same wherever they are written)."""
    from scorer import runs
    from scorer.registry import Registry

    reg = Registry(trained_registry)
    model = reg.load(reg.resolve("claims"))
    src = tmp_path_factory.mktemp("ref") / "big.csv"
    src.write_bytes(big_csv)
    out = src.parent / "out"
    runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        "claims-v1-0000000000000000",
        info=storage.head(str(src)),
    )
    body = (out / "predictions.csv").read_bytes()
    assert len(body) > PART, "the file must span more than one multipart part"
    return body


KILL_POINTS = [
    ("killed before any output is opened", "open:predictions.csv"),
    ("killed mid multipart upload, after part 1", "after_part:1"),
    ("killed between the last part and the manifest", "commit:manifest.json"),
]


@pytest.mark.slow
@pytest.mark.parametrize("fault", [p for _, p in KILL_POINTS], ids=[i for i, _ in KILL_POINTS])
def test_sigkill_then_rerun_gives_one_manifest_and_identical_predictions(
    s3: Any, bucket: str, s3_registry: str, big_csv: bytes, reference: bytes, fault: str
) -> None:
    key = "incoming/crash/big.csv"
    version = put(s3, bucket, key, big_csv)
    killed = run_event(
        bucket, key, version, env={"DROPSCORE_FAULT": fault, "DROPSCORE_PART_SIZE": str(PART)}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not [k for k in manifests(s3, bucket) if k.startswith("scored/crash/")]
    if fault.startswith("after_part"):
        assert open_uploads(s3, bucket) == [
            k for k in open_uploads(s3, bucket) if k.endswith("/predictions.csv")
        ]
        assert open_uploads(s3, bucket), "the kill left an upload open"
    before = ledger(bucket)
    assert any(v.startswith("INPUT_PENDING incoming/crash/big.csv") for v in before)

    rerun = service.score_object(ObjectVersion(bucket, key, version), service.Settings())
    assert rerun is not None
    assert not rerun.already_done
    m = rerun.manifest
    assert (m.status, m.rows_in, m.rows_scored) == ("ok", ROWS, ROWS)
    pred = s3.get_object(Bucket=bucket, Key=m.outputs["predictions"].key)["Body"].read()
    assert pred == reference
    assert open_uploads(s3, bucket) == []
    crash_keys = [k for k, _ in scored_versions(s3, bucket) if k.startswith("scored/crash/")]
    assert len(crash_keys) == len(set(crash_keys)) == 2  # one version each: manifest, predictions
    assert ledger(bucket) == []


@pytest.mark.slow
def test_sigterm_mid_file_stops_within_25s_with_interrupted_and_the_next_run_completes(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    rows = 260_000  # three 5 MiB parts of predictions: the signal lands well inside the file
    key = "incoming/term.csv"
    version = put(s3, bucket, key, sample_csv(rows, seed=8))
    # the run holds still after part 1 (DROPSCORE_FAULT=pause:…), so the signal lands mid-file
    # however fast the machine is — without it a quick run could finish before the signal
    proc = cli_proc(
        "event",
        "--event",
        "-",
        env={"DROPSCORE_PART_SIZE": str(PART), "DROPSCORE_FAULT": "pause:after_part:1"},
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(eventbridge(key, version, bucket)))
    proc.stdin.close()
    deadline = time.monotonic() + 600
    while not open_uploads(s3, bucket):  # part 1 of predictions.csv is up: mid-file
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    stopped_in = time.monotonic() - t0
    err = proc.stderr.read() if proc.stderr else ""
    print(f"SIGTERM → exit {proc.returncode} in {stopped_in:.1f} s")
    assert stopped_in <= 25
    assert proc.returncode == 1
    assert "error [INTERRUPTED]" in err
    assert manifests(s3, bucket) == {}
    assert open_uploads(s3, bucket) == []  # the writer aborted its upload on the way out
    assert scored_versions(s3, bucket) == []
    rerun = run_event(bucket, key, version)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    [m] = manifests(s3, bucket).values()
    assert (m["status"], m["rows_in"]) == ("ok", rows)
    assert ledger(bucket) == []


def test_sigterm_just_after_the_commit_exits_as_the_committed_run_says(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    """Once manifest.json exists the outcome is decided: a SIGTERM then (e.g. ECS stopping the
    task as it finishes) must not turn a committed run into exit 1 and 'before committing'."""
    key = "incoming/late-term.csv"
    version = put(s3, bucket, key, sample_csv(50, seed=3))
    # the run holds still right after manifest.json is written, until the signal arrives
    proc = cli_proc(
        "event", "--event", "-", env={"DROPSCORE_FAULT": "pause:committed:manifest.json"}
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(eventbridge(key, version, bucket)))
    proc.stdin.close()
    deadline = time.monotonic() + 600
    while not manifests(s3, bucket):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, err
    assert "INTERRUPTED" not in err
    assert "ok: 50 rows in, 50 scored, 0 rejected" in err
    [m] = manifests(s3, bucket).values()
    assert m["status"] == "ok"
    assert ledger(bucket) == []


def _still_running(procs: list[Any]) -> list[Any]:
    import psutil

    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_sigkill_of_a_run_with_workers_leaves_no_worker_behind(
    s3: Any, bucket: str, s3_registry: str, tmp_path: Any
) -> None:
    """Forked workers die with their parent: a SIGKILLed run (OOM, a task stopped hard) must
    not leave processes holding its stdout/stderr, which would block whoever reads them."""
    import psutil

    src = tmp_path / "big.csv"
    src.write_bytes(sample_csv(ROWS, seed=6))
    proc = cli_proc(
        "score", str(src), "--registry", s3_registry, "--model", "claims", "--workers", "2",
        "--out", f"s3://{bucket}/scored/orphans/run/",
        # the run holds still after part 1 of predictions.csv: its workers are up and waiting
        env={"DROPSCORE_PART_SIZE": str(PART), "DROPSCORE_FAULT": "pause:after_part:1"},
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not open_uploads(s3, bucket):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) == 2, workers
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while _still_running(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _still_running(workers)
    for p in left:  # do not leak them into the rest of the session when the test fails
        p.kill()
    assert left == []
