"""One run: an input object scored by one model version into ``<out>/`` with a manifest last.

Commit protocol: predictions.csv and rejected.csv are streamed (multipart on S3) and become
visible only when complete; manifest.json is then written create-only. If a manifest is already
there the run does nothing; if another run commits first, its manifest wins and this one's
identical outputs are harmless.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scorer import __version__, interrupt, output, storage
from scorer.batches import BatchResult, Distributions, Totals, score_batch
from scorer.errors import (
    DropscoreError,
    FileRefused,
    ObjectMissing,
    SourceGone,
    StorageUnavailable,
    VersionExists,
)
from scorer.manifest import Manifest, decide_status
from scorer.reader import CsvStream
from scorer.registry import LoadedModel
from scorer.schema import plan_header
from scorer.workers import auto_workers, fork_safe, scored_in_order

log = logging.getLogger("dropscore.scorer")

BATCH_ROWS = 32768
Progress = Callable[[int, int], None]  # (bytes read so far, rows so far)


@dataclass(frozen=True, slots=True)
class RunResult:
    manifest: Manifest
    already_done: bool  # a terminal manifest was there before this run


@dataclass(frozen=True, slots=True)
class InputRef:
    url: str
    version_id: str | None = None
    bucket: str = ""
    key: str = ""


def manifest_url(out: str) -> str:
    return storage.join(out, "manifest.json")


def read_manifest(out: str) -> Manifest | None:
    try:
        return Manifest.from_json(storage.read_bytes(manifest_url(out)))
    except ObjectMissing:
        return None


def score(
    src: InputRef,
    out: str,
    model: LoadedModel,
    run_id: str,
    *,
    info: storage.ObjectInfo | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
) -> RunResult:
    """Score ``src`` into ``out``; always ends with exactly one terminal manifest there.

    ``workers``: forked scoring processes (0: score in this process; None: decided from the
    file's size, the cores and the threads, see ``workers.auto_workers``). The outputs are the
    same bytes whatever it is.
    """
    existing = read_manifest(out)
    if existing is not None:
        log.info("already scored", extra={"run_id": run_id, "status": existing.status})
        _abort_stale_uploads(out)
        return RunResult(existing, already_done=True)

    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    card = model.card
    manifest = Manifest(
        run_id=run_id,
        status="failed",
        input={
            "url": src.url,
            "bucket": src.bucket,
            "key": src.key,
            "version_id": src.version_id,
            "etag": info.etag if info else "",
            "bytes": info.size if info else None,
            "sha256": None,
        },
        model={
            "name": card.name,
            "version": card.version,
            "sha256": card.model_sha256,
            "card_sha256": card.json_sha256,
            "task": card.task,
            "engine": "plan" if model.plan is not None else "pipeline",
        },
        started_at=started.isoformat(),
        libraries=card.libraries,
        scorer_version=__version__,
    )
    # the model and the libraries are long-lived: keep them out of the cyclic collector's
    # full passes, which otherwise rescan them every few batches (a third of the CPU time)
    gc.freeze()
    try:
        _stream(src, out, model, manifest, progress, batch_rows, workers)
    except (FileRefused, SourceGone) as exc:
        manifest.status = "failed"
        manifest.reason = {"code": exc.code, "message": exc.message}
    except DropscoreError:
        # a concurrent duplicate may have committed (and aborted our upload) meanwhile
        theirs = read_manifest(out)
        if theirs is None:
            raise
        log.info("another run committed first", extra={"run_id": run_id})
        return RunResult(theirs, already_done=True)
    finally:
        gc.unfreeze()
    _finish(manifest, t0)
    result = _commit(out, manifest)
    _abort_stale_uploads(out)
    return result


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
    src: InputRef,
    out: str,
    model: LoadedModel,
    manifest: Manifest,
    progress: Progress | None,
    batch_rows: int,
    workers: int | None,
) -> None:
    card = model.card
    try:
        # no version id (unversioned bucket): read only the content whose ETag names this run
        etag = None if src.version_id else (manifest.input.get("etag") or None)
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
        stream = CsvStream(source, manifest.input.get("bytes") or 0, batch_size=batch_rows)
        plan = plan_header(stream.header, card)
        classification = card.task == "classification"
        pred_url = storage.join(out, "predictions.csv")
        rej_url = storage.join(out, "rejected.csv")
        asked = workers
        if workers is None:
            workers = auto_workers(manifest.input.get("bytes"))
        if workers and not fork_safe(model):
            (log.warning if asked else log.info)(
                "scoring in one process: this model's library does not survive a fork",
                extra={"run_id": manifest.run_id, "estimator": card.estimator},
            )
            workers = 0
        results: Iterable[BatchResult]
        if workers > 0:
            results = scored_in_order(stream.units(), model, plan, workers)
        else:
            results = (score_batch(b, model, plan) for b in stream.batches(threads=True))
        manifest.workers = workers
        log.debug("scoring", extra={"run_id": manifest.run_id, "workers": workers})
        # create-only: a rerun or a duplicate never makes a second version of an output
        with (
            storage.open_write(pred_url, create_only=True, identical_ok=True) as pred_out,
            storage.open_write(rej_url, create_only=True, identical_ok=True) as rej_out,
        ):
            pred_out.write(
                output.header_line(output.prediction_columns(plan.header, classification))
            )
            rej_out.write(output.header_line(list(output.REJECTED_HEADER)))
            for result in results:
                interrupt.check()
                pred_out.write(result.predictions)
                if result.rejected:
                    rej_out.write(result.rejected)
                totals.add(result)
                dist.merge(result.distributions)
                if progress:
                    progress(stream.bytes_in, stream.rows_read)
            rows_scored = totals.rows_scored
            rejected_rows = totals.rows_rejected
            rejected = totals.rejected_by_code
            warnings = totals.warnings
            col_warn = totals.column_warnings
            manifest.input["sha256"] = stream.drain()
            expected = manifest.input.get("bytes")
            if expected is not None and stream.bytes_in != expected:
                # a body cut short (even with a matching Content-Length) must not commit
                raise StorageUnavailable(
                    f"read {stream.bytes_in} bytes of '{src.url}' but it has {expected}; "
                    "the download was cut short, so the input stays pending for a retry"
                )
            manifest.input["bytes"] = stream.bytes_in
            manifest.input["compressed"] = stream.compressed
            manifest.rows_in = stream.rows_read
            manifest.rows_scored = rows_scored
            manifest.rows_rejected = rejected_rows
            manifest.rejected_by_code = dict(sorted(rejected.items()))
            manifest.warnings_by_code = dict(sorted(warnings.items()))
            if plan.extra:
                manifest.warnings_by_code["EXTRA_COLUMNS"] = len(plan.extra)
            manifest.warnings_by_column = {
                c: dict(sorted(v.items())) for c, v in sorted(col_warn.items())
            }
            manifest.extra_columns = list(plan.extra)
            manifest.distributions = dist.as_dict()
            status, code = decide_status(stream.rows_read, rows_scored, rejected_rows)
            manifest.status = status
            if code == "HEADER_ONLY":
                raise FileRefused(
                    "the file has a header but no data rows; add rows to score", code=code
                )
            if code == "ALL_ROWS_REJECTED":
                top = ", ".join(f"{k}×{v}" for k, v in rejected.most_common(3))
                manifest.reason = {
                    "code": code,
                    "message": f"every row was rejected ({top}); see rejected.csv for each "
                    "row's reason and fix the file",
                }
                pred_out.discard()
            else:
                manifest.outputs["predictions"] = _output_entry(pred_url, pred_out)
            if rejected_rows:
                manifest.outputs["rejected"] = _output_entry(rej_url, rej_out)
            else:
                rej_out.discard()


def _output_entry(url: str, writer: storage.Writer) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": url, "sha256": writer.sha256, "bytes": writer.size}
    if storage.is_s3(url):
        entry["key"] = storage.split_s3(url)[1]
    return entry


def _finish(manifest: Manifest, t0: float) -> None:
    elapsed = time.monotonic() - t0
    manifest.finished_at = dt.datetime.now(dt.UTC).isoformat()
    manifest.duration_s = round(elapsed, 3)
    manifest.rows_per_s = round(manifest.rows_in / elapsed, 1) if elapsed > 0 else 0.0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    manifest.peak_memory_mb = round(peak_kb / 1024, 1)
    if manifest.workers:  # the workers are this process's only children while it scores
        child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        manifest.workers_peak_memory_mb = round(child_kb / 1024, 1)


def _commit(out: str, manifest: Manifest) -> RunResult:
    try:
        with interrupt.committing():  # a SIGTERM from here on cannot undo the outcome
            storage.write_bytes(manifest_url(out), manifest.to_json().encode(), create_only=True)
    except VersionExists:
        theirs = read_manifest(out)
        if theirs is None:  # pragma: no cover - a manifest cannot vanish
            raise
        log.info("another run committed first", extra={"run_id": manifest.run_id})
        return RunResult(theirs, already_done=True)
    return RunResult(manifest, already_done=False)
