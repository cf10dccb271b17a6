"""The per-process checksum cache does not trust a file changed after its check, even when its
path, size and mtime are the same again (issue #14)."""

from __future__ import annotations

import hashlib
import os

import pytest

from biostruct.datasets.manifests import FileEntry, verify_file
from biostruct.errors import ChecksumError


def _entry(data: bytes) -> FileEntry:
    sha = hashlib.sha256(data).hexdigest()
    return FileEntry(key="x", path="x.bin", url=None, sha256=sha, size=len(data))


def test_same_size_and_mtime_after_an_edit_is_hashed_again(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"A" * 4096)
    entry = _entry(b"A" * 4096)
    verify_file(path, entry)  # checked and remembered
    st = path.stat()
    with path.open("r+b") as fh:  # same size, one byte changed, mtime set back
        fh.seek(100)
        fh.write(b"B")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        verify_file(path, entry)


def test_replaced_file_is_hashed_again(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"A" * 64)
    entry = _entry(b"A" * 64)
    verify_file(path, entry)
    st = path.stat()
    other = tmp_path / "y.bin"
    other.write_bytes(b"C" * 64)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    with pytest.raises(ChecksumError):
        verify_file(path, entry)


def test_an_unchanged_file_is_not_hashed_twice(tmp_path, monkeypatch):
    from biostruct.datasets import manifests

    path = tmp_path / "x.bin"
    path.write_bytes(b"A" * 64)
    entry = _entry(b"A" * 64)
    verify_file(path, entry)
    monkeypatch.setattr(manifests, "sha256_file", lambda p: pytest.fail("hashed again"))
    verify_file(path, entry)
