"""The application layer shared by ``event``, ``sweep`` and the UI: from an object reference to
a committed run, with the model resolved once per call."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from scorer import events, refs, runs, storage
from scorer.budget import Limits
from scorer.errors import ObjectMissing
from scorer.events import ObjectRef
from scorer.registry import LoadedModel, Registry

log = logging.getLogger("dropscore.scorer")

DEFAULT_MODEL = "claims"


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration entered once (CLI flags / DROPSCORE_* env) and passed down."""

    registry: str | None = None  # default: s3://<bucket>/models
    model: str = DEFAULT_MODEL  # NAME, NAME@VERSION or NAME:ALIAS
    incoming: str = events.INCOMING
    scored: str = events.SCORED
    engine: str = "auto"  # auto | plan | pipeline, see Registry.load
    limits: Limits = field(default_factory=Limits)  # the per-file budget, see scorer.budget

    def registry_for(self, bucket: str) -> Registry:
        return Registry(self.registry or f"s3://{bucket}/models")


def load_model(registry: Registry, model: str, engine: str = "auto") -> LoadedModel:
    return registry.load(registry.resolve(refs.ModelRef.parse(model)), engine=engine)


def input_identity(version_id: str | None, etag: str) -> str:
    """What makes an input version unique: its version id, else its ETag."""
    return f"v:{version_id}" if version_id else f"e:{etag.strip(chr(34))}"


def identity_digest(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def score_object(
    ref: ObjectRef,
    settings: Settings,
    model: LoadedModel | None = None,
    progress: runs.Progress | None = None,
) -> runs.RunResult | None:
    """Score one input object into scored/; ``None`` if the key is not an input."""
    if not events.is_input_key(ref.key, settings.incoming):
        log.info("not an input; ignored", extra={"object": str(ref)})
        return None
    if model is None:
        model = load_model(settings.registry_for(ref.bucket), settings.model, settings.engine)
    info: storage.ObjectInfo | None
    try:
        info = storage.head(ref.url, ref.version_id)
        version_id = ref.version_id or info.version_id
        etag = info.etag
    except ObjectMissing:
        info, version_id, etag = None, ref.version_id, ref.etag or f"gone:{ref.key}"
    run_id = refs.run_id(model.card.name, model.card.version, input_identity(version_id, etag))
    out = events.output_prefix(ref.bucket, ref.key, run_id, settings.incoming, settings.scored)
    src = runs.InputRef(url=ref.url, version_id=version_id, bucket=ref.bucket, key=ref.key)
    result = runs.score(
        src, out, model, run_id, info=info, progress=progress, limits=settings.limits
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
            "output": out,
        },
    )
    return result


def local_identity(path: str) -> str:
    """A local file has no version id: its content hash stands in for the ETag."""
    digest = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return input_identity(None, digest.hexdigest())
