"""S3's multipart limits (part numbers 1..10,000, parts ≤ 5 GiB, objects ≤ 5 TiB): parts are
sized from the input, for the one-process writer and for the composed writer whose parts the
Dask workers upload, and a plain file whose outputs cannot fit one object is refused before it
is scored (OUTPUT_TOO_LARGE). Against the moto server, with S3's limits made small
(``storage.base.Settings``, the CLI's test-only DROPSCORE_MAX_PARTS / DROPSCORE_MAX_PART_SIZE)
so that megabytes reach them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scorer import cluster, runs, storage
from scorer.layout import ObjectVersion
from scorer.model import LoadedModel
from scorer.shards import Scale
from scorer.storage import MIN_PART_SIZE, base

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.fixture(scope="module", autouse=True)
def _aws_env_first(moto_endpoint: str) -> None:
    """Dask's worker processes inherit the environment when they start: moto's first."""


@pytest.fixture(scope="module")
def data() -> bytes:
    """~7.6 MiB of sample rows: predictions of ~17 MiB, four parts of 5 MiB; two 5 MiB shards."""
    from tests.reliability.conftest import sample_csv

    body = sample_csv(250_000, seed=13)
    assert 7 * MIB < len(body) < 10 * MIB
    return body


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, claims_model: LoadedModel
) -> bytes:
    """predictions.csv of one process into a local folder (no parts at all)."""
    tmp = tmp_path_factory.mktemp("parts")
    src = tmp / "in.csv"
    src.write_bytes(data)
    out = tmp / "out"
    runs.score(ObjectVersion("", str(src)), str(out), claims_model, "claims-v1-parts",
               info=storage.head(str(src)), workers=0)  # fmt: skip
    return (out / "predictions.csv").read_bytes()


@pytest.fixture
def completed() -> Iterator[dict[str, list[int]]]:
    """key → the part numbers of each CompleteMultipartUpload this process sends (the parts the
    workers uploaded included: the run completes the upload with all of them)."""
    calls: dict[str, list[int]] = {}

    def record(params: dict[str, Any], **_: Any) -> None:
        calls[params["Key"]] = [p["PartNumber"] for p in params["MultipartUpload"]["Parts"]]

    events = storage.s3_client().meta.events
    events.register("provide-client-params.s3.CompleteMultipartUpload", record)
    yield calls
    events.unregister("provide-client-params.s3.CompleteMultipartUpload", record)


def limits(monkeypatch: pytest.MonkeyPatch, **kw: int) -> None:
    monkeypatch.setattr(base, "SETTINGS", base.Settings(part_size=MIN_PART_SIZE, **kw))


def s3_score(s3: Any, bucket: str, data: bytes, model: LoadedModel, scale: Scale | None) -> Any:
    key = "incoming/parts.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]
    url = f"s3://{bucket}/{key}"
    return runs.score(ObjectVersion.of(bucket, key, version), f"s3://{bucket}/scored/parts",
                      model, "claims-v1-parts", info=storage.head(url, version), workers=0,
                      scale=scale)  # fmt: skip


def predictions(s3: Any, bucket: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key="scored/parts/predictions.csv")["Body"].read())


def test_parts_are_sized_so_that_any_output_s3_can_hold_fits_its_part_numbers() -> None:
    """With S3's real limits: the usual file keeps 8 MiB parts; a 1 TB input's planned output
    (3 TB) fits the 10,000 numbers with parts of at most 5 GiB; 5 TiB fits however it grows."""
    usual = base.plan_parts(base.expected_output(50 * MIB), base.Settings())
    assert usual.first == 8 * MIB
    for size in (100 * GIB, 1024**4, 5 * 1024**4):
        plan = base.plan_parts(size, base.Settings())
        assert plan.capacity >= size
        assert max(plan.size(n) for n in (1, 5_000, 10_000)) <= 5 * GIB
    # an output larger than planned (narrow rows): the parts grow, 8 MiB ones reach 5 TiB too
    assert base.plan_parts(None, base.Settings()).capacity >= 5 * 1024**4


def test_the_one_process_writer_sizes_its_parts_from_the_input(
    monkeypatch: pytest.MonkeyPatch,
    s3: Any,
    bucket: str,
    data: bytes,
    reference: bytes,
    claims_model: LoadedModel,
    completed: dict[str, list[int]],
) -> None:
    """S3 taking only 2 parts: ~17 MiB of predictions in 5 MiB parts would need 4 (the 4th
    upload failing mid-run); sized from the input, they go up in 2, the same bytes."""
    limits(monkeypatch, max_parts=2)
    result = s3_score(s3, bucket, data, claims_model, None)
    assert result.manifest.status == "ok"
    assert predictions(s3, bucket) == reference
    assert len(reference) > 3 * MIN_PART_SIZE
    numbers = completed["scored/parts/predictions.csv"]
    assert numbers == [1, 2]


def test_the_composed_writer_keeps_the_workers_parts_within_the_part_numbers(
    monkeypatch: pytest.MonkeyPatch,
    s3: Any,
    bucket: str,
    data: bytes,
    reference: bytes,
    claims_model: LoadedModel,
    completed: dict[str, list[int]],
) -> None:
    """S3 taking part numbers 1..5 only, two shards of 5 MiB on local workers that upload their
    own parts: every number the upload completes with is within 1..5, the same bytes."""
    limits(monkeypatch, max_parts=5)
    scale = Scale(cluster.parse("local:2"), MIN_PART_SIZE)
    result = s3_score(s3, bucket, data, claims_model, scale)
    assert result.manifest.shards == 2
    assert predictions(s3, bucket) == reference
    numbers = completed["scored/parts/predictions.csv"]
    assert len(numbers) >= 2
    assert all(1 <= n <= 5 for n in numbers), numbers
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_file_whose_outputs_cannot_fit_one_object_is_refused_before_it_is_scored(
    tmp_path: Path, s3: Any, bucket: str, s3_registry: str, data: bytes
) -> None:
    """S3 taking 2 parts of at most 6 MiB (12 MiB): the file's outputs are planned at 3× its
    7.6 MiB — refused up front, exit 2, a failed manifest that says why, no output written."""
    key = "incoming/too-big.csv"
    version = s3.put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]
    out = f"s3://{bucket}/scored/too-big"
    proc = subprocess.run(
        [sys.executable, "-m", "scorer", "score", f"s3://{bucket}/{key}", "--registry",
         s3_registry, "--model", "claims", "--out", out],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DROPSCORE_MAX_PARTS": "2",
             "DROPSCORE_MAX_PART_SIZE": str(6 * MIB)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "[OUTPUT_TOO_LARGE]" in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="scored/too-big/").get("Contents", [])
    assert [o["Key"] for o in listed] == ["scored/too-big/manifest.json"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read())
    assert manifest["status"] == "failed"
    assert manifest["reason"]["code"] == "OUTPUT_TOO_LARGE"
    assert "split the file" in manifest["reason"]["message"]
    assert manifest["rows_in"] == 0
    assert version
