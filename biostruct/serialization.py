"""One safe way to write and read every biostruct model and checkpoint file.

A file written by :func:`save_torch` is a small self-describing container::

    BIOSTRUCT-TORCH\\n                     magic line
    {"kind": ..., "format_version": 1,    one JSON header line
     "fingerprint": {...}, "payload_bytes": n, "sha256": ...}\\n
    <n bytes>                             the payload, written by ``torch.save``

:func:`load_torch` checks, in this order and before anything is unpickled: the magic line (a
plain pickle, an old-layout file or a text file is refused), the kind, the format version
(unknown versions are refused), the payload length (truncation), the sha256 of header and
payload (flipped bytes), and the fingerprint the caller expects (a checkpoint of another run).
Only then is the payload read, always with ``torch.load(weights_only=True)``, so no file can run
code. Every failure is a :mod:`biostruct.errors` exception naming the file and the fix; torch's
own messages (which suggest ``weights_only=False``) are never passed on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biostruct.errors import ChecksumError, ConfigError, DataFormatError, InputError

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
    "FingerprintMismatchError",
    "fingerprint",
    "fingerprint_diff",
    "save_torch",
    "load_torch",
    "read_header",
    "sha256_bytes",
    "tensor_digest",
    "plain",
]

MAGIC = b"BIOSTRUCT-TORCH\n"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
_MAX_HEADER = 1 << 20  # a header line longer than 1 MiB is not ours


class FingerprintMismatchError(ConfigError):
    """A checkpoint or model file was written for other data or settings than the caller's."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensor_digest(*tensors: Any) -> str:
    """sha256 over the dtypes, shapes and bytes of tensors or arrays (any device)."""
    import numpy as np

    h = hashlib.sha256()
    for t in tensors:
        if hasattr(t, "detach"):
            t = t.detach().cpu().contiguous().numpy()
        a = np.ascontiguousarray(t)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and numpy arrays as tensors, so that
    ``torch.load(weights_only=True)`` reads it back."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(obj))
    return obj


def _canonical(obj: Any) -> Any:
    """JSON-ready form with stable types (tuples as lists, numpy scalars as Python numbers)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN
        return "nan"
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def fingerprint(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (mappings, sequences, numbers, strings)."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode())


def fingerprint_diff(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose values differ between two fingerprint mappings."""
    keys = sorted(set(saved) | set(expected))
    return [k for k in keys if _canonical(saved.get(k)) != _canonical(expected.get(k))]


def _header_digest(header: Mapping[str, Any], payload: bytes) -> str:
    h = hashlib.sha256()
    meta = {k: v for k, v in header.items() if k != "sha256"}
    h.update(json.dumps(_canonical(meta), sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\n")
    h.update(payload)
    return h.hexdigest()


def save_torch(
    path: str | os.PathLike,
    obj: Any,
    *,
    kind: str,
    fingerprint: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``obj`` (tensors, dicts, lists, numbers, strings) to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file; written to a temporary sibling first, then renamed.
    obj
        What ``torch.load(weights_only=True)`` can read back: no custom classes, no numpy.
    kind
        What the file holds (``"grn-checkpoint"``, ``"grn-model"``, ``"dagvae-model"``);
        :func:`load_torch` refuses a file of another kind.
    fingerprint
        JSON-able mapping that identifies the data and settings the file belongs to;
        :func:`load_torch` compares it with the caller's.
    """
    path = Path(path)
    buf = io.BytesIO()
    import torch

    torch.save(obj, buf)
    payload = buf.getvalue()
    header: dict[str, Any] = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "fingerprint": _canonical(dict(fingerprint or {})),
        "payload_bytes": len(payload),
    }
    header["sha256"] = _header_digest(header, payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(json.dumps(header, sort_keys=True).encode() + b"\n")
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path, kind: str, field: str) -> tuple[dict[str, Any], bytes]:
    what = kind.replace("-", " ")
    fix_other = f"pass a {what} file written by this version of biostruct (or re-create it)."
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", field=field, fix=fix_other)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(len(MAGIC))
            if magic != MAGIC:
                raise DataFormatError(
                    f"{path} is not a biostruct {what} file (an old layout, another program's "
                    "file, or a plain pickle, which is never opened)",
                    field=field,
                    fix=fix_other,
                )
            line = fh.readline(_MAX_HEADER)
            payload = fh.read()
    except OSError as exc:
        raise InputError(
            f"cannot read {path} ({exc.strerror})", field=field, fix=fix_other
        ) from None
    try:
        header = json.loads(line.decode())
        if not isinstance(header, dict) or not line.endswith(b"\n"):
            raise ValueError
    except ValueError:
        raise DataFormatError(f"{path} has a damaged header", field=field, fix=fix_other) from None
    return header, payload


def read_header(path: str | os.PathLike, *, kind: str, field: str = "path") -> dict[str, Any]:
    """The checked header of a file written by :func:`save_torch` (payload not unpickled)."""
    header, _ = _checked(Path(path), kind, field)
    return header


def _checked(path: Path, kind: str, field: str) -> tuple[dict[str, Any], bytes]:
    header, payload = _read(path, kind, field)
    what = kind.replace("-", " ")
    if header.get("kind") != kind:
        raise DataFormatError(
            f"{path} holds a {header.get('kind')!r}, not a {kind!r}",
            field=field,
            fix=f"pass a {what} file.",
        )
    version = header.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise DataFormatError(
            f"{path} has format_version {version!r}; this biostruct reads "
            f"{sorted(SUPPORTED_VERSIONS)}",
            field=field,
            fix="use the biostruct version that wrote the file, or re-create it.",
        )
    n = header.get("payload_bytes")
    if not isinstance(n, int) or len(payload) != n:
        raise DataFormatError(
            f"{path} is truncated or has extra bytes ({len(payload)} payload bytes, header "
            f"says {n})",
            field=field,
            fix="the file was not written completely: re-create it.",
        )
    if _header_digest(header, payload) != header.get("sha256"):
        raise ChecksumError(
            f"{path} does not match its sha256 (the file was modified or damaged)",
            field=field,
            fix="re-create the file; do not load files of unknown origin.",
        )
    return header, payload


def load_torch(
    path: str | os.PathLike,
    *,
    kind: str,
    fingerprint: Mapping[str, Any] | None = None,
    field: str = "path",
) -> Any:
    """Read a file written by :func:`save_torch`, after every check (see the module docs).

    Parameters
    ----------
    path
        The file.
    kind
        The kind the caller expects.
    fingerprint
        When given, the file's fingerprint must equal it key by key; otherwise a
        :class:`FingerprintMismatchError` lists the keys that differ.
    field
        The argument name used in error messages.

    Raises
    ------
    InputError, DataFormatError, ChecksumError, FingerprintMismatchError
        Missing, foreign, unknown-version, truncated, modified or mismatched files.
    """
    path = Path(path)
    header, payload = _checked(path, kind, field)
    if fingerprint is not None:
        saved = header.get("fingerprint")
        saved = saved if isinstance(saved, dict) else {}
        diff = fingerprint_diff(saved, _canonical(dict(fingerprint)))
        if diff:
            raise FingerprintMismatchError(
                f"{path} was written for other data, settings or files (differs in: "
                f"{', '.join(diff)}); it is not reused",
                field=field,
                fix="delete the file, give another path, or repeat the settings of the run "
                "that wrote it (for a checkpoint, resume=False starts afresh).",
            )
    import torch

    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception:  # torch's message suggests weights_only=False: never pass it on
        raise DataFormatError(
            f"{path} holds objects other than tensors, numbers, strings, lists and dicts, "
            "which biostruct refuses to unpickle",
            field=field,
            fix="re-create the file with biostruct; do not load files of unknown origin.",
        ) from None
