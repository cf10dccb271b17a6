"""Small helpers shared by the report builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

__all__ = [
    "add_arrow",
    "as_dense",
    "as_series_dict",
    "as_strings",
    "label_boxes_free",
    "event_epochs",
    "fmt",
    "fmt_count",
    "fmt_duration",
    "fmt_pct",
    "palette",
]


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


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def fmt(v: Any) -> str:
    """Format a value for people: ``42,466`` not ``4.247e+04``, ``0.383``, ``4.2 × 10⁻⁵``.

    Integers (and integral floats of 1,000 or more) get thousands separators; other numbers keep
    three significant digits; booleans read ``yes``/``no``; NaN reads ``n/a``.
    """
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        x = float(v)
        if not np.isfinite(x):
            return "n/a" if np.isnan(x) else ("∞" if x > 0 else "-∞")
        a = abs(x)
        if a == 0:
            return "0"
        if a >= 999.5:
            return f"{x:,.0f}"
        if a >= 0.001:
            return f"{x:.3g}"
        mant, exp = f"{x:.2g}".split("e") if "e" in f"{x:.2g}" else (f"{x:.2g}", "0")
        return f"{mant} × 10{str(int(exp)).translate(_SUPERSCRIPT)}"
    return str(v)


def fmt_count(n: float | int) -> str:
    """A count with thousands separators (``42,466``)."""
    return f"{int(round(float(n))):,}"


def fmt_duration(seconds: float) -> str:
    """Seconds for people: ``53 s``, ``4.2 min``, ``1.5 h``."""
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_pct(frac: float, digits: int = 1) -> str:
    """A fraction as a percentage (``0.173`` -> ``17.3 %``); ``< 0.1 %`` for tiny non-zero values."""
    if frac is None or not np.isfinite(frac):
        return "n/a"
    pct = 100.0 * float(frac)
    if 0 < abs(pct) < 10 ** (-digits):
        return f"< {10 ** (-digits):g}\u00a0%"
    return f"{pct:.{digits}f}\u00a0%"


def as_strings(v: Any) -> list[str]:
    """A list of non-empty strings from ``None``, a string, a list or an array (as h5ad stores it)."""
    if v is None:
        return []
    if isinstance(v, str | bytes):
        v = [v]
    out = []
    for x in np.atleast_1d(np.asarray(v, dtype=object)).ravel():
        if isinstance(x, bytes):
            x = x.decode("utf-8", "replace")
        x = str(x).strip()
        if x and x.lower() not in ("nan", "none"):
            out.append(x)
    return out


_PALETTES: dict[str, list[str]] = {}


def _scanpy_palettes() -> dict[str, list[str]]:
    """scanpy's default categorical palettes (``default_20``, ``default_28``, ``default_102``).

    The module ``scanpy.plotting.palettes`` needs only matplotlib; it is loaded from its file so
    a report does not pay for importing all of scanpy (several seconds).
    """
    if _PALETTES:
        return _PALETTES
    import sys

    mod = sys.modules.get("scanpy.plotting.palettes")
    if mod is None:
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("scanpy")
        if spec is None or not spec.submodule_search_locations:  # pragma: no cover
            raise ImportError("scanpy is not installed")
        file = Path(next(iter(spec.submodule_search_locations))) / "plotting" / "palettes.py"
        fspec = importlib.util.spec_from_file_location("_biostruct_scanpy_palettes", file)
        if fspec is None or fspec.loader is None:  # pragma: no cover
            raise ImportError(f"cannot load {file}")
        mod = importlib.util.module_from_spec(fspec)
        fspec.loader.exec_module(mod)
    for name in ("default_20", "default_28", "default_102"):
        _PALETTES[name] = [str(c) for c in getattr(mod, name)]
    return _PALETTES


def palette(n: int) -> list[str]:
    """``n`` categorical colours, distinct up to 102 categories: scanpy's choice of palette.

    Up to 20 categories: ``default_20``; up to 28: ``default_28`` (zeileis_28); up to 102:
    ``default_102`` (godsnap). Beyond 102 the colours repeat (scanpy greys them out).
    """
    pals = _scanpy_palettes()
    if n <= 20:
        base = pals["default_20"]
    elif n <= 28:
        base = pals["default_28"]
    else:
        base = pals["default_102"]
    return [base[i % len(base)] for i in range(n)]


def label_boxes_free(
    centres: Sequence[tuple[float, float]],
    labels: Sequence[str],
    priority: Sequence[float],
    *,
    char_px: float = 7.0,
    height_px: float = 14.0,
    pad_px: float = 3.0,
) -> list[bool]:
    """Which labels to draw so that no two label boxes overlap (greedy, by ``priority``).

    ``centres`` are the label centres in pixels; a label's box is ``char_px`` per character
    wide and ``height_px`` tall, grown by ``pad_px`` on each side. Higher priority first; a label
    whose box would touch an already placed one is left out (hover text still names it).
    """
    order = sorted(range(len(labels)), key=lambda i: -float(priority[i]))
    placed: list[tuple[float, float, float, float]] = []
    shown = [False] * len(labels)
    for i in order:
        x, y = centres[i]
        w = char_px * len(str(labels[i])) / 2 + pad_px
        h = height_px / 2 + pad_px
        box = (x - w, y - h, x + w, y + h)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            continue
        placed.append(box)
        shown[i] = True
    return shown
