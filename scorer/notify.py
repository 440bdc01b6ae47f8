"""Run events on EventBridge: the one place that publishes them.

A run that commits its manifest puts ``Run Completed`` (ok/partial) or ``Run Failed``, plus
``Run Alert`` when the manifest has alerts, on the bus (source ``dropscore``; the run id is the
idempotency key). Only the committing run emits: a duplicate that finds the run already done
does not. After a successful PutEvents the run writes ``events.json`` create-only beside its
manifest; a committed run whose manifest says events are owed (``event_bus``) and that has no
marker — the process died between commit and emit, or the bus was unreachable — is emitted
again by the sweep. Delivery is therefore at-least-once: a crash after PutEvents but before the
marker sends the events twice, with the same run id.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import quote

from scorer import interrupt, layout, storage
from scorer.errors import (
    DropscoreError,
    EventsUnavailable,
    Interrupted,
    ObjectMissing,
    VersionExists,
)
from scorer.manifest import Manifest

log = logging.getLogger("dropscore.notify")

SOURCE = "dropscore"
MARKER = "events.json"  # in the run folder, beside manifest.json: the events were put
DEFAULT_BUS = "default"
RUN_COMPLETED, RUN_FAILED, RUN_ALERT = "Run Completed", "Run Failed", "Run Alert"
OFF = ("off", "none", "false", "0")


def bus_setting(text: str | None) -> str | None:
    """DROPSCORE_EVENT_BUS → the bus name (empty: the account's default bus); None when off."""
    value = (text or "").strip()
    if value.lower() in OFF:
        return None
    return value or DEFAULT_BUS


# --- what is sent (pure) ------------------------------------------------------------------------
def detail_types(manifest: Manifest) -> list[str]:
    """The events a committed manifest owes: its outcome, and an alert event when it has any."""
    kinds = [RUN_FAILED if manifest.status == "failed" else RUN_COMPLETED]
    if manifest.alerts:
        kinds.append(RUN_ALERT)
    return kinds


def run_detail(
    manifest: Manifest, out: str, ui_url: str | None = None, scored: str = layout.SCORED
) -> dict[str, Any]:
    """The ``detail`` of a run's events: enough to act on without opening the manifest.
    ``scored``: the results prefix ``out`` is under, which the run page's link leaves out."""
    inp = manifest.input
    links: dict[str, str] = {"manifest": storage.join(out, layout.MANIFEST)}
    for name, entry in sorted(manifest.outputs.items()):
        links[name] = entry.url or storage.join(out, f"{name}.csv")
    if ui_url and storage.is_s3(out):
        found = layout.run_file(storage.split_s3(storage.join(out, layout.MANIFEST))[1], scored)
        if found is not None:  # the name the UI's runs page resolves (layout.check_run_path)
            run = quote(found.folder, safe="/")
            links["run_page"] = f"{ui_url.rstrip('/')}/runs?run={run}"
    detail: dict[str, Any] = {
        "run_id": manifest.run_id,
        "status": manifest.status,
        "reason": manifest.reason.to_dict() if manifest.reason is not None else None,
        "input": {
            "bucket": inp.bucket or None,
            "key": inp.key or inp.url,
            "version_id": inp.version_id,
        },
        "model": manifest.model.ref,
        "counts": {
            "rows_in": manifest.rows_in,
            "rows_scored": manifest.rows_scored,
            "rows_rejected": manifest.rows_rejected,
            "rejected_by_code": manifest.rejected_by_code,
            "warnings_by_code": manifest.warnings_by_code,
        },
        "alerts": [alert.to_dict() for alert in manifest.alerts],
        "started_at": manifest.started_at,
        "finished_at": manifest.finished_at,
        "duration_s": manifest.duration_s,
        "cost": manifest.cost.to_dict(),
        "links": links,
    }
    detail["summary"] = summary(detail)  # what a notification shows (see infra's transformer)
    return detail


def one_line(detail_type: str, detail: Mapping[str, Any]) -> str:
    """A run event as one readable line (the demo's console, the e-mail's subject matter)."""
    return f"{detail_type}: {detail.get('summary') or summary(detail)}"


def summary(detail: Mapping[str, Any]) -> str:
    """Input, status, counts, reason and alerts in one line (the detail's ``summary``)."""
    inp = detail.get("input") or {}
    where = f"s3://{inp.get('bucket')}/{inp.get('key')}" if inp.get("bucket") else inp.get("key")
    counts = detail.get("counts") or {}
    line = f"{where} {detail.get('status')}"
    if counts:
        line += (
            f", {counts.get('rows_in', 0)} in / {counts.get('rows_scored', 0)} scored / "
            f"{counts.get('rows_rejected', 0)} rejected"
        )
    if detail.get("reason"):
        line += f" [{detail['reason'].get('code')}]"
    alerts = [
        str(a.get("message") or a.get("code")).split(";", 1)[0] for a in detail.get("alerts") or []
    ]
    if alerts:
        line += "; alerts: " + "; ".join(alerts)
    return line


# --- putting events (adapter) -------------------------------------------------------------------
@cache
def events_client() -> Any:
    """One EventBridge client per process, honouring AWS_ENDPOINT_URL like the S3 client; few
    retries and short timeouts: a missed event is re-sent by the sweep, a stuck run is worse."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        retries={"total_max_attempts": 3, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
    )
    return session.client("events", region_name=session.region_name or "us-east-1", config=config)


def put_event(detail_type: str, detail: Mapping[str, Any], bus: str | None = None) -> None:
    """Put one ``dropscore`` event on ``bus`` (None: the account's default bus).
    EventsUnavailable when EventBridge refuses it or cannot be reached."""
    _put([(detail_type, detail)], bus)


def _put(entries: list[tuple[str, Mapping[str, Any]]], bus: str | None) -> list[str]:
    items = [
        {
            "Source": SOURCE,
            "DetailType": kind,
            "Detail": json.dumps(detail, allow_nan=False, default=str),
            "EventBusName": bus or DEFAULT_BUS,
        }
        for kind, detail in entries
    ]
    try:
        resp = events_client().put_events(Entries=items)
    except Exception as exc:  # botocore's errors, translated at this boundary
        raise EventsUnavailable(
            f"could not put {', '.join(k for k, _ in entries)} on event bus "
            f"'{bus or DEFAULT_BUS}': {exc}; check the bus name (DROPSCORE_EVENT_BUS) and the "
            "task role's events:PutEvents permission"
        ) from exc
    failed = [e for e in resp.get("Entries", []) if e.get("ErrorCode")]
    if resp.get("FailedEntryCount") or failed:
        why = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in failed)
        raise EventsUnavailable(f"event bus '{bus or DEFAULT_BUS}' refused the events ({why})")
    return [str(e.get("EventId", "")) for e in resp.get("Entries", [])]


def announce(
    manifest: Manifest,
    out: str,
    bus: str | None,
    ui_url: str | None = None,
    scored: str = layout.SCORED,
) -> bool:
    """Put a committed run's events, then write its marker. Never raises: a run that committed
    stays committed; False (with a warning) leaves the marker absent so the sweep re-sends."""
    if bus is None:
        return False
    if interrupt.requested.is_set():  # asked to stop after the commit: end now, the sweep sends
        log.info("stop requested; run events left to the sweep", extra={"run_id": manifest.run_id})
        return False
    detail = run_detail(manifest, out, ui_url, scored)
    kinds = detail_types(manifest)
    try:
        ids = _put([(k, detail) for k in kinds], bus)
    except EventsUnavailable as exc:
        log.warning(
            "run event not sent; the sweep sends it again",
            extra={"run_id": manifest.run_id, "code": exc.code, "error": exc.message},
        )
        return False
    marker = {
        "run_id": manifest.run_id,
        "bus": bus,
        "events": [{"detail_type": k, "event_id": i} for k, i in zip(kinds, ids, strict=False)],
        "sent_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    try:
        storage.write_bytes(
            storage.join(out, MARKER),
            (json.dumps(marker, indent=2) + "\n").encode(),
            create_only=True,
        )
    except VersionExists:
        pass  # another sender (the sweep, a late duplicate) marked it first: sent at least once
    except Interrupted:  # a stop request arrived after PutEvents: nothing becomes visible now
        log.info(
            "stop requested; run events sent but not marked, the sweep may send them again",
            extra={"run_id": manifest.run_id},
        )
    except DropscoreError as exc:
        log.warning(
            "run events sent but not marked; the sweep may send them again",
            extra={"run_id": manifest.run_id, "code": exc.code, "error": exc.message},
        )
    log.info("run events sent", extra={"run_id": manifest.run_id, "events": kinds})
    return True


def unannounced(bucket: str, scored: str = layout.SCORED) -> list[str]:
    """Run folders (s3://…) with a manifest but no marker (one listing of scored/)."""
    seen: dict[str, set[str]] = {}
    for obj in storage.list_objects(f"s3://{bucket}/{scored}"):
        found = layout.run_file(storage.split_s3(obj.url)[1], scored)
        if found is not None and found.name in (layout.MANIFEST, MARKER):
            seen.setdefault(obj.url.rpartition("/")[0], set()).add(found.name)
    return sorted(f for f, names in seen.items() if names == {layout.MANIFEST})


def resend_missing(
    bucket: str, bus: str | None, ui_url: str | None = None, scored: str = layout.SCORED
) -> tuple[int, int]:
    """The sweep's half of at-least-once: send the events of every committed run that owes
    them (its manifest names a bus) and has no marker. Returns (sent, still missing)."""
    if bus is None:
        return 0, 0
    sent = missing = 0
    for folder in unannounced(bucket, scored):
        try:
            manifest = Manifest.from_json(storage.read_bytes(storage.join(folder, layout.MANIFEST)))
        except (ObjectMissing, ValueError, TypeError):
            continue  # the ledger checker reports unreadable manifests
        if manifest.event_bus is None:
            continue  # committed with events off, or before run events existed: none owed
        if announce(manifest, folder, bus, ui_url, scored):
            sent += 1
        else:
            missing += 1
    return sent, missing
