"""The application layer shared by ``event``, ``sweep`` and the UI: from an object reference to
a committed run, with the model resolved once per call."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from scorer import __version__, cost, layout, notify, pinning, refs, runs, shards, storage, taskinfo
from scorer.budget import Limits
from scorer.codes import Code
from scorer.errors import DropscoreError, FileRefused, ObjectMissing, SourceGone
from scorer.layout import ObjectVersion, RunId
from scorer.manifest import CostEntry, Draft, Manifest, Reason, TaskEntry
from scorer.model import LoadedModel
from scorer.registry import Registry
from scorer.storage.base import sha256_of

log = logging.getLogger("dropscore.scorer")

DEFAULT_MODEL = "claims"


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration entered once (CLI flags / DROPSCORE_* env) and passed down."""

    registry: str | None = None  # default: s3://<bucket>/models (layout.MODELS)
    model: str = DEFAULT_MODEL  # NAME, NAME@VERSION or NAME:ALIAS
    incoming: str = layout.INCOMING
    scored: str = layout.SCORED
    engine: str = "auto"  # auto | plan | pipeline, see Registry.load
    max_rejected_rate: float | None = None  # a run rejecting more ends failed; None: off
    limits: Limits = field(default_factory=Limits)  # the per-file budget, see scorer.budget
    # run events (scorer.notify): the EventBridge bus ("default": the account's default bus);
    # None: no events (the CLI turns them on, DROPSCORE_EVENT_BUS=off turns them off)
    event_bus: str | None = None
    ui_url: str | None = None  # the UI's base URL, for the run-page link in events
    scale: shards.Scale | None = None  # issue 14: --cluster / --shard-over-mb

    def registry_for(self, bucket: str) -> Registry:
        return Registry(self.registry or f"s3://{bucket}/{layout.MODELS}")


def load_model(registry: Registry, model: str, engine: str = "auto") -> LoadedModel:
    return registry.load(registry.resolve(refs.ModelRef.parse(model)), engine=engine)


def run_path(obj: ObjectVersion, model_name: str, model_version: int, settings: Settings) -> str:
    """``<result folder>/<run id>`` under scored/ of one input version scored by one model:
    the one place the UI learns where a run will appear."""
    run_id = RunId.of(model_name, model_version, obj)
    return layout.run_key(obj.key, run_id, settings.incoming, settings.scored)


def score_object(
    ref: ObjectVersion,
    settings: Settings,
    model: LoadedModel | None = None,
    progress: runs.Progress | None = None,
) -> runs.RunResult | None:
    """Score one object under incoming/ into scored/; ``None`` if it is not a file there.

    Every object under incoming/ ends in one terminal manifest: a CSV is scored, any other
    name is refused (UNSUPPORTED_EXTENSION), and an object that no longer exists is
    SOURCE_GONE — but only after the key exactly as the event gave it was tried too.
    """
    candidates = [ref.key, *([ref.key_as_given] if ref.key_as_given else [])]
    if all(layout.classify(k, settings.incoming) == layout.IGNORED for k in candidates):
        log.info("not under incoming/ or a folder marker; ignored", extra={"object": str(ref)})
        return None
    registry = settings.registry_for(ref.bucket)
    if model is None:
        model = load_model(registry, settings.model, settings.engine)
    ref, info = _locate(ref, candidates)
    kind = layout.classify(ref.key, settings.incoming)
    if kind == layout.IGNORED:
        return None
    if info is None:
        src = dataclasses.replace(ref, etag=ref.etag or f"gone:{ref.key}")
    else:
        src = ObjectVersion.of(
            ref.bucket, ref.key, ref.version_id or info.version_id, info.etag, info.size
        )
    # the version the uploader asked for (its object metadata), else the configured model
    choice = pinning.choose(
        info.metadata if info is not None else None,
        (model.card.name, model.card.version),
        registry.versions,
    )
    if choice.refusal is None and (choice.name, choice.version) != (
        model.card.name,
        model.card.version,
    ):
        model = registry.load(registry.card(choice.name, choice.version), engine=settings.engine)
    model = dataclasses.replace(model, origin=tuple(choice.manifest_fields().items()))
    run_id = str(RunId.of(model.card.name, model.card.version, src))
    out = layout.output_prefix(ref.bucket, ref.key, run_id, settings.incoming, settings.scored)
    if choice.refusal is not None:
        result = refuse(src, out, model, run_id, choice.refusal, settings.event_bus)
    elif info is None:
        what = f"version {src.version_id} of " if src.version_id else ""
        gone = SourceGone(
            f"{what}'{ref.url}' no longer exists (deleted before it was scored); "
            "upload it again to score it"
        )
        result = refuse(src, out, model, run_id, gone, settings.event_bus)
    elif kind == layout.UNSUPPORTED:
        name = ref.key.rsplit("/", 1)[-1]
        unsupported = FileRefused(
            f"'{name}' is not a .csv or .csv.gz file, so it was not read; only .csv and "
            f".csv.gz files (any case) under {settings.incoming} are scored: upload the data "
            "as CSV (rename it if it already is one) and keep other files out of "
            f"{settings.incoming}",
            code=Code.UNSUPPORTED_EXTENSION,
        )
        result = refuse(src, out, model, run_id, unsupported, settings.event_bus)
    else:
        result = runs.score(
            src,
            out,
            model,
            run_id,
            info=info,
            progress=progress,
            max_rejected_rate=settings.max_rejected_rate,
            limits=settings.limits,
            event_bus=settings.event_bus,
            scale=settings.scale,  # issue 14
        )
    m = result.manifest
    log.info(
        "run committed" if not result.already_done else "already scored",
        extra={
            "run_id": run_id,
            "status": m.status,
            "rows_in": m.rows_in,
            "rows_scored": m.rows_scored,
            "rows_rejected": m.rows_rejected,
            "warnings": m.warnings_by_code,
            "alerts": [a.message for a in m.alerts],
            "output": out,
        },
    )
    if not result.already_done:  # only the run that committed emits; the sweep re-sends misses
        notify.announce(m, out, settings.event_bus, settings.ui_url, settings.scored)
    return result


def _locate(ref: ObjectVersion, keys: list[str]) -> tuple[ObjectVersion, storage.ObjectInfo | None]:
    """The object the event names: its decoded key, else the key exactly as given (a bridge
    that sent it unencoded), each only if it is the event's version (or ETag). ``None`` when
    neither exists: the object is gone."""
    for key in dict.fromkeys(keys):
        candidate = dataclasses.replace(ref, key=key, key_as_given=None)
        try:
            info = storage.head(candidate.url, candidate.version_id)
        except ObjectMissing:
            continue
        if key != ref.key and not ref.version_id and ref.etag and info.etag != ref.etag:
            continue  # another object that merely has the undecoded name
        if key != ref.key:
            log.info("key found as the event gave it", extra={"object": str(candidate)})
        return candidate, info
    return dataclasses.replace(ref, key_as_given=None), None


def refuse(
    src: ObjectVersion,
    out: str,
    model: LoadedModel,
    run_id: str,
    error: DropscoreError,
    event_bus: str | None = None,
) -> runs.RunResult:
    """A terminal ``failed`` manifest for an input refused before it is read (gone, or not a
    CSV by its name), committed create-only like every manifest."""
    existing = runs.read_manifest(out)
    if existing is not None:
        runs.check_owner(existing, run_id, model, out)
        return runs.RunResult(existing, already_done=True)
    now = dt.datetime.now(dt.UTC).isoformat()
    task = taskinfo.current()
    manifest = Manifest(
        run_id=run_id,
        status="failed",
        input=runs.input_entry(src, Draft(run_id, bytes=src.size)),
        model=runs.model_entry(model),
        reason=Reason(error.code, error.message),
        started_at=now,
        finished_at=now,
        task=TaskEntry.from_dict(task.as_dict()),
        cost=CostEntry.from_dict(cost.estimate(task, 0.0)),
        event_bus=event_bus,
        libraries=model.card.libraries,
        scorer_version=__version__,
    )
    return runs.commit(out, manifest, model)


def local_version(path: str) -> ObjectVersion:
    """A local file has no version id: its content hash stands in for the ETag. A missing file
    is FileNotFoundError, not the store's ObjectMissing: callers check the path first."""
    with open(Path(path), "rb") as fh:
        return ObjectVersion("", path, None, sha256_of(fh))
