"""Provenance of a run: package versions, input checksums, device, time, seed, config."""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["collect_provenance", "package_versions", "sha256_file"]

_PACKAGES = (
    "biostruct",
    "torch",
    "torchdiffeq",
    "pyro-ppl",
    "numpy",
    "scipy",
    "pandas",
    "anndata",
    "mudata",
    "scanpy",
    "scikit-learn",
    "snakemake",
    "plotly",
    "jinja2",
    "matplotlib",
)


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (read from metadata, without importing them)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks; a folder hashes its files in order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def collect_provenance(
    *,
    config: Mapping[str, Any] | None = None,
    inputs: Iterable[str | Path] = (),
    seed: int | None = None,
    device: str | None = None,
    runtime_s: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable provenance record for a report.

    Parameters
    ----------
    config
        The run's configuration (shown flattened, one key per row).
    inputs
        Input files; each is listed with its sha256.
    seed, device, runtime_s
        Seed, torch device name and fit run time in seconds, when known.
    extra
        More top-level fields.

    Returns
    -------
    dict
        Keys ``created``, ``command``, ``platform``, ``seed``, ``device``, ``runtime_s`` (scalars),
        ``packages``, ``inputs`` (sha256 per file) and ``config`` (flattened).
    """
    prov: dict[str, Any] = {
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": " ".join(
            Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv)
        ),
        "platform": platform.platform(),
    }
    if seed is not None:
        prov["seed"] = int(seed)
    if device is not None:
        prov["device"] = str(device)
    if runtime_s is not None:
        prov["runtime_s"] = round(float(runtime_s), 2)
    if extra:
        prov.update(extra)
    prov["packages"] = package_versions()
    files = {}
    for p in inputs:
        p = Path(p)
        files[str(p)] = sha256_file(p) if p.exists() else "missing"
    if files:
        prov["inputs (sha256)"] = files
    if config:
        prov["config"] = _flatten(config)
    return prov


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, str | int | float | bool) or v is None else str(v)
    return out
