"""Manifests: shipped copies, pinned URLs, checksums of the shared data, local resolution."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import biostruct as bs
from biostruct.datasets import manifests as mf
from biostruct.errors import ChecksumError, DatasetNotFoundError

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "sim690",
    "sim350",
    "hema",
    "breast500",
    "snareseq_mop",
    "pbmc_multiome_tiny",
    "pbmc_citeseq_200",
    "dev_boolode",
    "pbmc10k_cite_scmdc",
    "cbmc_cite_scmdc",
}
PINNED = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")


def test_top_level_copies_are_identical_to_package_manifests():
    shipped = {p.name: p.read_bytes() for p in mf.manifest_dir().glob("*.yaml")}
    top = {p.name: p.read_bytes() for p in (REPO / "data_manifests").glob("*.yaml")}
    assert shipped == top
    assert {n.removesuffix(".yaml") for n in shipped} == EXPECTED


def test_manifest_fields():
    for name, m in mf.manifests().items():
        assert m.name == name
        assert m.license and m.citation and m.loaders and m.subdir
        for f in m.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256)
            assert f.size > 0
            assert f.url is None and f.note or PINNED.match(f.url), (name, f.key)
        assert len({f.key for f in m.files}) == len(m.files)


def test_every_shared_file_is_described_and_matches(data_dir):
    described = set()
    for m in mf.manifests().values():
        for f in m.files:
            p = data_dir / m.subdir / f.path
            assert p.stat().st_size == f.size, p
            assert mf.sha256_file(p) == f.sha256, p
            described.add(p.resolve())
    on_disk = {p.resolve() for p in data_dir.rglob("*") if p.is_file() and p.name != "README.md"}
    assert on_disk == described


def test_list_and_catalog():
    names = bs.datasets.list()
    assert names == sorted(names)
    assert {"sim690", "sim350", "hema_b", "breast500", "snareseq", "pbmc_citeseq"} <= set(names)
    cat = bs.datasets.catalog()
    assert list(cat.index) == names
    assert set(bs.datasets.list(embedded=True)) == set(cat.index[cat["embedded"]])
    assert set(bs.datasets.list(embedded=False)).isdisjoint(bs.datasets.list(embedded=True))
    for name in bs.datasets.list(embedded=False):
        assert cat.loc[name, "manifest"] in EXPECTED


def test_unknown_name():
    with pytest.raises(DatasetNotFoundError, match="sim69") as err:
        bs.datasets.load("sim69")
    assert "sim690" in str(err.value)
    with pytest.raises(DatasetNotFoundError):
        bs.datasets.fetch("nope")


def test_fetch_from_data_dir(data_dir, tmp_path):
    paths = bs.datasets.fetch("sim690", data_dir=data_dir, cache_dir=tmp_path, download=False)
    assert set(paths) == {f.key for f in mf.get_manifest("sim690").files}
    assert all(p.is_relative_to(data_dir) for p in paths.values())
    sub = bs.datasets.fetch("hema_mono", data_dir=data_dir, cache_dir=tmp_path, download=False)
    assert set(sub) == {"mono_train", "prior", "gene_names"}
    assert not any(tmp_path.iterdir())


def test_corrupted_local_file_is_rejected(data_dir, tmp_path):
    m = mf.get_manifest("pbmc_multiome_tiny")
    local = tmp_path / "data" / m.subdir
    local.mkdir(parents=True)
    src = data_dir / m.subdir / m.files[0].path
    dst = local / m.files[0].path
    shutil.copyfile(src, dst)
    raw = bytearray(dst.read_bytes())
    raw[1000] ^= 0xFF
    dst.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError) as err:
        bs.datasets.fetch(
            "pbmc_multiome_tiny", data_dir=tmp_path / "data", cache_dir=tmp_path, download=False
        )
    msg = str(err.value)
    assert str(dst) in msg and m.files[0].sha256 in msg and "got" in msg
    dst.write_bytes(bytes(raw[:-10]))
    with pytest.raises(ChecksumError, match="size mismatch"):
        bs.datasets.fetch(
            "pbmc_multiome_tiny", data_dir=tmp_path / "data", cache_dir=tmp_path, download=False
        )


def test_missing_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("BIOSTRUCT_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        bs.datasets.fetch("sim690", cache_dir=tmp_path, download=False)


def test_verification_is_cached(data_dir, monkeypatch, tmp_path):
    bs.datasets.fetch("sim350", data_dir=data_dir, cache_dir=tmp_path, download=False)
    calls = []
    monkeypatch.setattr(mf, "sha256_file", lambda p: calls.append(p) or "")
    bs.datasets.fetch("sim350", data_dir=data_dir, cache_dir=tmp_path, download=False)
    assert calls == []
