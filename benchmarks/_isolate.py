"""Run one benchmark job in a forked child, so that its ``ru_maxrss`` is the job's own peak."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
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
