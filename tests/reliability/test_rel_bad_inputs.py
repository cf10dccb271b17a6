"""Known bad inputs to both APIs: a biostruct error naming the field and the fix, a warning for
data on an unexpected scale, and predictions in the right rows (issue #14)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from biostruct.errors import BiostructError, InputError
from biostruct.grn.api import infer_grn


def _fit(adata, **kw):
    return infer_grn(adata, None, method="dense", epochs=2, hidden=4, **kw)


@pytest.mark.parametrize(
    ("subset", "field"),
    [((slice(None), []), "adata.var"), (([], slice(None)), "adata.obs")],
    ids=["no genes", "no observations"],
)
def test_grn_without_genes_or_observations(tiny_adata, subset, field):
    with pytest.raises(InputError) as exc:
        _fit(tiny_adata[subset].copy())
    assert exc.value.field == field and exc.value.fix


def test_grn_text_time_column(tiny_adata):
    tiny_adata.obs["time"] = ["t" + str(v) for v in tiny_adata.obs["time"]]
    with pytest.raises(InputError, match="holds text such as 't0.0'") as exc:
        _fit(tiny_adata)
    assert exc.value.field == "obs['time']" and "astype(float)" in exc.value.fix


def test_grn_numbers_stored_as_text_still_work(tiny_adata):
    ref = _fit(tiny_adata.copy()).edge_scores()
    tiny_adata.obs["time"] = tiny_adata.obs["time"].astype(str)
    np.testing.assert_allclose(_fit(tiny_adata).edge_scores(), ref)


def test_grn_duplicated_obs_names_with_predict(tiny_adata):
    tiny_adata.obs_names = ["c0"] * tiny_adata.n_obs
    with pytest.raises(InputError, match="not unique") as exc:
        _fit(tiny_adata, predict=True)
    assert exc.value.field == "adata.obs_names"
    assert "grn_pred" not in tiny_adata.layers and "grn" not in tiny_adata.varp


def test_grn_predictions_land_in_their_rows(tiny_adata):
    """Shuffled rows: each observation's prediction is written to its own row."""
    order = np.random.default_rng(1).permutation(tiny_adata.n_obs)
    shuffled = tiny_adata[order].copy()
    _fit(tiny_adata, predict=True)
    _fit(shuffled, predict=True)
    a = tiny_adata.to_df(layer="grn_pred")
    b = shuffled.to_df(layer="grn_pred").loc[a.index]
    # row order changes the validation split a little (known, #14), not which row is which
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), atol=1e-2, rtol=0)


def test_grn_warns_on_unnormalised_scale(tiny_adata):
    big = tiny_adata.copy()
    big.X = big.X * 1e6
    with pytest.warns(
        UserWarning,
        match=r"adata\.X: expression reaches [\d.]+e\+05, the scale of raw counts.*normalise",
    ):
        _fit(big)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*unnormalised.*")
        _fit(tiny_adata)  # normalised data: no such warning


def test_bad_input_errors_are_biostruct_errors(tiny_adata):
    with pytest.raises(BiostructError):
        _fit(tiny_adata[:, []].copy())


# ------------------------------------------------------------------------------- DAG-VAE
def test_dagvae_fewer_cells_than_clusters():
    from sectiny import tiny_mudata

    from biostruct.multiomics.api import dag_vae

    mdata = tiny_mudata(n_cells=8)
    with pytest.raises(InputError, match="9 mixture clusters but only 7 training cells") as exc:
        dag_vae(mdata, n_latent=4, n_clusters=9, max_epochs=2, progress=False)
    assert exc.value.field == "components.atac.n_clusters" and "n_clusters <= 7" in exc.value.fix
    assert not any(k.startswith("X_dagvae") for k in mdata.obsm)


def test_dagvae_child_on_an_untrained_parent():
    from sectiny import tiny_mudata

    from biostruct.errors import NotFittedError
    from biostruct.multiomics.model import DAGVAE

    model = DAGVAE(tiny_mudata(), n_latent=2)
    with pytest.raises(NotFittedError, match="conditioned on 'atac'") as exc:
        model.train(2, components=["rna"], progress=False)
    assert exc.value.field == "components" and "train 'atac' first" in exc.value.fix
    assert not model.is_trained and not model.train_summary
    model.train(2, components=["atac"], progress=False)
    model.train(2, components=["rna"], progress=False)  # parent trained: allowed
    assert [s["component"] for s in model.train_summary] == ["atac", "rna"]


def test_dagvae_modality_without_features():
    from sectiny import tiny_mudata

    from biostruct.multiomics.model import DAGVAE

    mdata = tiny_mudata()
    mdata.mod["rna"] = mdata.mod["rna"][:, []].copy()
    with pytest.raises(InputError, match="no features") as exc:
        DAGVAE(mdata)
    assert exc.value.field == "rna.var" and "cells have no counts" not in str(exc.value)


@pytest.mark.filterwarnings("ignore:.*obs_names.*:UserWarning")  # mudata's, on the bad input
def test_dagvae_duplicated_cell_names():
    import mudata as md
    from sectiny import tiny_mudata

    from biostruct.multiomics.api import dag_vae

    mods = dict(tiny_mudata().mod)
    for a in mods.values():
        a.obs_names = ["c0"] * a.n_obs
    mdata = md.MuData(mods)
    with pytest.raises(InputError, match="cell names are not unique") as exc:
        dag_vae(mdata, n_latent=2, max_epochs=2, progress=False)
    assert exc.value.field.endswith(".obs_names") and "obs_names_make_unique" in exc.value.fix
