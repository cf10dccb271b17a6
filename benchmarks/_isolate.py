"""Shared benchmark plumbing: jobs in a forked child (``ru_maxrss`` is the job's own peak) and
atomic writes of result files."""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _child(fn: Callable[[dict[str, Any]], Any], spec: dict[str, Any], queue: Any) -> None:
    try:
        queue.put(("ok", fn(spec)))
    except BaseException:
        queue.put(("error", traceback.format_exc()))


def run_isolated(fn: Callable[[dict[str, Any]], Any], spec: dict[str, Any]) -> Any:
    """``fn(spec)`` in a forked process; its exception is re-raised here as RuntimeError."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, spec, q))
    p.start()
    status, payload = q.get()
    p.join()
    if status != "ok":
        raise RuntimeError(payload)
    return payload


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
