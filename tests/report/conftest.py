"""Synthetic result objects carrying the keys a GRN / DAG-VAE fit writes (no training needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_grn_adata(
    n_genes: int = 12, n_traj: int = 3, times=(0.0, 2.0, 3.0, 7.0, 9.0), seed: int = 0
):
    """A trajectory AnnData with a fitted-looking network, history, predictions and knockouts."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    genes = [f"g{i}" for i in range(n_genes)]
    truth = np.zeros((n_genes, n_genes))
    idx = rng.choice(n_genes * n_genes, size=2 * n_genes, replace=False)
    truth.flat[idx] = rng.choice([-1.0, 1.0], size=idx.size)
    np.fill_diagonal(truth, 0.0)
    W = truth * rng.uniform(0.5, 1.5, truth.shape) + rng.normal(0, 0.05, truth.shape)
    W[np.abs(W) < 0.08] = 0.0
    t = np.tile(np.asarray(times), n_traj)
    traj = np.repeat([str(k) for k in range(n_traj)], len(times))
    X = rng.uniform(0, 1, (len(t), n_genes))
    obs = pd.DataFrame(
        {"trajectory": pd.Categorical(traj), "time": t},
        index=[f"traj{a}_t{b}" for a, b in zip(traj, t)],
    )
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    adata.varp["true_network"] = truth
    adata.varp["prior_noise_0.05"] = truth.copy()
    adata.varp["grn"] = W
    adata.layers["grn_pred"] = X + rng.normal(0, 0.05, X.shape)
    epochs = 30
    adata.uns["grn"] = {
        "params": {
            "method": "dash",
            "hidden": 8,
            "epochs": epochs,
            "seed": 0,
            "device": "cpu",
            "prior": "prior_noise_0.05",
        },
        "metrics": {"auroc": 0.9, "ap": 0.7},
        "history": {
            "train_loss": np.exp(-np.linspace(0, 3, epochs)) + 0.01,
            "val_loss": np.exp(-np.linspace(0, 2.5, epochs)) + 0.02,
            "lr": np.full(epochs, 1e-3),
            "density": {"sums": np.linspace(1, 0.2, epochs), "prods": np.linspace(1, 0.3, epochs)},
            "pruning_events": np.array([10, 20]),
        },
        "sparsity": {"sums": 0.8, "prods": 0.7},
        "knockout": pd.DataFrame(
            {
                "knocked_out": np.repeat(genes[:2], n_genes),
                "target": genes * 2,
                "effect": rng.normal(0, 1, 2 * n_genes),
            }
        ),
    }
    return adata


def make_dagvae_mdata(n_cells: int = 120, seed: int = 0):
    """A MuData with two components' latents, clusters, labels, history and a DE table."""
    import anndata as ad
    import mudata as md

    md.set_options(pull_on_update=False)
    rng = np.random.default_rng(seed)
    labels = rng.choice(["A", "B", "C"], n_cells)
    centre = {"A": 0.0, "B": 3.0, "C": -3.0}
    names = [f"cell{i}" for i in range(n_cells)]
    rna = ad.AnnData(
        rng.poisson(2, (n_cells, 20)).astype(np.float32), obs=pd.DataFrame(index=names)
    )
    rna.var_names = [f"gene{i}" for i in range(20)]
    atac = ad.AnnData(
        rng.poisson(1, (n_cells, 30)).astype(np.float32), obs=pd.DataFrame(index=names)
    )
    atac.var_names = [f"chr1_{i * 100}_{i * 100 + 50}" for i in range(30)]
    mdata = md.MuData({"rna": rna, "atac": atac})
    mdata.obs["cell_type"] = pd.Categorical(labels)
    for comp, dim in (("atac", 4), ("rna", 6)):
        z = rng.normal(0, 1, (n_cells, dim)) + np.array([centre[x] for x in labels])[:, None]
        mdata.obsm[f"X_dagvae_{comp}"] = z
        mdata.obs[f"dagvae_cluster_{comp}"] = pd.Categorical(
            [str({"A": 0, "B": 1, "C": 2}[x]) if rng.random() > 0.1 else "0" for x in labels]
        )
    mdata.obsm["X_dagvae_rna_hat"] = rng.normal(0, 1, (n_cells, 6))
    mdata.obsm["X_dagvae_rna_umap"] = rng.normal(0, 1, (n_cells, 2))
    mdata.uns["dagvae"] = {
        "graph": {
            "modalities": {"atac": {"likelihood": "bernoulli"}, "rna": {"likelihood": "nb"}},
            "components": [
                {"name": "atac", "modalities": ["atac"]},
                {"name": "rna", "modalities": ["rna"], "conditioned_on_z": ["atac"]},
            ],
        },
        "params": {"max_epochs": 20, "seed": 0, "label_key": "cell_type"},
        "device": "cpu",
        "history": pd.DataFrame(
            {
                "component": ["atac"] * 20 + ["rna"] * 20,
                "epoch": list(range(20)) * 2,
                "train_elbo": np.r_[-np.linspace(500, 200, 20), -np.linspace(800, 300, 20)],
                "val_elbo": np.r_[-np.linspace(520, 230, 20), -np.linspace(820, 330, 20)],
            }
        ),
    }
    de = pd.DataFrame(
        {
            "feature": rna.var_names,
            "lfc": rng.normal(0, 1.5, 20),
            "pval": rng.uniform(0, 1, 20) ** 3,
        }
    )
    de["pvals_adj"] = np.minimum(de["pval"] * 20, 1.0)
    return mdata, {"rna: cluster 1 vs rest": de}


@pytest.fixture
def grn_factory():
    """``make_grn_adata`` itself, for tests that need another size."""
    return make_grn_adata


@pytest.fixture
def grn_adata():
    return make_grn_adata()


@pytest.fixture
def dagvae_mdata():
    return make_dagvae_mdata()
