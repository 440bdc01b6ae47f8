"""A sharded run to a local destination on a local Dask cluster: each worker writes its shard's
predictions to a part file beside the destination and the run joins them, in file order, into
the temp file it links into place — the bytes of one process, nothing left beside them, also
when a worker is killed mid-run (Dask scores its shards again; the part file's last write
wins)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from scorer import cluster, runs, storage
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from scorer.shards import Scale

BATCH = 16  # small units: a 1,500-row file makes dozens of shards
TIMINGS = {"started_at", "finished_at", "duration_s", "rows_per_s", "peak_memory_mb", "workers",
           "workers_peak_memory_mb", "shards", "task", "cost"}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> bytes:
    """Sample rows with quoted multi-line cells and rows the model rejects."""
    from training.sample_data import generate

    frame = generate(1500, seed=17).drop(columns=["charges"])
    frame["region"] = frame["region"].where(frame.index % 7 != 3, "a, quoted\nregion")
    frame["age"] = frame["age"].astype(str).where(frame.index % 11 != 5, "forty")
    return frame.to_csv(index=False).encode()


def run(tmp: Path, data: bytes, model: LoadedModel, spec: str, tag: str) -> dict:
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / tag
    runs.score(ObjectVersion("", str(src)), str(out), model, "claims-v1-local-parts",
               info=storage.head(str(src)), batch_rows=BATCH, workers=0,
               scale=Scale(cluster.parse(spec), 2000))  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest.get("outputs", {}).values():
        entry.pop("url")
    return {
        "names": sorted(p.name for p in out.iterdir()),  # dot-files (part files) included
        "files": {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"},
        "manifest": {k: v for k, v in manifest.items() if k not in TIMINGS},
        "shards": manifest.get("shards", 0),
    }


def composed(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "composed predictions from worker parts"]


def test_workers_write_part_files_and_the_run_joins_them_into_the_bytes_of_one_process(
    tmp_path: Path, data: bytes, claims_model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    one = run(tmp_path, data, claims_model, "none", "none")
    caplog.set_level(logging.INFO, logger="dropscore.scorer")
    sharded = run(tmp_path, data, claims_model, "local:2", "sharded")
    assert sharded["shards"] >= 10
    assert sharded["files"] == one["files"]
    assert sharded["manifest"] == one["manifest"]  # sha256 of the joined file included
    assert sharded["names"] == one["names"] == ["manifest.json", "predictions.csv", "rejected.csv"]
    [record] = composed(caplog)
    worker, own = record.__dict__["worker_bytes"], record.__dict__["coordinator_bytes"]
    assert worker + own == len(one["files"]["predictions.csv"])
    header = one["files"]["predictions.csv"].split(b"\n", 1)[0]
    assert own == len(header) + 1  # the run wrote the header; the workers wrote every row


def test_a_worker_killed_mid_run_leaves_the_same_bytes_and_no_part_file(
    tmp_path: Path, data: bytes, claims_model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    one = run(tmp_path, data, claims_model, "none", "none")
    dask = cluster.client(cluster.parse("local:2"))
    pids = dask.run(os.getpid)
    killed: list[int] = []

    def kill_one_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, tasks in dask.processing().items() if tasks and w in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.002)

    killer = threading.Thread(target=kill_one_when_busy, daemon=True)
    killer.start()
    caplog.set_level(logging.INFO, logger="dropscore.scorer")
    sharded = run(tmp_path, data, claims_model, "local:2", "killed")
    killer.join()
    assert killed, "no worker was busy while the run was scoring"
    assert composed(caplog), "the workers wrote no part file"
    assert sharded["files"] == one["files"]
    assert sharded["manifest"] == one["manifest"]
    assert sharded["names"] == ["manifest.json", "predictions.csv", "rejected.csv"]
