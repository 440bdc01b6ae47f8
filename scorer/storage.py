"""Thin storage adapter: local paths and ``s3://`` URLs behind one small interface.

S3 goes through boto3 (which honours ``AWS_ENDPOINT_URL``, so the same code talks to a local moto
server or to AWS); other fsspec URLs (``http://``, ``gs://`` …) can be read but not written.
Create-only writes are what make manifests and model versions immutable: ``If-None-Match: *`` on
S3, ``os.link`` of a finished temp file locally (fails if the target exists, never half-written).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

from scorer.errors import (
    BadArgument,
    DropscoreError,
    ObjectChanged,
    ObjectMissing,
    SourceGone,
    StorageUnavailable,
    VersionExists,
)

PART_SIZE = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last
MIN_PART_SIZE = 5 * 1024 * 1024

# Test-only crash points, set once by the CLI from DROPSCORE_FAULT (never set in production):
# "open:<file name>" (a writer for that file is created), "after_part:<n>" (part n uploaded),
# "commit:<file name>" (just before that object is made visible). Reaching it SIGKILLs the process;
# "pause:<point>" sleeps there for a minute instead (a window for a test to send a signal into).
FAULT: str | None = None


def configure(*, part_size: int | None = None, fault: str | None = None) -> None:
    """Process-wide settings the CLI enters once (DROPSCORE_PART_SIZE, DROPSCORE_FAULT)."""
    global PART_SIZE, FAULT
    if part_size:
        PART_SIZE = max(int(part_size), MIN_PART_SIZE)
    FAULT = fault or None


def _fault(point: str) -> None:
    if f"pause:{point}" == FAULT:
        from scorer import interrupt

        interrupt.requested.wait(60)
        if not interrupt.decided():  # after the commit a stop request changes nothing
            interrupt.check()
    if point == FAULT:
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


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageUnavailable(f"'{url}' names no bucket; use s3://BUCKET/PREFIX")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """Join URL or path segments with '/', never doubling separators."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}" if part else out
    return out


# Client overrides for an interactive process (the UI): a user should hear within seconds that
# S3 is down, where a batch run rather waits out a blip. None: the defaults below.
CLIENT_OVERRIDES: dict[str, float] = {}


def configure_client(*, connect_timeout: float, read_timeout: float, attempts: int) -> None:
    """Short timeouts and few attempts for this process's S3 client (an interactive app)."""
    wanted = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "attempts": attempts,
    }
    if wanted != CLIENT_OVERRIDES:  # called on every page run: a new client only on change
        CLIENT_OVERRIDES.update(wanted)
        s3_client.cache_clear()


@cache
def s3_client() -> Any:
    """One boto3 client per process; retries with backoff for throttling and 5xx (7 attempts in
    all, adaptive; AWS_MAX_ATTEMPTS / AWS_RETRY_MODE override them, as for the AWS CLI)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    region = session.region_name or "us-east-1"
    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    mode = os.environ.get("AWS_RETRY_MODE", "").strip()
    total = int(attempts) if attempts.isdigit() and int(attempts) else 7
    config = Config(
        retries={
            # total attempts, the first included (botocore's own max_attempts counts retries)
            "total_max_attempts": int(CLIENT_OVERRIDES.get("attempts", total)),
            "mode": mode if mode in ("legacy", "standard", "adaptive") else "adaptive",
        },
        connect_timeout=CLIENT_OVERRIDES.get("connect_timeout", 5),
        read_timeout=CLIENT_OVERRIDES.get("read_timeout", 60),
        max_pool_connections=32,
    )
    return session.client("s3", region_name=region, config=config)


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


def _status(exc: Exception) -> int | None:
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


# --- reading ------------------------------------------------------------------------------------
def head(url: str, version_id: str | None = None) -> ObjectInfo:
    with map_storage_errors(url):
        if is_s3(url):
            bucket, key = split_s3(url)
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                kwargs["VersionId"] = version_id
            resp = s3_client().head_object(**kwargs)
            return ObjectInfo(
                url=url,
                size=int(resp["ContentLength"]),
                etag=str(resp.get("ETag", "")).strip('"'),
                version_id=resp.get("VersionId") or None,
                last_modified=resp["LastModified"].timestamp() if "LastModified" in resp else 0.0,
                metadata={str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()},
            )
        if "://" in url:
            import fsspec

            fs, path = fsspec.core.url_to_fs(url)
            info = fs.info(path)
            return ObjectInfo(url=url, size=int(info.get("size") or 0))
        st = Path(url).stat()
        if not Path(url).is_file():
            raise ObjectMissing(f"'{url}' is not a file")
        return ObjectInfo(url=url, size=st.st_size, last_modified=st.st_mtime)


def exists(url: str) -> bool:
    try:
        head(url)
    except ObjectMissing:
        return False
    return True


def open_read(url: str, version_id: str | None = None, *, if_match: str | None = None) -> IO[bytes]:
    """A binary stream of the object; S3 streams, it is never read whole into memory.

    ``if_match``: the ETag the caller saw; if the object was replaced since (an unversioned
    bucket), that content is gone: SourceGone rather than silently reading the new bytes."""
    with map_storage_errors(url):
        if is_s3(url):
            bucket, key = split_s3(url)
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                kwargs["VersionId"] = version_id
            if if_match:
                kwargs["IfMatch"] = f'"{if_match.strip(chr(34))}"'
            try:
                body = s3_client().get_object(**kwargs)["Body"]
            except Exception as exc:
                if if_match and _status(exc) == 412:
                    raise SourceGone(
                        f"'{url}' was replaced after its event (ETag {if_match} is gone); "
                        "the new content is scored by its own event"
                    ) from exc
                raise
            return cast(IO[bytes], _S3Stream(body, url))
        if "://" in url:
            import fsspec

            return fsspec.open(url, "rb").open()
        return open(url, "rb")


class _S3Stream(io.RawIOBase):
    """botocore's StreamingBody as a file object whose read errors are dropscore errors."""

    def __init__(self, body: Any, url: str) -> None:
        super().__init__()
        self._body = body
        self._url = url

    def read(self, n: int | None = -1) -> bytes:
        with map_storage_errors(self._url):
            return self._body.read(None if n is None or n < 0 else n)

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()
        super().close()


def read_bytes(url: str, version_id: str | None = None) -> bytes:
    with open_read(url, version_id) as fh:
        return fh.read()


def list_objects(prefix_url: str) -> Iterator[ObjectInfo]:
    """Every object under a prefix (recursively), latest versions only, in key order."""
    with map_storage_errors(prefix_url):
        if is_s3(prefix_url):
            bucket, prefix = split_s3(prefix_url)
            pages = (
                s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        url=f"s3://{bucket}/{obj['Key']}",
                        size=int(obj["Size"]),
                        etag=str(obj.get("ETag", "")).strip('"'),
                        last_modified=obj["LastModified"].timestamp(),
                    )
            return
        root = Path(prefix_url)
        if not root.exists():
            return
        for path in sorted(root.rglob("*")):
            if path.name.startswith(".") and path.name.endswith(".part"):
                continue  # a Writer's temp file: not an object until it is renamed into place
            try:
                st = path.stat()
            except FileNotFoundError:  # removed since the directory was read
                continue
            if path.is_file():
                yield ObjectInfo(url=str(path), size=st.st_size, last_modified=st.st_mtime)


def list_versions(bucket: str, prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(key, entry, is_delete_marker) for every version under a prefix."""
    client = s3_client()
    with map_storage_errors(f"s3://{bucket}/{prefix}"):
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for v in page.get("Versions", []):
                yield v["Key"], v, False
            for d in page.get("DeleteMarkers", []):
                yield d["Key"], d, True


def delete(url: str) -> None:
    with map_storage_errors(url):
        if is_s3(url):
            bucket, key = split_s3(url)
            s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            with contextlib.suppress(FileNotFoundError):
                Path(url).unlink()


# --- writing ------------------------------------------------------------------------------------
def write_bytes(
    url: str, data: bytes, *, create_only: bool = False, metadata: Mapping[str, str] | None = None
) -> str:
    """Write a whole object; returns its sha256. ``create_only`` refuses to replace anything;
    ``metadata``: S3 user metadata stored with the object (S3 only)."""
    with open_write(url, create_only=create_only, metadata=metadata) as out:
        out.write(data)
    return out.sha256


def read_with_etag(url: str) -> tuple[bytes, str]:
    """A small object's bytes and the token a conditional write compares: S3's ETag, or the
    MD5 of a local file's bytes (what S3 gives a single-part object)."""
    if is_s3(url):
        bucket, key = split_s3(url)
        with map_storage_errors(url):
            resp = s3_client().get_object(Bucket=bucket, Key=key)
            return resp["Body"].read(), str(resp.get("ETag", "")).strip('"')
    data = read_bytes(url)
    return data, hashlib.md5(data, usedforsecurity=False).hexdigest()


def replace_if(url: str, data: bytes, etag: str | None) -> None:
    """Write a small object only if it is still what the caller read: its ETag is ``etag``, or
    (``etag`` None) it does not exist. Otherwise ObjectChanged, and nothing is written.

    S3 decides atomically (``If-Match`` / ``If-None-Match: *``); a local directory is locked
    (flock) for the compare and the rename, which holds for every writer using this function."""
    if is_s3(url):
        bucket, key = split_s3(url)
        condition = {"IfMatch": f'"{etag}"'} if etag is not None else {"IfNoneMatch": "*"}
        try:
            with map_storage_errors(url):
                s3_client().put_object(Bucket=bucket, Key=key, Body=data, **condition)
        except (VersionExists, ObjectMissing) as exc:  # 412/409, or 404: deleted since read
            raise ObjectChanged(f"'{url}' was changed by someone else since it was read") from exc
        return
    import fcntl

    target = Path(url)
    with map_storage_errors(url):
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(target.parent, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                now: str | None = read_with_etag(url)[1]
            except ObjectMissing:
                now = None
            if now != etag:
                raise ObjectChanged(f"'{url}' was changed by someone else since it was read")
            write_bytes(url, data)
        finally:
            os.close(lock)  # releases the lock


class Writer:
    """Streaming writer: S3 multipart upload in PART_SIZE parts, or a temp file renamed into place.

    Nothing is visible at the target until ``commit``; ``abort`` (also on any exception inside
    the ``with``) removes every trace, including an open multipart upload.
    """

    def __init__(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        if metadata and not is_s3(url):
            raise BadArgument(f"cannot store metadata with '{url}': only S3 objects carry it")
        self.metadata = dict(metadata or {})
        self.create_only = create_only
        # create-only, but an existing object with exactly these bytes counts as written: a rerun
        # (or a concurrent duplicate) of a deterministic run then writes nothing new
        self.identical_ok = identical_ok
        self.size = 0
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._tmp: IO[bytes] | None = None
        self._discarded = False
        _fault(f"open:{url.rsplit('/', 1)[-1]}")
        if not is_s3(url):
            if "://" in url:
                raise StorageUnavailable(f"cannot write to '{url}': only local paths and s3://")
            target = Path(url)
            with map_storage_errors(url):
                target.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in commit/abort
                    dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
                )

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._tmp is not None:
            with map_storage_errors(self.url):
                self._tmp.write(data)
            return
        self._buf += data
        if len(self._buf) >= PART_SIZE:
            self._flush_part()

    def _flush_part(self) -> None:
        bucket, key = split_s3(self.url)
        client = s3_client()
        with map_storage_errors(self.url):
            if self._upload_id is None:
                self._upload_id = client.create_multipart_upload(
                    Bucket=bucket, Key=key, Metadata=self.metadata
                )["UploadId"]
            number = len(self._parts) + 1
            resp = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buf),
            )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        _fault(f"after_part:{number}")
        self._buf.clear()

    def commit(self) -> None:
        from scorer import interrupt

        interrupt.check()  # a stop request never lets an output become visible
        _fault(f"commit:{self.url.rsplit('/', 1)[-1]}")
        try:
            self._commit()
        except VersionExists:
            if not (self.identical_ok and self._same_as_existing()):
                raise
            self.abort()  # a refused multipart completion leaves its upload open
        _fault(f"committed:{self.url.rsplit('/', 1)[-1]}")

    def _same_as_existing(self) -> bool:
        info = head(self.url)
        if info.size != self.size:
            return False
        digest = hashlib.sha256()
        with open_read(self.url) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest() == self.sha256

    def _commit(self) -> None:
        if self._tmp is not None:
            self._commit_local()
            return
        bucket, key = split_s3(self.url)
        client = s3_client()
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if self.create_only else {}
        with map_storage_errors(self.url):
            if self._upload_id is None:
                client.put_object(
                    Bucket=bucket, Key=key, Body=bytes(self._buf), Metadata=self.metadata, **extra
                )
            else:
                if self._buf:
                    self._flush_part()
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    **extra,
                )
                self._upload_id = None

    def _commit_local(self) -> None:
        assert self._tmp is not None
        tmp_path = self._tmp.name
        with map_storage_errors(self.url):
            self._tmp.flush()
            os.fsync(self._tmp.fileno())
            # NamedTemporaryFile is 0600; published files must be readable by other users
            # (e.g. a non-root container reading a local registry).
            os.fchmod(self._tmp.fileno(), 0o644)
            self._tmp.close()
            try:
                if self.create_only:
                    try:
                        os.link(tmp_path, self.url)
                    except FileExistsError as exc:
                        raise VersionExists(
                            f"'{self.url}' already exists and is never overwritten"
                        ) from exc
                else:
                    os.replace(tmp_path, self.url)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_path)

    def abort(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp.name)
            return
        if self._upload_id is not None:
            bucket, key = split_s3(self.url)
            with contextlib.suppress(Exception):
                s3_client().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=self._upload_id)
            self._upload_id = None

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


def open_write(
    url: str,
    *,
    create_only: bool = False,
    identical_ok: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Writer:
    return Writer(url, create_only=create_only, identical_ok=identical_ok, metadata=metadata)


def abort_uploads(prefix_url: str) -> int:
    """Abort every open multipart upload under an S3 prefix (left by a killed writer); returns
    how many. Call it only where nothing may still be writing, e.g. under a committed run."""
    if not is_s3(prefix_url):
        return 0
    bucket, prefix = split_s3(prefix_url)
    client = s3_client()
    n = 0
    with map_storage_errors(prefix_url):
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for up in page.get("Uploads", []):
                with contextlib.suppress(Exception):  # gone already: someone else aborted it
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]
                    )
                    n += 1
    return n
