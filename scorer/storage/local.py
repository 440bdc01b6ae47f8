"""Local paths (and, read-only, other fsspec URLs such as ``http://`` or ``gs://``).

Create-only writes are an ``os.link`` of a finished temp file: it fails if the target exists
and never shows a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from scorer.errors import (
    BadArgument,
    ObjectChanged,
    ObjectMissing,
    StorageUnavailable,
    VersionExists,
)
from scorer.storage.base import ObjectInfo, Writer, map_storage_errors


class LocalStore:
    """Files under a local directory tree."""

    def head(self, url: str, version_id: str | None = None) -> ObjectInfo:
        with map_storage_errors(url):
            st = Path(url).stat()
            if not Path(url).is_file():
                raise ObjectMissing(f"'{url}' is not a file")
            return ObjectInfo(url=url, size=st.st_size, last_modified=st.st_mtime)

    def open_read(
        self, url: str, version_id: str | None = None, *, if_match: str | None = None
    ) -> IO[bytes]:
        with map_storage_errors(url):
            return open(url, "rb")

    def read_with_etag(self, url: str) -> tuple[bytes, str]:
        """The MD5 of a local file's bytes stands in for an ETag (what S3 gives a single-part
        object)."""
        with self.open_read(url) as fh:
            data = fh.read()
        return data, hashlib.md5(data, usedforsecurity=False).hexdigest()

    def list_objects(self, prefix_url: str) -> Iterator[ObjectInfo]:
        with map_storage_errors(prefix_url):
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

    def delete(self, url: str) -> None:
        with map_storage_errors(url), contextlib.suppress(FileNotFoundError):
            Path(url).unlink()

    def replace_if(self, url: str, data: bytes, etag: str | None) -> None:
        """The directory is locked (flock) for the compare and the rename, which holds for
        every writer using this method."""
        import fcntl

        target = Path(url)
        with map_storage_errors(url):
            target.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(target.parent, os.O_RDONLY)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    now: str | None = self.read_with_etag(url)[1]
                except ObjectMissing:
                    now = None
                if now != etag:
                    raise ObjectChanged(f"'{url}' was changed by someone else since it was read")
                with self.open_write(url) as out:
                    out.write(data)
            finally:
                os.close(lock)  # releases the lock

    def open_write(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,  # a file has no parts to size
    ) -> Writer:
        _refuse_metadata(url, metadata)
        return LocalWriter(self, url, create_only=create_only, identical_ok=identical_ok)

    def abort_uploads(self, prefix_url: str) -> int:
        return 0  # a killed local writer leaves only a dot-file, which listings skip


class FsspecStore(LocalStore):
    """Other fsspec URLs (``http://``, ``gs://`` …): read, never written."""

    def head(self, url: str, version_id: str | None = None) -> ObjectInfo:
        import fsspec

        with map_storage_errors(url):
            fs, path = fsspec.core.url_to_fs(url)
            info = fs.info(path)
            return ObjectInfo(url=url, size=int(info.get("size") or 0))

    def open_read(
        self, url: str, version_id: str | None = None, *, if_match: str | None = None
    ) -> IO[bytes]:
        import fsspec

        with map_storage_errors(url):
            return fsspec.open(url, "rb").open()

    def open_write(
        self,
        url: str,
        *,
        create_only: bool = False,
        identical_ok: bool = False,
        metadata: Mapping[str, str] | None = None,
        expected: int | None = None,  # a file has no parts to size
    ) -> Writer:
        _refuse_metadata(url, metadata)
        raise StorageUnavailable(f"cannot write to '{url}': only local paths and s3://")


def _refuse_metadata(url: str, metadata: Mapping[str, str] | None) -> None:
    if metadata:
        raise BadArgument(f"cannot store metadata with '{url}': only S3 objects carry it")


class LocalWriter(Writer):
    """A temp file beside the target, renamed (or, create-only, hard-linked) into place."""

    def __init__(
        self, store: LocalStore, url: str, *, create_only: bool = False, identical_ok: bool = False
    ) -> None:
        super().__init__(store, url, create_only=create_only, identical_ok=identical_ok)
        target = Path(url)
        with map_storage_errors(url):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in commit/abort
                dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
            )

    def _put(self, data: bytes) -> None:
        with map_storage_errors(self.url):
            self._tmp.write(data)

    def _commit(self) -> None:
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
        self._tmp.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp.name)
