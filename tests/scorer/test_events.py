from __future__ import annotations

import json

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
