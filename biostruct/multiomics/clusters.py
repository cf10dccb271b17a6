"""Cluster assignments that hold up at full scale: a label-free Leiden resolution choice, and the
absorption of tiny mixture clusters into their cells' next most probable cluster."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from biostruct.errors import InputError

__all__ = [
    "RESOLUTIONS",
    "absorb_small_clusters",
    "leiden_label_free",
    "leiden_scan",
    "scan_graph",
    "silhouette_subset",
]

#: Leiden resolutions scanned by default.
RESOLUTIONS = (0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)


def leiden_scan(
    z: np.ndarray,
    resolutions: Sequence[float] = RESOLUTIONS,
    *,
    n_neighbors: int = 15,
    seed: int = 0,
    silhouette_cells: int = 3000,
) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    """Leiden on the kNN graph of ``z`` at each resolution, with the silhouette of each result.

    The silhouette (Euclidean, on ``z``, over a fixed random subset of ``silhouette_cells``
    cells) uses no labels, so the resolution with the best silhouette is a label-free choice.

    Returns
    -------
    A table (``resolution``, ``n_clusters``, ``silhouette``) and ``{resolution: labels}``.
    """
    from biostruct.multiomics.analysis import latent_neighbors

    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or len(z) < 3 or not np.isfinite(z).all():
        raise InputError(
            f"need a finite (cells x dims) latent with >= 3 cells, got shape {z.shape}.",
            field="z",
            fix="pass e.g. mdata.obsm['X_dagvae_rna_hat'].",
        )
    graph = latent_neighbors(z, n_neighbors=n_neighbors, seed=seed)
    sub = silhouette_subset(len(z), silhouette_cells, seed)
    return scan_graph(graph, z, sub, resolutions, seed)


def silhouette_subset(n_cells: int, n: int = 3000, seed: int = 0) -> np.ndarray:
    """The fixed random cells the silhouette of :func:`leiden_scan` is computed on."""
    return np.random.default_rng(seed).choice(n_cells, size=min(n_cells, n), replace=False)


def scan_graph(
    graph: ad.AnnData,
    z: np.ndarray,
    sub: np.ndarray,
    resolutions: Sequence[float],
    leiden_seed: int = 0,
) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    """:func:`leiden_scan` on a kNN graph built already (``graph``, from
    :func:`~biostruct.multiomics.analysis.latent_neighbors`), with Leiden's seed
    ``leiden_seed`` and the silhouette over the cells ``sub``; scanning one graph with several
    Leiden seeds needs the graph once."""
    import scanpy as sc
    from sklearn.metrics import silhouette_score

    rows, labels = [], {}
    for r in resolutions:
        sc.tl.leiden(
            graph,
            resolution=r,
            key_added="_leiden",
            flavor="igraph",
            n_iterations=2,
            directed=False,
            random_state=leiden_seed,
        )
        lab = graph.obs["_leiden"].astype(int).to_numpy()
        n_sub = len(np.unique(lab[sub]))
        sil = float(silhouette_score(z[sub], lab[sub])) if 1 < n_sub < len(sub) else -1.0
        rows.append({"resolution": float(r), "n_clusters": int(lab.max() + 1), "silhouette": sil})
        labels[float(r)] = lab
    return pd.DataFrame(rows), labels


def leiden_label_free(
    z: np.ndarray,
    resolutions: Sequence[float] = RESOLUTIONS,
    *,
    n_neighbors: int = 15,
    seed: int = 0,
) -> tuple[np.ndarray, float, pd.DataFrame]:
    """Leiden clusters of ``z`` at the resolution with the best silhouette (no labels used).

    Returns
    -------
    labels (n_cells,), the chosen resolution, and the scan table of :func:`leiden_scan`.
    """
    table, labels = leiden_scan(z, resolutions, n_neighbors=n_neighbors, seed=seed)
    best = float(table.loc[table["silhouette"].idxmax(), "resolution"])
    return labels[best], best, table


def absorb_small_clusters(probs: np.ndarray, min_size: int) -> np.ndarray:
    """Argmax labels of ``probs`` (cells x clusters) after dropping clusters below ``min_size``.

    The smallest cluster is removed and its cells go to their next most probable cluster, until
    every remaining cluster has at least ``min_size`` cells (or one is left), as CAVACHON's
    ``min_n_obs``. Returns consecutive integer labels.
    """
    probs = np.asarray(probs, dtype=np.float64)
    alive = np.ones(probs.shape[1], dtype=bool)
    while True:
        masked = np.where(alive, probs, -np.inf)
        lab = masked.argmax(1)
        counts = np.bincount(lab, minlength=probs.shape[1])
        used = np.flatnonzero(alive & (counts > 0))
        alive &= counts > 0
        if len(used) <= 1:
            break
        small = used[counts[used] < min_size]
        if not len(small):
            break
        alive[small[np.argmin(counts[small])]] = False
    _, out = np.unique(lab, return_inverse=True)
    return out
