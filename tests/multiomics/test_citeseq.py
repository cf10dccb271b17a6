"""A protein (CITE-seq) modality as a DAG node, on real 10x CITE-seq data (200 cells)."""

from __future__ import annotations

import numpy as np

from biostruct.multiomics import DAGVAE, filter_empty


def test_protein_component_on_citeseq(data_dir):
    import biostruct as bs

    md = bs.datasets.load("pbmc_citeseq")
    rna = md.mod["rna"]
    top = np.sort(np.argsort(-np.asarray(rna.X.sum(0)).ravel())[:2000])  # keep the test fast
    md.mod["rna"] = rna[:, top].copy()
    md.update()
    md = filter_empty(md)
    assert set(md.mod) == {"rna", "prot"}
    graph = {
        "modalities": {"prot": {"likelihood": "protein"}, "rna": {"likelihood": "nb"}},
        "components": [
            {"name": "prot", "modalities": ["prot"], "n_latent": 4},
            {"name": "rna", "modalities": ["rna"], "conditioned_on_z": ["prot"]},
        ],
    }
    model = DAGVAE(md, graph, n_latent=4, n_hidden=16, n_layers=1, seed=0)
    model.train(max_epochs=6, batch_size=32, validation_fraction=0.2)
    hist = [h for h in model.history if h["component"] == "prot"]
    assert hist[-1]["train_elbo"] > hist[0]["train_elbo"]
    z_hat = model.get_latent_representation("rna", "z_hat")
    assert z_hat.shape == (md.n_obs, 4) and np.isfinite(z_hat).all()
    de = model.differential("prot", idx1=np.arange(50), idx2=np.arange(50, 100), n_samples=2)
    assert len(de) == md.mod["prot"].n_vars and np.isfinite(de["lfc_mean"]).all()
