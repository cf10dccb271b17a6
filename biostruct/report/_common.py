"""Small helpers shared by the report builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = ["add_arrow", "as_dense", "as_series_dict", "event_epochs", "fmt"]


def add_arrow(fig: go.Figure, start: Sequence[float], end: Sequence[float], **style: Any) -> None:
    """Draw an arrow from ``start`` to ``end`` (data coordinates) on ``fig``.

    Parameters
    ----------
    fig
        The plotly figure.
    start, end
        ``(x, y)`` of the tail and of the head.
    **style
        Further annotation settings (``arrowsize``, ``arrowwidth``, ``arrowcolor``,
        ``standoff``, ...).
    """
    fig.add_annotation(
        x=end[0],
        y=end[1],
        ax=start[0],
        ay=start[1],
        xref="x",
        yref="y",
        axref="x",
        ayref="y",
        showarrow=True,
        arrowhead=2,
        **style,
    )


def as_dense(m: Any) -> np.ndarray:
    """A dense float64 array from a numpy array, scipy sparse matrix or DataFrame."""
    if hasattr(m, "toarray"):
        m = m.toarray()
    elif hasattr(m, "to_numpy"):
        m = m.to_numpy()
    return np.asarray(m, dtype=np.float64)


def _is_series(v: Any) -> bool:
    if isinstance(v, str | bytes | Mapping):
        return False
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 1 and arr.size > 0


def as_series_dict(d: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten nested dicts of per-epoch lists into ``{"a.b": array}`` (non-numeric skipped)."""
    out: dict[str, np.ndarray] = {}
    if not isinstance(d, Mapping):
        return out
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(as_series_dict(v, name + "."))
        elif _is_series(v):
            out[name] = np.asarray(v, dtype=np.float64)
    return out


def event_epochs(events: Any) -> list[float]:
    """Epochs of pruning events given as numbers, a dict with an ``epoch`` list, or a DataFrame."""
    if events is None:
        return []
    if hasattr(events, "columns") and "epoch" in events.columns:
        return [float(e) for e in events["epoch"]]
    if isinstance(events, Mapping):
        ep = events.get("epoch", events.get("epochs"))
        return [float(e) for e in np.atleast_1d(ep)] if ep is not None else []
    out = []
    for e in np.atleast_1d(np.asarray(events, dtype=object)):
        if isinstance(e, Mapping) and "epoch" in e:
            out.append(float(e["epoch"]))
        else:
            try:
                out.append(float(e))
            except (TypeError, ValueError):
                continue
    return out


def fmt(v: Any) -> str:
    """Format a scalar for a summary table."""
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    if isinstance(v, np.ndarray) and v.size == 1:
        return fmt(v.item())
    return str(v)
