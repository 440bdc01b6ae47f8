"""Which model scores an input: the version its uploader asked for, else the configured one
(pure).

An object under incoming/ may carry S3 user metadata ``dropscore-model: NAME@VERSION``
(``x-amz-meta-dropscore-model``): the exact version it was previewed with (the UI's "Send to
the bucket" sets it). The event path, the sweep and the checker all decide with ``choose``, so
they agree on the run an input must end in. Only an exact published version is honoured — an
alias would move between the preview and the run; any model name the scorer's registry holds is
allowed (the registry is the allow-list: only training publishes there). A request that cannot
be honoured ends in a terminal ``failed`` manifest owned by the configured model, with
MODEL_REQUEST_INVALID or MODEL_REQUEST_NOT_FOUND: never a silent swap, never a retry loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from scorer.errors import BadArgument, FileRefused, ModelRequestInvalid, ModelRequestNotFound
from scorer.refs import ModelRef

METADATA_KEY = "dropscore-model"  # S3 user metadata, sent as x-amz-meta-dropscore-model
CONFIGURED = "configured"  # the scorer's --model (its production alias by default)
OBJECT_METADATA = "object-metadata"


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model an input is scored with (``name``/``version``: the run id's model)."""

    name: str
    version: int
    source: str  # CONFIGURED | OBJECT_METADATA
    requested: str | None = None  # the metadata value exactly as stored
    refusal: FileRefused | None = None  # the request cannot be honoured: refuse the input

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def manifest_fields(self) -> dict[str, Any]:
        """What goes into the manifest's ``model`` section beside name/version/sha256."""
        out: dict[str, Any] = {"source": self.source}
        if self.requested is not None:
            out["requested"] = self.requested
        return out


def metadata_for(name: str, version: int) -> dict[str, str]:
    """The S3 user metadata that asks for exactly ``name@version``."""
    return {METADATA_KEY: f"{name}@{version}"}


def requested(metadata: Mapping[str, str] | None) -> str | None:
    """The metadata's model request, if any (S3 lower-cases metadata names)."""
    if not metadata:
        return None
    return next((v for k, v in metadata.items() if k.lower() == METADATA_KEY), None)


def parse_request(value: str) -> ModelRef:
    """``NAME@VERSION`` or ModelRequestInvalid saying what is accepted."""
    shown = value[:80]
    try:
        ref = ModelRef.parse(value)
    except BadArgument as exc:
        raise ModelRequestInvalid(
            f"the file asks for model '{shown}' ({METADATA_KEY} metadata): {exc.message}; "
            "upload it again with NAME@VERSION (e.g. claims@2) or without that metadata"
        ) from exc
    if ref.version is None:
        raise ModelRequestInvalid(
            f"the file asks for model '{shown}' ({METADATA_KEY} metadata), but only an exact "
            "NAME@VERSION is honoured (an alias can move before the file is scored); upload "
            "it again with e.g. claims@2"
        )
    return ref


def choose(
    metadata: Mapping[str, str] | None,
    configured: tuple[str, int],
    published: Callable[[str], Collection[int]],
) -> ModelChoice:
    """The model for an input with this metadata. ``published(name)``: the versions the
    registry holds (empty for a name it does not know)."""
    value = requested(metadata)
    name, version = configured
    if value is None:
        return ModelChoice(name, version, CONFIGURED)
    try:
        ref = parse_request(value)
    except ModelRequestInvalid as exc:
        return ModelChoice(name, version, OBJECT_METADATA, value, exc)
    assert ref.version is not None
    versions = published(ref.name)
    if ref.version not in versions:
        have = ", ".join(str(v) for v in sorted(versions)[-10:])
        refusal = ModelRequestNotFound(
            f"the file asks for model {ref} ({METADATA_KEY} metadata), which the registry "
            + (f"does not hold (versions of {ref.name}: {have})" if have else "does not hold")
            + "; publish it or upload the file again naming a published version"
        )
        return ModelChoice(name, version, OBJECT_METADATA, value, refusal)
    return ModelChoice(ref.name, ref.version, OBJECT_METADATA, value)
