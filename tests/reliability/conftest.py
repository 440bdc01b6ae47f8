"""Helpers for the reliability suite: the CLI as a task runs it, S3 listings, and the ledger
checker every scenario ends with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scorer import service
from scorer.check import Violation, check
from tests.scorer.test_events import eventbridge

ROOT = Path(__file__).resolve().parents[2]


def cli_proc(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scorer", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kw,
    )


def run_event(
    bucket: str, key: str, version: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m scorer event`` with an EventBridge event on stdin (URL-encoded key)."""
    from urllib.parse import quote_plus

    body = json.dumps(eventbridge(quote_plus(key, safe="/"), version, bucket))
    return subprocess.run(
        [sys.executable, "-m", "scorer", "event", "--event", "-"],
        cwd=ROOT,
        input=body,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def sample_csv(rows: int, seed: int = 4) -> bytes:
    from training.sample_data import generate

    return generate(rows, seed).drop(columns=["charges"]).to_csv(index=False).encode()


def put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    return str(s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"])


def manifests(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="scored/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/manifest.json"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"]] = json.loads(body)
    return out


def scored_versions(s3: Any, bucket: str) -> list[tuple[str, str]]:
    """(key, version id) of every version and delete marker under scored/."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="scored/"):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            out.append((v["Key"], v["VersionId"]))
    return sorted(out)


def open_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def ledger(
    bucket: str,
    model: str = service.DEFAULT_MODEL,
    settings: service.Settings | None = None,
    **kw: Any,
) -> list[str]:
    """The ledger checker's violations for a bucket, as the lines `scorer check` prints."""
    found: list[Violation] = check(bucket, settings or service.Settings(model=model), **kw)
    return [str(v) for v in found]


@pytest.fixture
def fresh_clients(moto_endpoint: str) -> Any:
    """Forget the cached boto3 client (tests that re-point AWS_ENDPOINT_URL)."""
    from scorer import storage

    storage.s3_client.cache_clear()
    yield
    storage.s3_client.cache_clear()
