"""Thin storage adapter: local paths and ``s3://`` URLs behind one small interface.

``for_url`` chooses the store for a URL once (``s3://`` → S3Store over the process's one boto3
client, other ``scheme://`` → a read-only fsspec store, anything else → LocalStore); the
functions below are what the rest of the code calls, each a thin call on that store.
Create-only writes are what make manifests and model versions immutable (see each store).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

from scorer.errors import ObjectMissing
from scorer.storage.base import (
    MIN_PART_SIZE,
    ObjectInfo,
    PartPlan,
    Store,
    Writer,
    check_fits,
    configure,
    expected_output,
    map_storage_errors,
    plan_parts,
)
from scorer.storage.local import FsspecStore, LocalStore
from scorer.storage.s3 import CLIENT_OVERRIDES, S3Store, configure_client, s3_client, split_s3

__all__ = [
    "CLIENT_OVERRIDES",
    "MIN_PART_SIZE",
    "ObjectInfo",
    "ObjectMissing",
    "PartPlan",
    "Store",
    "Writer",
    "abort_uploads",
    "check_fits",
    "configure",
    "configure_client",
    "delete",
    "exists",
    "expected_output",
    "for_url",
    "head",
    "is_s3",
    "join",
    "list_objects",
    "list_versions",
    "map_storage_errors",
    "open_read",
    "open_write",
    "plan_parts",
    "read_bytes",
    "read_with_etag",
    "replace_if",
    "s3_client",
    "split_s3",
    "write_bytes",
]

# One instance per kind: they hold no per-URL state (the S3 client is cached per process).
_S3 = S3Store()
_LOCAL = LocalStore()
_FSSPEC = FsspecStore()


def for_url(url: str) -> Store:
    """The one place that tells storage kinds apart."""
    if is_s3(url):
        return _S3
    if "://" in url:
        return _FSSPEC
    return _LOCAL


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def join(base: str, *parts: str) -> str:
    """Join URL or path segments with '/', never doubling separators."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}" if part else out
    return out


# --- reading ------------------------------------------------------------------------------------
def head(url: str, version_id: str | None = None) -> ObjectInfo:
    return for_url(url).head(url, version_id)


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
    return for_url(url).open_read(url, version_id, if_match=if_match)


def read_bytes(url: str, version_id: str | None = None) -> bytes:
    with open_read(url, version_id) as fh:
        return fh.read()


def read_with_etag(url: str) -> tuple[bytes, str]:
    """A small object's bytes and the token a conditional write compares: S3's ETag, or the
    MD5 of a local file's bytes (what S3 gives a single-part object)."""
    return for_url(url).read_with_etag(url)


def list_objects(prefix_url: str) -> Iterator[ObjectInfo]:
    """Every object under a prefix (recursively), latest versions only, in key order."""
    return for_url(prefix_url).list_objects(prefix_url)


def list_versions(bucket: str, prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(key, entry, is_delete_marker) for every version under a prefix (S3 only)."""
    return _S3.list_versions(bucket, prefix)


def delete(url: str) -> None:
    for_url(url).delete(url)


# --- writing ------------------------------------------------------------------------------------
def open_write(
    url: str,
    *,
    create_only: bool = False,
    identical_ok: bool = False,
    metadata: Mapping[str, str] | None = None,
    expected: int | None = None,
) -> Writer:
    """A streaming writer: nothing is visible at ``url`` until it commits (leaving its ``with``
    block); ``identical_ok``: create-only, but the same bytes already there count as written;
    ``expected``: about how many bytes it will take (S3 sizes its parts from it)."""
    return for_url(url).open_write(
        url, create_only=create_only, identical_ok=identical_ok, metadata=metadata,
        expected=expected,
    )  # fmt: skip


def write_bytes(
    url: str, data: bytes, *, create_only: bool = False, metadata: Mapping[str, str] | None = None
) -> str:
    """Write a whole object; returns its sha256. ``create_only`` refuses to replace anything;
    ``metadata``: S3 user metadata stored with the object (S3 only)."""
    with open_write(url, create_only=create_only, metadata=metadata) as out:
        out.write(data)
    return out.sha256


def replace_if(url: str, data: bytes, etag: str | None) -> None:
    """Write a small object only if it is still what the caller read: its ETag is ``etag``, or
    (``etag`` None) it does not exist. Otherwise ObjectChanged, and nothing is written."""
    for_url(url).replace_if(url, data, etag)


def abort_uploads(prefix_url: str) -> int:
    """Abort every open multipart upload under an S3 prefix (left by a killed writer); returns
    how many. Call it only where nothing may still be writing, e.g. under a committed run."""
    return for_url(prefix_url).abort_uploads(prefix_url)
