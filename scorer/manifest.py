"""The manifest: the one terminal record of a run, written last and create-only (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "partial", "failed"]
TERMINAL: tuple[Status, ...] = ("ok", "partial", "failed")


@dataclass(slots=True)
class Manifest:
    run_id: str
    status: Status
    input: dict[str, Any]
    model: dict[str, Any]
    reason: dict[str, str] | None = None  # {"code", "message"} when failed
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_column: dict[str, dict[str, int]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    # {code, level, message, value, threshold, column}: see scorer/alerts.py
    alerts: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    distributions: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    rows_per_s: float = 0.0
    peak_memory_mb: float = 0.0  # this process
    workers: int = 0  # forked scoring processes (0: scored in this process)
    workers_peak_memory_mb: float | None = None  # the largest worker's peak
    # Dask shards scored; absent from the JSON when 0 (not sharded). Sharded: workers = Dask workers
    shards: int = 0
    # the task that ran it and what that cost, see scorer/cost.py ({} in older manifests)
    task: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    # the EventBridge bus this run's events are owed to (None: events off, or a manifest from
    # before run events); the sweep re-sends a run's events while its events.json is missing
    event_bus: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    scorer_version: str = ""
    schema: int = 1

    def to_json(self) -> str:
        doc = asdict(self)
        if not self.shards:  # written only by a sharded run: other manifests keep their old bytes
            del doc["shards"]
        return json.dumps(doc, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        raw = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_scored + self.rows_rejected


def decide_status(rows_in: int, rows_scored: int, rows_rejected: int) -> tuple[Status, str | None]:
    """ok / partial, or failed with a code when nothing could be scored."""
    if rows_in == 0:
        return "failed", "HEADER_ONLY"
    if rows_scored == 0:
        return "failed", "ALL_ROWS_REJECTED"
    return ("partial", None) if rows_rejected else ("ok", None)


def destination_conflict(existing: Manifest, run_id: str, model: str, out: str) -> str | None:
    """Why ``out``, holding ``existing``, cannot take run ``run_id`` of ``model`` (name@version);
    None when it is this very run (same input, same model: already done).

    The run id is the digest of exactly that identity — model name, model version and the
    input's version id, ETag or content sha256 — and every manifest records it, refused ones
    included (which never got as far as hashing the content), so it is what is compared."""
    if existing.run_id == run_id:
        return None
    theirs = f"{existing.model.get('name')}@{existing.model.get('version')}"
    inp = existing.input
    name = inp.get("key") or inp.get("url") or "an input"
    held = " ".join(
        f"{label} {str(inp[k])[:16]}"
        for k, label in (("version_id", "version"), ("sha256", "sha256"), ("etag", "etag"))
        if inp.get(k)
    )
    if theirs != model:
        what = f"a run of model {theirs} (this run: {model})"
    else:
        what = f"a run of another input ('{name}'{', ' + held if held else ''})"
    return (
        f"'{out}' already holds {what}, status {existing.status}; it is never overwritten. "
        "Choose another --out (one folder per input and model version)"
    )
