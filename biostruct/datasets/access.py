"""The dataset API: ``list``, ``catalog``, ``fetch`` and ``load``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from biostruct.datasets.loaders import LOADERS
from biostruct.datasets.manifests import fetch_files, get_manifest, manifests
from biostruct.errors import DatasetNotFoundError

__all__ = ["list_datasets", "catalog", "fetch", "load"]


def _unknown(name: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"unknown dataset {name!r}",
        field="name",
        fix=f"use one of {sorted(LOADERS)} (see biostruct.datasets.list()).",
    )


def list_datasets(*, embedded: bool | None = None) -> list[str]:
    """Names accepted by :func:`load`, sorted.

    Parameters
    ----------
    embedded
        ``True``: only datasets shipped inside the package (no download, no data directory);
        ``False``: only manifest-backed ones; ``None``: all. :func:`catalog` shows which is which.
    """
    return sorted(n for n, s in LOADERS.items() if embedded is None or s.embedded == embedded)


def catalog() -> pd.DataFrame:
    """One row per loadable dataset: ``name``, ``embedded``, ``manifest``, ``license``,
    ``size_mb`` (bytes of the files it needs) and ``description``."""
    rows = []
    for name in list_datasets():
        s = LOADERS[name]
        if s.embedded:
            rows.append((name, True, "", s.license, 0.0, s.description))
            continue
        m = get_manifest(s.manifest)  # type: ignore[arg-type]
        size = sum(m.file(k).size for k in s.keys) / 1e6
        rows.append((name, False, m.name, m.license, round(size, 2), s.description))
    return pd.DataFrame(
        rows, columns=["name", "embedded", "manifest", "license", "size_mb", "description"]
    ).set_index("name")


def fetch(
    name: str,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> dict[str, Path]:
    """Make a dataset's files available locally and verify their sha256.

    Parameters
    ----------
    name
        A manifest name (``sim690``, ``snareseq_mop``, ...: all of its files) or a loader name
        (``hema_b``, ``snareseq``, ...: the files that loader needs).
    data_dir
        Local copy of the data (layout ``<data_dir>/<subdir>/<file>``); default
        ``BIOSTRUCT_DATA_DIR``.
    cache_dir
        Download cache; default ``BIOSTRUCT_CACHE_DIR`` or ``~/.cache/biostruct``.
    download
        Download what is neither in ``data_dir`` nor in the cache.
    base_url
        A mirror with the data-directory layout; default ``BIOSTRUCT_DATA_URL``, else the
        upstream URLs of the manifest.

    Returns
    -------
    dict
        File key -> path of the verified file.

    Raises
    ------
    DatasetNotFoundError
        Unknown name, or a file that is not local and cannot be downloaded.
    ChecksumError
        A local or downloaded file whose size or sha256 differs from the manifest.
    """
    if name in manifests():
        return fetch_files(
            manifests()[name],
            None,
            data_dir=data_dir,
            cache_dir=cache_dir,
            download=download,
            base_url=base_url,
        )
    spec = LOADERS.get(name)
    if spec is None:
        raise _unknown(name)
    if spec.embedded:
        return {}
    return fetch_files(
        get_manifest(spec.manifest),  # type: ignore[arg-type]
        spec.keys,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        base_url=base_url,
    )


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> Any:
    """Load a dataset as an analysis-ready AnnData or MuData.

    Parameters
    ----------
    name
        One of :func:`list_datasets` (``bs.datasets.list()``).
    data_dir, cache_dir, download, base_url
        Where files are found or downloaded to; see :func:`fetch`. Ignored for embedded
        datasets.

    Returns
    -------
    AnnData or MuData
        See :mod:`biostruct.datasets` for the fields of each dataset. ``uns["dataset"]``
        records the name, license, citation and the sha256 of every file used.
    """
    spec = LOADERS.get(name)
    if spec is None:
        raise _unknown(name)
    if spec.embedded:
        return spec.build()
    files = fetch(
        name, data_dir=data_dir, cache_dir=cache_dir, download=download, base_url=base_url
    )
    return spec.build(files, get_manifest(spec.manifest))  # type: ignore[arg-type]
