"""S3 through boto3, which honours ``AWS_ENDPOINT_URL``: the same code talks to a local moto
server or to AWS. Create-only writes are ``If-None-Match: *``; large objects go up as multipart
uploads that nothing sees before they complete."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from typing import IO, Any, cast

from scorer import layout
from scorer.errors import (
    ObjectChanged,
    ObjectMissing,
    SourceGone,
    StorageUnavailable,
    VersionExists,
)
from scorer.storage import base
from scorer.storage.base import ObjectInfo, Writer, map_storage_errors, status


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageUnavailable(f"'{url}' names no bucket; use s3://BUCKET/PREFIX")
    return bucket, key


# Client overrides for an interactive process (the UI): a user should hear within seconds that
# S3 is down, where a batch run rather waits out a blip. Empty: the defaults below.
CLIENT_OVERRIDES: dict[str, float] = {}
_overrides_lock = threading.Lock()  # the UI enters them from its script threads


def configure_client(*, connect_timeout: float, read_timeout: float, attempts: int) -> None:
    """Short timeouts and few attempts for this process's S3 client (an interactive app)."""
    wanted = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "attempts": attempts,
    }
    with _overrides_lock:
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
    overrides = dict(CLIENT_OVERRIDES)
    config = Config(
        retries={
            # total attempts, the first included (botocore's own max_attempts counts retries)
            "total_max_attempts": int(overrides.get("attempts", total)),
            "mode": mode if mode in ("legacy", "standard", "adaptive") else "adaptive",
        },
        connect_timeout=overrides.get("connect_timeout", 5),
        read_timeout=overrides.get("read_timeout", 60),
        max_pool_connections=32,
    )
    return session.client("s3", region_name=region, config=config)


class S3Store:
    """Objects in S3 buckets, through the process's one client."""

    def head(self, url: str, version_id: str | None = None) -> ObjectInfo:
        with map_storage_errors(url):
            bucket, key = split_s3(url)
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                kwargs["VersionId"] = version_id
            resp = s3_client().head_object(**kwargs)
            return ObjectInfo(
                url=url,
                size=int(resp["ContentLength"]),
                etag=layout.etag(resp.get("ETag")),
                version_id=resp.get("VersionId") or None,
                last_modified=resp["LastModified"].timestamp() if "LastModified" in resp else 0.0,
                metadata={str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()},
            )

    def open_read(
        self, url: str, version_id: str | None = None, *, if_match: str | None = None
    ) -> IO[bytes]:
        """A stream, never read whole into memory. ``if_match``: the ETag the caller saw; if
        the object was replaced since (an unversioned bucket), that content is gone."""
        with map_storage_errors(url):
            bucket, key = split_s3(url)
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                kwargs["VersionId"] = version_id
            if if_match:
                kwargs["IfMatch"] = f'"{if_match.strip(chr(34))}"'
            try:
                body = s3_client().get_object(**kwargs)["Body"]
            except Exception as exc:
                if if_match and status(exc) == 412:
                    raise SourceGone(
                        f"'{url}' was replaced after its event (ETag {if_match} is gone); "
                        "the new content is scored by its own event"
                    ) from exc
                raise
            return cast(IO[bytes], _S3Stream(body, url))

    def read_with_etag(self, url: str) -> tuple[bytes, str]:
        bucket, key = split_s3(url)
        with map_storage_errors(url):
            resp = s3_client().get_object(Bucket=bucket, Key=key)
            return resp["Body"].read(), layout.etag(resp.get("ETag"))

    def list_objects(self, prefix_url: str) -> Iterator[ObjectInfo]:
        with map_storage_errors(prefix_url):
            bucket, prefix = split_s3(prefix_url)
            pages = (
                s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        url=f"s3://{bucket}/{obj['Key']}",
                        size=int(obj["Size"]),
                        etag=layout.etag(obj.get("ETag")),
                        last_modified=obj["LastModified"].timestamp(),
                    )

    def list_versions(self, bucket: str, prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """(key, entry, is_delete_marker) for every version under a prefix."""
        client = s3_client()
        with map_storage_errors(f"s3://{bucket}/{prefix}"):
            pages = client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for v in page.get("Versions", []):
                    yield v["Key"], v, False
                for d in page.get("DeleteMarkers", []):
                    yield d["Key"], d, True

    def delete(self, url: str) -> None:
        with map_storage_errors(url):
            bucket, key = split_s3(url)
            s3_client().delete_object(Bucket=bucket, Key=key)

    def replace_if(self, url: str, data: bytes, etag: str | None) -> None:
        """S3 decides atomically (``If-Match`` / ``If-None-Match: *``)."""
        bucket, key = split_s3(url)
        condition = {"IfMatch": f'"{etag}"'} if etag is not None else {"IfNoneMatch": "*"}
        try:
            with map_storage_errors(url):
                s3_client().put_object(Bucket=bucket, Key=key, Body=data, **condition)
        except (VersionExists, ObjectMissing) as exc:  # 412/409, or 404: deleted since read
            raise ObjectChanged(f"'{url}' was changed by someone else since it was read") from exc

    def open_write(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> Writer:
        return S3Writer(
            self, url, create_only=create_only, identical_ok=identical_ok, metadata=metadata,
            expected=expected,
        )  # fmt: skip

    def abort_uploads(self, prefix_url: str) -> int:
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


class S3Writer(Writer):
    """One PUT for a small object, else a multipart upload in parts sized from the expected
    output (``base.plan_parts``): S3 takes at most 10,000 of them."""

    def __init__(
        self,
        store: S3Store,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,
    ) -> None:
        self.metadata = dict(metadata or {})
        self._buf = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._plan = base.plan_parts(expected)
        super().__init__(store, url, create_only=create_only, identical_ok=identical_ok)

    def _put(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= self._plan.size(len(self._parts) + 1):
            self._flush_part()

    def _flush_part(self, final: bool = False) -> None:
        """Upload the next part: a part's size of the buffer, or (``final``) all of it."""
        bucket, key = split_s3(self.url)
        client = s3_client()
        with map_storage_errors(self.url):
            if self._upload_id is None:
                self._upload_id = client.create_multipart_upload(
                    Bucket=bucket, Key=key, Metadata=self.metadata
                )["UploadId"]
            number = len(self._parts) + 1
            size = len(self._buf) if final else self._plan.size(number)
            resp = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buf[:size]),
            )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        base.fault(f"after_part:{number}")
        del self._buf[:size]

    def _commit(self) -> None:
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
                    self._flush_part(final=True)
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    **extra,
                )
                self._upload_id = None

    def abort(self) -> None:
        if self._upload_id is not None:
            bucket, key = split_s3(self.url)
            with contextlib.suppress(Exception):
                s3_client().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=self._upload_id)
            self._upload_id = None
