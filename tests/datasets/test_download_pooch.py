"""Downloads go through pooch.retrieve with the manifest's sha256; file:// mirrors work too."""

from __future__ import annotations

import shutil

import pooch
import pytest

import biostruct as bs
from biostruct.datasets import manifests as mf
from biostruct.errors import ChecksumError


@pytest.fixture
def file_mirror(data_dir, tmp_path, monkeypatch):
    sub = mf.get_manifest("pbmc_multiome_tiny").subdir
    shutil.copytree(data_dir / sub, tmp_path / "mirror" / sub)
    monkeypatch.delenv("BIOSTRUCT_DATA_DIR", raising=False)
    monkeypatch.delenv("BIOSTRUCT_DATA_URL", raising=False)
    return tmp_path / "mirror"


def test_file_mirror_through_pooch_with_known_hash(file_mirror, tmp_path, monkeypatch):
    calls = []
    real = pooch.retrieve

    def spy(url, known_hash, **kw):
        calls.append((url, known_hash))
        return real(url, known_hash, **kw)

    monkeypatch.setattr(pooch, "retrieve", spy)
    entry = mf.get_manifest("pbmc_multiome_tiny").files[0]
    got = bs.datasets.fetch(
        "pbmc_multiome_tiny", cache_dir=tmp_path / "c", base_url=file_mirror.as_uri()
    )
    assert got[entry.key].stat().st_size == entry.size
    assert calls == [
        (f"{file_mirror.as_uri()}/multiomics/pbmc_multiome_tiny/{entry.path}",
         f"sha256:{entry.sha256}")
    ]  # fmt: skip


def test_damaged_file_mirror_is_refused(file_mirror, tmp_path):
    entry = mf.get_manifest("pbmc_multiome_tiny").files[0]
    served = file_mirror / "multiomics" / "pbmc_multiome_tiny" / entry.path
    served.write_bytes(served.read_bytes()[:1000])
    with pytest.raises(ChecksumError, match="got 1000 bytes"):
        bs.datasets.fetch(
            "pbmc_multiome_tiny", cache_dir=tmp_path / "c", base_url=file_mirror.as_uri()
        )
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
