"""The manifest: the one terminal record of a run, written last and create-only (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Self

from scorer.codes import Code

Status = Literal["ok", "partial", "failed"]
TERMINAL: tuple[Status, ...] = ("ok", "partial", "failed")


# The sections below are JSON objects whose keys grew over time and differ by the path that
# wrote them (a run's input has its object's url, bucket and key; a scored frame's only bytes and
# sha256; a refused file's no dialect), and older versions ordered some otherwise. So a section
# records its JSON keys in their order (``keys``; None: every field, as declared) and the keys it
# has no field for as read (``extra``: a model's origin, fields older versions wrote): a manifest
# reads back to the same bytes.


class _Section:
    """A section's JSON object from its fields, in ``keys`` order, ``extra`` as it was read."""

    __slots__ = ()
    keys: tuple[str, ...] | None
    extra: Mapping[str, Any]
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.keys is None:
            object.__setattr__(self, "keys", self.FIELDS + tuple(self.extra))

    def to_dict(self) -> dict[str, Any]:
        extra, keys = self.extra, self.keys or ()
        return {k: extra[k] if k in extra else getattr(self, k) for k in keys}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Self:
        typed = {k: v for k, v in raw.items() if k in cls.FIELDS}
        extra = {k: v for k, v in raw.items() if k not in cls.FIELDS}
        make: Any = cls  # a dataclass below
        return make(**typed, extra=extra, keys=tuple(raw))


def _fields(cls: type[Any]) -> type[Any]:
    """Record a section's own fields (the JSON keys it types) once its dataclass is made."""
    cls.FIELDS = tuple(f.name for f in fields(cls) if f.name not in ("keys", "extra"))
    return cls


@_fields
@dataclass(frozen=True, slots=True)
class Reason(_Section):
    """Why a run failed: a reason code and what to do about it."""

    code: str = ""  # a scorer.codes.Code; an older manifest's code is kept as the text it was
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None


@_fields
@dataclass(frozen=True, slots=True)
class InputEntry(_Section):
    """The input version a run read (``input``)."""

    url: str = ""
    bucket: str = ""  # "" for a local file
    key: str = ""  # "" for a local file: named by its url only
    version_id: str | None = None  # None: an unversioned bucket or a local file
    etag: str = ""  # the one the run id was derived from
    bytes: int | None = None  # as read (before: as listed; None: unknown)
    sha256: str | None = None  # of the bytes read; None: refused before reading them
    dialect: Mapping[str, Any] | None = None  # delimiter, decimal mark … as read
    compressed: bool | None = None  # gzip
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None


@_fields
@dataclass(frozen=True, slots=True)
class ModelEntry(_Section):
    """The model version that scored (``model``); ``extra``: how it was chosen (its origin)."""

    name: str = ""
    version: int = 0
    sha256: str = ""  # of model.pkl
    card_sha256: str = ""  # of card.json
    task: str = ""  # regression | classification
    engine: str = ""  # plan | pipeline
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@_fields
@dataclass(frozen=True, slots=True)
class OutputEntry(_Section):
    """One output file a run committed (``outputs``: name → entry)."""

    url: str = ""
    sha256: str = ""
    bytes: int = 0
    key: str = ""  # S3 outputs only
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None

    @property
    def file(self) -> str:
        """The file's name (predictions.csv …)."""
        return (self.key or self.url).rsplit("/", 1)[-1]


@_fields
@dataclass(frozen=True, slots=True)
class AlertEntry(_Section):
    """One alert a run raised (``alerts``; see scorer/alerts.py for the rule)."""

    code: str = ""  # a scorer.codes.Code: DRIFT, DRIFT_PREDICTION, UNSEEN_SHARE …
    level: str = ""  # warning | major
    message: str = ""
    value: float = 0.0  # the PSI or the share that raised it
    threshold: float = 0.0  # what it was compared with (already adjusted for the run's size)
    column: str | None = None  # the feature it is about; None for the whole run
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None


@_fields
@dataclass(frozen=True, slots=True)
class TaskEntry(_Section):
    """The compute the run ran on (``task``: scorer.cost.TaskSize); no keys in older manifests."""

    where: str = ""  # fargate | local
    vcpu: float | None = None
    memory_gb: float | None = None
    architecture: str = ""
    spot: bool = False
    region: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None


@_fields
@dataclass(frozen=True, slots=True)
class CostEntry(_Section):
    """What the run cost (``cost``: scorer.cost.estimate); no keys in older manifests."""

    where: str = ""
    usd: float | None = None  # None wherever no honest figure exists; ``note`` says why
    billed_s: int = 0
    note: str = ""
    vcpu_hour_usd: float | None = None
    gb_hour_usd: float | None = None
    spot_discount: float | None = None
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None


def _no_task() -> TaskEntry:
    return TaskEntry(keys=())


def _no_cost() -> CostEntry:
    return CostEntry(keys=())


@dataclass(frozen=True, slots=True)
class Counts:
    """What a run's rows came to (``scorer.tally.account``): counts, warnings, distributions and
    alerts, and the status and reason they decide."""

    status: Status
    reason: Reason | None
    rows_in: int
    rows_scored: int
    rows_rejected: int
    rejected_by_code: dict[str, int]
    warnings_by_code: dict[str, int]
    warnings_by_column: dict[str, dict[str, int]]
    extra_columns: list[str]
    distributions: dict[str, Any]
    alerts: tuple[AlertEntry, ...]

    def as_fields(self) -> dict[str, Any]:
        """The manifest's fields these are (``Manifest(**counts.as_fields(), …)``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Draft:
    """What a run has learned so far (``scorer.runs``, ``scorer.shards``): its manifest is built
    from it once, when the run ends, whichever way it ends."""

    run_id: str
    bytes: int | None = None  # the input's size: as listed, then as read
    dialect: Mapping[str, Any] | None = None  # once the header is planned
    sha256: str | None = None  # once every byte is read
    compressed: bool | None = None
    counts: Counts | None = None  # once every row is accounted for
    outputs: dict[str, OutputEntry] = field(default_factory=dict)
    workers: int = 0
    shards: int = 0


@dataclass(frozen=True, slots=True)
class Manifest:
    run_id: str
    status: Status
    input: InputEntry
    model: ModelEntry
    reason: Reason | None = None  # when failed
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_column: dict[str, dict[str, int]] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    alerts: tuple[AlertEntry, ...] = ()
    outputs: dict[str, OutputEntry] = field(default_factory=dict)
    # the run's rows per feature and per prediction bin: see scorer.drift.Distributions.as_dict
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
    # the task that ran it and what that cost, see scorer/cost.py (no keys in older manifests)
    task: TaskEntry = field(default_factory=_no_task)
    cost: CostEntry = field(default_factory=_no_cost)
    # the EventBridge bus this run's events are owed to (None: events off, or a manifest from
    # before run events); the sweep re-sends a run's events while its events.json is missing
    event_bus: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    scorer_version: str = ""
    schema: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The manifest as its JSON object (the contract: the shape manifest.json has)."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("input", "model", "task", "cost"):
            doc[name] = doc[name].to_dict()
        doc["reason"] = self.reason.to_dict() if self.reason is not None else None
        doc["alerts"] = [alert.to_dict() for alert in self.alerts]
        doc["outputs"] = {name: entry.to_dict() for name, entry in self.outputs.items()}
        if not self.shards:  # written only by a sharded run: other manifests keep their old bytes
            del doc["shards"]
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        raw = json.loads(text)
        doc = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        doc["input"] = InputEntry.from_dict(doc.get("input") or {})
        doc["model"] = ModelEntry.from_dict(doc.get("model") or {})
        if doc.get("reason") is not None:
            doc["reason"] = Reason.from_dict(doc["reason"])
        doc["alerts"] = tuple(AlertEntry.from_dict(a) for a in doc.get("alerts") or ())
        doc["outputs"] = {
            k: OutputEntry.from_dict(v) for k, v in (doc.get("outputs") or {}).items()
        }
        if "task" in doc:
            doc["task"] = TaskEntry.from_dict(doc["task"] or {})
        if "cost" in doc:
            doc["cost"] = CostEntry.from_dict(doc["cost"] or {})
        return cls(**doc)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_scored + self.rows_rejected


def decide_status(rows_in: int, rows_scored: int, rows_rejected: int) -> tuple[Status, str | None]:
    """ok / partial, or failed with a code when nothing could be scored."""
    if rows_in == 0:
        return "failed", Code.HEADER_ONLY
    if rows_scored == 0:
        return "failed", Code.ALL_ROWS_REJECTED
    return ("partial", None) if rows_rejected else ("ok", None)


def destination_conflict(existing: Manifest, run_id: str, model: str, out: str) -> str | None:
    """Why ``out``, holding ``existing``, cannot take run ``run_id`` of ``model`` (name@version);
    None when it is this very run (same input, same model: already done).

    The run id is the digest of exactly that identity — model name, model version and the
    input's version id, ETag or content sha256 — and every manifest records it, refused ones
    included (which never got as far as hashing the content), so it is what is compared."""
    if existing.run_id == run_id:
        return None
    theirs = existing.model.ref
    inp = existing.input
    name = inp.key or inp.url or "an input"
    held = " ".join(
        f"{label} {str(value)[:16]}"
        for value, label in (
            (inp.version_id, "version"),
            (inp.sha256, "sha256"),
            (inp.etag, "etag"),
        )
        if value
    )
    if theirs != model:
        what = f"a run of model {theirs} (this run: {model})"
    else:
        what = f"a run of another input ('{name}'{', ' + held if held else ''})"
    return (
        f"'{out}' already holds {what}, status {existing.status}; it is never overwritten. "
        "Choose another --out (one folder per input and model version)"
    )
