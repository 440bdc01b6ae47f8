"""predictions.csv of a sharded S3 run as one multipart upload whose big parts the workers
upload themselves (issue 14): the coordinator never receives those bytes.

Part numbers: S3 joins parts in ascending number and allows 1..10,000. With N shards each shard
owns a slot of ``K = 10000 // (N + 1)`` numbers; shard i's worker uploads part ``(i + 1) * K``;
the numbers before it in its slot are the coordinator's, for bytes that came back to it (a shard
too small for a part of its own, the header). So every byte lands in file order whoever uploads
it, and a rescheduled shard re-uploads the same number (the last upload of a number wins).

Every non-last part must hold 5 MiB. A worker uploads only when its bytes reach that (or its
shard is the last); smaller output comes back as bytes. When bytes under 5 MiB are still waiting
at the coordinator as the next worker part arrives, there is no way to put them in front of it
but to upload that part again with them as its prefix: the shard is scored again with the prefix
(deterministic, so the same bytes). This is rare by construction: the composition is used only
when shards are at least 5 MiB of input, and a shard's predictions repeat its scored rows' cells.

The manifest's sha256 of the whole file cannot be combined from parts' hashes: after the upload
completes the coordinator reads the object back once, in order, and hashes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorer import storage
from scorer.errors import VersionExists
from scorer.storage import MIN_PART_SIZE, base
from scorer.storage.base import Writer, fault

log = logging.getLogger("dropscore.scorer")

MAX_LOCAL_PARTS = base.MAX_PARTS  # part numbers of a local destination's part files (no S3 limit)


@dataclass(frozen=True, slots=True)
class PartTarget:
    """Where a worker uploads its shard's predictions: one number of one open upload."""

    url: str
    upload_id: str
    number: int
    force: bool = False  # upload even under 5 MiB (the last shard, or a prefixed re-upload)


@dataclass(frozen=True, slots=True)
class UploadedPart:
    number: int
    etag: str
    size: int


def usable(url: str, shards: int, shard_bytes: int) -> bool:
    if not storage.is_s3(url):  # part files beside a local destination: no size limits
        return MAX_LOCAL_PARTS // (shards + 1) >= 1
    return _usable_s3(url, shards, shard_bytes)


def _usable_s3(url: str, shards: int, shard_bytes: int) -> bool:
    """Workers upload their parts for an S3 destination whose shards hold ≥ 5 MiB of input,
    whose shards' outputs fit one part (≤ 5 GiB, planned at ``OUTPUT_BOUND`` × the shard) and
    that fit the part numbers; else the coordinator writes every byte (today's path)."""
    limits = base.SETTINGS
    return (
        storage.is_s3(url)
        and shard_bytes >= MIN_PART_SIZE
        and base.OUTPUT_BOUND * shard_bytes <= limits.max_part_size
        and limits.max_parts // (shards + 1) >= 1
    )


def upload_part(target: PartTarget, data: bytes) -> UploadedPart:
    """On a worker: one part of the coordinator's upload (its credentials come from the worker's
    environment, as for reading the input); for a local destination, a part file beside it."""
    if not storage.is_s3(target.url):
        return _write_local_part(target, data)
    bucket, key = storage.split_s3(target.url)
    with storage.map_storage_errors(target.url):
        resp = storage.s3_client().upload_part(
            Bucket=bucket, Key=key, UploadId=target.upload_id, PartNumber=target.number, Body=data
        )
    return UploadedPart(target.number, str(resp["ETag"]), len(data))


class ComposedWriter(Writer):
    """The S3 writer of predictions.csv for a sharded run: bytes written here (the header,
    small shards) are the coordinator's parts, ``adopt`` takes a part a worker uploaded."""

    def __init__(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        expected: int | None = None,
    ) -> None:
        self._plan = base.plan_parts(expected)  # the coordinator's own parts
        self._buf = bytearray()
        self._parts: dict[int, str] = {}
        self._md5: dict[int, bytes] = {}
        self._upload_id: str | None = None
        self._slot = 1  # shard slots: see the module's docstring; unstarted: numbers 1, 2 …
        self._shards = 0
        self._next = 1
        self._limit = self._plan.max_parts
        self._digest: str | None = None
        self._done = False
        self.received = 0  # bytes that passed through the coordinator
        self.adopted = 0  # bytes the workers uploaded
        super().__init__(
            storage.for_url(url), url, create_only=create_only, identical_ok=identical_ok
        )

    # -- the coordinator's side of the composition ---------------------------------------

    def start(self, shards: int) -> str:
        """Open the upload for ``shards`` shards; its id."""
        self._slot = self._plan.max_parts // (shards + 1)
        self._shards = shards
        bucket, key = storage.split_s3(self.url)
        with storage.map_storage_errors(self.url):
            self._upload_id = str(
                storage.s3_client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            )
        self._enter(0)
        return self._upload_id

    def target(self, shard: int, force: bool = False) -> PartTarget:
        assert self._upload_id is not None
        return PartTarget(self.url, self._upload_id, (shard + 1) * self._slot, force)

    def pending(self) -> bytes:
        return bytes(self._buf)

    def take_pending(self) -> bytes:
        """The bytes waiting for a part (they go in front of the next worker part instead)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def ready_for(self, shard: int) -> bool:
        """Whether shard ``shard``'s worker part can follow what is written so far: nothing is
        waiting, or what waits fills a part of its own before the shard's number."""
        if self._buf and len(self._buf) >= MIN_PART_SIZE and self._next <= self._limit:
            self._flush()
        return not self._buf

    def adopt(self, part: UploadedPart, carried: int = 0) -> None:
        """A worker's part; its first ``carried`` bytes were written here (and counted) first."""
        self._parts[part.number] = part.etag
        self._md5[part.number] = bytes.fromhex(part.etag.strip('"'))
        self.size += part.size - carried
        self.adopted += part.size - carried
        fault(f"after_part:{part.number}")

    def shards_known(self, shards: int) -> None:
        """The run cut ``shards`` shards, at most the number ``start`` was given (the shards
        are submitted while the file is still being cut): the slot after the last is the last."""
        assert shards <= self._shards
        self._shards = shards
        if self._next > shards * self._slot:  # the last shard has passed already
            self._limit = self._plan.max_parts

    def passed(self, shard: int) -> None:
        """Shard ``shard``'s place in the file is done: later bytes go after its part."""
        self._enter(shard + 1)

    def _enter(self, slot: int) -> None:
        self._next = slot * self._slot + 1
        last = slot >= self._shards
        self._limit = self._plan.max_parts if last else (slot + 1) * self._slot - 1

    # -- Writer ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.received += len(data)
        super().write(data)  # hashed too: used when no worker part was adopted

    def _put(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= self._part_size() and self._next <= self._limit:
            self._flush(self._part_size())

    def _part_size(self) -> int:
        """Unstarted, parts grow with their number like a plain writer's; started, the numbers
        are the slots' and the coordinator's parts keep the planned size."""
        return self._plan.size(self._next) if not self._shards else self._plan.first

    def _flush(self, size: int | None = None) -> None:
        """Upload the next number: ``size`` bytes of the buffer, or all of it."""
        bucket, key = storage.split_s3(self.url)
        data = bytes(self._buf[:size] if size else self._buf)
        with storage.map_storage_errors(self.url):
            if self._upload_id is None:  # never started: a plain multipart upload
                self._upload_id = str(
                    storage.s3_client().create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                )
            resp = storage.s3_client().upload_part(
                Bucket=bucket, Key=key, UploadId=self._upload_id, PartNumber=self._next, Body=data
            )
        self._parts[self._next] = str(resp["ETag"])
        self._md5[self._next] = hashlib.md5(data, usedforsecurity=False).digest()
        fault(f"after_part:{self._next}")
        self._next += 1
        del self._buf[: len(data)]

    def _commit(self) -> None:
        bucket, key = storage.split_s3(self.url)
        if self._buf or not self._parts:
            assert self._next <= self._limit  # the last slot always has a number left
            self._flush()
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if self.create_only else {}
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self._parts.items())]
        with storage.map_storage_errors(self.url):
            storage.s3_client().complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                **extra,
            )
        self._upload_id = None
        log.info(
            "composed predictions from worker parts",
            extra={
                "output": self.url,
                "parts": len(parts),
                "worker_bytes": self.adopted,
                "coordinator_bytes": self.received,
            },
        )

    @property
    def sha256(self) -> str:
        """The whole object's sha256: of the bytes written when no worker part was adopted,
        else read back once after the upload completed ("" before: see runs._stream)."""
        if not self.adopted:
            return super().sha256
        if not self._done:
            return ""
        if self._digest is None:
            self._digest = base.stored_sha256(self.store, self.url)
        return self._digest

    def _same_as_existing(self) -> bool:
        """A completed object with the same parts has S3's multipart ETag of them (the object
        left by a killed rerun of the same plan); anything else counts as different."""
        if not self.adopted:
            return super()._same_as_existing()
        numbers = sorted(self._md5)
        joined = b"".join(self._md5[n] for n in numbers)
        ours = f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(numbers)}"
        return self.store.head(self.url).etag == ours

    def commit(self) -> None:
        try:
            super().commit()
        except VersionExists:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        if self._upload_id is not None:
            bucket, key = storage.split_s3(self.url)
            try:
                storage.s3_client().abort_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=self._upload_id
                )
            except Exception as exc:  # the next run's commit aborts it (runs._abort_stale_uploads)
                log.warning("could not abort the upload", extra={"output": self.url, "error": exc})
            self._upload_id = None


# --- local destinations ------------------------------------------------------------------------
def local_part_path(url: str, upload_id: str, number: int) -> Path:
    """``.<name>.<upload id>.<number>.part`` beside the destination: a dot-file ending in .part,
    which listings skip like a Writer's temp file (scorer.storage.local)."""
    target = Path(url)
    return target.parent / f".{target.name}.{upload_id}.{number:05d}.part"


def _write_local_part(target: PartTarget, data: bytes) -> UploadedPart:
    """On a worker of this machine: the part's bytes written to a temp file, then renamed onto
    the part's name, so a rescheduled shard's second write replaces its first whole (the last
    write wins, as for an S3 part number) and a worker killed mid-write leaves no part."""
    path = local_part_path(target.url, target.upload_id, target.number)
    with storage.map_storage_errors(target.url):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return UploadedPart(target.number, LOCAL_ETAG, len(data))


LOCAL_ETAG = ""  # a part file has no ETag; the joined file is hashed as it is written


class LocalComposedWriter(ComposedWriter):
    """predictions.csv of a sharded run to a local destination whose Dask workers share this
    machine (``--cluster local``): each worker writes its shard's predictions to a part file
    beside the destination; on commit the run joins the part files in number order into the
    usual temp file, which is then linked into place (create-only) like any local output. The
    predictions never travel back through Dask. Numbers as in the S3 composition (slots per
    shard; the run's own bytes between them), but a part file has no minimum size: every shard
    writes its part, and bytes waiting at the run always get a number of their own."""

    def __init__(self, url: str, *, create_only: bool = False, identical_ok: bool = False) -> None:
        super().__init__(url, create_only=create_only, identical_ok=identical_ok)
        self._plan = dataclasses.replace(self._plan, max_parts=MAX_LOCAL_PARTS)  # S3's aside
        self._limit = self._plan.max_parts
        with storage.map_storage_errors(url):  # the workers write beside it from the start
            Path(url).parent.mkdir(parents=True, exist_ok=True)

    def start(self, shards: int) -> str:
        self._slot = self._plan.max_parts // (shards + 1)
        self._shards = shards
        self._upload_id = self._upload_id or uuid.uuid4().hex[:12]
        self._enter(0)
        return self._upload_id

    def target(self, shard: int, force: bool = False) -> PartTarget:
        return dataclasses.replace(super().target(shard), force=True)

    def ready_for(self, shard: int) -> bool:
        if self._buf and self._next <= self._limit:
            self._flush()
        return not self._buf

    def adopt(self, part: UploadedPart, carried: int = 0) -> None:
        self._parts[part.number] = part.etag
        self.size += part.size - carried
        self.adopted += part.size - carried
        fault(f"after_part:{part.number}")

    def _flush(self, size: int | None = None) -> None:
        self._upload_id = self._upload_id or uuid.uuid4().hex[:12]
        data = bytes(self._buf[:size] if size else self._buf)
        target = PartTarget(self.url, self._upload_id, self._next, True)
        self._parts[self._next] = _write_local_part(target, data).etag
        fault(f"after_part:{self._next}")
        self._next += 1
        del self._buf[: len(data)]

    def _commit(self) -> None:
        if self._buf or not self._parts:
            self._flush()
        assert self._upload_id is not None
        # the local writer's own temp file, create-only link and identical check
        with storage.open_write(
            self.url, create_only=self.create_only, identical_ok=self.identical_ok
        ) as joined:
            for number in sorted(self._parts):
                path = local_part_path(self.url, self._upload_id, number)
                with storage.map_storage_errors(self.url), open(path, "rb") as fh:
                    while chunk := fh.read(8 << 20):
                        joined.write(chunk)
        self._digest = joined.sha256
        self._remove_parts()
        self._upload_id = None
        log.info(
            "composed predictions from worker parts",
            extra={
                "output": self.url,
                "parts": len(self._parts),
                "worker_bytes": self.adopted,
                "coordinator_bytes": self.received,
            },
        )

    @property
    def sha256(self) -> str:
        """Of the joined file, hashed while it was written ("" before the commit)."""
        if not self.adopted:
            return self._hash.hexdigest()
        return self._digest or ""

    def _same_as_existing(self) -> bool:
        return False  # the joined file's own writer already accepted identical bytes

    def commit(self) -> None:
        try:
            Writer.commit(self)
        except BaseException:
            self._remove_parts()
            raise
        self._done = True

    def abort(self) -> None:
        self._remove_parts()

    def _remove_parts(self) -> None:
        """Every part file of this upload, a killed worker's temp files included."""
        if self._upload_id is None:
            return
        target = Path(self.url)
        for path in target.parent.glob(f".{target.name}.{self._upload_id}.*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
