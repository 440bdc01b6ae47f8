"""The ledger checker: its pure decision table-driven, its record counter against pandas, and
the ``scorer check`` command over a real S3 API."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer import layout, service
from scorer.__main__ import main
from scorer.check import InputVersion, Ledger, RunFacts, StoredObject, evaluate
from scorer.counting import count_records
from scorer.layout import ObjectVersion, RunId
from scorer.manifest import InputEntry, Manifest, ModelEntry, OutputEntry, Reason

IDENTITY = ObjectVersion("b", "incoming/a.csv", "v1", "etag1").identity
RUN = str(RunId.of("claims", 1, IDENTITY))


def clean() -> Ledger:
    manifest = Manifest(
        run_id=RUN,
        status="partial",
        input=InputEntry.from_dict({"key": "incoming/a.csv", "version_id": "v1", "etag": "etag1"}),
        model=ModelEntry.from_dict({"name": "claims", "version": 1}),
        rows_in=10,
        rows_scored=9,
        rows_rejected=1,
        outputs={
            "predictions": OutputEntry.from_dict(
                {"key": f"scored/a/{RUN}/predictions.csv", "sha256": "p"}
            ),
            "rejected": OutputEntry.from_dict(
                {"key": f"scored/a/{RUN}/rejected.csv", "sha256": "r"}
            ),
        },
    )
    run = RunFacts(
        rel="a",
        run_id=RUN,
        manifest=manifest,
        objects={
            "manifest.json": StoredObject("manifest.json"),
            "predictions.csv": StoredObject("predictions.csv", sha256="p", records=9),
            "rejected.csv": StoredObject("rejected.csv", sha256="r", records=1),
        },
        input_records=10,
    )
    return Ledger(
        inputs=[InputVersion(ObjectVersion("b", "incoming/a.csv", "v1", "etag1"), is_latest=True)],
        runs=[run],
        stray=[],
        model_versions={"claims": {1}},
        production=("claims", 1),
    )


def _m(ledger: Ledger) -> Manifest:
    m = ledger.runs[0].manifest
    assert m is not None
    return m


def _set(**kw: Any) -> Callable[[Ledger], None]:
    def change(ledger: Ledger) -> None:
        ledger.runs[0].manifest = dataclasses.replace(_m(ledger), **kw)

    return change


def _obj(name: str, **kw: Any) -> Callable[[Ledger], None]:
    def change(ledger: Ledger) -> None:
        objects = ledger.runs[0].objects
        objects[name] = dataclasses.replace(objects[name], **kw)

    return change


def _drop_manifest(ledger: Ledger) -> None:
    ledger.runs[0].manifest = None
    del ledger.runs[0].objects["manifest.json"]


def _new_production(ledger: Ledger) -> None:
    ledger.production = ("claims", 2)
    ledger.model_versions["claims"].add(2)


def _add_input(ledger: Ledger) -> None:
    ledger.inputs.append(
        InputVersion(ObjectVersion("b", "incoming/b.csv.gz", "v9", "e9"), is_latest=True)
    )


def _twin(ledger: Ledger) -> None:
    """The phantom of finding 4: the same input version's manifest again under the folder of
    a wrongly decoded key (consistent with itself, so only the pair gives it away)."""
    m = dataclasses.replace(
        _m(ledger),
        input=dataclasses.replace(_m(ledger).input, key="incoming/c  /a b.csv"),
        status="failed",
        reason=Reason("SOURCE_GONE", "…"),
        rows_in=0,
        rows_scored=0,
        rows_rejected=0,
        outputs={},
    )
    folder = layout.result_folder("incoming/c  /a b.csv")
    ledger.runs.append(RunFacts(rel=folder, run_id=RUN, manifest=m, objects={}))


def _gone_elsewhere(ledger: Ledger) -> None:
    ledger.runs[0].manifest = dataclasses.replace(
        _m(ledger),
        status="failed",
        reason=Reason("SOURCE_GONE", "…"),
        outputs={},
        rows_in=0,
        rows_scored=0,
        rows_rejected=0,
        input=InputEntry.from_dict({"key": "incoming/a.csv", "version_id": None, "etag": "other"}),
    )
    ledger.runs[0].objects = {"manifest.json": StoredObject("manifest.json")}


CASES: list[tuple[str, Callable[[Ledger], None], str]] = [
    (
        "a manifest whose input belongs in another folder",
        _set(
            input=InputEntry.from_dict(
                {"key": "incoming/b.csv", "version_id": "v1", "etag": "etag1"}
            )
        ),
        "MANIFEST_MISPLACED",
    ),
    (
        "a manifest whose input is in another bucket",
        lambda lg: (
            setattr(lg, "bucket", "mine"),
            _set(input=dataclasses.replace(_m(lg).input, bucket="theirs"))(lg),
        ),
        "MANIFEST_MISPLACED",
    ),
    ("two terminal manifests for one input version", _twin, "DUPLICATE_MANIFEST"),
    ("a SOURCE_GONE manifest in another input's run folder", _gone_elsewhere, "RUN_ID_MISMATCH"),
    ("a latest input with no manifest is pending", _add_input, "INPUT_PENDING"),
    ("a manifest from an older model leaves the input pending", _new_production, "INPUT_PENDING"),
    ("outputs without a manifest", _drop_manifest, "OUTPUT_WITHOUT_MANIFEST"),
    ("rows_in that does not reconcile", _set(rows_in=11), "COUNTS"),
    (
        "rows_in below the independent count",
        lambda lg: setattr(lg.runs[0], "input_records", 12),
        "ROWS_IN",
    ),
    ("predictions whose sha256 changed", _obj("predictions.csv", sha256="x"), "SHA256"),
    ("predictions with fewer rows than claimed", _obj("predictions.csv", records=8), "OUTPUT_ROWS"),
    ("an overwritten manifest", _obj("manifest.json", versions=2), "OVERWRITTEN"),
    ("an overwritten output", _obj("rejected.csv", versions=3), "OVERWRITTEN"),
    (
        "a model version the registry does not have",
        lambda lg: lg.model_versions.__setitem__("claims", {2}),
        "MODEL_MISSING",
    ),
    (
        "a listed output that does not exist",
        lambda lg: lg.runs[0].objects.pop("rejected.csv"),
        "OUTPUT_MISSING",
    ),
    (
        "an output the manifest does not list",
        lambda lg: lg.runs[0].objects.__setitem__(
            "extra.csv", StoredObject("extra.csv", records=1)
        ),
        "UNLISTED_OUTPUT",
    ),
    (
        "a multipart upload left open under a committed run",
        lambda lg: setattr(lg.runs[0], "open_uploads", 1),
        "OPEN_UPLOAD",
    ),
    ("a status that is not terminal", _set(status="running"), "NOT_TERMINAL"),
    ("a failed manifest without a reason", _set(status="failed"), "NO_REASON"),
    (
        "a manifest in another run's folder",
        _set(run_id="claims-v1-0000000000000000"),
        "RUN_ID_MISMATCH",
    ),
    (
        "an unreadable manifest",
        lambda lg: setattr(lg.runs[0], "manifest_error", "bad json"),
        "MANIFEST_UNREADABLE",
    ),
    (
        "an object outside any run folder",
        lambda lg: lg.stray.append("scored/x.csv"),
        "STRAY_OBJECT",
    ),
    (
        "an input that no independent parser can read",
        lambda lg: setattr(lg.runs[0], "input_error", "UnicodeDecodeError"),
        "INPUT_UNPARSEABLE",
    ),
]


def test_a_clean_ledger_has_no_violations() -> None:
    assert evaluate(clean()) == []


@pytest.mark.parametrize(("change", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_broken_promise_is_reported(change: Callable[[Ledger], None], code: str) -> None:
    ledger = clean()
    change(ledger)
    found = evaluate(ledger)
    assert code in {v.code for v in found}, found


def test_a_refused_file_is_not_held_to_the_independent_count() -> None:
    ledger = clean()
    ledger.runs[0].manifest = dataclasses.replace(
        _m(ledger),
        status="failed",
        reason=Reason("NOT_UTF8", "…"),
        outputs={},
        rows_in=0,
        rows_scored=0,
        rows_rejected=0,
    )
    ledger.runs[0].objects = {"manifest.json": StoredObject("manifest.json")}
    assert evaluate(ledger) == []


def test_superseded_versions_are_checked_only_when_asked() -> None:
    ledger = clean()
    ledger.inputs.append(
        InputVersion(ObjectVersion("b", "incoming/a.csv", "v0", "e0"), is_latest=False)
    )
    assert evaluate(ledger) == []
    assert [v.code for v in evaluate(ledger, all_versions=True)] == ["INPUT_PENDING"]


COUNT_CASES = [
    ("plain", b"a,b\n1,2\n3,4\n", 2),
    ("no final newline", b"a,b\n1,2\n3,4", 2),
    ("blank lines are not records", b"\na,b\n\n1,2\n\n\n3,4\n\n", 2),
    ("CRLF and BOM", b"\xef\xbb\xbfa,b\r\n1,2\r\n", 1),
    ("quoted newline stays in its record", b'a,b\n"x\ny",2\n3,4\n', 2),
    ("a line of commas is a record", b"a,b\n,\n", 1),
    ("whitespace-only line is a record", b"a,b\n \n", 1),
    ("header only", b"a,b\n", 0),
    ("empty", b"", 0),
]


@pytest.mark.parametrize(
    ("data", "n"), [c[1:] for c in COUNT_CASES], ids=[c[0] for c in COUNT_CASES]
)
def test_count_records(data: bytes, n: int) -> None:
    assert count_records(io.BytesIO(data)) == n
    assert count_records(io.BytesIO(gzip.compress(data))) == n


def test_count_records_agrees_with_pandas_on_a_regular_file() -> None:
    from training.sample_data import generate

    body = generate(500, seed=3).to_csv(index=False).encode()
    assert count_records(io.BytesIO(body)) == len(pd.read_csv(io.BytesIO(body))) == 500


def test_scorer_check_command_is_clean_then_names_each_violation(
    s3: Any, bucket: str, s3_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.reliability.conftest import put, sample_csv

    put(s3, bucket, "incoming/ok.csv", sample_csv(20))
    result = service.score_object(ObjectVersion(bucket, "incoming/ok.csv"), service.Settings())
    assert result is not None
    assert main(["check", "--bucket", bucket]) == 0
    put(s3, bucket, "incoming/late.csv", sample_csv(5))
    pred = result.manifest.outputs["predictions"].key
    s3.put_object(Bucket=bucket, Key=pred, Body=b"tampered\n")
    capsys.readouterr()
    assert main(["check", "--bucket", bucket]) == 1
    lines = capsys.readouterr().out.splitlines()
    codes = sorted(line.split()[0] for line in lines)
    assert codes == ["INPUT_PENDING", "OUTPUT_ROWS", "OVERWRITTEN", "SHA256"], lines


def test_deleted_outputs_and_manifests_are_reported_not_crashed_on(
    s3: Any, bucket: str, s3_registry: str
) -> None:
    from tests.reliability.conftest import ledger, put, sample_csv

    for name in ("a", "b"):
        put(s3, bucket, f"incoming/{name}.csv", sample_csv(10) + b"x,male,1,1,no,se\n")
    settings = service.Settings()
    a = service.score_object(ObjectVersion(bucket, "incoming/a.csv"), settings)
    b = service.score_object(ObjectVersion(bucket, "incoming/b.csv"), settings)
    assert a is not None
    assert b is not None
    s3.delete_object(Bucket=bucket, Key=a.manifest.outputs["rejected"].key)
    s3.delete_object(Bucket=bucket, Key=f"scored/b/{b.manifest.run_id}/manifest.json")
    found = sorted(v.split()[0] for v in ledger(bucket))
    assert found == [
        "INPUT_PENDING",
        "MANIFEST_UNREADABLE",
        "OVERWRITTEN",
        "OVERWRITTEN",
        "SHA256",
    ], found


def test_the_checker_counts_a_semicolon_file_in_the_dialect_it_was_scored_in(
    s3: Any, bucket: str, s3_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.reliability.conftest import put, sample_csv

    frame = pd.read_csv(io.BytesIO(sample_csv(20)), dtype=str, keep_default_na=False)
    # a quoted newline that is not a line's first field: read with ',' it ends a record early
    frame.iloc[3, -1] = "south\neast"
    put(s3, bucket, "incoming/eu.csv", frame.to_csv(index=False, sep=";").encode())
    result = service.score_object(ObjectVersion(bucket, "incoming/eu.csv"), service.Settings())
    assert result is not None
    assert result.manifest.input.dialect["delimiter"] == ";"
    assert result.manifest.rows_in == 20
    assert main(["check", "--bucket", bucket]) == 0, capsys.readouterr().out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([*'ab,;" \n\r', "\r\n", "é"]), max_size=40).map("".join),
    st.sampled_from([",", ";"]),
)
def test_the_count_follows_the_csv_modules_rules(text: str, delimiter: str) -> None:
    """Quotes open only at a cell's start, doubled quotes, quoted newlines, blank lines, a
    quote left open at the end: the count is the csv module's."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    assert count_records(io.BytesIO(text.encode()), delimiter) == max(
        sum(1 for r in rows if r) - 1, 0
    )


def test_a_cell_longer_than_the_readers_limit_is_counted_while_scoring_keeps_its_limit() -> None:
    """The reader refuses cells over its limit through the csv module's process-wide field
    limit; the checker counts longer cells without lifting it, even for a moment: a scoring
    thread reading while the checker counts still has its limit."""
    limit = csv.field_size_limit()
    body = b'id,text\n1,"' + b"x" * (4 * limit) + b'"\n2,b\n'
    reading, go_on = threading.Event(), threading.Event()

    class Paused(io.RawIOBase):
        """The file, paused half-way until the other thread has looked at the limit."""

        def __init__(self) -> None:
            self.data = io.BytesIO(body)

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            if self.data.tell() > len(body) // 2:
                reading.set()
                go_on.wait(10)
            chunk = self.data.read(min(len(buf), 4096))
            buf[: len(chunk)] = chunk
            return len(chunk)

    counted: list[int] = []
    worker = threading.Thread(target=lambda: counted.append(count_records(Paused())))
    worker.start()
    assert reading.wait(10)
    seen_meanwhile = csv.field_size_limit()
    go_on.set()
    worker.join(10)
    assert seen_meanwhile == limit
    assert counted == [2]
