"""Parse what starts a run — an EventBridge event, an S3 notification, an SQS message or the
environment an input transformer fills — once, into an ObjectRef (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from scorer.errors import BadArgument

INCOMING = "incoming/"
SCORED = "scored/"
SUFFIXES = (".csv.gz", ".csv")


class NotAnEvent(BadArgument):
    """The message is not an S3 "Object Created" event dropscore can act on."""

    code = "NOT_AN_EVENT"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One version of one object. ``key`` is always decoded (S3 events URL-encode it)."""

    bucket: str
    key: str
    version_id: str | None = None  # None for unversioned buckets ("null" is normalised away)
    etag: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return self.url + (f"?versionId={self.version_id}" if self.version_id else "")


def _version(value: Any) -> str | None:
    text = str(value or "").strip()
    return None if text in ("", "null") else text


def parse(message: Any) -> ObjectRef:
    """An EventBridge event, an S3 notification, or an SQS message carrying either."""
    if isinstance(message, (str, bytes)):
        try:
            message = json.loads(message)
        except ValueError as exc:
            raise NotAnEvent(f"the message is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise NotAnEvent("the message is not a JSON object")
    if "detail" in message and isinstance(message["detail"], dict):
        detail = message["detail"]
        if message.get("detail-type") not in (None, "Object Created"):
            raise NotAnEvent(f"event type '{message.get('detail-type')}' is not Object Created")
        try:
            obj = detail["object"]
            return ObjectRef(
                bucket=str(detail["bucket"]["name"]),
                key=unquote_plus(str(obj["key"])),
                version_id=_version(obj.get("version-id")),
                etag=str(obj.get("etag", "")),
            )
        except (KeyError, TypeError) as exc:
            raise NotAnEvent(f"the event has no bucket/object ({exc})") from exc
    records = message.get("Records")
    if isinstance(records, list) and records:
        first = records[0]
        if isinstance(first, dict) and "body" in first:  # SQS → Lambda style envelope
            return parse(first["body"])
        try:
            s3 = first["s3"]
            return ObjectRef(
                bucket=str(s3["bucket"]["name"]),
                key=unquote_plus(str(s3["object"]["key"])),
                version_id=_version(s3["object"].get("versionId")),
                etag=str(s3["object"].get("eTag", "")),
            )
        except (KeyError, TypeError) as exc:
            raise NotAnEvent(f"the S3 notification has no bucket/object ({exc})") from exc
    raise NotAnEvent("not an S3 Object Created event (no 'detail' or 'Records')")


def from_environment(env: Mapping[str, str]) -> ObjectRef:
    """What the EventBridge input transformer puts into the task's environment."""
    bucket = env.get("DROPSCORE_BUCKET", "").strip()
    key = env.get("DROPSCORE_KEY", "")
    if not bucket or not key:
        raise NotAnEvent(
            "no event: pass --event FILE (or - for stdin), or set DROPSCORE_BUCKET and "
            "DROPSCORE_KEY (URL-encoded, as EventBridge sends it)"
        )
    return ObjectRef(
        bucket=bucket, key=unquote_plus(key), version_id=_version(env.get("DROPSCORE_VERSION_ID"))
    )


def is_input_key(key: str, incoming: str = INCOMING) -> bool:
    return key.startswith(incoming) and key.endswith(SUFFIXES) and len(key) > len(incoming)


def relative_name(key: str, incoming: str = INCOMING) -> str:
    """``incoming/a/b.csv.gz`` → ``a/b``: where its results live under ``scored/``."""
    rel = key[len(incoming) :] if key.startswith(incoming) else key
    for suffix in SUFFIXES:
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def output_prefix(
    bucket: str, key: str, run_id: str, incoming: str = INCOMING, scored: str = SCORED
) -> str:
    return f"s3://{bucket}/{scored}{relative_name(key, incoming)}/{run_id}"
