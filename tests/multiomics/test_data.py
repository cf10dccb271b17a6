"""Bad input is rejected with biostruct errors that name the field and the fix."""

from __future__ import annotations

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from biostruct.errors import ConfigError, InputError
from biostruct.multiomics import DAGVAE, filter_empty


def _pair(n=30, g=8, p=12, seed=0):
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"batch": rng.choice(["a", "b"], n)}, index=[f"c{i}" for i in range(n)])
    x_rna = rng.poisson(2.0, (n, g)).astype(np.float32)
    x_rna[np.arange(n), np.arange(n) % g] += 1  # no empty cell or feature
    x_atac = rng.binomial(1, 0.4, (n, p)).astype(np.float32)
    x_atac[np.arange(n), np.arange(n) % p] = 1
    rna = ad.AnnData(sp.csr_matrix(x_rna), obs=obs.copy())
    atac = ad.AnnData(sp.csr_matrix(x_atac), obs=obs.copy())
    rna.var_names = [f"g{i}" for i in range(g)]
    atac.var_names = [f"p{i}" for i in range(p)]
    return {"rna": rna, "atac": atac}


def test_valid_dict_and_reordered_cells_are_aligned():
    d = _pair()
    d["atac"] = d["atac"][::-1].copy()
    m = DAGVAE(d, n_latent=2, n_hidden=8, batch_key="batch")
    assert m.data.n_cells == 30 and m.data.n_batch == 2
    np.testing.assert_array_equal(
        m.data.X["atac"].toarray(), d["atac"][m.data.obs_names].X.toarray()
    )


def test_non_integer_counts():
    d = _pair()
    d["rna"].X = d["rna"].X * 0.5
    with pytest.raises(InputError, match="non-integer") as err:
        DAGVAE(d)
    assert err.value.field == "rna.X" and "raw counts" in str(err.value)


def test_negative_counts():
    d = _pair()
    x = d["rna"].X.toarray()
    x[0, 0] = -1
    d["rna"].X = sp.csr_matrix(x)
    with pytest.raises(InputError, match="negative"):
        DAGVAE(d)


def test_nan():
    d = _pair()
    x = d["atac"].X.toarray()
    x[1, 1] = np.nan
    d["atac"].X = x
    with pytest.raises(InputError, match="NaN") as err:
        DAGVAE(d)
    assert err.value.field == "atac.X"


def test_cells_not_shared():
    d = _pair()
    d["atac"] = d["atac"][:25].copy()
    with pytest.raises(InputError, match="do not share the same cells") as err:
        DAGVAE(d)
    assert "Mosaic" in str(err.value) and "intersect_obs" in str(err.value)


def test_empty_cells_and_features_raise_then_filter_fixes():
    d = _pair()
    x = d["rna"].X.toarray()
    x[3] = 0
    x[:, 2] = 0
    d["rna"].X = sp.csr_matrix(x)
    with pytest.raises(InputError, match="1 of 30 cells have no counts") as err:
        DAGVAE(d)
    assert "filter_empty" in str(err.value)
    x_fixed = x.copy()
    x_fixed[3, [0, 1, 3]] = 1.0
    d["rna"].X = sp.csr_matrix(x_fixed)
    with pytest.raises(InputError, match="1 of 8 features are zero"):
        DAGVAE(d)
    d["rna"].X = sp.csr_matrix(x)
    md = mudata.MuData(d)
    f = filter_empty(md)
    assert f.n_obs == 29 and f.mod["rna"].n_vars == 7 and f.mod["atac"].n_vars == 12
    DAGVAE(f, n_latent=2, n_hidden=8)


def test_unknown_batch_key_and_training_option():
    with pytest.raises(InputError, match="batch column 'sample'"):
        DAGVAE(_pair(), batch_key="sample")
    m = DAGVAE(_pair(), n_latent=2, n_hidden=8)
    with pytest.raises(ConfigError, match="batch_size"):
        m.train(max_epochs=1, batchsize=32)
    with pytest.raises(ConfigError, match="device"):
        DAGVAE(_pair(), device="tpu")


def test_not_trained():
    from biostruct.errors import NotFittedError

    m = DAGVAE(_pair(), n_latent=2, n_hidden=8)
    with pytest.raises(NotFittedError):
        m.cluster("rna")


def test_tiny_training_runs_all_phases_and_is_seeded():
    def fit():
        m = DAGVAE(_pair(), n_latent=2, n_hidden=8, batch_key="batch", seed=3)
        m.train(max_epochs=6, batch_size=8, validation_fraction=0.2, patience=2)
        return m

    a, b = fit(), fit()
    phases = {h["phase"] for h in a.history if h["component"] == "rna"}
    assert {"parent", "std", "gmm"} <= phases
    assert [h["alpha"] for h in a.history if h["phase"] == "parent"][-1] == pytest.approx(1.0)
    np.testing.assert_allclose(
        a.get_latent_representation("rna"), b.get_latent_representation("rna"), rtol=1e-5
    )
    assert all(np.isfinite(h["val_elbo"]) for h in a.history)


def test_api_on_dict_with_copy_and_checkpoints(tmp_path):
    from biostruct.multiomics import dag_vae

    d = _pair(n=40)
    out, model = dag_vae(
        d,
        max_epochs=3,
        n_latent=2,
        n_hidden=8,
        batch_key="batch",
        copy=True,
        batch_size=16,
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert "X_dagvae_rna" not in d["rna"].obsm  # the input was not modified
    for a in out.values():
        assert a.obsm["X_dagvae_rna_hat"].shape == (40, 2)
        assert "dagvae_cluster_atac" in a.obs
    assert (tmp_path / "ckpt" / "model.pt").exists()
    ck = DAGVAE.load(tmp_path / "ckpt", out)
    np.testing.assert_array_equal(
        ck.get_latent_representation("rna"), model.get_latent_representation("rna")
    )


@pytest.mark.gpu
def test_cuda_training_matches_cpu_shapes():
    m = DAGVAE(_pair(), n_latent=2, n_hidden=8, device="cuda")
    m.train(max_epochs=3, batch_size=8)
    assert m.device.type == "cuda"
    assert np.isfinite(m.get_latent_representation("rna", "z_hat")).all()
