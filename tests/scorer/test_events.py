from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from scorer import events
from scorer.events import NotAnEvent
from scorer.layout import ObjectVersion


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
    assert ref == ObjectVersion("b", decoded, "3HL4kqtJlcpXroDTDmJ", "abc")


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
    assert events.parse(record) == ObjectVersion("b", "incoming/a b.csv", "v1")
    wrapped = {"Records": [{"body": json.dumps(eventbridge("incoming/z.csv"))}]}
    assert events.parse(wrapped).key == "incoming/z.csv"


def test_environment_from_input_transformer() -> None:
    env = {
        "DROPSCORE_BUCKET": "b",
        "DROPSCORE_KEY": "incoming/my+file.csv",
        "DROPSCORE_VERSION_ID": "",
    }
    assert events.from_environment(env) == ObjectVersion("b", "incoming/my file.csv", None)
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
    ref = ObjectVersion("b", key, "v1", "e1")
    event = events.eventbridge_event(ref)
    assert event["detail"]["object"]["key"] == quote_plus(key, safe="/")
    assert events.parse(json.dumps(event)) == ref


def test_a_raw_key_from_the_local_bridge_is_read_as_given() -> None:
    """moto's EventBridge delivers raw keys (and 'eTag'): read with raw_keys they are not
    decoded, and the key as given is kept for the not-found re-check either way."""
    moto = eventbridge("incoming/c++/a+b.csv")
    moto["detail"]["object"]["eTag"] = moto["detail"]["object"].pop("etag")
    (ref,) = events.parse_all(moto, raw_keys=True)
    assert ref == ObjectVersion("b", "incoming/c++/a+b.csv", "3HL4kqtJlcpXroDTDmJ", "abc")
    decoded = events.parse(moto)
    assert decoded.key == "incoming/c  /a b.csv"
    assert decoded.key_as_given == "incoming/c++/a+b.csv"


# --- every record of a notification is scored or said why it is not ----------------------------
def _record(key: str, name: str = "ObjectCreated:Put") -> dict:
    obj = {"key": key, "versionId": "v"}
    return {"eventName": name, "s3": {"bucket": {"name": "b"}, "object": obj}}


def test_one_object_is_never_read_from_a_notification_that_names_several() -> None:
    """``parse`` gives exactly one object: a notification naming three is refused, never read
    as its first record (the other two were silently dropped)."""
    message = {"Records": [_record(f"incoming/f{i}.csv") for i in range(3)]}
    with pytest.raises(NotAnEvent, match="3 objects"):
        events.parse(message)


def test_a_bad_record_does_not_drop_the_good_ones_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [
        _record("incoming/a.csv"),
        {"s3": {"bucket": {"name": "b"}}},  # no object
        _record("incoming/gone.csv", "ObjectRemoved:Delete"),
        _record("incoming/b.csv"),
    ]
    with caplog.at_level("WARNING", logger="dropscore.events"):
        found = events.parse_all({"Records": records})
    assert [r.key for r in found] == ["incoming/a.csv", "incoming/b.csv"]
    said = " ".join(r.getMessage() + str(getattr(r, "why", "")) for r in caplog.records)
    assert "record 2" in said
    assert "no bucket/object" in said
    assert "record 3" in said
    assert "ObjectRemoved:Delete" in said
