"""S3 faults through a fault-injecting proxy in front of the moto server: retryable ones are
retried with backoff and the run completes; the others leave no manifest, the input pending
(exit 1), and a later run completes. No manifest ever claims rows that were not written.
The last test injects the same kinds of fault into either store (local or S3) through a
wrapper around it (tests/faultstore.py), at calls the HTTP proxy cannot single out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scorer import runs, service, storage
from scorer.errors import DropscoreError, StorageUnavailable
from scorer.layout import ObjectVersion, RunId
from scorer.registry import Registry
from tests.faultstore import unavailable
from tests.reliability.conftest import (
    ledger,
    manifests,
    open_uploads,
    put,
    run_event,
    sample_csv,
    scored_versions,
)
from tests.reliability.faultproxy import FaultProxy

ROWS = 300


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """Every S3 call of this process (and of children given its env) goes through the proxy."""
    fp = FaultProxy(moto_endpoint)
    os.environ["AWS_ENDPOINT_URL"] = fp.url
    storage.s3_client.cache_clear()
    try:
        yield fp
    finally:
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
        storage.s3_client.cache_clear()
        fp.close()


@pytest.fixture
def model(s3_registry: str, bucket: str) -> Any:
    settings = service.Settings()
    return service.load_model(settings.registry_for(bucket), settings.model)


RETRIED = [
    ("503 SlowDown on reading the input", "GET", "/incoming/", 503, "SlowDown"),
    ("500 InternalError on writing predictions", "PUT", "/predictions.csv", 500, "InternalError"),
    ("503 SlowDown on the manifest's create-only write", "PUT", "/manifest.json", 503, "SlowDown"),
    ("500 on checking for an existing manifest", "GET", "/manifest.json", 500, "InternalError"),
]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"), [r[1:] for r in RETRIED], ids=[r[0] for r in RETRIED]
)
def test_a_retryable_error_is_retried_and_the_run_completes(
    s3: Any,
    bucket: str,
    model: Any,
    proxy: FaultProxy,
    method: str,
    path: str,
    status: int,
    code: str,
) -> None:
    version = put(s3, bucket, "incoming/f.csv", sample_csv(ROWS))
    rule = proxy.add(method=method, path=path, kind="status", status=status, code=code, times=3)
    result = service.score_object(
        ObjectVersion(bucket, "incoming/f.csv", version), service.Settings(), model=model
    )
    assert rule.hits == 3
    assert result is not None
    assert (result.manifest.status, result.manifest.rows_scored) == ("ok", ROWS)
    assert ledger(bucket) == []


FATAL = [
    (
        "403 on every write under scored/",
        dict(
            method="PUT", path="/scored/", kind="status", status=403, code="AccessDenied", times=99
        ),
    ),
    (
        "403 on the manifest only",
        dict(
            method="PUT",
            path="/manifest.json",
            kind="status",
            status=403,
            code="AccessDenied",
            times=99,
        ),
    ),
    (
        "connection cut mid-read of the input",
        dict(method="GET", path="/incoming/", kind="cut", times=99),
    ),
    (
        "input body shorter than its Content-Length",
        dict(method="GET", path="/incoming/", kind="short", times=99),
    ),
    (
        "input truncated with a matching Content-Length",
        dict(method="GET", path="/incoming/", kind="lie", times=99),
    ),
    (
        "endless 503 SlowDown on reading the input",
        dict(method="GET", path="/incoming/", kind="status", times=99),
    ),
]


@pytest.mark.parametrize("rule", [f[1] for f in FATAL], ids=[f[0] for f in FATAL])
def test_a_fault_that_persists_leaves_the_input_pending_then_a_rerun_completes(
    s3: Any, bucket: str, model: Any, proxy: FaultProxy, rule: dict[str, Any]
) -> None:
    key = "incoming/fatal.csv"
    version = put(s3, bucket, key, sample_csv(ROWS))
    fault = proxy.add(**rule)
    with pytest.raises(DropscoreError) as err:
        service.score_object(ObjectVersion(bucket, key, version), service.Settings(), model=model)
    assert err.value.exit_code == 1, err.value
    assert fault.hits >= 1
    assert manifests(s3, bucket) == {}
    assert open_uploads(s3, bucket) == []
    found = ledger(bucket)
    assert [v.split()[0] for v in found if v.startswith("INPUT_PENDING")] == ["INPUT_PENDING"]
    # only a refused manifest write may leave outputs behind (the rerun reuses them)
    assert all(v.split()[0] in {"INPUT_PENDING", "OUTPUT_WITHOUT_MANIFEST"} for v in found), found
    fault.times = 0  # the fault clears
    again = service.score_object(
        ObjectVersion(bucket, key, version), service.Settings(), model=model
    )
    assert again is not None
    assert (again.manifest.status, again.manifest.rows_in) == ("ok", ROWS)
    keys = [k for k, _ in scored_versions(s3, bucket)]
    assert len(keys) == len(set(keys))  # nothing rewritten
    assert ledger(bucket) == []


@pytest.mark.slow
def test_the_task_exits_1_on_a_403_and_0_once_it_clears(
    s3: Any, bucket: str, s3_registry: str, proxy: FaultProxy
) -> None:
    version = put(s3, bucket, "incoming/t.csv", sample_csv(40))
    fault = proxy.add(
        method="PUT", path="/scored/", kind="status", status=403, code="AccessDenied", times=99
    )
    done = run_event(bucket, "incoming/t.csv", version)
    assert done.returncode == 1
    assert "error [STORAGE_UNAVAILABLE]" in done.stderr
    assert "Traceback" not in done.stderr
    fault.times = 0
    assert run_event(bucket, "incoming/t.csv", version).returncode == 0
    assert ledger(bucket) == []


def test_aws_max_attempts_bounds_the_retries(
    s3: Any, bucket: str, model: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_MAX_ATTEMPTS is honoured (as by the AWS CLI): with 2 attempts, 3 × 503 on reading
    the input fail the run after 2 tries and the input stays pending."""
    version = put(s3, bucket, "incoming/f.csv", sample_csv(ROWS))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    storage.s3_client.cache_clear()
    rule = proxy.add(method="GET", path="/incoming/", kind="status", status=503, times=3)
    with pytest.raises(DropscoreError):
        service.score_object(
            ObjectVersion(bucket, "incoming/f.csv", version), service.Settings(), model=model
        )
    assert rule.hits == 2
    assert manifests(s3, bucket) == {}


# --- the same faults on either store, injected by a wrapper around it (tests/faultstore.py) ----
STORE_FAULTS = [
    ("the input's read cut mid-stream", dict(call="read", match="incoming/", after_bytes=4096)),
    ("the first write into predictions.csv", dict(call="write", match="predictions.csv")),
    ("the commit of predictions.csv", dict(call="commit", match="predictions.csv")),
    ("the manifest's create-only commit", dict(call="commit", match="manifest.json")),
    ("the listing of the run folder", dict(call="list_objects", match="scored/")),
]


@pytest.mark.parametrize("kind", ["local", "s3"])
@pytest.mark.parametrize("fault", [f[1] for f in STORE_FAULTS], ids=[f[0] for f in STORE_FAULTS])
def test_a_store_fault_leaves_no_manifest_and_nothing_half_written_then_a_rerun_completes(
    kind: str,
    fault: dict[str, Any],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    trained_registry: str,
    faulty_store: Any,
) -> None:
    def score() -> runs.RunResult | None:
        if kind == "s3":
            ref = ObjectVersion(bucket, "incoming/fatal.csv", version)
            return service.score_object(ref, service.Settings(), model=model)
        run_id = RunId.of(model.card.name, model.card.version, service.local_version(src))
        out = str(tmp_path / "scored" / "fatal" / str(run_id))
        return runs.score(ObjectVersion("", src), out, model, str(run_id))

    if kind == "s3":
        s3, bucket = request.getfixturevalue("s3"), request.getfixturevalue("bucket")
        model = request.getfixturevalue("model")
        version = put(s3, bucket, "incoming/fatal.csv", sample_csv(ROWS))
        faulty = faulty_store(f"s3://{bucket}/")
    else:
        reg = Registry(trained_registry)
        model = reg.load(reg.resolve("claims"))
        (tmp_path / "incoming").mkdir()
        src = str(tmp_path / "incoming" / "fatal.csv")
        Path(src).write_bytes(sample_csv(ROWS))
        faulty = faulty_store(src)
    injected = faulty.add(**fault, error=unavailable(), times=99)
    with pytest.raises(StorageUnavailable) as err:
        score()
    assert err.value.exit_code == 1  # "retry me": the input stays pending
    assert injected.hits >= 1
    if kind == "s3":
        assert manifests(s3, bucket) == {}
        assert open_uploads(s3, bucket) == []
        found = ledger(bucket)
        assert "INPUT_PENDING" in [v.split()[0] for v in found]
        assert all(v.split()[0] in {"INPUT_PENDING", "OUTPUT_WITHOUT_MANIFEST"} for v in found)
    else:
        left = sorted(p.name for p in (tmp_path / "scored").rglob("*") if p.is_file())
        assert "manifest.json" not in left
        assert [n for n in left if n.endswith(".part")] == []  # no temp file left behind
    faulty.clear()
    again = score()
    assert again is not None
    assert (again.manifest.status, again.manifest.rows_in) == ("ok", ROWS)
    if kind == "s3":
        assert ledger(bucket) == []
