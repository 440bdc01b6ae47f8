"""What every store shares: the Store interface, the object record a listing or HEAD gives, the
streaming Writer's common half, error translation, and the settings the CLI enters once."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol

from scorer.codes import Code
from scorer.errors import (
    DropscoreError,
    FileRefused,
    ObjectMissing,
    StorageUnavailable,
    VersionExists,
)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last
# S3's other multipart limits: part numbers 1..10,000, parts of at most 5 GiB, objects of 5 TiB
MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024**3
MAX_OBJECT_SIZE = 5 * 1024**4
MIB = 1024 * 1024
# An output's size as a multiple of its (plain) input's: predictions.csv of sample-shaped files
# is ≈ 2.25× the input (the cells again plus the prediction columns), rejected.csv at most
# about as much; 3× leaves a margin. Narrower rows can exceed it: parts then grow as they go.
OUTPUT_BOUND = 3


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide knobs the CLI enters once, before any thread starts.

    ``fault``: a test-only crash point (never set in production): "open:<file name>" (a writer
    for that file is created), "after_part:<n>" (part n uploaded), "commit:<file name>" (just
    before that object is made visible). Reaching it SIGKILLs the process; "pause:<point>" sleeps
    there for a minute instead (a window for a test to send a signal into)."""

    part_size: int = 8 * 1024 * 1024
    fault: str | None = None
    # S3's limits, smaller only in tests (DROPSCORE_MAX_PARTS, DROPSCORE_MAX_PART_SIZE), so that
    # running out of part numbers can be shown with megabytes rather than 84 GB
    max_parts: int = MAX_PARTS
    max_part_size: int = MAX_PART_SIZE


SETTINGS = Settings()


def configure(
    *,
    part_size: int | None = None,
    fault: str | None = None,
    max_parts: int | None = None,
    max_part_size: int | None = None,
) -> None:
    """Process-wide settings the CLI enters once (DROPSCORE_PART_SIZE, DROPSCORE_FAULT and the
    test-only DROPSCORE_MAX_PARTS, DROPSCORE_MAX_PART_SIZE)."""
    global SETTINGS
    size = max(int(part_size), MIN_PART_SIZE) if part_size else SETTINGS.part_size
    SETTINGS = Settings(  # one assignment: never half-set
        part_size=size,
        fault=fault or None,
        max_parts=min(max(int(max_parts), 1), MAX_PARTS) if max_parts else MAX_PARTS,
        max_part_size=(
            min(max(int(max_part_size), MIN_PART_SIZE), MAX_PART_SIZE)
            if max_part_size
            else MAX_PART_SIZE
        ),
    )


@dataclass(frozen=True, slots=True)
class PartPlan:
    """The sizes of a multipart upload's parts: ``first`` for the first ``step`` parts, then
    double every ``step`` parts, up to the largest part S3 takes. Sized from the expected output
    (``plan_parts``), so its parts fit the part numbers; the doubling keeps an output larger
    than expected (narrow rows, a gzip input) from running out of them mid-run."""

    first: int
    step: int
    max_part: int
    max_parts: int

    def size(self, number: int) -> int:
        """The size part ``number`` (1-based) is cut at."""
        tier = min((max(number, 1) - 1) // self.step, 40)
        return min(self.max_part, self.first << tier)

    @property
    def capacity(self) -> int:
        """The most bytes parts 1..max_parts of these sizes hold (S3's object limit aside)."""
        total, number = 0, 1
        while number <= self.max_parts:
            count = min(self.step - (number - 1) % self.step, self.max_parts - number + 1)
            total += count * self.size(number)
            number += count
        return total


def plan_parts(expected: int | None, settings: Settings | None = None) -> PartPlan:
    """Part sizes for an output of about ``expected`` bytes (None: unknown): the configured part
    size, or larger so that ``expected`` fits a tenth of the part numbers' worth of doublings."""
    cfg = settings or SETTINGS
    need = -(-(expected or 0) // cfg.max_parts)  # ceil: parts of this size fit it in max_parts
    first = max(cfg.part_size, -(-need // MIB) * MIB)  # whole MiB: tidy part boundaries
    return PartPlan(
        first=min(first, cfg.max_part_size),
        step=max(1, cfg.max_parts // 10),
        max_part=cfg.max_part_size,
        max_parts=cfg.max_parts,
    )


def expected_output(input_bytes: int | None) -> int | None:
    """The size an output of a plain input of ``input_bytes`` is planned for."""
    return None if input_bytes is None else OUTPUT_BOUND * input_bytes


def check_fits(url: str, expected: int | None) -> None:
    """FileRefused (OUTPUT_TOO_LARGE) when an S3 output of ``expected`` bytes could not be
    written: more than S3's 5 TiB object limit or its parts' capacity. Checked before the file
    is scored, so it is refused up front rather than failing after hours of work."""
    if expected is None or not url.startswith("s3://"):
        return
    room = min(MAX_OBJECT_SIZE, plan_parts(expected).capacity)
    if expected > room:
        raise FileRefused(
            f"the file is too large for one S3 output: {OUTPUT_BOUND}× its "
            f"{expected // OUTPUT_BOUND / MIB:,.1f} MiB (the most its predictions.csv is "
            f"planned for) exceeds the {room / MIB:,.0f} MiB an S3 object can hold in "
            f"{SETTINGS.max_parts:,} parts of at most {SETTINGS.max_part_size / MIB:,.0f} MiB; "
            "split the file and upload the parts",
            code=Code.OUTPUT_TOO_LARGE,
        )


def fault(point: str) -> None:
    wanted = SETTINGS.fault
    if f"pause:{point}" == wanted:
        from scorer import interrupt

        interrupt.requested.wait(60)
        if not interrupt.decided():  # after the commit a stop request changes nothing
            interrupt.check()
    if point == wanted:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a HEAD tells about one object."""

    url: str
    size: int
    etag: str = ""
    version_id: str | None = None  # None for local files and unversioned buckets
    last_modified: float = 0.0
    #: S3 user metadata (``x-amz-meta-*``, names lower-cased); empty for local files
    metadata: Mapping[str, str] = field(default_factory=dict)


class Store(Protocol):
    """One kind of storage (local paths, S3, read-only fsspec URLs); ``for_url`` picks it."""

    def head(self, url: str, version_id: str | None = None) -> ObjectInfo: ...

    def open_read(
        self, url: str, version_id: str | None = None, *, if_match: str | None = None
    ) -> IO[bytes]: ...

    def read_with_etag(self, url: str) -> tuple[bytes, str]: ...

    def list_objects(self, prefix_url: str) -> Iterator[ObjectInfo]: ...

    def delete(self, url: str) -> None: ...

    def replace_if(self, url: str, data: bytes, etag: str | None) -> None: ...

    def open_write(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> Writer: ...

    def abort_uploads(self, prefix_url: str) -> int: ...


@contextlib.contextmanager
def map_storage_errors(url: str) -> Iterator[None]:
    """Translate botocore/OS errors into dropscore's own, naming the URL and what to do."""
    try:
        yield
    except DropscoreError:
        raise
    except FileNotFoundError as exc:
        raise ObjectMissing(f"'{url}' does not exist") from exc
    except PermissionError as exc:
        raise StorageUnavailable(f"permission denied on '{url}': {exc.strerror}") from exc
    except Exception as exc:
        _raise_translated(url, exc)
        raise


def status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _raise_translated(url: str, exc: Exception) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"NoSuchKey", "NoSuchVersion", "404", "NotFound"} or status == 404:
            if code == "NoSuchBucket":
                raise StorageUnavailable(
                    f"bucket of '{url}' does not exist; create it or check the name"
                ) from exc
            raise ObjectMissing(f"'{url}' does not exist") from exc
        if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {409, 412}:
            raise VersionExists(f"'{url}' already exists and is never overwritten") from exc
        if code in {"AccessDenied", "403", "Forbidden"} or status == 403:
            raise StorageUnavailable(
                f"access denied to '{url}'; check the credentials and the bucket policy"
            ) from exc
        raise StorageUnavailable(f"S3 refused a request for '{url}': {code} {status}") from exc
    if isinstance(exc, NoCredentialsError):
        raise StorageUnavailable(
            "no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
        ) from exc
    if isinstance(exc, BotoCoreError):
        raise StorageUnavailable(f"cannot reach S3 for '{url}': {exc}") from exc
    if isinstance(exc, OSError):
        raise StorageUnavailable(f"I/O error on '{url}': {exc}") from exc


def stored_sha256(store: Store, url: str) -> str:
    """The sha256 of an object as stored, read back through ``store`` (the writer's own check of
    an identical object already there, and a composed object's hash, read it the same way)."""
    with store.open_read(url) as fh:
        return sha256_of(fh)


def sha256_of(fh: IO[bytes]) -> str:
    """The sha256 of what is left to read from ``fh``, read in chunks (files of any size)."""
    digest = hashlib.sha256()
    while chunk := fh.read(8 << 20):
        digest.update(chunk)
    return digest.hexdigest()


class Writer:
    """Streaming writer: S3 multipart upload in parts, or a temp file renamed into place.

    Nothing is visible at the target until ``commit``; ``abort`` (also on any exception inside
    the ``with``) removes every trace, including an open multipart upload. Each store supplies
    ``_put`` (take bytes), ``_commit`` (make them visible) and ``abort``.
    """

    def __init__(
        self, store: Store, url: str, *, create_only: bool = False, identical_ok: bool = False
    ) -> None:
        self.store = store
        self.url = url
        self.create_only = create_only
        # create-only, but an existing object with exactly these bytes counts as written: a rerun
        # (or a concurrent duplicate) of a deterministic run then writes nothing new
        self.identical_ok = identical_ok
        self.size = 0
        self._hash = hashlib.sha256()
        self._discarded = False
        fault(f"open:{url.rsplit('/', 1)[-1]}")

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        self._put(data)

    def _put(self, data: bytes) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        from scorer import interrupt

        interrupt.check()  # a stop request never lets an output become visible
        fault(f"commit:{self.url.rsplit('/', 1)[-1]}")
        try:
            self._commit()
        except VersionExists:
            if not (self.identical_ok and self._same_as_existing()):
                raise
            self.abort()  # a refused multipart completion leaves its upload open
        fault(f"committed:{self.url.rsplit('/', 1)[-1]}")

    def _same_as_existing(self) -> bool:
        info = self.store.head(self.url)
        if info.size != self.size:
            return False
        return stored_sha256(self.store, self.url) == self.sha256

    def discard(self) -> None:
        """Abort now and make leaving the ``with`` block a no-op: nothing will be written."""
        self.abort()
        self._discarded = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._discarded:
            return
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
