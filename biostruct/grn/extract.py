"""Network extraction: PHOENIX effect matrix, Jacobian effect, tidy edge tables, sparsity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from biostruct.grn.field import PhoenixField

__all__ = ["effect_matrix", "jacobian_effect", "edge_table", "layer_sparsity"]


def effect_matrix(field: PhoenixField) -> np.ndarray:
    """E = (Ws^T As^T + Wp^T Ap^T) * relu(m): signed, regulator rows, target columns (G x G)."""
    return field.effect_matrix().detach().cpu().numpy().astype(np.float64)


def jacobian_effect(
    field: PhoenixField, states: np.ndarray | torch.Tensor, *, chunk: int = 64, of: str = "field"
) -> np.ndarray:
    """Mean Jacobian over ``states``: entry (i, j) is the mean of d f_j / d x_i (regulator rows).

    Unlike :func:`effect_matrix` it respects the nonlinearities (soft-sign, exp, Hill-like
    products) at the observed states. Vectorised with ``torch.func.vmap(jacrev(...))``.
    The diagonal contains each gene's self-term (including the decay -relu(m_j)).
    ``of="joint"`` differentiates the target level A_s u + A_p v instead of the velocity, i.e.
    the regulatory input of each gene without its rate relu(m_j) (comparable across targets).
    """
    if of not in ("field", "joint"):
        raise ValueError(f"of must be 'field' or 'joint', got {of!r}")
    from torch.func import jacrev, vmap

    dev = next(field.parameters()).device
    x = torch.as_tensor(np.asarray(states), dtype=torch.float32, device=dev)
    if x.ndim == 1:
        x = x[None]
    g = field.n_genes
    total = torch.zeros(g, g, dtype=torch.float64, device=dev)

    fn = field if of == "field" else field.level

    def f(v: torch.Tensor) -> torch.Tensor:
        return fn(v[None])[0]

    jac = vmap(jacrev(f))
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            j = jac(x[start : start + chunk])  # (B, G_out, G_in)
            total += j.sum(0).to(torch.float64)
    return (total / x.shape[0]).T.cpu().numpy()


def edge_table(
    matrix: np.ndarray,
    var_names: Sequence[str],
    *,
    top: int | None = 50,
    include_self: bool = False,
) -> pd.DataFrame:
    """The strongest edges of a signed regulator-row matrix as a tidy DataFrame.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``target``, ``weight`` (signed), ``sign`` (+1/-1), ``rank``; sorted by
        |weight| descending; zero entries are never listed.
    """
    m = np.asarray(matrix, dtype=np.float64)
    a = np.abs(m)
    if not include_self:
        a = a.copy()
        np.fill_diagonal(a, 0.0)
    nz = np.flatnonzero(a > 0)
    order = nz[np.argsort(-a.ravel()[nz], kind="stable")]
    if top is not None:
        order = order[:top]
    i, j = np.unravel_index(order, m.shape)
    names = np.asarray(list(var_names), dtype=object)
    w = m[i, j]
    return pd.DataFrame(
        {
            "source": names[i],
            "target": names[j],
            "weight": w,
            "sign": np.sign(w).astype(int),
            "rank": np.arange(1, len(order) + 1),
        }
    )


def layer_sparsity(field: PhoenixField) -> dict[str, float]:
    """Fraction of exact zeros per prunable layer and pooled as in DASH.

    Output layers are counted after scaling row j by relu(m_j) (a gene with m_j <= 0 contributes an
    all-zero row). ``pooled`` is the fraction of zeros over all four matrices.
    """
    rates = field.rates().detach()[:, None]
    mats = {
        "sums": field.sums.weight.detach(),
        "prods": field.prods.weight.detach(),
        "alpha_sums": field.alpha_sums.weight.detach() * rates,
        "alpha_prods": field.alpha_prods.weight.detach() * rates,
    }
    out = {k: float((v == 0).float().mean()) for k, v in mats.items()}
    zeros = sum(int((v == 0).sum()) for v in mats.values())
    total = sum(v.numel() for v in mats.values())
    out["pooled"] = zeros / total
    return out
