from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from scorer import events
from scorer.events import NotAnEvent, ObjectRef


def eventbridge(key: str, version: str | None = "3HL4kqtJlcpXroDTDmJ", bucket: str = "b") -> dict:
    obj: dict = {"key": key, "size": 10, "etag": "abc", "sequencer": "00"}
    if version is not None:
        obj["version-id"] = version
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "reason": "PutObject",
        },
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("incoming/a/b.csv", "incoming/a/b.csv"),
        ("incoming/my+file%282%29.csv", "incoming/my file(2).csv"),
        ("incoming/100%25+sure.csv", "incoming/100% sure.csv"),
        ("incoming/caf%C3%A9.csv.gz", "incoming/café.csv.gz"),
        ("incoming/a%2Bb.csv", "incoming/a+b.csv"),
    ],
    ids=["plain", "spaces-and-parens", "percent", "unicode", "literal-plus"],
)
def test_eventbridge_keys_are_decoded_once(encoded: str, decoded: str) -> None:
    ref = events.parse(json.dumps(eventbridge(encoded)))
    assert ref == ObjectRef("b", decoded, "3HL4kqtJlcpXroDTDmJ", "abc")


def test_missing_or_null_version_means_none() -> None:
    assert events.parse(eventbridge("incoming/x.csv", None)).version_id is None
    assert events.parse(eventbridge("incoming/x.csv", "null")).version_id is None


def test_s3_notification_and_sqs_envelope() -> None:
    record = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": "b"},
                    "object": {"key": "incoming/a+b.csv", "versionId": "v1"},
                }
            }
        ]
    }
    assert events.parse(record) == ObjectRef("b", "incoming/a b.csv", "v1")
    wrapped = {"Records": [{"body": json.dumps(eventbridge("incoming/z.csv"))}]}
    assert events.parse(wrapped).key == "incoming/z.csv"


def test_environment_from_input_transformer() -> None:
    env = {
        "DROPSCORE_BUCKET": "b",
        "DROPSCORE_KEY": "incoming/my+file.csv",
        "DROPSCORE_VERSION_ID": "",
    }
    assert events.from_environment(env) == ObjectRef("b", "incoming/my file.csv", None)
    with pytest.raises(NotAnEvent, match="DROPSCORE_BUCKET"):
        events.from_environment({})


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        '{"detail-type": "Object Deleted", "detail": {}}',
        '{"foo": 1}',
        '{"detail": {"bucket": {}}}',
    ],
    ids=["not-json", "a-list", "deleted-event", "unrelated-json", "no-object"],
)
def test_poison_messages_are_typed_errors(message: str) -> None:
    with pytest.raises(NotAnEvent):
        events.parse(message)


@pytest.mark.parametrize(
    ("key", "is_input", "rel"),
    [
        ("incoming/a/b.csv", True, "a/b"),
        ("incoming/x.csv.gz", True, "x"),
        ("incoming/x.txt", False, "x.txt"),
        ("scored/x.csv", False, "scored/x"),
        ("incoming/", False, ""),
    ],
    ids=["nested-csv", "gzip", "not-csv", "outside-incoming", "prefix-only"],
)
def test_inputs_and_relative_names(key: str, is_input: bool, rel: str) -> None:
    assert events.is_input_key(key) is is_input
    assert events.relative_name(key) == rel


# --- several records, the local bridge, and where results live ---------------------------------
def test_a_notification_with_several_records_yields_every_object() -> None:
    records = [
        {"s3": {"bucket": {"name": "b"}, "object": {"key": f"incoming/f{i}.csv", "versionId": "v"}}}
        for i in range(3)
    ]
    refs = events.parse_all({"Records": records})
    assert [r.key for r in refs] == ["incoming/f0.csv", "incoming/f1.csv", "incoming/f2.csv"]
    sqs = {"Records": [{"body": json.dumps({"Records": records[:2]})}, {"body": json.dumps(
        eventbridge("incoming/z.csv"))}]}  # fmt: skip
    assert [r.key for r in events.parse_all(sqs)] == [
        "incoming/f0.csv",
        "incoming/f1.csv",
        "incoming/z.csv",
    ]


ODD_KEYS = [
    "incoming/c++/a+b.csv",
    "incoming/a b/ü.csv",
    "incoming/100%.csv",
    "incoming/100%25.csv",
    "incoming/x%2By.csv",
    'incoming/say "hi" \\ bye.csv',
    "incoming/tab\there.csv",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_an_aws_shaped_event_carries_the_key_encoded_and_parses_back_exactly(key: str) -> None:
    """What the local bridge hands `scorer event`: the key encoded as S3 encodes it for AWS
    ('+' for a space, %2B for '+'), so it is decoded exactly once."""
    ref = ObjectRef("b", key, "v1", "e1")
    event = events.eventbridge_event(ref)
    assert event["detail"]["object"]["key"] == quote_plus(key, safe="/")
    assert events.parse(json.dumps(event)) == ref


def test_a_raw_key_from_the_local_bridge_is_read_as_given() -> None:
    """moto's EventBridge delivers raw keys (and 'eTag'): read with raw_keys they are not
    decoded, and the key as given is kept for the not-found re-check either way."""
    moto = eventbridge("incoming/c++/a+b.csv")
    moto["detail"]["object"]["eTag"] = moto["detail"]["object"].pop("etag")
    (ref,) = events.parse_all(moto, raw_keys=True)
    assert ref == ObjectRef("b", "incoming/c++/a+b.csv", "3HL4kqtJlcpXroDTDmJ", "abc")
    decoded = events.parse(moto)
    assert decoded.key == "incoming/c  /a b.csv"
    assert decoded.key_as_given == "incoming/c++/a+b.csv"


KINDS = [
    ("incoming/a.csv", events.INPUT),
    ("incoming/A.CSV", events.INPUT),
    ("incoming/b.Csv.GZ", events.INPUT),
    ("incoming/.csv", events.INPUT),
    ("incoming//x.csv", events.INPUT),
    ("incoming/a/.csv.gz", events.INPUT),
    ("incoming/x.txt", events.UNSUPPORTED),
    ("incoming/y.xlsx", events.UNSUPPORTED),
    ("incoming/noext", events.UNSUPPORTED),
    ("incoming/a.csv.zip", events.UNSUPPORTED),
    ("incoming/folder/", events.IGNORED),
    ("incoming/", events.IGNORED),
    ("scored/x.csv", events.IGNORED),
    ("models/x.csv", events.IGNORED),
]


@pytest.mark.parametrize(("key", "kind"), KINDS, ids=[k for k, _ in KINDS])
def test_every_key_under_incoming_is_an_input_unsupported_or_a_folder_marker(
    key: str, kind: str
) -> None:
    assert events.classify(key) == kind


RUN = "claims-v123456789-0123456789abcdef"
FOLDER_KEYS = [
    *ODD_KEYS,
    "incoming/.csv",
    "incoming//x.csv",
    "incoming/a/.csv.gz",
    "incoming/ lead/x.csv",
    "incoming/a/../b.csv",
    "incoming/_hashed/" + "0" * 64 + ".csv",
    "incoming/x.txt",
    "incoming/" + "k" * 991 + ".csv",
    "incoming/" + "ü" * 500 + ".csv",
    "incoming/" + "/".join(["d" * 200] * 5) + ".csv",
]


@pytest.mark.parametrize("key", FOLDER_KEYS, ids=[k[:40] for k in FOLDER_KEYS])
def test_every_input_gets_a_result_folder_s3_and_the_ui_accept(key: str) -> None:
    from scorer import catalog

    out = events.output_prefix("b", key, RUN)
    folder = out.removeprefix("s3://b/scored/")
    assert catalog.check_run_path("b", folder).url() == out  # the UI lists and opens it
    for name in ("predictions.csv", "rejected.csv", "manifest.json"):
        assert len(f"{out}/{name}".removeprefix("s3://b/").encode()) <= events.S3_KEY_LIMIT
    assert events.result_folder(key) == folder.rpartition("/")[0]


def test_ordinary_keys_keep_their_readable_folder_and_odd_ones_are_hashed() -> None:
    assert events.result_folder("incoming/2026/claims.CSV") == "2026/claims"
    assert events.result_folder("incoming/a b/ü.csv.gz") == "a b/ü"
    long = "incoming/" + "k" * 991 + ".csv"
    assert events.result_folder(long).startswith(events.HASHED)
    assert events.result_folder("incoming/.csv") != events.result_folder("incoming//.csv")
    squat = "incoming/" + events.result_folder(long) + ".csv"  # a key naming a hashed folder
    assert events.result_folder(squat) != events.result_folder(long)
