"""Per-feature standardisation of the encoder input (``scale_encoder_input``)."""

from __future__ import annotations

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sps
import torch

from biostruct.errors import ConfigError
from biostruct.multiomics import DAGVAE

N = 120


@pytest.fixture(scope="module")
def cite() -> mudata.MuData:
    """RNA counts with one highly expressed gene, protein counts, binary peaks."""
    rng = np.random.default_rng(0)
    state = rng.integers(0, 2, N)
    rate = np.exp(0.2 + 1.2 * (state[:, None] == (np.arange(30) % 2)))
    rate[:, 0] *= 200.0  # one gene dominates the log-normalised profile
    rna = rng.poisson(rate).astype(np.float32)
    prot = rng.poisson(np.exp(2.0 + 2.0 * (state[:, None] == (np.arange(6) % 2)))).astype(
        np.float32
    )
    peaks = (rng.random((N, 40)) < 0.1 + 0.3 * (state[:, None] == 1)).astype(np.float32)
    peaks[:, 0] = 1.0  # no cell without an open peak
    obs = pd.DataFrame(index=[f"c{i}" for i in range(N)])

    def mod(x, prefix):
        var = pd.DataFrame(index=[f"{prefix}{j}" for j in range(x.shape[1])])
        return ad.AnnData(sps.csr_matrix(x), obs=obs.copy(), var=var)

    return mudata.MuData({"rna": mod(rna, "g"), "prot": mod(prot, "p"), "atac": mod(peaks, "r")})


def _graph() -> dict:
    return {
        "modalities": {"rna": "zinb", "prot": "protein", "atac": "bernoulli"},
        "components": [
            {"name": "prot", "modalities": ["prot"]},
            {"name": "atac", "modalities": ["atac"]},
            {"name": "rna", "modalities": ["rna"], "conditioned_on_z": ["prot", "atac"]},
        ],
    }


def _encoder_input(model: DAGVAE, component: str, modality: str, x: np.ndarray) -> np.ndarray:
    comp = model.module.components[component]
    with torch.no_grad():
        return comp.encoder_input(modality, torch.as_tensor(x)).numpy()


def test_count_protein_and_binarised_atac_inputs_are_standardised(cite):
    model = DAGVAE(cite, _graph(), n_latent=3, seed=0)
    for m in ("rna", "prot", "atac"):
        assert set(model.module.components[m].input_scaling) == {m}
        a = _encoder_input(model, m, m, cite.mod[m].X.toarray())
        keep = cite.mod[m].X.toarray().std(0) > 0  # constant features are left unscaled
        np.testing.assert_allclose(a.mean(0)[keep], 0.0, atol=1e-4)
        np.testing.assert_allclose(a.std(0)[keep], 1.0, atol=1e-3)
    # the peaks are binarised before they are standardised: counts of 1 and 3 read the same
    peaks = cite.mod["atac"].X.toarray()
    np.testing.assert_array_equal(
        _encoder_input(model, "atac", "atac", peaks),
        _encoder_input(model, "atac", "atac", 3 * peaks),
    )
    # a count far outside the data is clipped at 10 sd
    far = np.full((1, 6), 1e9, dtype=np.float32)
    assert _encoder_input(model, "prot", "prot", far).max() == pytest.approx(10.0)


def test_switching_it_off_feeds_the_likelihoods_transform(cite):
    model = DAGVAE(cite, _graph(), n_latent=3, seed=0, scale_encoder_input=False)
    assert all(len(c.input_scaling) == 0 for c in model.module.components.values())
    x = cite.mod["rna"].X.toarray()
    lik = model.module.components["rna"].likelihoods["rna"]
    np.testing.assert_allclose(
        _encoder_input(model, "rna", "rna", x), lik.encoder_input(torch.as_tensor(x)).numpy()
    )


def test_scaling_is_saved_and_models_saved_before_it_load_unscaled(cite, tmp_path):
    model = DAGVAE(cite, _graph(), n_latent=3, seed=0)
    model.train(max_epochs=3, progress=False, batch_size=32, validation_fraction=0.2)
    path = model.save(tmp_path / "m")
    loaded = DAGVAE.load(path, cite)
    np.testing.assert_array_equal(
        loaded.get_latent_representation("rna", "z_hat"),
        model.get_latent_representation("rna", "z_hat"),
    )
    # a model written before the option existed: no scaling in its weights or settings
    old = DAGVAE(cite, _graph(), n_latent=3, seed=0, scale_encoder_input=False)
    old.train(max_epochs=3, progress=False, batch_size=32, validation_fraction=0.2)
    del old.init_args["scale_encoder_input"]  # what an older biostruct wrote
    old_path = old.save(tmp_path / "old")
    reloaded = DAGVAE.load(old_path, cite)
    assert all(len(c.input_scaling) == 0 for c in reloaded.module.components.values())
    np.testing.assert_array_equal(
        reloaded.get_latent_representation("rna", "z_hat"),
        old.get_latent_representation("rna", "z_hat"),
    )


def test_a_non_boolean_setting_is_refused(cite):
    with pytest.raises(ConfigError, match="scale_encoder_input"):
        DAGVAE(cite, _graph(), n_latent=3, scale_encoder_input="no")
