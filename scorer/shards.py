"""One file scored as shards on Dask workers, with the bytes of one process (issue 14).

The shard plan comes from the reader itself: the run's own ``CsvStream`` cuts the file into
units, and a unit never splits a record (quoted newlines, CRLF, lone CRs, blank lines and the
BOM are the reader's business). Reading units is a pass over the bytes: quote-free blocks are
only counted; in blocks holding a quote the unit ends come from the quotes' parity where that
provably is what the csv module reads (``csvtext.cut_records``), from the csv module elsewhere —
no validation, no prediction, no formatting. A shard ends at the end of a unit once it holds
``shard_bytes``, so each shard is ``(byte start, byte end, first row number, first physical line
number)``, exact, and is submitted as soon as the pass has cut it.

A worker reads the header's bytes and then its byte range, as one small CSV, through the same
``CsvStream`` with its counters set to the shard's first row and line, and scores it with
``score_batch`` under the plan (dialect, decimal mark) decided once from the whole file's head.
It hands back the batches' results; the run adds them up in file order exactly as it adds up its
own batches, so predictions.csv, rejected.csv and every count are the bytes of ``--cluster none``.
To an S3 destination with shards of at least 5 MiB, a worker uploads its shard's predictions
itself as one part of the run's multipart upload and hands back only the counts (see
``scorer.compose``); rejected rows (usually few) and local destinations go through the run.

A refusal the reader would raise (malformed CSV, not UTF-8, NUL bytes …) is met by the pass, in
file order; the shards before it that are still in flight are cancelled and the run's writers
abort, so the run ends as it does in one process.
Gzip is not sharded: the stream cannot be entered mid-way, and staging the decompressed bytes
would cost a full extra write and read; a .csv.gz is scored by the one process (see README).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from scorer import cluster, compose, storage
from scorer.batches import BatchResult, score_batch
from scorer.cluster import ClusterSpec
from scorer.compose import ComposedWriter, PartTarget, UploadedPart
from scorer.csvtext import split_lines
from scorer.errors import DropscoreError
from scorer.manifest import Draft
from scorer.model import LoadedModel
from scorer.reader import CsvStream
from scorer.schema import HeaderPlan
from scorer.units import LineUnit, ScannedUnit, TextUnit, Unit, parse_unit

log = logging.getLogger("dropscore.scorer")


@dataclass(frozen=True, slots=True)
class Scale:
    """``--cluster`` and ``--shard-over-mb``: files above ``shard_bytes`` (as stored) are split
    into shards of about that size, scored on ``cluster``."""

    cluster: ClusterSpec
    shard_bytes: int | None = None

    @property
    def enabled(self) -> bool:
        return self.cluster.kind != cluster.NONE and self.shard_bytes is not None


@dataclass(frozen=True, slots=True)
class UnitShape:
    """One unit as the run's reader cut it: a worker cuts its lines the same way, because a
    batch's predictions may differ in the last digit with the batch's rows (BLAS blocking)."""

    skip: int  # blank lines before it that the reader dropped (no record, no unit)
    lines: int  # physical lines
    records: int
    text: bool  # a TextUnit (Arrow), else a LineUnit
    simple: bool = True  # a LineUnit with one record per line


@dataclass(frozen=True, slots=True)
class Shard:
    start: int  # byte offset of its first record (in the file as stored: never gzip)
    end: int  # byte offset just past its last record
    first_row: int
    first_line: int
    units: tuple[UnitShape, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """The input as a worker reads it: one object version, and its header's bytes."""

    url: str
    version_id: str | None
    if_match: str | None  # the ETag of an unversioned object (its content names the run)
    header_end: int  # the header's bytes (BOM and blank lines before it included)
    delimiter: str


@dataclass(frozen=True, slots=True)
class ShardJob:
    source: Source
    shard: Shard
    plan: HeaderPlan
    batch_rows: int


@dataclass(frozen=True, slots=True)
class ShardOutput:
    results: list[BatchResult]
    part: UploadedPart | None = None  # the predictions went up as this part (results hold none)


def predictions_writer(
    url: str, scale: Scale, expected: int | None = None
) -> ComposedWriter | None:
    """The writer of a sharded run's predictions.csv when its workers may upload parts: an S3
    destination and shards of at least 5 MiB, or a local destination with workers on this
    machine (part files beside it); None: the run's own writer takes every byte.
    ``expected``: the output's planned size (its own parts are sized from it)."""
    if scale.shard_bytes is None or not compose.usable(url, 1, scale.shard_bytes):
        return None
    if not storage.is_s3(url):  # part files beside it: only workers of this machine reach it
        if scale.cluster.kind != "local":
            return None
        return compose.LocalComposedWriter(url, create_only=True, identical_ok=True)
    return ComposedWriter(url, create_only=True, identical_ok=True, expected=expected)


def applies(scale: Scale | None, stream: CsvStream, size: int | None) -> bool:
    """Whether this run is sharded: a cluster is set, the file is above the threshold and
    plain (a gzip stream cannot be entered mid-way)."""
    return (
        scale is not None
        and scale.enabled
        and scale.shard_bytes is not None
        and size is not None
        and size > scale.shard_bytes
        and not stream.compressed
    )


def plan_shards(
    stream: CsvStream, shard_bytes: int, header_end: int, header_lines: int, size: int
) -> list[Shard]:
    """Consume the stream's units and cut them into shards of about ``shard_bytes``."""
    return list(cut_shards(stream, shard_bytes, header_end, header_lines, size))


def shard_bound(size: int, header_end: int, shard_bytes: int) -> int:
    """At most how many shards ``cut_shards`` makes: every shard but the last holds at least
    ``shard_bytes`` of the bytes after the header."""
    return max(0, size - header_end) // shard_bytes + 1


def cut_shards(
    stream: CsvStream, shard_bytes: int, header_end: int, header_lines: int, size: int
) -> Iterator[Shard]:
    """The stream's units cut into shards of about ``shard_bytes``, each handed out as soon as
    the pass has passed its end (so it can be scored while the pass goes on); a refusal the
    reader raises comes out in file order, after the shards before it."""
    stream.scan_cuts = True  # the same units as the csv module's, found without parsing
    start, first_row, first_line = header_end, 1, header_lines + 1
    shapes: list[UnitShape] = []
    next_line = first_line  # where the next unit starts unless the reader dropped blank lines
    low = start  # a lower bound of the current unit's end: characters ≤ bytes
    for unit in stream.units():
        if isinstance(unit, TextUnit):
            chars, lines = len(unit.text), unit.records
            shape = UnitShape(unit.first_line - next_line, lines, unit.records, True)
        elif isinstance(unit, ScannedUnit):  # bytes: exact, and still a lower bound
            chars, lines = len(unit.data), unit.lines
            shape = UnitShape(unit.first_line - next_line, lines, unit.records, False, unit.simple)
        else:
            chars, lines = sum(map(len, unit.lines)), len(unit.lines)
            shape = UnitShape(unit.first_line - next_line, lines, unit.records, False, unit.simple)
        shapes.append(shape)
        next_line = unit.first_line + lines
        low += chars
        if low - start < shard_bytes:
            continue
        end = stream.handed_out  # exact, computed only where a shard may end
        low = end
        if end - start >= shard_bytes:
            yield Shard(start, end, first_row, first_line, tuple(shapes))
            start, first_row, first_line = end, unit.first_row + unit.records, next_line
            shapes = []
    yield Shard(start, size, first_row, first_line, tuple(shapes))


def header_of(
    url: str, version_id: str | None, if_match: str | None, delimiter: str
) -> tuple[int, int]:
    """(bytes, physical lines) the header takes, read again from the file's head."""
    with storage.open_read(url, version_id, if_match=if_match) as fh:
        head = CsvStream(fh, delimiter=delimiter)
        return head.handed_out, head.lines_out


def sharded_results(
    stream: CsvStream,
    url: str,
    version_id: str | None,
    if_match: str | None,
    size: int,
    model: LoadedModel,
    plan: HeaderPlan,
    scale: Scale,
    batch_rows: int,
    manifest: Draft,
    composer: ComposedWriter | None = None,
) -> Iterator[BatchResult]:
    """The file's batch results in file order, the shards scored on the cluster; records the
    shard count and workers in ``manifest``. At most two shards per worker are in flight or
    waiting, so the run's memory stays bounded. ``composer``: the run's predictions writer,
    into whose upload the workers put their shards' parts (it is written to only in file
    order, by the run, between the results this yields)."""
    assert scale.shard_bytes is not None
    header_end, header_lines = header_of(url, version_id, if_match, stream.delimiter)
    source = Source(url, version_id, if_match, header_end, stream.delimiter)
    # shards are submitted as the pass cuts them: their count is known only at its end, so
    # the upload's part numbers are spread over the most there can be
    bound = shard_bound(size, header_end, scale.shard_bytes)
    planned = cut_shards(stream, scale.shard_bytes, header_end, header_lines, size)
    first = next(planned)  # a refusal in the first shard's bytes is met before the cluster
    if composer is not None and compose.usable(composer.url, bound, scale.shard_bytes):
        composer.start(bound)
    else:
        composer = None
    # fargate starts no more worker tasks than there can be shards
    dask = cluster.client(scale.cluster, run_id=manifest.run_id, shards=bound)
    workers = max(1, cluster.worker_count(dask))
    log.info("scoring in shards", extra={"run_id": manifest.run_id, "workers": workers})
    # the model as a task, not scattered data (never forked: see scorer.cluster): the scheduler
    # keeps it pickled in the task and computes it again when every worker holding it is lost.
    # Scattered data would be gone then, and the shards waiting for it cancelled ("already
    # forgotten") — Dask's memory manager keeps only as many copies as tasks wait for, so
    # losing one worker could lose the model's last copy. Workers fetch it from each other.
    shared = dask.submit(_the, model, pure=False)
    jobs = enumerate(
        ShardJob(source, s, plan, batch_rows) for s in itertools.chain([first], planned)
    )
    pending: deque[tuple[int, ShardJob, bytes, Any]] = deque()
    cut = 0  # shards cut and submitted so far; all of them once ``jobs`` is exhausted
    done = False
    try:
        while True:
            # the pass goes on while there is room, and pauses as soon as the oldest shard is
            # scored, so its bytes are composed (and its worker's memory freed) early
            while not done and len(pending) < 2 * workers:
                if pending and pending[0][3].done():
                    break
                item = next(jobs, None)  # the pass cuts the next shard (or raises a refusal)
                if item is None:
                    done = True
                    manifest.shards = cut  # recorded only once the whole file is cut
                    manifest.workers = workers
                    if composer is not None:
                        composer.shards_known(cut)
                    log.info(
                        "all shards cut",
                        extra={"run_id": manifest.run_id, "shards": cut, "workers": workers},
                    )
                    break
                i, job = item
                cut += 1
                target = composer.target(i) if composer else None
                # the header waits in the writer: it goes up in front of shard 0's part
                prefix = composer.pending() if composer and i == 0 else b""
                fut = dask.submit(score_shard_to, job, shared, target, prefix, pure=False)
                pending.append((i, job, prefix, fut))
            if not pending:
                return
            i, job, prefix, fut = pending.popleft()
            out = _result(fut, dask, scale.cluster.timeout)
            if composer is not None:
                if out.part is not None:
                    carried = len(prefix)
                    if prefix:
                        composer.take_pending()
                    elif not composer.ready_for(i):  # bytes under 5 MiB wait in front of it
                        again = composer.take_pending()
                        carried = len(again)
                        target = composer.target(i, force=True)
                        log.info(
                            "uploading a shard's part again behind small output",
                            extra={"run_id": manifest.run_id, "shard": i, "bytes": len(again)},
                        )
                        fut = dask.submit(score_shard_to, job, shared, target, again, pure=False)
                        out = _result(fut, dask, scale.cluster.timeout)
                    assert out.part is not None
                    composer.adopt(out.part, carried)
                composer.passed(i)
            yield from out.results
    finally:
        # a refusal met by the pass, a lost shard or a stop: nothing more is scored; the run's
        # writers abort the upload, so a part a worker is still sending lands nowhere
        for *_, fut in pending:
            fut.cancel()
        shared.release()


def _the(model: LoadedModel) -> LoadedModel:
    return model


def _result(future: Any, dask: Any, patience: float) -> ShardOutput:
    """The shard's output. The model is a task Dask computes again on another worker when its
    worker is lost, so losing workers never loses the run — but with no worker left at all
    (Fargate replaces none; a local nanny restarts its worker within seconds) the run would wait
    for ever: after ``patience`` seconds without a worker it ends, the input pending."""
    alone_since: float | None = None
    while True:
        try:
            return cast(ShardOutput, future.result(timeout=1.0))
        except TimeoutError:
            if cluster.worker_count(dask):
                alone_since = None
                continue
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since < patience:
                continue
            raise cluster.ClusterUnavailable(
                f"every Dask worker of the run was lost and none came back in {patience:g} s; "
                "the input stays pending for a retry or the sweep"
            ) from None
        except DropscoreError:  # a refusal or failure of the scoring itself, as in one process
            raise
        except Exception as exc:  # Dask gave up: workers lost too often, the scheduler gone …
            raise cluster.ClusterUnavailable(
                f"the Dask cluster lost a shard ({type(exc).__name__}: {exc}); the input stays "
                "pending for a retry or the sweep"
            ) from exc


def score_shard_to(
    job: ShardJob, model: LoadedModel, target: PartTarget | None, prefix: bytes
) -> ShardOutput:
    """On a worker: the shard scored, its predictions (after ``prefix``) uploaded as the
    ``target`` part when they fill one (≥ 5 MiB) or the part is forced; else handed back."""
    results = score_shard(job, model)
    if target is None:
        return ShardOutput(results)
    data = prefix + b"".join(r.predictions for r in results)
    if len(data) < storage.MIN_PART_SIZE and not target.force:
        return ShardOutput(results)
    part = compose.upload_part(target, data)
    return ShardOutput([dataclasses.replace(r, predictions=b"") for r in results], part)


def score_shard(job: ShardJob, model: LoadedModel) -> list[BatchResult]:
    """On a worker: one shard's lines cut into the run reader's units, each scored as the
    one-process run scores it. (The scan already met every refusal the reader raises.)"""
    shard = job.shard
    if not shard.units:
        return []
    with _open_range(job.source, shard.start, shard.end) as fh:
        lines = split_lines(fh.read().decode("utf-8"))
    results = []
    pos, line, row = 0, shard.first_line, shard.first_row
    delimiter = job.source.delimiter
    for shape in shard.units:
        pos += shape.skip
        line += shape.skip
        taken = lines[pos : pos + shape.lines]
        unit: Unit
        if shape.text:
            unit = TextUnit("".join(taken), line, row, shape.records, delimiter)
        else:
            unit = LineUnit(taken, line, row, shape.records, shape.simple, delimiter)
        results.append(score_batch(parse_unit(unit), model, job.plan))
        pos += shape.lines
        line += shape.lines
        row += shape.records
    return results


def _open_range(source: Source, start: int, end: int) -> IO[bytes]:
    """Bytes [start, end) of the object version."""
    url = source.url
    if storage.is_s3(url):
        bucket, key = storage.split_s3(url)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{end - 1}"}
        if source.version_id:
            kwargs["VersionId"] = source.version_id
        if source.if_match:
            kwargs["IfMatch"] = f'"{source.if_match.strip(chr(34))}"'
        with storage.map_storage_errors(url):
            body = storage.s3_client().get_object(**kwargs)["Body"]
        return cast(IO[bytes], io.BufferedReader(_Body(body)))
    if "://" in url:
        import fsspec

        fh: IO[bytes] = fsspec.open(url, "rb").open()
    else:
        fh = open(Path(url), "rb")  # noqa: SIM115 - closed by _Limited
    fh.seek(start)
    return cast(IO[bytes], _Limited(fh, end - start))


class _Body(io.RawIOBase):
    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._body.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class _Limited(io.RawIOBase):
    def __init__(self, fh: IO[bytes], n: int) -> None:
        self._fh = fh
        self._left = n

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fh.read(want) if want else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()
        super().close()
