"""From single cells with pseudotime to training trajectories for the neural ODE.

Single cells are snapshots: each cell is observed once, many share a pseudotime (ties), and a
lineage is a set of cells, not a time series. A transition x(t_k) -> x(t_k+1) between two cells
is dominated by cell-to-cell noise. We therefore turn each lineage into a *mean trajectory*:

1. cells of a lineage are sorted by pseudotime and cut into quantile bins (tied cells always fall
   in the same bin, so ties need no special handling);
2. each bin contributes one state, the mean expression of its cells, at the mean pseudotime of its
   cells (a kNN-smoothing in pseudotime with a bin's cells as the neighbourhood);
3. consecutive bins of a lineage are the transitions the ODE is fitted to.

A cell may belong to several lineages (shared progenitors): it is then used in each. Validation
uses held-out *cells* of every lineage, binned with the same edges as the training cells, so that
the validation transitions have independent noise but cover the same lineages (holding out a whole
lineage would remove a branch of the dynamics when there are only two to four).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biostruct.errors import ConfigError, InputError
from biostruct.grn.data import Trajectories, _dense

__all__ = [
    "LineageTimes",
    "lineage_times",
    "expression",
    "auto_bins",
    "bin_lineages",
    "cell_split",
    "successor_transitions",
]


@dataclass
class LineageTimes:
    """Pseudotime per cell and lineage: ``times[c, l]`` is NaN when cell ``c`` is not on ``l``."""

    names: list[str]
    times: np.ndarray

    @property
    def n_cells(self) -> int:
        return int(self.times.shape[0])


def lineage_times(
    adata: Any, time_key: str | Sequence[str], lineage_key: str | None = None
) -> LineageTimes:
    """Read the pseudotime layout from ``adata.obs``.

    Parameters
    ----------
    adata
        Cells x genes.
    time_key
        One obs column of pseudotime (e.g. ``"dpt_pseudotime"``), or one column per lineage
        (NaN where a cell is off that lineage, as Slingshot and BEELINE's ``PseudoTime.csv``).
    lineage_key
        With a single ``time_key``: a categorical obs column naming each cell's lineage
        (``None``: all cells form one lineage). Cells with NaN pseudotime are left out.
    """
    keys = [time_key] if isinstance(time_key, str) else [str(k) for k in time_key]
    if not keys:
        raise InputError("time_key is empty", field="time_key", fix="name a pseudotime column")
    for k in keys:
        if k not in adata.obs:
            raise InputError(
                f"adata.obs has no column {k!r}",
                field=f"obs[{k!r}]",
                fix="store the pseudotime there (e.g. sc.tl.dpt writes 'dpt_pseudotime'), or "
                "pass time_key=",
            )
    cols = []
    for k in keys:
        try:
            cols.append(np.asarray(adata.obs[k], dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"obs[{k!r}] is not numeric ({exc})",
                field=f"obs[{k!r}]",
                fix="store pseudotime as numbers (NaN for cells off the lineage)",
            ) from exc
    t = np.column_stack(cols)
    if np.isinf(t).any():
        raise InputError(
            "pseudotime contains inf", field=f"obs[{keys[0]!r}]", fix="use NaN for missing values"
        )
    if len(keys) > 1:
        if lineage_key is not None:
            raise ConfigError(
                "lineage_key given together with one pseudotime column per lineage",
                field="lineage_key",
                fix="pass either several time keys (one per lineage) or one key + lineage_key",
            )
        lt = LineageTimes(keys, t)
    elif lineage_key is None:
        lt = LineageTimes([keys[0]], t)
    else:
        if lineage_key not in adata.obs:
            raise InputError(
                f"adata.obs has no column {lineage_key!r}",
                field=f"obs[{lineage_key!r}]",
                fix="store each cell's lineage there, or pass lineage_key=None for one lineage",
            )
        lab = adata.obs[lineage_key]
        valid = ~lab.isna().to_numpy()
        lab_s = np.asarray(lab.astype(str))
        present = set(lab_s[valid])
        if isinstance(lab.dtype, pd.CategoricalDtype):  # the categories' order, as scanpy
            names = [str(c) for c in lab.cat.categories if str(c) in present]
        else:
            names = sorted(present)
        out = np.full((adata.n_obs, len(names)), np.nan)
        for j, n in enumerate(names):
            m = valid & (lab_s == n)
            out[m, j] = t[m, 0]
        lt = LineageTimes(names, out)
    counts = np.isfinite(lt.times).sum(0)
    for n, c in zip(lt.names, counts):
        if c < 4:
            raise InputError(
                f"lineage {n!r} has {int(c)} cells with a pseudotime; at least 4 are needed",
                field=f"obs[{keys[0]!r}]",
                fix="drop or merge that lineage",
            )
    return lt


def expression(adata: Any, layer: str | None = None) -> np.ndarray:
    """Dense float64 expression of ``layer`` (default ``X``); NaN/inf is an InputError."""
    x = _dense(adata.layers[layer] if layer is not None else adata.X)
    if not np.isfinite(x).all():
        raise InputError(
            f"expression contains {int((~np.isfinite(x)).sum())} NaN/inf values",
            field="adata.layers[" + repr(layer) + "]" if layer else "adata.X",
            fix="impute or drop them (e.g. np.nan_to_num) before inferring the network",
        )
    return x


def auto_bins(n_cells: int) -> int:
    """Default bins per lineage: about sqrt(n), between 6 and 30 (>= 2 cells per bin)."""
    return int(np.clip(round(np.sqrt(n_cells)), 6, 30)) if n_cells >= 12 else max(2, n_cells // 2)


def _edges(t: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantile bin edges; duplicates (from ties) merged so tied cells share a bin."""
    edges = np.unique(np.quantile(t, np.linspace(0.0, 1.0, n_bins + 1)))
    return edges


def _assign(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max(len(edges) - 2, 0))


def cell_split(lt: LineageTimes, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation cells: ``val_fraction`` of each lineage's cells (seeded)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(lt.n_cells, dtype=bool)
    if val_fraction <= 0:
        return val
    for j in range(len(lt.names)):
        idx = np.flatnonzero(np.isfinite(lt.times[:, j]) & ~val)
        n_val = int(round(len(idx) * val_fraction))
        if n_val >= 2 and len(idx) - n_val >= 4:
            val[rng.choice(idx, size=n_val, replace=False)] = True
    return val


def bin_lineages(
    adata: Any,
    lt: LineageTimes,
    *,
    layer: str | None = None,
    n_bins: int | str = "auto",
    cells: np.ndarray | None = None,
    edges_from: np.ndarray | None = None,
) -> Trajectories:
    """Mean trajectories, one per lineage, from binned single cells.

    Parameters
    ----------
    adata, lt
        Cells and their lineage pseudotimes (:func:`lineage_times`).
    layer
        Expression layer (default ``X``).
    n_bins
        Bins per lineage, or ``"auto"`` (:func:`auto_bins` of the lineage's cell count).
    cells
        Boolean mask of the cells to average (default all).
    edges_from
        Boolean mask of the cells whose pseudotimes define the bin edges (default ``cells``);
        validation cells are binned with the training cells' edges.

    Returns
    -------
    Trajectories whose ``obs_names`` hold, per bin, the names of the cells averaged into it.
    """
    x = expression(adata, layer)
    if isinstance(n_bins, str) and n_bins != "auto":
        raise ConfigError("n_bins must be an integer or 'auto'", field="n_bins", fix="e.g. 20")
    if not isinstance(n_bins, str) and int(n_bins) < 2:
        raise ConfigError("n_bins must be >= 2", field="n_bins", fix="e.g. n_bins=20")
    use = np.ones(lt.n_cells, dtype=bool) if cells is None else np.asarray(cells, dtype=bool)
    ref = use if edges_from is None else np.asarray(edges_from, dtype=bool)
    obs_names = np.asarray(adata.obs_names).astype(str)
    names, times, values, members = [], [], [], []
    for j, lin in enumerate(lt.names):
        on = np.isfinite(lt.times[:, j])
        t_ref = lt.times[on & ref, j]
        nb = auto_bins(len(t_ref)) if n_bins == "auto" else int(n_bins)
        edges = _edges(t_ref, nb)
        idx = np.flatnonzero(on & use)
        if len(edges) < 2 or len(idx) == 0:
            continue
        b = _assign(lt.times[idx, j], edges)
        tk, vk, mk = [], [], []
        for k in np.unique(b):
            sel = idx[b == k]
            tk.append(float(lt.times[sel, j].mean()))
            vk.append(x[sel].mean(0))
            mk.append(obs_names[sel])
        if len(tk) < 2:
            continue
        order = np.argsort(tk, kind="stable")
        tk_a = np.asarray(tk)[order]
        # bins whose mean times coincide (all-tied lineages) cannot form a transition
        keep = np.r_[True, np.diff(tk_a) > 0]
        order = order[keep]
        if len(order) < 2:
            continue
        names.append(lin)
        times.append(np.asarray(tk)[order])
        values.append(np.asarray(vk)[order])
        members.append(np.asarray([";".join(mk[i]) for i in order], dtype=object))
    if not names:
        raise InputError(
            "no lineage has two distinct pseudotime bins",
            field="time_key",
            fix="check that pseudotime varies within each lineage",
        )
    return Trajectories(names, times, values, [str(v) for v in adata.var_names], members)


def successor_transitions(
    x: np.ndarray,
    lt: LineageTimes,
    *,
    cells: np.ndarray | None = None,
    k: int = 10,
    window: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell-level transitions from each cell to the mean of its pseudotime successors.

    For a cell at pseudotime t on a lineage, the candidates are the next ``window`` share of that
    lineage's cells in pseudotime order (only cells with a pseudotime strictly above t, so ties are
    never paired); its successor state is the mean of the ``k`` candidates nearest in expression.
    This is a kNN coupling of consecutive snapshots: the successor looks like the cell's own
    future, so ``(succ - x) / dt`` is a cell-level velocity estimate whose variation across cells
    carries the directed, lagged dependencies that regulation leaves in the data.

    Parameters
    ----------
    x
        Cells x genes expression (already scaled).
    lt
        Lineage pseudotimes.
    cells
        Boolean mask of the cells that may take part (start and successor), default all.
    k, window
        Successors averaged per cell, and the candidate window as a share of the lineage's cells.

    Returns
    -------
    ``(x0, x1, dt, cell)``: start states, successor means, pseudotime steps, start cell index.
    """
    if k < 1:
        raise ConfigError("k must be >= 1", field="k", fix="e.g. k=10")
    if not 0 < window <= 1:
        raise ConfigError("window must be in (0, 1]", field="window", fix="e.g. window=0.05")
    x = np.asarray(x, dtype=np.float64)
    use = np.ones(lt.n_cells, dtype=bool) if cells is None else np.asarray(cells, dtype=bool)
    x0, x1, dts, idx = [], [], [], []
    for j in range(len(lt.names)):
        on = np.flatnonzero(np.isfinite(lt.times[:, j]) & use)
        order = on[np.argsort(lt.times[on, j], kind="stable")]
        t = lt.times[order, j]
        n = len(order)
        m = max(k + 1, int(round(window * n)))
        first_later = np.searchsorted(t, t, side="right")  # first index with a larger time
        for p in range(n):
            lo = first_later[p]
            cand = np.arange(lo, min(n, lo + m))
            if len(cand) < min(k, 2):
                continue
            d = ((x[order[cand]] - x[order[p]]) ** 2).sum(1)
            nn = cand[np.argsort(d, kind="stable")[:k]]
            x0.append(x[order[p]])
            x1.append(x[order[nn]].mean(0))
            dts.append(t[nn].mean() - t[p])
            idx.append(order[p])
    if not x0:
        raise InputError(
            "no cell has a pseudotime successor",
            field="time_key",
            fix="check that pseudotime varies within each lineage",
        )
    return np.asarray(x0), np.asarray(x1), np.asarray(dts), np.asarray(idx)
