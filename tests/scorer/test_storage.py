"""The local stores' small contracts the refactors of issue 13 keep: what a write with metadata
or to a read-only URL is refused with, and a local file's content hash as its version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scorer import service, storage
from scorer.errors import BadArgument, StorageUnavailable
from scorer.layout import ObjectVersion


def test_metadata_is_refused_for_a_local_path_and_a_read_only_url(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(BadArgument, match=r"cannot store metadata .* only S3 objects carry it"):
        storage.open_write(str(target), metadata={"a": "b"})
    assert not target.exists()
    url = "http://example.invalid/out.csv"
    with pytest.raises(BadArgument, match=r"cannot store metadata with 'http://"):
        storage.open_write(url, metadata={"a": "b"})
    with pytest.raises(StorageUnavailable, match=r"cannot write to 'http://.*only local paths"):
        storage.open_write(url)


def test_a_local_file_is_versioned_by_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    body = b"a,b\n" + b"1,2\n" * 600_000  # several read chunks
    src.write_bytes(body)
    want = ObjectVersion("", str(src), None, hashlib.sha256(body).hexdigest())
    assert service.local_version(str(src)) == want
    with pytest.raises(FileNotFoundError):  # the CLI checks the path first (scorer/__main__.py)
        service.local_version(str(tmp_path / "missing.csv"))
