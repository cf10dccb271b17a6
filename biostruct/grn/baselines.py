"""Model-free GRN baselines a user would reach for instead of a neural ODE.

All return a signed G x G score matrix (regulator rows, target columns, zero diagonal), so that
they are scored by the same code as the models (:mod:`biostruct.grn.metrics`).

- :func:`pearson`: correlation across cells;
- :func:`partial_correlation`: from the Ledoit-Wolf shrunk precision matrix (PPCOR-like);
- :func:`sincerities`: SINCERITIES-style ridge regression of distribution changes along
  pseudotime (Papili Gao et al. 2018): per lineage, cells are cut into pseudotime windows, the
  change of each gene's distribution between consecutive windows is the Kolmogorov-Smirnov
  distance per unit time, and each target's change is regressed on every gene's change one window
  earlier; the sign comes from the partial correlation.
"""

from __future__ import annotations

import numpy as np

from biostruct.grn.pseudotime import LineageTimes

__all__ = ["pearson", "partial_correlation", "sincerities"]


def _zero_diag(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    np.fill_diagonal(a, 0.0)
    return np.nan_to_num(a)


def pearson(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between genes over cells (``x``: cells x genes)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(x.T)
    return _zero_diag(c)


def partial_correlation(x: np.ndarray) -> np.ndarray:
    """Partial correlation -P_ij / sqrt(P_ii P_jj) of the Ledoit-Wolf shrunk precision P."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
    p = np.linalg.pinv(LedoitWolf().fit(z).covariance_)
    d = np.sqrt(np.clip(np.diag(p), 1e-12, None))
    return _zero_diag(-p / np.outer(d, d))


def _ks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic per column."""
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        grid = np.sort(np.r_[a[:, j], b[:, j]])
        fa = np.searchsorted(np.sort(a[:, j]), grid, side="right") / len(a)
        fb = np.searchsorted(np.sort(b[:, j]), grid, side="right") / len(b)
        out[j] = np.abs(fa - fb).max()
    return out


def sincerities(x: np.ndarray, lt: LineageTimes, *, n_windows: int = 10) -> np.ndarray:
    """SINCERITIES-style score: ridge regression of KS distribution changes along pseudotime.

    Parameters
    ----------
    x
        Cells x genes expression.
    lt
        Pseudotime per cell and lineage (:func:`biostruct.grn.pseudotime.lineage_times`).
    n_windows
        Pseudotime windows per lineage (equal cell counts).
    """
    from sklearn.linear_model import RidgeCV

    x = np.asarray(x, dtype=np.float64)
    rows_in, rows_out = [], []
    for j in range(len(lt.names)):
        on = np.flatnonzero(np.isfinite(lt.times[:, j]))
        order = on[np.argsort(lt.times[on, j], kind="stable")]
        windows = [w for w in np.array_split(order, n_windows) if len(w) >= 2]
        if len(windows) < 3:
            continue
        t = np.array([lt.times[w, j].mean() for w in windows])
        dtd = []
        for k in range(len(windows) - 1):
            dt = max(t[k + 1] - t[k], 1e-12)
            dtd.append(_ks(x[windows[k]], x[windows[k + 1]]) / dt)
        dtd_a = np.asarray(dtd)
        rows_in.append(dtd_a[:-1])
        rows_out.append(dtd_a[1:])
    g = x.shape[1]
    if not rows_in:
        return np.zeros((g, g))
    a_in, a_out = np.concatenate(rows_in), np.concatenate(rows_out)
    coef = RidgeCV(alphas=np.logspace(-4, 2, 13)).fit(a_in, a_out).coef_  # (targets, regulators)
    sign = np.sign(partial_correlation(x))
    sign[sign == 0] = 1.0
    return _zero_diag(np.abs(coef.T) * sign)
