"""One run: an input object scored by one model version into ``<out>/`` with a manifest last.

Commit protocol: predictions.csv and rejected.csv are streamed (multipart on S3) and become
visible only when complete; manifest.json is then written create-only. If this run's manifest
is already there the run does nothing; if another run of the same input and model commits first,
its manifest wins and this one's identical outputs are harmless. A destination that holds another
input's or another model version's run (a manifest, or outputs a killed run left) is refused
with DESTINATION_IN_USE: nothing there is overwritten and nothing is claimed as done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorer import (
    __version__,
    cost,
    dialect,
    interrupt,
    layout,
    output,
    shards,
    storage,
    taskinfo,
)
from scorer.batches import BatchResult, Totals, scored_on_threads, threads_help
from scorer.budget import Budget, Limits
from scorer.codes import Code
from scorer.drift import Distributions
from scorer.errors import (
    DestinationInUse,
    DropscoreError,
    FileRefused,
    ObjectMissing,
    SourceGone,
    StorageUnavailable,
    VersionExists,
)
from scorer.layout import ObjectVersion
from scorer.manifest import (
    AlertEntry,
    CostEntry,
    Draft,
    InputEntry,
    Manifest,
    ModelEntry,
    OutputEntry,
    Reason,
    TaskEntry,
    destination_conflict,
)
from scorer.model import LoadedModel
from scorer.reader import CsvStream
from scorer.tally import account, collect, refuse_empty
from scorer.workers import auto_workers, fork_safe, freeze_heap, scored_in_order, thaw_heap

log = logging.getLogger("dropscore.scorer")

BATCH_ROWS = 32768
Progress = Callable[[int, int], None]  # (bytes read so far, rows so far)


@dataclass(frozen=True, slots=True)
class RunResult:
    manifest: Manifest
    already_done: bool  # a terminal manifest was there before this run


def summary_line(result: RunResult) -> str:
    """One line for a console: status and counts, warnings by code, alerts and the reason.
    A run with alerts never reads as a plain "ok"."""
    m = result.manifest
    head = "already scored" if result.already_done else m.status
    line = f"{head}: {m.rows_in} rows in, {m.rows_scored} scored, {m.rows_rejected} rejected"
    if m.warnings_by_code:
        line += "; warnings: " + ", ".join(f"{k}×{v}" for k, v in m.warnings_by_code.items())
    if m.alerts:
        line += "; alerts: " + ", ".join(_alert_text(a) for a in m.alerts)
    if m.reason:
        line += f" [{m.reason.code}] {m.reason.message}"
    return line


def _alert_text(alert: AlertEntry) -> str:
    return (alert.message or alert.code).split(";", 1)[0]


def manifest_url(out: str) -> str:
    return storage.join(out, layout.MANIFEST)


def read_manifest(out: str) -> Manifest | None:
    try:
        return Manifest.from_json(storage.read_bytes(manifest_url(out)))
    except ObjectMissing:
        return None


def score(
    src: ObjectVersion,
    out: str,
    model: LoadedModel,
    run_id: str,
    *,
    info: storage.ObjectInfo | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    max_rejected_rate: float | None = None,
    limits: Limits | None = None,
    event_bus: str | None = None,
    scale: shards.Scale | None = None,
) -> RunResult:
    """Score ``src`` into ``out``; always ends with exactly one terminal manifest there.

    ``workers``: forked scoring processes (0: score in this process; None: decided from the
    file's size, the cores and the threads, see ``workers.auto_workers``). The outputs are the
    same bytes whatever it is. ``max_rejected_rate``: a run that rejects a larger share of its
    rows ends ``failed`` (TOO_MANY_REJECTED). ``limits``: the per-file budget (see
    ``scorer.budget``). ``event_bus``: recorded in the manifest as the bus its run events are
    owed to (see ``scorer.notify``). DestinationInUse: ``out`` holds another run.
    """
    existing = read_manifest(out)
    if existing is not None:
        check_owner(existing, run_id, model, out)
        log.info("already scored", extra={"run_id": run_id, "status": existing.status})
        _abort_stale_uploads(out)
        return RunResult(existing, already_done=True)

    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    # the manifest records the ETag and size the HEAD gave (none for a local file's run)
    src = dataclasses.replace(src, etag=info.etag if info else "", size=info.size if info else None)
    draft = Draft(run_id, bytes=src.size)
    refused: Reason | None = None
    # the model and the libraries are long-lived: keep them out of the cyclic collector's
    # full passes, which otherwise rescan them every few batches (a third of the CPU time)
    freeze_heap()  # counted: runs on other threads share it
    try:
        budget = Budget(limits or Limits())  # started here: the model's loading is not the file's
        _stream(
            src,
            out,
            model,
            draft,
            progress,
            batch_rows,
            workers,
            max_rejected_rate,
            budget,
            scale,
        )
    except (FileRefused, SourceGone) as exc:
        refused = Reason(exc.code, exc.message)
    except DropscoreError as exc:
        # a concurrent duplicate may have committed (and aborted our upload) meanwhile
        theirs = read_manifest(out)
        if theirs is None:
            if isinstance(exc, VersionExists):  # an output of other bytes is already there
                raise DestinationInUse(_leftover_message(out, exc.message)) from exc
            raise
        check_owner(theirs, run_id, model, out)
        log.info("another run committed first", extra={"run_id": run_id})
        return RunResult(theirs, already_done=True)
    finally:
        thaw_heap()
    manifest = _finish(src, model, draft, refused, started.isoformat(), t0, event_bus)
    _refuse_leftovers(out, manifest)
    result = commit(out, manifest, model)
    _abort_stale_uploads(out)
    return result


def check_owner(existing: Manifest, run_id: str, model: LoadedModel, out: str) -> None:
    conflict = destination_conflict(existing, run_id, model.card.ref, out)
    if conflict is not None:
        raise DestinationInUse(conflict)


def _leftover_message(out: str, detail: str) -> str:
    return (
        f"'{out}' holds outputs of another run without a manifest (a run of another input or "
        f"model that was stopped before it committed: {detail}); they are never overwritten. "
        "Choose another --out, or delete that folder if nobody needs it"
    )


def _refuse_leftovers(out: str, manifest: Manifest) -> None:
    """An output this run does not write but that is there is not this run's: a run of the same
    input and model writes the same files with the same bytes (create-only + identical_ok)."""
    listed = {e.url.rsplit("/", 1)[-1] for e in manifest.outputs.values()}
    unwritten = set(layout.OUTPUT_FILES) - listed
    folder = _folder(out)
    found = sorted(
        name
        for info in storage.list_objects(out.rstrip("/") + "/")  # one LIST, not a HEAD per file
        for parent, _, name in [info.url.rpartition("/")]
        if name in unwritten and _folder(parent) == folder
    )
    if found:
        raise DestinationInUse(_leftover_message(out, ", ".join(found)))


def model_entry(model: LoadedModel) -> ModelEntry:
    """The manifest's ``model`` section; its origin (how it was chosen) follows the card's."""
    card = model.card
    return ModelEntry(
        name=card.name,
        version=card.version,
        sha256=card.model_sha256,
        card_sha256=card.json_sha256,
        task=card.task,
        engine="plan" if model.plan is not None else "pipeline",
        extra=dict(model.origin),
    )


def _folder(url: str) -> str:
    return url.rstrip("/") if storage.is_s3(url) else str(Path(url))


def _abort_stale_uploads(out: str) -> None:
    """Once the run's manifest exists, an open upload under it is a killed run's leftover."""
    try:
        n = storage.abort_uploads(out.rstrip("/") + "/")
    except DropscoreError as exc:  # harmless to leave; the next run or the sweep retries
        log.warning("could not abort stale uploads", extra={"output": out, "error": exc.message})
        return
    if n:
        log.info("aborted stale multipart uploads", extra={"output": out, "count": n})


def _stream(
    src: ObjectVersion,
    out: str,
    model: LoadedModel,
    draft: Draft,
    progress: Progress | None,
    batch_rows: int,
    workers: int | None,
    max_rejected_rate: float | None,
    budget: Budget,
    scale: shards.Scale | None = None,
) -> None:
    card = model.card
    budget.check_size(draft.bytes)
    try:
        # no version id (unversioned bucket): read only the content whose ETag names this run
        etag = None if src.version_id else (src.etag or None)
        source = storage.open_read(src.url, src.version_id, if_match=etag)
    except ObjectMissing as exc:
        what = f"version {src.version_id} of " if src.version_id else ""
        raise SourceGone(
            f"{what}'{src.url}' no longer exists (deleted before it was scored); "
            "upload it again to score it"
        ) from exc
    totals = Totals()
    dist = Distributions(card)
    with source:
        stream = CsvStream(
            source,
            draft.bytes or 0,
            batch_size=batch_rows,
            budget=budget,
            delimiter=dialect.delimiter_rule(card),
        )
        plan = dialect.plan_file(stream, card)
        draft.dialect = plan.dialect
        pred_url = storage.join(out, layout.PREDICTIONS)
        rej_url = storage.join(out, layout.REJECTED)
        # S3's parts are sized from it; a plain file too big for one object is refused here
        expected = storage.expected_output(
            budget.limits.max_decompressed_bytes if stream.compressed else draft.bytes
        )
        if not stream.compressed:  # a gzip file's size once expanded is not known up front
            storage.check_fits(pred_url, expected)
        asked = workers
        if workers is None:
            workers = auto_workers(draft.bytes)
        threads = 0  # a model that must not be forked scores on threads instead (batches.py)
        if workers and not fork_safe(model):
            threads, workers = (workers if threads_help(model) else 0), 0
            (log.warning if asked and not threads else log.info)(
                f"scoring in one process{f' on {threads} threads' if threads else ''}: this "
                "model's library does not survive a fork",
                extra={"run_id": draft.run_id, "estimator": card.estimator},
            )
        results: Iterable[BatchResult]
        composed = None  # a sharded run's predictions writer whose parts the workers upload
        if shards.applies(scale, stream, draft.bytes):  # issue 14: Dask shards
            assert scale is not None
            assert draft.bytes is not None
            composed = shards.predictions_writer(pred_url, scale, expected)
            results = shards.sharded_results(
                stream, src.url, src.version_id, etag, draft.bytes, model, plan,
                scale, batch_rows, draft, composed,
            )  # fmt: skip
            workers = 0  # set by sharded_results: the Dask workers it used
        elif workers > 0:
            results = scored_in_order(stream.units(), model, plan, workers)
        else:
            results = scored_on_threads(stream.batches(threads=True), model, plan, threads)
        draft.workers = workers  # a sharded run records its Dask workers when it starts
        log.debug("scoring", extra={"run_id": draft.run_id, "workers": workers, "threads": threads})
        # create-only: a rerun or a duplicate never makes a second version of an output
        pred_writer = composed or storage.open_write(
            pred_url, create_only=True, identical_ok=True, expected=expected
        )
        with (
            pred_writer as pred_out,
            storage.open_write(
                rej_url, create_only=True, identical_ok=True, expected=expected
            ) as rej_out,
        ):
            pred_out.write(output.header_line(output.prediction_columns(plan.header, card)))
            rej_out.write(output.header_line(list(output.REJECTED_HEADER)))

            def each() -> None:  # before a batch is written: it was read, so the count is
                interrupt.check()
                budget.check()
                if progress:
                    progress(stream.bytes_in, stream.rows_read)

            collect(results, pred_out.write, rej_out.write, totals, dist, each)
            draft.sha256 = stream.drain()
            expected = draft.bytes
            if expected is not None and stream.bytes_in != expected:
                # a body cut short (even with a matching Content-Length) must not commit
                raise StorageUnavailable(
                    f"read {stream.bytes_in} bytes of '{src.url}' but it has {expected}; "
                    "the download was cut short, so the input stays pending for a retry"
                )
            draft.bytes = stream.bytes_in
            draft.compressed = stream.compressed
            file_warnings = dict(plan.dialect_warnings)
            if stream.trailing_zeros:  # padding after the last gzip member, ignored like gzip -d
                file_warnings[Code.GZIP_TRAILING_ZEROS] = stream.trailing_zeros
            counts = account(
                card, plan, stream.rows_read, totals, dist, max_rejected_rate, file_warnings
            )
            draft.counts = counts
            refuse_empty(counts)
            if counts.reason is not None and counts.reason.code == Code.ALL_ROWS_REJECTED:
                pred_out.discard()
            else:  # TOO_MANY_REJECTED keeps both: rejected.csv says why, predictions the rest
                draft.outputs["predictions"] = _output_entry(pred_url, pred_out)
            if counts.rows_rejected:
                draft.outputs["rejected"] = _output_entry(rej_url, rej_out)
            else:
                rej_out.discard()
    if composed is not None and "predictions" in draft.outputs:  # hashed once it exists
        entry = draft.outputs["predictions"]
        draft.outputs["predictions"] = dataclasses.replace(entry, sha256=composed.sha256)


def _output_entry(url: str, writer: storage.Writer) -> OutputEntry:
    if storage.is_s3(url):
        return OutputEntry(url, writer.sha256, writer.size, storage.split_s3(url)[1])
    return OutputEntry(url, writer.sha256, writer.size, keys=("url", "sha256", "bytes"))


def _finish(
    src: ObjectVersion,
    model: LoadedModel,
    draft: Draft,
    refused: Reason | None,
    started: str,
    t0: float,
    event_bus: str | None,
) -> Manifest:
    """The run's one manifest, from what it learned; ``refused``: why it ended ``failed``."""
    elapsed = time.monotonic() - t0
    counts = draft.counts
    counted: dict[str, Any] = counts.as_fields() if counts is not None else {"status": "failed"}
    if refused is not None:
        counted.update(status="failed", reason=refused)
    rows_in = counts.rows_in if counts is not None else 0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # the workers are this process's only children while it scores
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if draft.workers else None
    size = taskinfo.current()
    return Manifest(
        run_id=draft.run_id,
        input=input_entry(src, draft),
        model=model_entry(model),
        outputs=dict(draft.outputs),
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        duration_s=round(elapsed, 3),
        rows_per_s=round(rows_in / elapsed, 1) if elapsed > 0 else 0.0,
        peak_memory_mb=round(peak_kb / 1024, 1),
        workers=draft.workers,
        workers_peak_memory_mb=round(child_kb / 1024, 1) if child_kb is not None else None,
        shards=draft.shards,
        task=TaskEntry.from_dict(size.as_dict()),
        cost=CostEntry.from_dict(cost.estimate(size, elapsed)),
        event_bus=event_bus,
        libraries=model.card.libraries,
        scorer_version=__version__,
        **counted,
    )


def input_entry(src: ObjectVersion, draft: Draft) -> InputEntry:
    """The manifest's ``input``: ``src.etag`` is the one its run id was derived from (so the
    checker can verify it); the dialect and compression once the file was read that far."""
    read = tuple(k for k in ("dialect", "compressed") if getattr(draft, k) is not None)
    return InputEntry(
        src.url,
        src.bucket,
        src.key if src.bucket else "",  # a local file is named by its url only
        src.version_id,
        src.etag,
        draft.bytes,
        draft.sha256,
        draft.dialect,
        draft.compressed,
        keys=("url", "bucket", "key", "version_id", "etag", "bytes", "sha256", *read),
    )


def commit(out: str, manifest: Manifest, model: LoadedModel) -> RunResult:
    """Write ``manifest`` create-only: this run's result, or the one that committed first."""
    try:
        with interrupt.committing():  # a SIGTERM from here on cannot undo the outcome
            storage.write_bytes(manifest_url(out), manifest.to_json().encode(), create_only=True)
    except VersionExists:
        theirs = read_manifest(out)
        if theirs is None:  # pragma: no cover - a manifest cannot vanish
            raise
        check_owner(theirs, manifest.run_id, model, out)
        log.info("another run committed first", extra={"run_id": manifest.run_id})
        return RunResult(theirs, already_done=True)
    return RunResult(manifest, already_done=False)
