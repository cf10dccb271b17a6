"""Dataset manifests and checksum-verified file resolution.

Each dataset is described by ``biostruct/datasets/manifests/<name>.yaml`` (identical copies live
in the repository's top-level ``data_manifests/`` folder): its files with upstream URL, sha256 and
size, its license and citation, the folder it occupies in a local data directory (``subdir``) and
the loaders that build analysis-ready objects from it.

Where files come from, in order:

1. a local data directory: ``data_dir=`` or the environment variable ``BIOSTRUCT_DATA_DIR``
   (layout ``<data_dir>/<subdir>/<path>``, e.g. ``grn/sim690/test_10traj.csv``);
2. the download cache: ``cache_dir=``, ``BIOSTRUCT_CACHE_DIR`` or ``~/.cache/biostruct``
   (same layout);
3. a download (``download=True``): from a mirror with the data-directory layout (``base_url=`` or
   ``BIOSTRUCT_DATA_URL``), else from the upstream URL pinned in the manifest, with
   ``pooch.retrieve(known_hash="sha256:...")``: the file is written to a temporary name, its
   sha256 is checked, and only then is it moved into the cache; a corrupted or truncated download raises :class:`~biostruct.errors.ChecksumError` and
   leaves nothing behind.

Every file is verified against its sha256 before use. A verified file is remembered for the
rest of the process by (path, device, inode, size, mtime, ctime), so repeated loads do not hash
again; any write to the file, or a replacement, changes its ctime or inode (which, unlike the
mtime, no user can set back), so a file changed after its check is hashed again.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from biostruct.errors import ChecksumError, DatasetNotFoundError

__all__ = [
    "FileEntry",
    "Manifest",
    "manifest_dir",
    "manifests",
    "get_manifest",
    "sha256_file",
    "verify_file",
    "fetch_files",
]

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
_CHUNK = 1 << 20
_VERIFIED: dict[tuple[object, ...], bool] = {}


def _verified_key(path: Path, sha256: str) -> tuple[object, ...]:
    """What identifies one state of a file: any write or replacement changes ctime or inode."""
    st = path.stat()
    return (
        str(path.resolve()),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        sha256,
    )


@dataclass(frozen=True)
class FileEntry:
    """One file of a dataset: ``path`` relative to the dataset's ``subdir``."""

    key: str
    path: str
    url: str | None
    sha256: str
    size: int
    note: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A dataset manifest (one YAML file)."""

    name: str
    title: str
    description: str
    subdir: str
    loaders: tuple[str, ...]
    source: str
    license: str
    citation: str
    files: tuple[FileEntry, ...]

    def file(self, key: str) -> FileEntry:
        """The file entry with this ``key``."""
        for f in self.files:
            if f.key == key:
                return f
        raise DatasetNotFoundError(
            f"dataset {self.name!r} has no file {key!r} (files: {[f.key for f in self.files]})",
            field="key",
            fix="use one of the listed file keys.",
        )


def manifest_dir() -> Path:
    """Folder of the manifests shipped inside the package."""
    return MANIFEST_DIR


def _parse(path: Path) -> Manifest:
    doc = yaml.safe_load(path.read_text())
    files = tuple(
        FileEntry(
            key=str(f["key"]),
            path=str(f["path"]),
            url=f.get("url"),
            sha256=str(f["sha256"]).lower(),
            size=int(f["size"]),
            note=f.get("note"),
        )
        for f in doc["files"]
    )
    return Manifest(
        name=str(doc["name"]),
        title=str(doc.get("title", "")),
        description=str(doc.get("description", "")),
        subdir=str(doc["subdir"]),
        loaders=tuple(doc.get("loaders", [])),
        source=str(doc.get("source", "")),
        license=str(doc.get("license", "")),
        citation=str(doc.get("citation", "")),
        files=files,
    )


@cache
def manifests() -> dict[str, Manifest]:
    """All shipped manifests, by dataset name."""
    out = {}
    for p in sorted(MANIFEST_DIR.glob("*.yaml")):
        m = _parse(p)
        out[m.name] = m
    return out


def get_manifest(name: str) -> Manifest:
    """The manifest of a dataset, looked up by dataset name or by loader name."""
    ms = manifests()
    if name in ms:
        return ms[name]
    for m in ms.values():
        if name in m.loaders:
            return m
    raise DatasetNotFoundError(
        f"unknown dataset {name!r}",
        field="name",
        fix=f"use one of {sorted(ms)} or a loader from biostruct.datasets.list().",
    )


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | Path, entry: FileEntry) -> None:
    """Check size and sha256 of ``path`` against ``entry`` (cached per process).

    Raises
    ------
    ChecksumError
        Naming the file, the expected and the actual size or sha256.
    """
    path = Path(path)
    st = path.stat()
    key = _verified_key(path, entry.sha256)
    if _VERIFIED.get(key):
        return
    if st.st_size != entry.size:
        raise ChecksumError(
            f"size mismatch: expected {entry.size} bytes, got {st.st_size} "
            f"(expected sha256 {entry.sha256})",
            field=str(path),
            fix="the file is truncated or a different version; delete it and fetch it again.",
        )
    got = sha256_file(path)
    if got != entry.sha256:
        raise ChecksumError(
            f"sha256 mismatch: expected {entry.sha256}, got {got}",
            field=str(path),
            fix="the file is corrupted or a different version; delete it and fetch it again.",
        )
    _VERIFIED[key] = True


def _default_cache_dir() -> Path:
    env = os.environ.get("BIOSTRUCT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "biostruct"


def _file_url_downloader(url: str, output_file: str, _pooch: object) -> None:
    """pooch downloader for ``file://`` mirrors (pooch itself knows http, https, ftp, doi)."""
    src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    with open(src, "rb") as fin, open(output_file, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            fout.write(chunk)


def _download(url: str, dest: Path, entry: FileEntry) -> None:
    """Download ``url`` to ``dest`` with ``pooch.retrieve(known_hash="sha256:...")``.

    pooch streams to a temporary file beside ``dest``, checks the sha256 and only then moves it
    into place; on a mismatch it deletes the temporary file. The size and sha256 actually
    received are recorded here so that the error can name them.
    """
    import pooch
    import requests

    received: dict[str, object] = {}
    if url.startswith("file:"):
        inner = _file_url_downloader
    else:
        inner = pooch.HTTPDownloader(progressbar=False, timeout=60)

    def downloader(u: str, output_file: str, p: object) -> None:
        inner(u, output_file, p)
        received["size"] = os.path.getsize(output_file)
        received["sha256"] = sha256_file(output_file)

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{entry.sha256}",
            fname=dest.name,
            path=dest.parent,
            downloader=downloader,
            progressbar=False,
        )
    except (requests.exceptions.RequestException, OSError) as exc:
        raise DatasetNotFoundError(
            f"download of {url} failed ({exc})",
            field=entry.path,
            fix="check the network, or set BIOSTRUCT_DATA_DIR to a local copy of the data.",
        ) from exc
    except ValueError as exc:  # pooch: the sha256 does not match
        raise ChecksumError(
            f"download from {url} does not match the manifest: expected {entry.size} bytes "
            f"with sha256 {entry.sha256}, got {received.get('size')} bytes with sha256 "
            f"{received.get('sha256')}; nothing was kept",
            field=entry.path,
            fix="retry; if it persists the upstream file changed: report it.",
        ) from exc
    st = dest.stat()
    if st.st_size != entry.size:  # same sha256, other size: a manifest error, not a download one
        dest.unlink()
        raise ChecksumError(
            f"the manifest's size {entry.size} does not fit its sha256 (got {st.st_size} bytes)",
            field=entry.path,
            fix="correct the manifest entry.",
        )
    _VERIFIED[_verified_key(dest, entry.sha256)] = True


def fetch_files(
    manifest: Manifest,
    keys: list[str] | tuple[str, ...] | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> dict[str, Path]:
    """Resolve, verify (and if needed download) files of a manifest.

    Parameters
    ----------
    manifest
        The dataset manifest.
    keys
        File keys to resolve; ``None`` for all files.
    data_dir
        Local data directory (default ``BIOSTRUCT_DATA_DIR``); looked up first, never written.
    cache_dir
        Download cache (default ``BIOSTRUCT_CACHE_DIR`` or ``~/.cache/biostruct``).
    download
        Download missing files; with ``False`` a missing file raises.
    base_url
        Mirror with the data-directory layout (default ``BIOSTRUCT_DATA_URL``); overrides the
        upstream URLs.

    Returns
    -------
    dict
        File key -> path of the verified file.
    """
    entries = manifest.files if keys is None else tuple(manifest.file(k) for k in keys)
    if data_dir is None and os.environ.get("BIOSTRUCT_DATA_DIR"):
        data_dir = os.environ["BIOSTRUCT_DATA_DIR"]
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    mirror = base_url if base_url is not None else os.environ.get("BIOSTRUCT_DATA_URL")
    out: dict[str, Path] = {}
    for e in entries:
        rel = f"{manifest.subdir}/{e.path}"
        if data_dir is not None:
            local = Path(data_dir) / rel
            if local.is_file():
                verify_file(local, e)
                out[e.key] = local
                continue
        cached = cache / rel
        if cached.is_file():
            try:
                verify_file(cached, e)
                out[e.key] = cached
                continue
            except ChecksumError:
                if not download:
                    raise
                cached.unlink()  # our own cache: replace a damaged copy
        if not download:
            raise DatasetNotFoundError(
                f"file {rel} of dataset {manifest.name!r} is not in the data directory "
                f"({data_dir}) nor in the cache ({cache}), and download=False",
                field=e.key,
                fix="set BIOSTRUCT_DATA_DIR to a local copy of the data, or pass download=True.",
            )
        if mirror:
            url = f"{mirror.rstrip('/')}/{rel}"
        elif e.url:
            url = e.url
        else:
            raise DatasetNotFoundError(
                f"file {rel} of dataset {manifest.name!r} has no public download ({e.note})",
                field=e.key,
                fix="set BIOSTRUCT_DATA_DIR to a local copy of the data that holds it.",
            )
        _download(url, cached, e)
        out[e.key] = cached
    return out
