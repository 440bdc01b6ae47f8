"""Parse what starts a run — an EventBridge event, an S3 notification, an SQS message or the
environment an input transformer fills — once, into an ObjectVersion (pure)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from scorer.codes import Code
from scorer.errors import BadArgument
from scorer.layout import ObjectVersion

log = logging.getLogger("dropscore.events")


class NotAnEvent(BadArgument):
    """The message is not an S3 "Object Created" event dropscore can act on."""

    code = Code.NOT_AN_EVENT


def _ref(bucket: Any, key: Any, version: Any, etag: Any, raw_keys: bool) -> ObjectVersion:
    given = str(key)
    decoded = given if raw_keys else unquote_plus(given)
    return ObjectVersion.of(
        bucket, decoded, version, etag, key_as_given=given if given != decoded else None
    )


def parse(message: Any) -> ObjectVersion:
    """The one object an event names (an EventBridge event names exactly one). A notification
    naming several is refused, never read as its first: use ``parse_all`` for those."""
    found = parse_all(message)
    if len(found) != 1:
        raise NotAnEvent(
            f"the message names {len(found)} objects, not one; each must be scored "
            "(scorer event and watch score every one)"
        )
    return found[0]


def parse_all(message: Any, *, raw_keys: bool = False) -> list[ObjectVersion]:
    """Every object an EventBridge event, an S3 notification, or an SQS message carrying
    either names. Keys are URL-decoded once, as AWS encodes them ('+' for a space);
    ``raw_keys``: the sender put keys in unencoded (moto's EventBridge does). A record that
    names no created object is left out with a warning saying why; NotAnEvent when none does."""
    found, skipped = parse_records(message, raw_keys=raw_keys)
    for why in skipped:
        log.warning("event record not scored", extra={"why": why})
    if not found:
        raise NotAnEvent(skipped[0] if len(skipped) == 1 else "; ".join(skipped))
    return found


def parse_records(message: Any, *, raw_keys: bool = False) -> tuple[list[ObjectVersion], list[str]]:
    """(objects, why each other record was left out): one bad record of a notification never
    costs the others their run. NotAnEvent when the message itself is not an event."""
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
            # AWS spells it "etag"; moto's EventBridge "eTag"
            etag = obj.get("etag", obj.get("eTag"))
            return [
                _ref(detail["bucket"]["name"], obj["key"], obj.get("version-id"), etag, raw_keys)
            ], []
        except (KeyError, TypeError, AttributeError) as exc:
            raise NotAnEvent(f"the event has no bucket/object ({exc})") from exc
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise NotAnEvent("not an S3 Object Created event (no 'detail' or 'Records')")
    out: list[ObjectVersion] = []
    skipped: list[str] = []
    for n, record in enumerate(records, 1):
        try:
            if isinstance(record, dict) and "body" in record:  # SQS → Lambda style envelope
                found, why = parse_records(record["body"], raw_keys=raw_keys)
                out += found
                skipped += [f"record {n}: {w}" for w in why]
                continue
            name = str(record.get("eventName") or "ObjectCreated:")
            if not name.startswith("ObjectCreated:"):
                skipped.append(f"record {n}: event '{name}' is not an object creation")
                continue
            s3 = record["s3"]
            obj = s3["object"]
            bucket, version = s3["bucket"]["name"], obj.get("versionId")
            out.append(_ref(bucket, obj["key"], version, obj.get("eTag"), raw_keys))
        except NotAnEvent as exc:
            skipped.append(f"record {n}: {exc.message}")
        except (KeyError, TypeError, AttributeError) as exc:
            skipped.append(f"record {n}: the S3 notification has no bucket/object ({exc})")
    return out, skipped


def eventbridge_event(ref: ObjectVersion) -> dict[str, Any]:
    """The "Object Created" event AWS would deliver for ``ref``: the key URL-encoded as S3
    encodes it (form style: '+' for a space, %2B for '+', '/' kept). The local bridge hands
    this to ``scorer event``, so keys are decoded exactly once on every path."""
    obj: dict[str, Any] = {"key": quote_plus(ref.key, safe="/"), "etag": ref.etag}
    if ref.version_id:
        obj["version-id"] = ref.version_id
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "resources": [f"arn:aws:s3:::{ref.bucket}"],
        "detail": {"version": "0", "bucket": {"name": ref.bucket}, "object": obj},
    }


def from_environment(env: Mapping[str, str]) -> ObjectVersion:
    """What the EventBridge input transformer puts into the task's environment."""
    bucket = env.get("DROPSCORE_BUCKET", "").strip()
    key = env.get("DROPSCORE_KEY", "")
    if not bucket or not key:
        raise NotAnEvent(
            "no event: pass --event FILE (or - for stdin), or set DROPSCORE_BUCKET and "
            "DROPSCORE_KEY (URL-encoded, as EventBridge sends it)"
        )
    return _ref(bucket, key, env.get("DROPSCORE_VERSION_ID"), "", raw_keys=False)
