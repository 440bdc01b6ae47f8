"""A file scored in shards on Dask workers gives the bytes of one process (issue 14):
predictions, rejected rows, manifest counts and refusals — quoted newlines, CRLF, blank lines and
bad rows at and around every shard boundary, with one and two local workers."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer import cluster, runs, storage
from scorer.errors import BadArgument
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from scorer.shards import Scale

BATCH = 4  # tiny units, so a shard boundary can fall after any few records
TIMINGS = {  # and how the run was executed
    "started_at", "finished_at", "duration_s", "rows_per_s", "peak_memory_mb", "workers",
    "workers_peak_memory_mb", "shards", "task", "cost",
}  # fmt: skip
HEADER = "age,sex,bmi,children,smoker,region,note"
GOOD = [
    "19,female,27.9,0,yes,southwest",
    "33,male,22.7,0,no,northwest",
    "46,female,33.4,1,no,southeast",
]
NOTES = ["", "ok", "=1+1", '"a, b"', '"two\nlines"', '"three\r\nline\nnote"', '"q""uote"', "@x"]
BLANKS = "\n" * (BATCH + 1)
BAD = [
    "forty,male,30.1,1,no,southeast,x",  # wrong type
    "40,male,inf,1,no,southeast,x",  # non-finite
    "40,male,30.1",  # too few fields
    "40,male,30.1,1,no,atlantis,x",  # unseen category
]


@pytest.fixture(scope="module", autouse=True)
def _aws_env_first(moto_endpoint: str) -> None:
    """Worker processes inherit the environment when they start: point S3 at moto before."""


def run(
    tmp: Path,
    data: bytes,
    model: LoadedModel,
    spec: str,
    shard_bytes: int | None,
    batch_rows: int = BATCH,
) -> dict:
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / f"out-{spec.replace(':', '-')}-{random.random()}"
    scale = Scale(cluster.parse(spec), shard_bytes)
    result = runs.score(
        ObjectVersion("", str(src)),
        str(out),
        model,
        "claims-v1-shards",
        info=storage.head(str(src)),
        batch_rows=batch_rows,
        workers=0,
        scale=scale,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"}
    for entry in manifest.get("outputs", {}).values():
        entry.pop("url")
    return {
        "shards": result.manifest.shards,
        "workers": result.manifest.workers,
        "manifest": {k: v for k, v in manifest.items() if k not in TIMINGS},
        "files": files,
    }


def same(a: dict, b: dict) -> None:
    assert a["manifest"] == b["manifest"]
    assert a["files"] == b["files"]


lines_st = st.lists(
    st.tuples(
        # "" / "\r": a blank line; BLANKS: more blank lines than a unit's records
        st.sampled_from([*GOOD, *BAD, "", "\r", BLANKS]),
        st.sampled_from(NOTES),
        st.sampled_from(["\n", "\r\n"]),
    ),
    min_size=1,
    max_size=40,
)


def build(lines: list[tuple[str, str, str]], bom: bool, crlf_header: bool) -> bytes:
    text = ("\ufeff" if bom else "") + HEADER + ("\r\n" if crlf_header else "\n")
    for row, note, end in lines:
        text += (row + end) if row in ("", "\r", BLANKS) else f"{row},{note}{end}"
    return text.encode()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=lines_st,
    bom=st.booleans(),
    crlf_header=st.booleans(),
    shard_bytes=st.integers(min_value=1, max_value=400),
)
def test_shards_score_the_bytes_of_one_process(
    tmp_path_factory: pytest.TempPathFactory,
    claims_model: LoadedModel,
    lines: list[tuple[str, str, str]],
    bom: bool,
    crlf_header: bool,
    shard_bytes: int,
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    data = build(lines, bom, crlf_header)
    one = run(tmp, data, claims_model, "none", shard_bytes)
    assert one["shards"] == 0
    for spec in ("local:1", "local:2"):
        sharded = run(tmp, data, claims_model, spec, shard_bytes)
        same(sharded, one)
        if one["manifest"]["status"] != "failed" and len(data) > shard_bytes:
            assert sharded["shards"] >= 1
            assert sharded["workers"] == int(spec[-1])


def test_cluster_values_are_checked() -> None:
    assert str(cluster.parse("local:3")) == "local:3"
    assert cluster.parse("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert cluster.parse(None).kind == "none"
    for bad in ("local:0", "local:x", "http://h:1", "tcp://nohost", "lots"):
        with pytest.raises(BadArgument):
            cluster.parse(bad)
    with pytest.raises(BadArgument):
        cluster.shard_bytes("-1")
    assert cluster.shard_bytes("off") is None
    assert cluster.shard_bytes("2") == 2 * 1024 * 1024


@pytest.fixture(scope="module")
def messy() -> bytes:
    from tests.scorer.test_parallel import messy_csv

    return messy_csv(1500, seed=11)


def test_a_messy_file_in_many_shards_gives_the_same_bytes(
    tmp_path: Path, claims_model: LoadedModel, messy: bytes
) -> None:
    one = run(tmp_path, messy, claims_model, "none", 8000)
    sharded = run(tmp_path, messy, claims_model, "local:2", 8000)
    assert one["manifest"]["status"] == "partial"
    assert set(one["files"]) == {"predictions.csv", "rejected.csv"}
    assert sharded["shards"] >= 5
    same(sharded, one)


@pytest.mark.parametrize(
    ("tail", "code"),
    [
        (b'40,male,"30.5,2,no,southeast,x\n', "MALFORMED_CSV"),
        (b"40,m\xe4nnlich,30.5,2,no,southeast,x\n", "NOT_UTF8"),
        (b"40,male,30.5,2,no,south\x00east,x\n", "BINARY_CONTENT"),
    ],
    ids=["quote-left-open-late", "invalid-utf8-late", "nul-byte-late"],
)
def test_a_file_refused_late_is_refused_the_same_way_in_shards(
    tmp_path: Path, claims_model: LoadedModel, messy: bytes, tail: bytes, code: str
) -> None:
    data = messy + tail + messy.split(b"\n", 1)[1][:5000]
    one = run(tmp_path, data, claims_model, "none", 8000)
    sharded = run(tmp_path, data, claims_model, "local:2", 8000)
    assert one["manifest"]["reason"]["code"] == code
    same(sharded, one)


ROW = GOOD[0] + ",ok"
EDGES = {
    "blank-lines-after-a-full-unit": HEADER + "\n" + (ROW + "\n") * BATCH + BLANKS + ROW + "\n",
    "blank-lines-after-the-header": HEADER + "\n" + BLANKS + (ROW + "\n") * 3,
    "quoted-newlines-across-units": HEADER
    + "\r\n"
    + (ROW + "\r\n") * 3
    + GOOD[1]
    + ',"a\r\nb\n\nc"\r\n'
    + (ROW + "\r\n") * 5,
    "lone-cr-lines-and-bom": "\ufeff" + HEADER + "\r" + (ROW + "\r") * 5 + "\r\r" + ROW,
    "bad-rows-at-every-boundary": HEADER + "\n" + "".join(b + "\n" for b in BAD * 3),
}


@pytest.mark.parametrize("name", list(EDGES), ids=list(EDGES))
def test_every_unit_its_own_shard_gives_the_same_bytes(
    tmp_path: Path, claims_model: LoadedModel, name: str
) -> None:
    data = EDGES[name].encode()
    one = run(tmp_path, data, claims_model, "none", 1)
    sharded = run(tmp_path, data, claims_model, "local:1", 1)
    assert sharded["shards"] >= 2
    same(sharded, one)


def test_an_s3_file_in_shards_gives_the_same_objects(
    bucket: str, s3: Any, claims_model: LoadedModel, messy: bytes
) -> None:
    key = "incoming/big.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=messy)["VersionId"]
    url = f"s3://{bucket}/{key}"
    objects = {}
    for spec in ("none", "local:2"):
        out = f"s3://{bucket}/scored/big/{spec.replace(':', '-')}"
        result = runs.score(
            ObjectVersion.of(bucket, key, version),
            out,
            claims_model,
            "claims-v1-s3-shards",
            info=storage.head(url, version),
            batch_rows=BATCH * 8,
            workers=0,
            scale=Scale(cluster.parse(spec), 8000),
        )
        assert (result.manifest.shards > 1) == (spec != "none")
        got, manifest = run_objects(s3, bucket, out)
        objects[spec] = (got, {k: v for k, v in manifest.items() if k not in TIMINGS})
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert set(objects["none"][0]) == {"predictions.csv", "rejected.csv"}
    assert objects["local:2"] == objects["none"]


def test_a_worker_killed_mid_run_is_replaced_and_the_bytes_stay(
    tmp_path: Path, claims_model: LoadedModel, messy: bytes
) -> None:
    """Dask reschedules the shards of a worker that died; the run still commits once."""
    one = run(tmp_path, messy, claims_model, "none", 4000)
    dask = cluster.client(cluster.parse("local:2"))
    pids = dask.run(os.getpid)
    killed: list[int] = []

    def kill_one_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, tasks in dask.processing().items() if tasks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_when_busy, daemon=True)
    killer.start()
    sharded = run(tmp_path, messy, claims_model, "local:2", 4000)
    killer.join()
    assert killed, "no worker was busy while the run was scoring"
    assert sharded["shards"] >= 10
    same(sharded, one)


@pytest.mark.slow
def test_a_coordinator_killed_mid_upload_leaves_nothing_and_the_sweep_redoes_it(
    tmp_path: Path, s3: Any, bucket: str, s3_registry: str, claims_model: LoadedModel
) -> None:
    """SIGKILL of the run (the Dask coordinator) after part 1 of predictions.csv: no manifest,
    no output; its worker processes go with it; the sweep scores the file in shards again, the
    open upload is aborted, the bytes equal one process's and the ledger checker is clean."""
    from scorer import service
    from scorer.storage import MIN_PART_SIZE
    from scorer.sweep import sweep
    from tests.reliability.conftest import (
        ledger,
        manifests,
        open_uploads,
        put,
        run_event,
        sample_csv,
    )

    body = sample_csv(140_000, seed=21)  # ~7 MiB of predictions: two 5 MiB parts
    reference = run(tmp_path, body, claims_model, "none", None, runs.BATCH_ROWS)["files"]
    key = "incoming/crash/big.csv"
    version = put(s3, bucket, key, body)
    scale_env = {"DROPSCORE_CLUSTER": "local:2", "DROPSCORE_SHARD_OVER_MB": "1"}
    killed = run_event(
        bucket,
        key,
        version,
        env={
            **scale_env,
            "DROPSCORE_FAULT": "after_part:1",
            "DROPSCORE_PART_SIZE": str(MIN_PART_SIZE),
        },
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "scoring in shards" in killed.stderr
    assert manifests(s3, bucket) == {}
    assert open_uploads(s3, bucket), "the kill left an upload open"

    settings = service.Settings(scale=Scale(cluster.parse("local:2"), 1024 * 1024))
    assert sweep(bucket, settings, rescore_stale=False, concurrency=1) == 0
    [manifest] = manifests(s3, bucket).values()
    assert manifest["shards"] >= 2
    pred = s3.get_object(Bucket=bucket, Key=manifest["outputs"]["predictions"]["key"])
    assert pred["Body"].read() == reference["predictions.csv"]
    assert open_uploads(s3, bucket) == []
    assert ledger(bucket) == []


def run_objects(s3: Any, bucket: str, out: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A run folder's objects by name (the manifest taken out) and its manifest, the outputs'
    url and key left out (they name the folder)."""
    prefix = out.split("/", 3)[3] + "/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    got = {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }
    manifest = json.loads(got.pop("manifest.json"))
    for entry in manifest["outputs"].values():
        entry.pop("url")
        entry.pop("key")
    return got, manifest


def s3_run(s3: Any, bucket: str, key: str, version: str, model: LoadedModel, spec: str,
           shard_bytes: int | None, tag: str) -> tuple[dict, dict, int]:  # fmt: skip
    """Score one S3 object version into its own folder: (objects but the manifest, manifest
    without timings and locations, shards); no multipart upload is left open."""
    url = f"s3://{bucket}/{key}"
    out = f"s3://{bucket}/scored/{tag}/{spec.replace(':', '-')}"
    result = runs.score(
        ObjectVersion.of(bucket, key, version),
        out,
        model,
        f"claims-v1-{tag}",
        info=storage.head(url, version),
        workers=0,
        scale=Scale(cluster.parse(spec), shard_bytes),
    )
    got, manifest = run_objects(s3, bucket, out)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    return got, {k: v for k, v in manifest.items() if k not in TIMINGS}, result.manifest.shards


def composed(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "composed predictions from worker parts"]


@pytest.fixture(scope="module")
def big() -> bytes:
    from tests.reliability.conftest import sample_csv

    return sample_csv(450_000, seed=5)  # ~13.5 MB: two shards of 5 MiB and a tail


def test_workers_upload_their_parts_and_the_objects_equal_one_process(
    bucket: str, s3: Any, claims_model: LoadedModel, big: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Shards of 5 MiB: each worker uploads its predictions as a part of the run's upload; the
    run itself receives only what is under 5 MiB (the header, the tail), and the objects and
    the manifest (sha256 of the whole file included) are those of one process."""
    from scorer.storage import MIN_PART_SIZE

    key = "incoming/big.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=big)["VersionId"]
    caplog.set_level(logging.INFO, logger="dropscore.scorer")
    one = s3_run(s3, bucket, key, version, claims_model, "none", None, "parts")
    assert not composed(caplog)
    sharded = s3_run(s3, bucket, key, version, claims_model, "local:2", MIN_PART_SIZE, "parts")
    assert sharded[2] >= 3
    assert sharded[:2] == one[:2]
    [log_record] = composed(caplog)
    worker_bytes = log_record.__dict__["worker_bytes"]
    coordinator_bytes = log_record.__dict__["coordinator_bytes"]
    assert worker_bytes + coordinator_bytes == len(one[0]["predictions.csv"])
    assert worker_bytes >= 2 * MIN_PART_SIZE
    assert coordinator_bytes < MIN_PART_SIZE  # the header and the last shard's rows


def test_small_output_in_front_of_a_worker_part_goes_up_with_it(
    bucket: str, s3: Any, claims_model: LoadedModel, big: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A first shard of rejected rows leaves under 5 MiB of predictions: no part of its own is
    possible, so the next shard's part is uploaded again with those bytes in front of it."""
    from scorer.storage import MIN_PART_SIZE

    header, rows = big.split(b"\n", 1)
    lines = rows.split(b"\n")[:180_000]
    bad = b"".join(b"forty" + line[line.index(b",") :] + b"\n" for line in lines if line)
    data = header + b"\n" + bad + rows
    key = "incoming/mixed.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]
    one = s3_run(s3, bucket, key, version, claims_model, "none", None, "mixed")
    caplog.set_level(logging.INFO, logger="dropscore.scorer")
    sharded = s3_run(s3, bucket, key, version, claims_model, "local:2", MIN_PART_SIZE, "mixed")
    assert one[1]["status"] == "partial"
    assert sharded[:2] == one[:2]
    again = [r for r in caplog.records if r.getMessage().startswith("uploading a shard's part")]
    assert again, "no part was uploaded again behind small output"
    [record] = composed(caplog)
    assert record.__dict__["worker_bytes"] >= MIN_PART_SIZE


def test_a_worker_killed_while_uploading_parts_leaves_the_same_objects(
    bucket: str, s3: Any, claims_model: LoadedModel, big: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker killed mid-shard: Dask scores the shard again and it uploads the same part
    number again; the run commits once, the objects equal one process's, no upload stays open."""
    from scorer.storage import MIN_PART_SIZE

    key = "incoming/killed.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=big)["VersionId"]
    one = s3_run(s3, bucket, key, version, claims_model, "none", None, "killed")
    dask = cluster.client(cluster.parse("local:2"))
    pids = dask.run(os.getpid)
    killed: list[int] = []

    def kill_one_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, tasks in dask.processing().items() if tasks]
            if busy:
                time.sleep(0.5)  # into the shard's scoring
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_when_busy, daemon=True)
    killer.start()
    caplog.set_level(logging.INFO, logger="dropscore.scorer")
    sharded = s3_run(s3, bucket, key, version, claims_model, "local:2", MIN_PART_SIZE, "killed")
    killer.join()
    assert killed, "no worker was busy while the run was scoring"
    assert composed(caplog), "the workers uploaded no part"
    assert sharded[:2] == one[:2]


def test_a_file_refused_after_shards_were_scored_ends_as_in_one_process(
    bucket: str, s3: Any, claims_model: LoadedModel, big: bytes
) -> None:
    """Shards are submitted as the pass cuts them: with one worker (two shards in flight) the
    first shard is scored and its part uploaded before the pass reaches a quote left open in
    the third; the run still ends as in one process — the same failed manifest, no output, no
    multipart upload left open."""
    from distributed import get_task_stream

    from scorer.storage import MIN_PART_SIZE

    rows = big.split(b"\n", 1)[1]
    data = big + rows[: 4 * MIN_PART_SIZE].rsplit(b"\n", 1)[0] + b"\n"
    data += b'40,male,"30.5,2,no,southeast,x\n' + rows[:5000]
    key = "incoming/late.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]
    one = s3_run(s3, bucket, key, version, claims_model, "none", None, "late")
    assert one[1]["reason"]["code"] == "MALFORMED_CSV"
    assert one[0] == {}
    dask = cluster.client(cluster.parse("local:1"))
    with get_task_stream(dask) as stream:
        sharded = s3_run(s3, bucket, key, version, claims_model, "local:1", MIN_PART_SIZE, "late")
    assert sharded[:2] == one[:2]
    scored = [t for t in stream.data if str(t["key"]).startswith("score_shard_to")]
    assert scored, "no shard was scored before the pass met the refusal"
