"""The download path, against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import biostruct as bs
from biostruct.datasets import manifests as mf
from biostruct.errors import ChecksumError, DatasetNotFoundError


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def mirror(data_dir, tmp_path, monkeypatch):
    """A mirror with the data-directory layout holding copies of sim350 and the tiny h5mu."""
    root = tmp_path / "mirror"
    for name in ("sim350", "pbmc_multiome_tiny"):
        sub = mf.get_manifest(name).subdir
        shutil.copytree(data_dir / sub, root / sub)
    requests: list[str] = []
    handler = functools.partial(type("H", (_Handler,), {"requests": requests}), directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("BIOSTRUCT_DATA_DIR", raising=False)
    monkeypatch.delenv("BIOSTRUCT_DATA_URL", raising=False)
    monkeypatch.setenv("BIOSTRUCT_CACHE_DIR", str(tmp_path / "unused_cache"))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield root, url, requests
    server.shutdown()
    server.server_close()


def _leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_download_into_cache_then_reuse(mirror, tmp_path, data_dir):
    root, url, requests = mirror
    cache = tmp_path / "cache"
    paths = bs.datasets.fetch("sim350", cache_dir=cache, base_url=url)
    m = mf.get_manifest("sim350")
    assert set(paths) == {f.key for f in m.files}
    for f in m.files:
        p = paths[f.key]
        assert p == cache / m.subdir / f.path
        assert p.read_bytes() == (data_dir / m.subdir / f.path).read_bytes()
    assert len(requests) == len(m.files)
    assert not [p for p in _leftovers(cache) if p.name.endswith(".part")]
    # second time: everything comes from the cache, no request
    again = bs.datasets.fetch("sim350", cache_dir=cache, base_url=url)
    assert again == paths and len(requests) == len(m.files)
    # the loader works on downloaded files and gives the same object as from the data dir
    a = bs.datasets.load("sim350", cache_dir=cache, download=False)
    b = bs.datasets.load("sim350", data_dir=data_dir, download=False)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.varp["true_network"], b.varp["true_network"])


def test_env_var_mirror_and_cache(mirror, tmp_path, monkeypatch):
    root, url, requests = mirror
    monkeypatch.setenv("BIOSTRUCT_DATA_URL", url)
    monkeypatch.setenv("BIOSTRUCT_CACHE_DIR", str(tmp_path / "envcache"))
    m = bs.datasets.load("pbmc_multiome_tiny")
    assert m.n_obs == 1000
    assert requests == ["/multiomics/pbmc_multiome_tiny/test_rna_atac.h5mu"]
    assert (tmp_path / "envcache" / "multiomics" / "pbmc_multiome_tiny").is_dir()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_bad_download_is_rejected_and_not_kept(mirror, tmp_path, damage):
    root, url, _ = mirror
    entry = mf.get_manifest("pbmc_multiome_tiny").files[0]
    served = root / "multiomics" / "pbmc_multiome_tiny" / entry.path
    raw = bytearray(served.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    else:
        raw = raw[: len(raw) // 3]
    served.write_bytes(bytes(raw))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as err:
        bs.datasets.fetch("pbmc_multiome_tiny", cache_dir=cache, base_url=url)
    msg = str(err.value)
    assert entry.path in msg and entry.sha256 in msg and "got" in msg
    assert f"{entry.size} bytes" in msg and f"{len(raw)} bytes" in msg
    assert _leftovers(cache) == []


def test_damaged_cache_file_is_replaced(mirror, tmp_path):
    root, url, requests = mirror
    cache = tmp_path / "cache"
    path = bs.datasets.fetch("pbmc_multiome_tiny", cache_dir=cache, base_url=url)["h5mu"]
    good = path.read_bytes()
    path.write_bytes(good[:100])
    with pytest.raises(ChecksumError):
        bs.datasets.fetch("pbmc_multiome_tiny", cache_dir=cache, download=False)
    again = bs.datasets.fetch("pbmc_multiome_tiny", cache_dir=cache, base_url=url)["h5mu"]
    assert again.read_bytes() == good and len(requests) == 2


def test_missing_on_server(mirror, tmp_path):
    root, url, _ = mirror
    with pytest.raises(DatasetNotFoundError, match="404|Not Found"):
        bs.datasets.fetch("hema_mono", cache_dir=tmp_path / "c", base_url=url)
    assert _leftovers(tmp_path / "c") == []
