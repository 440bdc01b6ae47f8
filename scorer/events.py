"""Parse what starts a run — an EventBridge event, an S3 notification, an SQS message or the
environment an input transformer fills — once, into an ObjectRef (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from scorer.errors import BadArgument

INCOMING = "incoming/"
SCORED = "scored/"
SUFFIXES = (".csv.gz", ".csv")  # matched case-insensitively: "a.CSV" is an input too

#: What a key under incoming/ is (``classify``): scored, refused by its name, or not a file.
INPUT, UNSUPPORTED, IGNORED = "input", "unsupported", "ignored"

#: S3 refuses keys longer than this many UTF-8 bytes (moto does not enforce it).
S3_KEY_LIMIT = 1024
#: Results of inputs whose readable folder S3 or the UI could not hold live here, by hash.
HASHED = "_hashed/"
#: Results of a job's sources outside incoming/ (another prefix or bucket): _sources/<bucket>/…
SOURCES = "_sources/"
#: Results of one occurrence of an ``all`` job: _jobs/<job>/<occurrence>/<folder of the input>
JOBS = "_jobs/"
_RESERVED = (HASHED, SOURCES, JOBS)
# refs.run_id: a name of at most 64 characters, "-v", at most 9 digits, "-", 16 hex digits
_LONGEST_RUN_ID = 64 + 2 + 9 + 1 + 16
_LONGEST_OUTPUT_NAME = len("predictions.csv")
#: One segment of a readable result folder: no separators, no '..', no control characters
#: (the UI's run links use the same rule, see catalog.check_run_path).
SEGMENT = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,255}$")


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
    #: the key exactly as the event carried it, when that differs from ``key``: checked before
    #: the object is called gone, in case a bridge delivered it unencoded
    key_as_given: str | None = field(default=None, compare=False)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return self.url + (f"?versionId={self.version_id}" if self.version_id else "")


def _version(value: Any) -> str | None:
    text = str(value or "").strip()
    return None if text in ("", "null") else text


def _ref(bucket: Any, key: Any, version: Any, etag: Any, raw_keys: bool) -> ObjectRef:
    given = str(key)
    decoded = given if raw_keys else unquote_plus(given)
    return ObjectRef(
        bucket=str(bucket),
        key=decoded,
        version_id=_version(version),
        etag=str(etag or "").strip('"'),
        key_as_given=given if given != decoded else None,
    )


def parse(message: Any) -> ObjectRef:
    """The first object of an event (an EventBridge event names exactly one)."""
    return parse_all(message)[0]


def parse_all(message: Any, *, raw_keys: bool = False) -> list[ObjectRef]:
    """Every object an EventBridge event, an S3 notification, or an SQS message carrying
    either names. Keys are URL-decoded once, as AWS encodes them ('+' for a space);
    ``raw_keys``: the sender put keys in unencoded (moto's EventBridge does)."""
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
            ]
        except (KeyError, TypeError, AttributeError) as exc:
            raise NotAnEvent(f"the event has no bucket/object ({exc})") from exc
    records = message.get("Records")
    if isinstance(records, list) and records:
        out: list[ObjectRef] = []
        for record in records:
            if isinstance(record, dict) and "body" in record:  # SQS → Lambda style envelope
                out += parse_all(record["body"], raw_keys=raw_keys)
                continue
            try:
                s3 = record["s3"]
                obj = s3["object"]
                bucket, version = s3["bucket"]["name"], obj.get("versionId")
                out.append(_ref(bucket, obj["key"], version, obj.get("eTag"), raw_keys))
            except (KeyError, TypeError, AttributeError) as exc:
                raise NotAnEvent(f"the S3 notification has no bucket/object ({exc})") from exc
        return out
    raise NotAnEvent("not an S3 Object Created event (no 'detail' or 'Records')")


def eventbridge_event(ref: ObjectRef) -> dict[str, Any]:
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


def from_environment(env: Mapping[str, str]) -> ObjectRef:
    """What the EventBridge input transformer puts into the task's environment."""
    bucket = env.get("DROPSCORE_BUCKET", "").strip()
    key = env.get("DROPSCORE_KEY", "")
    if not bucket or not key:
        raise NotAnEvent(
            "no event: pass --event FILE (or - for stdin), or set DROPSCORE_BUCKET and "
            "DROPSCORE_KEY (URL-encoded, as EventBridge sends it)"
        )
    return _ref(bucket, key, env.get("DROPSCORE_VERSION_ID"), "", raw_keys=False)


def classify(key: str, incoming: str = INCOMING) -> str:
    """INPUT (``.csv``/``.csv.gz`` in any case: scored), UNSUPPORTED (any other name under
    incoming/: refused with a terminal manifest) or IGNORED (outside incoming/, or a folder
    marker: a key ending in '/')."""
    if not key.startswith(incoming) or key.endswith("/") or len(key) == len(incoming):
        return IGNORED
    return INPUT if key.lower().endswith(SUFFIXES) else UNSUPPORTED


def is_input_key(key: str, incoming: str = INCOMING) -> bool:
    return classify(key, incoming) == INPUT


def relative_name(key: str, incoming: str = INCOMING) -> str:
    """``incoming/a/b.csv.gz`` → ``a/b``: an input's name under ``scored/``."""
    rel = key[len(incoming) :] if key.startswith(incoming) else key
    for suffix in SUFFIXES:
        if rel.lower().endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def result_folder(
    key: str,
    incoming: str = INCOMING,
    scored: str = SCORED,
    *,
    bucket: str | None = None,
    home: str | None = None,
    occurrence: str | None = None,
) -> str:
    """The folder under ``scored/`` that holds every run of ``key``: its relative name when
    that is a readable path whose outputs fit S3's key limit, else ``_hashed/<sha256>`` of the
    key (the manifest inside names the full key). The one place that decides it.

    A job's source outside ``incoming/`` of the ``home`` bucket (another prefix, or ``bucket``
    elsewhere) lives under ``_sources/<bucket>/<key>``; ``occurrence`` (``<job>/<id>``, from an
    ``all`` job) puts the folder under ``_jobs/<job>/<id>/`` so each occurrence scores anew."""
    base = f"{JOBS}{occurrence}/" if occurrence else ""
    own = bucket is None or (bucket == home and key.startswith(incoming))
    if own:
        rel = relative_name(key, incoming)
        whole = key[len(incoming) :] if key.startswith(incoming) else key
    else:
        rel = SOURCES + f"{bucket}/" + relative_name(key, "")
        whole = f"s3://{bucket}/{key}"  # never the hash of an input under incoming/
    segments = rel.split("/")
    longest = f"{scored}{base}{rel}/{'r' * _LONGEST_RUN_ID}/{'o' * _LONGEST_OUTPUT_NAME}"
    readable = (
        all(SEGMENT.fullmatch(s) and s.strip() == s for s in segments)
        # those names are reserved for hashed, job-source and job-occurrence folders
        and (not own or f"{segments[0]}/" not in _RESERVED)
        and len(longest.encode()) <= S3_KEY_LIMIT
    )
    if readable:
        return base + rel
    return base + HASHED + hashlib.sha256(whole.encode()).hexdigest()


def job_occurrence(folder: str) -> tuple[str, str, str] | None:
    """``_jobs/<job>/<id>/<rest>`` → (job, occurrence id, rest); None for any other folder."""
    if not folder.startswith(JOBS):
        return None
    parts = folder[len(JOBS) :].split("/", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def output_prefix(
    bucket: str, key: str, run_id: str, incoming: str = INCOMING, scored: str = SCORED
) -> str:
    return f"s3://{bucket}/{scored}{result_folder(key, incoming, scored)}/{run_id}"
