"""Prediction from initial states and in-silico perturbations (knockout, overexpression)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from biostruct.grn.field import PhoenixField
from biostruct.grn.solve import SolverConfig, integrate_grid

__all__ = ["simulate", "clamp_simulate", "perturbation_effect", "influence_scores"]


class _Clamped(nn.Module):
    """The field with the derivatives of some genes forced to zero (their values held fixed)."""

    def __init__(self, field: PhoenixField, genes: torch.Tensor) -> None:
        super().__init__()
        self.field = field
        self.free = torch.ones(field.n_genes, device=genes.device)
        self.free[genes] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.field(x) * self.free


def _device(field: PhoenixField) -> torch.device:
    return next(field.parameters()).device


@torch.no_grad()
def simulate(
    field: PhoenixField,
    x0: np.ndarray,
    times: Sequence[float],
    solver: SolverConfig | None = None,
) -> np.ndarray:
    """Trajectories from initial states ``x0`` (B x G or G) at ``times``; returns (B, T, G)."""
    x = torch.as_tensor(np.atleast_2d(np.asarray(x0)), dtype=torch.float32, device=_device(field))
    t = torch.as_tensor(np.asarray(times, dtype=np.float64), dtype=torch.float32)
    out = integrate_grid(field, x, t, solver or SolverConfig())
    return out.permute(1, 0, 2).cpu().numpy().astype(np.float64)


@torch.no_grad()
def clamp_simulate(
    field: PhoenixField,
    x0: np.ndarray,
    times: Sequence[float],
    gene: int,
    value: float,
    solver: SolverConfig | None = None,
) -> np.ndarray:
    """As :func:`simulate`, with gene ``gene`` held at ``value`` throughout."""
    x = np.atleast_2d(np.asarray(x0, dtype=np.float64)).copy()
    x[:, gene] = value
    dev = _device(field)
    clamped = _Clamped(field, torch.tensor([gene], device=dev))
    xt = torch.as_tensor(x, dtype=torch.float32, device=dev)
    t = torch.as_tensor(np.asarray(times, dtype=np.float64), dtype=torch.float32)
    out = integrate_grid(clamped, xt, t, solver or SolverConfig())
    return out.permute(1, 0, 2).cpu().numpy().astype(np.float64)


def perturbation_effect(
    field: PhoenixField,
    x0: np.ndarray,
    times: Sequence[float],
    gene: int,
    value: float,
    var_names: Sequence[str],
    solver: SolverConfig | None = None,
) -> pd.DataFrame:
    """Change of every gene at the last time point when ``gene`` is clamped to ``value``.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene: ``baseline`` and ``perturbed`` (mean over the initial states at the last
        time), ``delta`` = perturbed - baseline, ``abs_delta``; sorted by ``abs_delta``; the
        perturbed gene itself is dropped.
    """
    base = simulate(field, x0, times, solver)[:, -1]
    pert = clamp_simulate(field, x0, times, gene, value, solver)[:, -1]
    df = pd.DataFrame(
        {"baseline": base.mean(0), "perturbed": pert.mean(0)},
        index=pd.Index(var_names, name="gene"),
    )
    df["delta"] = df["perturbed"] - df["baseline"]
    df["abs_delta"] = df["delta"].abs()
    df = df.drop(index=df.index[gene])
    return df.sort_values("abs_delta", ascending=False)


@torch.no_grad()
def influence_scores(
    field: PhoenixField,
    var_names: Sequence[str],
    *,
    n_states: int = 60,
    times: Sequence[float] = tuple(np.round(np.arange(0, 1.0, 0.1), 1)),
    seed: int = 0,
    solver: SolverConfig | None = None,
    chunk: int = 4096,
) -> pd.Series:
    """PHOENIX-style influence of each gene: mean |change| of all other genes' trajectories.

    ``n_states`` random initial states U(-0.5, 0.5); for each gene its value is replaced by a new
    random value, both versions are integrated over ``times``, and the score is the mean absolute
    difference over the other genes, time points and states.
    """
    g = field.n_genes
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-0.5, 0.5, size=(n_states, g))
    new = rng.uniform(-0.5, 0.5, size=(g, n_states))
    base = simulate(field, x0, times, solver)  # (S, T, G)
    scores = np.zeros(g)
    genes_per_chunk = max(1, chunk // n_states)
    for start in range(0, g, genes_per_chunk):
        genes = np.arange(start, min(start + genes_per_chunk, g))
        xs = np.repeat(x0[None], len(genes), axis=0)  # (k, S, G)
        xs[np.arange(len(genes)), :, genes] = new[genes]
        traj = simulate(field, xs.reshape(-1, g), times, solver).reshape(
            len(genes), n_states, len(times), g
        )
        diff = np.abs(traj - base[None])
        for k, gi in enumerate(genes):
            d = np.delete(diff[k], gi, axis=-1)
            scores[gi] = d.mean()
    return pd.Series(scores, index=pd.Index(var_names, name="gene"), name="influence")
