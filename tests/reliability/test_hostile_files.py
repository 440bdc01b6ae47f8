"""The hostile-file corpus through the real S3 path (moto): each file, put under an odd or plain
key and announced by an URL-encoded EventBridge event, ends in the expected terminal outcome,
and the ledger checker finds nothing for it. Plus property tests over arbitrary bytes."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorer import events, gunzip, service, storage
from scorer.check import count_records
from scorer.errors import DropscoreError
from tests.reliability.conftest import ledger
from tests.reliability.hostile import CASES, HEADER, ROWS, Expect
from tests.scorer.test_events import eventbridge


@pytest.fixture(scope="module")
def corpus_bucket(moto_endpoint: str, trained_registry: str) -> str:
    """One versioned bucket with the trained models for the whole corpus."""
    name = f"h-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    base = Path(trained_registry)
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=name, Key=f"models/{path.relative_to(base).as_posix()}", Body=path.read_bytes()
        )
    return name


@pytest.fixture(scope="module")
def model(corpus_bucket: str) -> Any:
    settings_ = service.Settings()
    return service.load_model(settings_.registry_for(corpus_bucket), settings_.model)


@pytest.fixture
def small_bomb_floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gunzip, "BOMB_FLOOR", 1024 * 1024)
    return


def _score(bucket: str, case: str, name: str, body: bytes, model: Any) -> tuple[Any, Any]:
    s3 = boto3.client("s3")
    key = f"incoming/{case}/{name}"
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    event = json.dumps(eventbridge(quote_plus(key, safe="/"), version, bucket))
    ref = events.parse(event)
    assert ref.key == key
    settings_ = service.Settings(incoming=f"incoming/{case}/", scored=f"scored/{case}/")
    return service.score_object(ref, settings_, model=model), settings_


@pytest.mark.parametrize(
    ("name", "body", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_hostile_file_ends_in_its_expected_outcome(
    corpus_bucket: str, model: Any, small_bomb_floor: None, name: str, body: bytes, expect: Expect
) -> None:
    case = uuid.uuid4().hex[:8]
    result, settings_ = _score(corpus_bucket, case, name, body, model)
    assert result is not None
    m = result.manifest
    got = (m.status, (m.reason.code if m.reason else None))
    if expect.status == "failed":
        assert got == ("failed", expect.code), m.reason
    else:
        assert m.status == expect.status, (m.status, m.reason, m.rejected_by_code)
        if expect.code:
            assert expect.code in m.rejected_by_code, m.rejected_by_code
    if expect.rows_in is not None:
        assert m.rows_in == expect.rows_in
    if expect.rows_scored is not None:
        assert m.rows_scored == expect.rows_scored
    assert m.rows_in == m.rows_scored + m.rows_rejected
    assert ledger(corpus_bucket, settings=settings_) == []
    if "predictions" in m.outputs:
        text = storage.read_bytes(m.outputs["predictions"].url).decode()
        for row in csv.reader(io.StringIO(text)):
            for cell in row:  # nothing a spreadsheet would run as a formula
                assert cell[:1] not in ("=", "@", "\t", "\r"), cell


def test_the_corpus_has_at_least_40_files() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


# --- properties over arbitrary bytes -----------------------------------------------------------
_lines = st.lists(
    st.one_of(
        st.sampled_from(ROWS),
        st.sampled_from(
            [
                "",
                "40,male",
                "x,male,30,2,no,se",
                '40,"ma\nle",30,2,no,se',
                "1,2,3,4,5,6,7",
                "40,male,inf,2,no,se",
                "40,,30,2,no,se",
                " , , , , , ",
            ]
        ),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
    ),
    max_size=12,
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda ls, nl: (nl.join([HEADER, *ls]) + nl).encode(),
        _lines,
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
)


@settings(
    max_examples=int(os.environ.get("DROPSCORE_TEST_FUZZ_EXAMPLES", "40")),  # longer: a fuzz run
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=_bodies)
def test_any_bytes_end_in_one_terminal_outcome_that_reconciles(
    corpus_bucket: str, model: Any, body: bytes
) -> None:
    case = uuid.uuid4().hex[:8]
    try:
        result, settings_ = _score(corpus_bucket, case, "any.csv", body, model)
    except DropscoreError as exc:  # only a refusal by a typed error may escape, never a crash
        pytest.fail(f"a run on {body!r} did not end in a manifest: {exc.code} {exc}")
    assert result is not None
    m = result.manifest
    assert m.status in ("ok", "partial", "failed")
    assert m.rows_in == m.rows_scored + m.rows_rejected
    code = m.reason.code if m.reason else None
    if m.status != "failed" or code in ("HEADER_ONLY", "ALL_ROWS_REJECTED"):
        assert m.rows_in == count_records(io.BytesIO(body))
    found = storage.list_objects(f"s3://{corpus_bucket}/scored/{case}/")
    assert sum(1 for o in found if o.url.endswith("/manifest.json")) == 1
    assert ledger(corpus_bucket, settings=settings_) == []
