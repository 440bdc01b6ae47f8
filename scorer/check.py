"""The ledger checker: does the bucket keep the promises in DESIGN.md "Rules the code keeps"?

``evaluate`` is the pure decision (plain facts in, violations out); ``gather`` is the thin S3
adapter that lists versions, reads manifests, hashes outputs and counts records with an
independent parse. Run it when nothing is scoring: an in-flight run looks like a violation
(outputs or an input without a manifest) until it commits.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scorer import interrupt, layout, notify, pinning, refs, service, storage
from scorer.codes import Code
from scorer.counting import Tee, count_records
from scorer.errors import (
    BadArgument,
    DropscoreError,
    FileRefused,
    Interrupted,
    ObjectMissing,
    StorageUnavailable,
)
from scorer.layout import MANIFEST, PREDICTIONS, ObjectVersion, RunId
from scorer.manifest import TERMINAL, Manifest

# refusals decided before any record was counted: rows_in is 0 by design, not an undercount
_COUNTED_FAILURES = (Code.HEADER_ONLY, Code.ALL_ROWS_REJECTED)


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    subject: str  # an S3 key, a run prefix or an input version
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.subject}: {self.message}"


@dataclass(frozen=True, slots=True)
class InputVersion:
    """A version under incoming/ as the listing gave it."""

    obj: ObjectVersion
    is_latest: bool
    requested: str | None = None  # its dropscore-model metadata (latest versions only)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One key under scored/: how many versions it has, and (outputs) its hash and records."""

    key: str
    versions: int = 1  # every version and delete marker of the key
    sha256: str | None = None
    records: int | None = None  # data records an independent parse counts (outputs only)


@dataclass(slots=True)
class RunFacts:
    """Everything under ``scored/<rel>/<run-id>/``."""

    rel: str
    run_id: str
    manifest: Manifest | None = None
    manifest_error: str | None = None  # unreadable manifest.json
    objects: dict[str, StoredObject] = field(default_factory=dict)  # file name → facts
    input_records: int | None = None  # independent count of the input version, if readable
    input_error: str | None = None
    open_uploads: int = 0

    @property
    def prefix(self) -> str:
        return f"{self.rel}/{self.run_id}"


@dataclass(slots=True)
class Ledger:
    """Plain facts about one bucket, gathered by ``gather``."""

    inputs: list[InputVersion]
    runs: list[RunFacts]
    stray: list[str]  # keys under scored/ that are not inside a run prefix
    model_versions: dict[str, set[int]]  # name → published versions in the registry
    production: tuple[str, int]  # the model every latest input must be scored with
    bucket: str = ""  # where it was gathered ("" in pure tests: manifests' buckets unchecked)
    scored: str = layout.SCORED


# --- pure decision ------------------------------------------------------------------------------
def evaluate(
    ledger: Ledger, *, all_versions: bool = False, incoming: str = layout.INCOMING
) -> list[Violation]:
    """Every violation of the ledger's invariants, in a stable order."""
    out: list[Violation] = []
    out += _check_inputs(ledger, all_versions=all_versions, incoming=incoming)
    for key in ledger.stray:
        out.append(Violation("STRAY_OBJECT", key, "object under scored/ outside any run folder"))
    for run in sorted(ledger.runs, key=lambda r: r.prefix):
        out += _check_run(run, ledger.model_versions)
    out += _check_placement(ledger, incoming)
    return out


def _check_placement(ledger: Ledger, incoming: str) -> list[Violation]:
    """Each terminal manifest sits in the one folder its input belongs to, and one input
    version has at most one terminal manifest per model version."""
    out: list[Violation] = []
    owners: dict[tuple[Any, ...], list[str]] = {}
    for run in sorted(ledger.runs, key=lambda r: r.prefix):
        m = run.manifest
        if m is None or m.status not in TERMINAL:
            continue
        key, bucket = m.input.key or "", m.input.bucket or ""
        # a job's runs: sources in other buckets or prefixes under _sources/, and each
        # occurrence of an 'all' job under _jobs/<job>/<occurrence>/ (see layout.result_folder)
        occ = layout.job_occurrence(run.rel)
        occurrence = f"{occ[0]}/{occ[1]}" if occ else None
        home = ledger.bucket or bucket
        folder = layout.result_folder(
            key, incoming, ledger.scored, bucket=bucket or home, home=home, occurrence=occurrence
        )
        elsewhere = bool(bucket) and bucket != home
        if elsewhere and folder != run.rel:
            out.append(
                Violation("MANIFEST_MISPLACED", run.prefix, f"its input is in bucket '{bucket}'")
            )
        elif folder != run.rel or (
            not elsewhere
            and key.startswith(incoming)
            and layout.classify(key, incoming) == layout.IGNORED
        ):
            out.append(
                Violation(
                    "MANIFEST_MISPLACED",
                    run.prefix,
                    f"its input '{key}' belongs in {ledger.scored}{folder}/, not here",
                )
            )
        version_id = m.input.version_id
        identity = _manifest_input(m).identity
        model = (m.model.name, m.model.version)
        # a version id names one version of one object; an ETag only content, so with the key
        owner = (*model, identity) if version_id else (*model, key, identity)
        owner = (occurrence, bucket, *owner)  # each occurrence of an 'all' job scores anew
        owners.setdefault(owner, []).append(run.prefix)
    for owner, prefixes in owners.items():
        for prefix in prefixes if len(prefixes) > 1 else []:
            others = ", ".join(p for p in prefixes if p != prefix)
            out.append(
                Violation(
                    "DUPLICATE_MANIFEST",
                    prefix,
                    f"the same input version ({owner[-1]}) scored by {owner[0]}@{owner[1]} "
                    f"also has a terminal manifest in {others}",
                )
            )
    return out


def _check_inputs(ledger: Ledger, *, all_versions: bool, incoming: str) -> list[Violation]:
    committed: dict[str, set[str]] = {}
    for run in ledger.runs:
        if run.manifest is not None and run.manifest.status in TERMINAL:
            committed.setdefault(run.rel, set()).add(run.run_id)
    name, version = ledger.production
    out = []
    for inp in ledger.inputs:
        obj = inp.obj
        if layout.classify(obj.key, incoming) == layout.IGNORED:
            continue  # a folder marker: not a file
        there = committed.get(layout.result_folder(obj.key, incoming, ledger.scored), set())
        subject = f"{obj.key}?versionId={obj.version_id}" if obj.version_id else obj.key
        if inp.is_latest:
            # the model the input asked for in its metadata, else production (scorer.pinning)
            choice = pinning.choose(
                {pinning.METADATA_KEY: inp.requested} if inp.requested is not None else None,
                (name, version),
                lambda n: ledger.model_versions.get(n, set()),
            )
            if str(RunId.of(choice.name, choice.version, obj)) not in there:
                whose = (
                    f"the model its metadata asks for, {choice.ref}"
                    if choice.source == pinning.OBJECT_METADATA and choice.refusal is None
                    else f"the production model {name}@{version}"
                )
                out.append(
                    Violation("INPUT_PENDING", subject, f"no terminal manifest from {whose}")
                )
        elif all_versions:
            digest = layout.identity_digest(obj.identity)
            if not any(r.digest == digest for r in map(RunId.parse, there) if r is not None):
                out.append(
                    Violation("INPUT_PENDING", subject, "older version never reached a manifest")
                )
    return out


def _check_run(run: RunFacts, model_versions: Mapping[str, set[int]]) -> list[Violation]:
    where = run.prefix
    out = [
        Violation("OVERWRITTEN", f"{where}/{name}", f"{obj.versions} versions of an immutable key")
        for name, obj in sorted(run.objects.items())
        if obj.versions > 1
    ]
    if run.manifest_error is not None:
        return [*out, Violation("MANIFEST_UNREADABLE", where, run.manifest_error)]
    m = run.manifest
    if m is None:
        names = ", ".join(sorted(run.objects)) or "an open upload"
        return [*out, Violation("OUTPUT_WITHOUT_MANIFEST", where, f"{names} but no {MANIFEST}")]

    def bad(code: str, message: str) -> None:
        out.append(Violation(code, where, message))

    if m.status not in TERMINAL:
        bad("NOT_TERMINAL", f"status '{m.status}' is not one of {', '.join(TERMINAL)}")
    if m.run_id != run.run_id:
        bad("RUN_ID_MISMATCH", f"manifest says run {m.run_id}")
    _check_identity(run, m, bad)
    if not m.reconciles:
        bad(
            "COUNTS",
            f"rows_in {m.rows_in} != rows_scored {m.rows_scored} + rows_rejected {m.rows_rejected}",
        )
    if m.status == "failed" and m.reason is None:
        bad("NO_REASON", "a failed manifest without a reason code")
    if _counted(m):
        if run.input_error is not None:
            bad("INPUT_UNPARSEABLE", f"independent parse of the input failed: {run.input_error}")
        elif run.input_records is not None and run.input_records != m.rows_in:
            bad(
                "ROWS_IN",
                f"rows_in {m.rows_in} but an independent parse counts {run.input_records} records",
            )
    name, version = m.model.name, m.model.version
    if not isinstance(version, int) or version not in model_versions.get(str(name), set()):
        bad("MODEL_MISSING", f"model {name}@{version} is not in the registry")
    listed = {e.file: e for e in m.outputs.values()}
    for fname, entry in sorted(listed.items()):
        obj = run.objects.get(fname)
        if obj is None:
            bad("OUTPUT_MISSING", f"manifest lists {fname} but it does not exist")
            continue
        if obj.sha256 != entry.sha256:
            bad("SHA256", f"{fname} sha256 {str(obj.sha256)[:12]}… != manifest's")
        expect = m.rows_scored if fname == PREDICTIONS else m.rows_rejected
        if obj.records is not None and obj.records != expect:
            bad("OUTPUT_ROWS", f"{fname} holds {obj.records} records, manifest claims {expect}")
    if m.rows_scored and PREDICTIONS not in listed:
        bad("OUTPUT_MISSING", f"{m.rows_scored} rows scored but no {PREDICTIONS} listed")
    # events.json is the run-event marker (scorer.notify), written after the commit
    for fname in sorted(set(run.objects) - set(listed) - {MANIFEST, notify.MARKER}):
        bad("UNLISTED_OUTPUT", f"{fname} exists but the manifest does not list it")
    if run.open_uploads:
        bad("OPEN_UPLOAD", f"{run.open_uploads} multipart upload(s) left open after the commit")
    return out


def _counted(m: Manifest) -> bool:
    """Whether the manifest claims a record count of its input (not a file refused unread)."""
    return m.status != "failed" or (m.reason is not None and m.reason.code in _COUNTED_FAILURES)


def _manifest_input(m: Manifest) -> ObjectVersion:
    """The input version a manifest names (its etag is the one its run id came from)."""
    inp = m.input
    return ObjectVersion.of(inp.bucket or "", inp.key or "", inp.version_id, inp.etag)


def _check_identity(run: RunFacts, m: Manifest, bad: Any) -> None:
    model = m.model
    try:
        expected = str(RunId.of(str(model.name), int(model.version or 0), _manifest_input(m)))
    except (DropscoreError, TypeError, ValueError) as exc:
        bad("RUN_ID_MISMATCH", f"manifest names no valid model/input ({exc})")
        return
    if expected != run.run_id:
        bad("RUN_ID_MISMATCH", f"model+input in the manifest give run {expected}")


# --- the S3 adapter -----------------------------------------------------------------------------
def _hash_and_count(url: str, count: bool) -> tuple[str, int | None]:
    digest = hashlib.sha256()
    with storage.open_read(url) as fh:
        tee = Tee(fh, digest)
        records = count_records(tee) if count else None
        while tee.read(1 << 20):
            pass
    return digest.hexdigest(), records


def gather(
    bucket: str,
    settings: service.Settings,
    *,
    incoming: str = layout.INCOMING,
    scored: str = layout.SCORED,
    listed: list[InputVersion] | None = None,
) -> Ledger:
    """``listed``: filled with the inputs as soon as they are listed (for an interruption's
    report)."""
    registry = settings.registry_for(bucket)
    prod = registry.resolve(refs.ModelRef.parse(settings.model))
    inputs = [
        InputVersion(ObjectVersion.listed(bucket, v), is_latest=bool(v.get("IsLatest")))
        for _key, v, marker in storage.list_versions(bucket, incoming)
        if not marker
    ]
    inputs = [_with_request(bucket, inp) for inp in inputs]
    if listed is not None:
        listed.extend(inputs)
    counts: dict[str, int] = {}
    latest_live: set[str] = set()
    for key, v, marker in storage.list_versions(bucket, scored):
        counts[key] = counts.get(key, 0) + 1
        if v.get("IsLatest") and not marker:
            latest_live.add(key)
    runs: dict[str, RunFacts] = {}
    stray: list[str] = []
    for key in sorted(counts):
        found = layout.run_file(key, scored)
        if found is None:
            stray.append(key)
            continue
        if key not in latest_live and counts[key] == 1:
            continue  # cannot happen: one version that is not live
        run = runs.setdefault(found.folder, RunFacts(rel=found.rel, run_id=found.run_id))
        run.objects[found.name] = StoredObject(key=key, versions=counts[key])
    for run in runs.values():
        interrupt.check()
        _read_run(bucket, scored, run)
    client = storage.s3_client()
    with storage.map_storage_errors(f"s3://{bucket}/{scored}"):
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=scored
        )
        for page in pages:
            for up in page.get("Uploads", []):
                rel, _, _fname = up["Key"][len(scored) :].rpartition("/")
                rel, _, run_id = rel.rpartition("/")  # any upload counts, a run's or not
                run = runs.setdefault(f"{rel}/{run_id}", RunFacts(rel=rel, run_id=run_id))
                run.open_uploads += 1
    names = {prod.name} | {
        str(r.manifest.model.name) for r in runs.values() if r.manifest is not None
    }
    for inp in inputs:
        with contextlib.suppress(FileRefused):
            if inp.requested is not None:
                names.add(pinning.parse_request(inp.requested).name)
    model_versions: dict[str, set[int]] = {}
    for name in names:
        try:
            model_versions[name] = set(registry.versions(name))
        except (BadArgument, ObjectMissing):  # a name no registry can hold
            model_versions[name] = set()
    interrupt.check()
    return Ledger(
        inputs=inputs,
        runs=list(runs.values()),
        stray=stray,
        model_versions=model_versions,
        production=(prod.name, prod.version),
        bucket=bucket,
        scored=scored,
    )


def _with_request(bucket: str, inp: InputVersion) -> InputVersion:
    """The latest version with the model its metadata asks for (one HEAD each)."""
    if not inp.is_latest:
        return inp
    try:
        info = storage.head(inp.obj.url, inp.obj.version_id)
    except ObjectMissing:
        return inp
    return InputVersion(inp.obj, inp.is_latest, pinning.requested(info.metadata))


def _read_run(bucket: str, scored: str, run: RunFacts) -> None:
    base = f"s3://{bucket}/{scored}{run.prefix}"
    if MANIFEST in run.objects:
        try:
            run.manifest = Manifest.from_json(storage.read_bytes(f"{base}/{MANIFEST}"))
        except ObjectMissing:  # deleted: only older versions or a delete marker are left
            run.manifest_error = f"{MANIFEST} was deleted"
        except (ValueError, TypeError) as exc:
            run.manifest_error = f"not a manifest ({exc})"
    for fname, obj in list(run.objects.items()):
        if fname == MANIFEST:
            continue
        try:
            sha, records = _hash_and_count(f"{base}/{fname}", count=fname in layout.OUTPUT_FILES)
        except ObjectMissing:
            sha, records = None, None
        except (UnicodeDecodeError, csv.Error, FileRefused):
            sha, records = _hash_and_count(f"{base}/{fname}", count=False)
        run.objects[fname] = StoredObject(obj.key, obj.versions, sha, records)
    m = run.manifest
    if m is None or not _counted(m):
        return  # a refused input is not held to a count: not read again (a bomb, an .xlsx)
    key, version_id = m.input.key, m.input.version_id
    if not key:
        return
    try:
        source = m.input.bucket or bucket  # a job's source may be another bucket
        with storage.open_read(f"s3://{source}/{key}", version_id) as fh:
            dialect = m.input.dialect or {}
            run.input_records = count_records(fh, str(dialect.get("delimiter") or ","))
    except FileRefused as exc:  # corrupt gzip or a bomb: no count, said so
        run.input_error = f"{exc.code}: {exc.message}"
    except ObjectMissing:
        run.input_records = None  # the input version is gone: nothing to count against
    except (UnicodeDecodeError, csv.Error) as exc:
        run.input_error = f"{type(exc).__name__}: {exc}"


def check(
    bucket: str, settings: service.Settings, *, all_versions: bool = False
) -> list[Violation]:
    """Gather the bucket's ledger and evaluate it (the ``check`` command).

    Interrupted anywhere (a signal, the bucket unreachable), it raises Interrupted naming how
    many inputs went unchecked: a verdict over part of the bucket is never printed as one.
    """
    listed: list[InputVersion] = []
    try:
        ledger = gather(
            bucket, settings, incoming=settings.incoming, scored=settings.scored, listed=listed
        )
    except (Interrupted, StorageUnavailable, KeyboardInterrupt) as exc:
        why = exc.message if isinstance(exc, DropscoreError) else "interrupted by the user"
        n = str(len(listed)) if listed else "all"  # none of them got a verdict
        raise Interrupted(
            f"interrupted: {n} inputs not checked ({why}); no verdict was given, run check again"
        ) from exc
    return evaluate(ledger, all_versions=all_versions, incoming=settings.incoming)
