"""From an AnnData of time series to batched transitions x(t_k) -> x(t_k+1)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from biostruct.errors import InputError

__all__ = [
    "Trajectories",
    "trajectories_from_anndata",
    "Transitions",
    "split_validation",
    "check_input",
    "SCALE_WARN_MAX",
]

#: Largest expression value that is not flagged: normalised or log-normalised data stays far
#: below it, raw counts or unnormalised intensities (1e4 ... 1e6) do not.
SCALE_WARN_MAX = 1e3


@dataclass
class Trajectories:
    """Expression series: one (times, values) pair per trajectory, values shaped (T_k, G)."""

    names: list[str]
    times: list[np.ndarray]
    values: list[np.ndarray]
    var_names: list[str]
    obs_names: list[np.ndarray] = field(default_factory=list)

    @property
    def n_genes(self) -> int:
        return len(self.var_names)

    def subset(self, idx: list[int]) -> Trajectories:
        return Trajectories(
            [self.names[i] for i in idx],
            [self.times[i] for i in idx],
            [self.values[i] for i in idx],
            self.var_names,
            [self.obs_names[i] for i in idx] if self.obs_names else [],
        )

    def transitions(self) -> Transitions:
        x0, x1, dt, traj = [], [], [], []
        for k, (t, v) in enumerate(zip(self.times, self.values)):
            x0.append(v[:-1])
            x1.append(v[1:])
            dt.append(np.diff(t))
            traj.append(np.full(len(t) - 1, k))
        return Transitions(
            torch.as_tensor(np.concatenate(x0), dtype=torch.float32),
            torch.as_tensor(np.concatenate(x1), dtype=torch.float32),
            torch.as_tensor(np.concatenate(dt), dtype=torch.float32),
            np.concatenate(traj),
        )


@dataclass
class Transitions:
    """Observed pairs (x0 -> x1 after dt), as float32 tensors."""

    x0: torch.Tensor
    x1: torch.Tensor
    dt: torch.Tensor
    trajectory: np.ndarray

    def __len__(self) -> int:
        return int(self.dt.shape[0])

    def to(self, device: torch.device) -> Transitions:
        return Transitions(
            self.x0.to(device), self.x1.to(device), self.dt.to(device), self.trajectory
        )

    def take(self, idx: np.ndarray | torch.Tensor) -> Transitions:
        i = torch.as_tensor(idx, dtype=torch.long)
        dev = self.x0.device
        i = i.to(dev)
        return Transitions(self.x0[i], self.x1[i], self.dt[i], self.trajectory[i.cpu().numpy()])


def _dense(x: Any) -> np.ndarray:
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


def numeric_time(values: Any, key: str) -> np.ndarray:
    """``obs[key]`` as float64; text that is not a number is an :class:`InputError`.

    Parameters
    ----------
    values
        The column, e.g. ``adata.obs[key]``.
    key
        Its name, for the error message.
    """
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        sample = next((v for v in np.asarray(values, dtype=object) if not _is_number(v)), "")
        raise InputError(
            f"the time column holds text such as {str(sample)!r}, not numbers",
            field=f"obs[{key!r}]",
            fix=f"store numbers, e.g. adata.obs[{key!r}] = adata.obs[{key!r}].str.lstrip('t')"
            ".astype(float), or pass time_key= of a numeric (pseudo)time column",
        ) from None


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def check_input(
    adata: Any, *, time_key: str | Sequence[str] = "time", layer: str | None = None
) -> None:
    """Checks of an AnnData before any model is built.

    Parameters
    ----------
    adata
        Observations x genes.
    time_key
        The (pseudo)time column, or a list of them (one per lineage).
    layer
        The layer that holds the expression (``None``: ``adata.X``).

    Raises
    ------
    InputError
        No observations, no genes, a text time column.

    Warns
    -----
    UserWarning
        Expression values above :data:`SCALE_WARN_MAX` (unnormalised data).
    """
    if adata.n_obs == 0:
        raise InputError(
            "the AnnData has no observations (n_obs = 0)",
            field="adata.obs",
            fix="pass observations (time points or cells); check an earlier subsetting step",
        )
    if adata.n_vars == 0:
        raise InputError(
            "the AnnData has no genes (n_vars = 0)",
            field="adata.var",
            fix="pass genes; check gene filtering (e.g. n_genes / highly variable genes)",
        )
    for key in [time_key] if isinstance(time_key, str) else list(time_key):
        if key in adata.obs:
            numeric_time(adata.obs[key], key)
    if layer is not None and layer not in adata.layers:
        return  # GRNModel reports the missing layer
    x = adata.layers[layer] if layer is not None else adata.X
    data = getattr(x, "data", None) if hasattr(x, "toarray") else np.asarray(x)
    if data is not None and np.size(data) and np.issubdtype(np.asarray(data).dtype, np.number):
        top = float(np.nanmax(np.abs(np.where(np.isfinite(data), data, 0.0))))
        if top > SCALE_WARN_MAX:
            where = f"adata.layers[{layer!r}]" if layer is not None else "adata.X"
            warnings.warn(
                f"{where}: expression reaches {top:.3g}, the scale of raw counts or unnormalised "
                "intensities; the network is fitted to normalised data (roughly [0, 1] or "
                "log-normalised) and on this scale it mostly reflects a few large genes. Fix: "
                "normalise first, e.g. sc.pp.normalize_total(adata); sc.pp.log1p(adata).",
                UserWarning,
                stacklevel=3,
            )


def trajectories_from_anndata(
    adata: Any,
    *,
    time_key: str = "time",
    trajectory_key: str | None = "trajectory",
    layer: str | None = None,
) -> Trajectories:
    """Split an AnnData into trajectories ordered by time.

    Raises
    ------
    InputError
        Missing keys, NaN/inf expression or time, trajectories with fewer than two distinct
        time points. Observations of one trajectory at the same time are replicates: their
        mean is used (the first one's name stands for them in ``obs_names``).
    """
    if time_key not in adata.obs:
        raise InputError(
            f"adata.obs has no column {time_key!r}",
            field=f"obs[{time_key!r}]",
            fix="store the (pseudo)time of each observation there, or pass time_key=",
        )
    if trajectory_key is not None and trajectory_key not in adata.obs:
        raise InputError(
            f"adata.obs has no column {trajectory_key!r}",
            field=f"obs[{trajectory_key!r}]",
            fix="store which series/lineage each observation belongs to, or pass "
            "trajectory_key=None for a single series",
        )
    x = _dense(adata.layers[layer] if layer is not None else adata.X)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise InputError(
            f"expression contains {bad} NaN/inf values",
            field="adata.layers[" + repr(layer) + "]" if layer else "adata.X",
            fix="impute or drop them (e.g. np.nan_to_num) before inferring the network",
        )
    t = numeric_time(adata.obs[time_key], time_key)
    if not np.isfinite(t).all():
        raise InputError(
            "time contains NaN/inf", field=f"obs[{time_key!r}]", fix="give every observation a time"
        )
    groups = (
        np.asarray(adata.obs[trajectory_key]).astype(str)
        if trajectory_key is not None
        else np.zeros(adata.n_obs, dtype=str)
    )
    names, times, values, index = [], [], [], []
    obs_names = np.asarray(adata.obs_names).astype(str)
    for name in dict.fromkeys(groups):  # order of first appearance
        idx = np.flatnonzero(groups == name)
        order = idx[np.argsort(t[idx], kind="stable")]
        tk = t[order]
        if len(tk) < 2:
            raise InputError(
                f"trajectory {name!r} has a single time point; a transition needs two",
                field=f"obs[{trajectory_key!r}]",
                fix="drop single-point trajectories or merge them into their series",
            )
        xk, nk = x[order], obs_names[order]
        if np.any(np.diff(tk) <= 0):
            # replicate measurements at one time point: their mean is the state at that time
            tk, inverse = np.unique(tk, return_inverse=True)
            counts = np.bincount(inverse)
            xk = np.stack([xk[inverse == i].mean(0) for i in range(len(tk))])
            nk = np.array([nk[inverse == i][0] for i in range(len(tk))], dtype=nk.dtype)
            if len(tk) < 2:
                raise InputError(
                    f"trajectory {name!r} has a single distinct time point "
                    f"({int(counts[0])} observations at time {tk[0]:g})",
                    field=f"obs[{time_key!r}]",
                    fix="give its observations different times, or pass cells=True for "
                    "single cells with pseudotime",
                )
        names.append(str(name))
        times.append(tk)
        values.append(xk)
        index.append(nk)
    return Trajectories(names, times, values, [str(v) for v in adata.var_names], index)


def split_validation(
    data: Trajectories, val_fraction: float, seed: int
) -> tuple[list[int], list[int], str]:
    """Held-out trajectories chosen by ``seed``.

    Returns (train trajectory ids, validation trajectory ids, mode). With fewer than three
    trajectories, whole-trajectory validation would starve training; the mode is then
    ``"transitions"`` and the caller holds out a random ``val_fraction`` of transitions instead.
    """
    n = len(data.names)
    if val_fraction <= 0:
        return list(range(n)), [], "none"
    if n < 3:
        return list(range(n)), [], "transitions"
    rng = np.random.default_rng(seed)
    n_val = min(max(1, int(round(n * val_fraction))), n - 1)
    val = sorted(rng.choice(n, size=n_val, replace=False).tolist())
    train = [i for i in range(n) if i not in set(val)]
    return train, val, "trajectories"
