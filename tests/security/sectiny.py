"""Tiny data shared by tests/security and tests/reliability (importable by name)."""

from __future__ import annotations

import numpy as np


def tiny_grn_adata(n_genes: int = 8, n_traj: int = 6, seed: int = 0):
    """``n_traj`` trajectories x 5 time points of decaying genes, with a signed varp['prior']."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    g, times = n_genes, np.array([0.0, 1.0, 2.0, 4.0, 6.0])
    x0 = rng.uniform(0.2, 0.8, size=(n_traj, g))
    rate = rng.uniform(0.1, 0.5, size=g)
    x = np.stack([x0 * np.exp(-rate * t) + 0.1 for t in times], axis=1).reshape(-1, g)
    obs = pd.DataFrame(
        {
            "trajectory": np.repeat([str(k) for k in range(n_traj)], len(times)),
            "time": np.tile(times, n_traj),
        },
        index=[f"c{k}" for k in range(n_traj * len(times))],
    )
    a = ad.AnnData(x.astype(np.float32), obs=obs)
    a.var_names = [f"g{k}" for k in range(g)]
    prior = np.zeros((g, g), dtype=np.float32)
    prior[0, 1] = prior[1, 2] = prior[3, 4] = 1.0
    prior[2, 5] = -1.0
    a.varp["prior"] = prior
    return a


def tiny_mudata(n_cells: int = 60, n_genes: int = 15, n_peaks: int = 12, seed: int = 0):
    """A MuData of Poisson RNA counts and binary ATAC peaks (default graph: atac -> rna)."""
    import anndata as ad
    import mudata as md
    import pandas as pd

    md.set_options(pull_on_update=False)
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n_cells)])
    rna = ad.AnnData(rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32), obs=obs.copy())
    atac = ad.AnnData((rng.random((n_cells, n_peaks)) < 0.4).astype(np.float32), obs=obs.copy())
    rna.var_names = [f"g{i}" for i in range(n_genes)]
    atac.var_names = [f"p{i}" for i in range(n_peaks)]
    return md.MuData({"rna": rna, "atac": atac})
