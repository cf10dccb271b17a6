"""Dataset loaders on the shared data: contents, alignment and provenance."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

import biostruct as bs


@pytest.fixture(scope="module")
def load(data_dir):
    cache: dict[str, object] = {}

    def _load(name: str):
        if name not in cache:
            cache[name] = bs.datasets.load(name, data_dir=data_dir, download=False)
        return cache[name]

    return _load


@pytest.mark.parametrize(
    ("name", "n_genes", "n_inputs", "n_edges"),
    [("sim690", 690, 97, 1082), ("sim350", 350, 73, 550)],
)
def test_sim_loaders(load, grn_dir, name, n_genes, n_inputs, n_edges):
    a = load(name)
    assert a.shape == (50, n_genes)
    assert a.obs["trajectory"].dtype == "category"
    assert list(a.obs["trajectory"].cat.categories) == [str(i) for i in range(10)]
    np.testing.assert_array_equal(np.unique(a.obs["time"]), [0, 2, 3, 7, 9])
    assert a.var["is_input"].sum() == n_inputs
    # input genes are constant along each trajectory
    for _, idx in a.obs.groupby("trajectory", observed=True).indices.items():
        block = a.X[idx][:, a.var["is_input"].to_numpy()]
        assert np.all(block == block[0])
    truth = a.varp["true_network"]
    assert (truth != 0).sum() == n_edges and set(np.unique(truth)) == {-1.0, 0.0, 1.0}
    assert np.all(truth[:, a.var["is_input"].to_numpy()] == 0)  # inputs have no regulators
    ref = np.loadtxt(grn_dir / name / "prior_noise_0.1.csv", delimiter=",")
    np.testing.assert_array_equal(a.varp["prior_noise_0.1"], ref)
    for noise in ("0.025", "0.05", "0.1"):
        assert (a.varp[f"prior_noise_{noise}"] != 0).sum() == n_edges
    prov = a.uns["dataset"]
    assert prov["name"] == name and "MIT" in prov["license"]
    assert len(prov["files"]["test"]["sha256"]) == 64


def test_hema_b(load):
    a = load("hema_b")
    assert a.n_vars == 529
    counts = a.obs["trajectory"].value_counts().to_dict()
    assert counts == {
        "train_0": 482,
        "train_1": 168,
        "test_0": 391,
        "test_1": 1005,
        "test_2": 48,
    }
    assert (a.obs["split"] == "train").sum() == 650
    p = a.varp["prior"]
    assert p.sum() == 31030 and (p.any(axis=1)).sum() == 111
    assert a.obs["time"].between(0, 1).all()


def test_hema_mono(load):
    a = load("hema_mono")
    assert a.obs["trajectory"].value_counts().to_dict() == {"train_0": 998, "train_1": 824}


def test_breast500(load, grn_dir):
    a = load("breast500")
    assert a.shape == (186, 500)
    p = a.varp["prior"]
    assert (p != 0).sum() == 7732 and set(np.unique(p)) == {-0.5, 0.0, 0.5}
    v = a.varp["validation_network"]
    assert set(np.unique(v)) == {0.0, 1.0}
    # independent count: ChIP edges with both ends among the 500 genes
    import pandas as pd

    edges = pd.read_csv(grn_dir / "breast500" / "validation_network.csv")
    genes = set(a.var_names)
    inside = edges[edges["from"].isin(genes) & edges["to"].isin(genes)].drop_duplicates()
    assert v.sum() == len(inside) > 0

    s = load("breast500_split")
    assert s.obs["split"].value_counts().to_dict() == {"train": 178, "test": 8}
    test_t = s.obs.loc[s.obs["split"] == "test", "time"]
    assert test_t.between(0.5, 0.54).all()
    # the split is the full series minus/plus the 8 middle points
    full_t = np.sort(a.obs["time"].to_numpy())
    np.testing.assert_allclose(np.sort(s.obs["time"].to_numpy()), full_t)


def test_snareseq_is_sparse_and_labelled(load):
    m = load("snareseq")
    rna, atac = m["rna"], m["atac"]
    assert rna.shape == (10309, 1677) and atac.shape == (10309, 25734)
    for x in (rna.X, atac.X):
        assert sp.issparse(x) and x.format == "csr"
        assert np.issubdtype(x.dtype, np.integer)
    assert atac.X.max() == 5
    for obs in (m.obs, rna.obs, atac.obs):
        assert {"batch", "label", "label_fine"} <= set(obs.columns)
    assert m.obs["label"].nunique() == 15 and m.obs["label_fine"].nunique() == 23
    assert m.obs["batch"].nunique() == 12
    assert rna.var_names[0] == "0610040J01Rik" and atac.var_names[0].startswith("chr1_")
    assert m.uns["gene_peak_links"].shape == (1677, 25734)


def test_pbmc_loaders(load):
    m = load("pbmc_multiome_tiny")
    assert m.n_obs == 1000 and set(m.mod) == {"rna", "atac"}
    c = load("pbmc_citeseq")
    assert c["rna"].shape == (200, 16581) and c["prot"].shape == (200, 29)
    assert np.all(c["prot"].X >= 0)
    assert list(c["rna"].obs_names) == list(c["prot"].obs_names)


def test_env_var_is_used(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("BIOSTRUCT_DATA_DIR", os.fspath(data_dir))
    monkeypatch.setenv("BIOSTRUCT_CACHE_DIR", os.fspath(tmp_path))
    a = bs.datasets.load("sim350", download=False)
    assert a.n_vars == 350
    assert not any(tmp_path.iterdir())
