"""Defaults a new user meets: roles from modality names / feature_types, connected default graphs,
the log line naming the graph, ``layer=``, the progress switch and fit warnings in ``uns``."""

from __future__ import annotations

import logging

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from biostruct.errors import ConfigError, InputError
from biostruct.multiomics import dag_vae, default_graph, infer_role
from biostruct.multiomics.model import DAGVAE


def _cite(names=("rna", "prot"), n=60, seed=0, feature_types=None) -> mudata.MuData:
    """Tiny CITE-seq-like data: two cell types that differ in genes and proteins."""
    rng = np.random.default_rng(seed)
    kind = np.repeat([0, 1], n // 2)
    gene_mu = np.where(kind[:, None] == 0, [5.0] * 10 + [0.5] * 10, [0.5] * 10 + [5.0] * 10)
    prot_mu = np.where(kind[:, None] == 0, [40.0, 40.0, 5.0, 5.0], [5.0, 5.0, 40.0, 40.0])
    rna = rng.poisson(gene_mu).astype(np.float32)
    prot = rng.poisson(prot_mu).astype(np.float32)
    rna[:, 0] += 1  # no empty cells
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    a = ad.AnnData(sp.csr_matrix(rna), obs=obs.copy())
    a.var_names = [f"g{i}" for i in range(rna.shape[1])]
    b = ad.AnnData(sp.csr_matrix(prot), obs=obs.copy())
    b.var_names = [f"p{i}" for i in range(prot.shape[1])]
    if feature_types:
        a.var["feature_types"] = feature_types[0]
        b.var["feature_types"] = feature_types[1]
    return mudata.MuData({names[0]: a, names[1]: b})


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture()
def log_lines():
    h = _Lines()
    lg = logging.getLogger("biostruct.multiomics")
    lg.addHandler(h)
    yield h.lines
    lg.removeHandler(h)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("rna", "rna"),
        ("GEX", "rna"),
        ("Gene Expression", "rna"),
        ("ATAC", "atac"),
        ("peaks", "atac"),
        ("ADT", "protein"),
        ("Prot", "protein"),
        ("protein", "protein"),
        ("modality_7", None),
    ],
)
def test_role_from_name(name, role):
    assert infer_role(name) == role


def test_role_from_feature_types():
    md = _cite(("m1", "m2"), feature_types=("Gene Expression", "Antibody Capture"))
    assert infer_role("m1", md.mod["m1"]) == "rna"
    assert infer_role("m2", md.mod["m2"]) == "protein"
    g = default_graph(md.mod)
    assert g["m1"].conditioned_on_z_hat == ("m2",)
    assert g.modalities["m2"].likelihood == "protein"


def test_default_graphs_connect():
    assert default_graph(["rna", "atac"])["rna"].parents == ("atac",)
    assert default_graph(["GEX", "ATAC"])["GEX"].parents == ("ATAC",)
    assert default_graph(["rna", "prot"])["rna"].parents == ("prot",)
    tea = default_graph(["rna", "atac", "adt"])
    assert set(tea["rna"].parents) == {"atac", "adt"} and tea.order[-1] == "rna"
    # no RNA: nothing to condition on, every modality is a root
    assert all(not c.parents for c in default_graph(["atac", "prot"]).components)


@pytest.mark.parametrize("names", [("rna", "prot"), ("GEX", "ADT")])
def test_dag_vae_cite_default_is_connected_and_logged(names, log_lines):
    md = _cite(names)
    model = dag_vae(md, max_epochs=3, n_latent=2, n_hidden=8, n_layers=1, progress=False)
    rna, prot = names
    assert model.graph[rna].conditioned_on_z_hat == (prot,)
    assert model.graph.modalities[prot].likelihood == "protein"
    assert any("graph" in m and f"{prot} (protein) -> {rna} (zinb)" in m for m in log_lines)
    assert f"X_dagvae_{rna}_hat" in md.obsm
    assert f"dagvae_cluster_{rna}_integrated" in md.obs
    w = md.uns["dagvae"]["warnings"]
    assert isinstance(w, np.ndarray) and w.dtype.kind == "U"
    # label-free Leiden on the integrated latent, and no mixture cluster below the minimum size
    lei = md.uns["dagvae"]["leiden"][rna]
    assert lei["latent"] == "z_hat" and lei["resolution"] in list(lei["resolution_scan"])
    assert md.obs[f"dagvae_leiden_{rna}"].nunique() >= 1
    sizes = md.obs[f"dagvae_cluster_{rna}"].value_counts()
    assert len(sizes) == 1 or sizes.min() >= 10


def test_unconnected_graph_warns(log_lines):
    md = _cite(("m1", "m2"))
    g = {
        "modalities": {"m1": "nb", "m2": "protein"},
        "components": [{"name": "m1", "modalities": ["m1"]}, {"name": "m2", "modalities": ["m2"]}],
    }
    model = DAGVAE(md, g, n_latent=2, n_hidden=8, n_layers=1)
    assert any("unconnected" in w for w in model.warnings)
    assert any("unconnected" in m for m in log_lines)


def test_unknown_role_needs_likelihood():
    with pytest.raises(ConfigError, match="likelihood"):
        DAGVAE(_cite(("m1", "m2")))


def test_layer_argument(tmp_path):
    md = _cite()
    for a in md.mod.values():
        a.layers["counts"] = a.X.copy()
        a.X = sp.csr_matrix(np.log1p(a.X.toarray()))  # normalised X: counts only in the layer
    md.update()
    with pytest.raises(InputError, match="layer='counts'"):
        DAGVAE(md)
    model = dag_vae(
        md, layer="counts", max_epochs=2, n_latent=2, n_hidden=8, n_layers=1, progress=False
    )
    assert model.graph.modalities["rna"].layer == "counts"
    np.testing.assert_array_equal(
        model.data.X["prot"].toarray(), md.mod["prot"].layers["counts"].toarray()
    )
    del md.mod["prot"].layers["counts"]
    md.mod["prot"].X = md.mod["rna"].layers["counts"][:, :4].copy()
    with pytest.raises(InputError, match="layer") as err:
        DAGVAE(md, layer="counts")
    assert err.value.field == "layer"
    model = DAGVAE(md, layer={"rna": "counts"})
    assert model.graph.modalities["prot"].layer is None
    with pytest.raises(ConfigError, match="unknown modalities"):
        DAGVAE(md, layer={"RNA": "counts"})
    # written to .h5mu as it is, warnings included
    dag_vae(md, layer={"rna": "counts"}, max_epochs=2, n_latent=2, n_hidden=8, progress=False)
    md.write(tmp_path / "x.h5mu")
    back = mudata.read_h5mu(tmp_path / "x.h5mu")
    assert "warnings" in back.uns["dagvae"]


def test_progress_bar_switch(capsys):
    md = _cite()
    DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1).train(max_epochs=2, progress=True)
    assert "dag_vae [rna]" in capsys.readouterr().err
    DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1).train(max_epochs=2, progress=False)
    assert "dag_vae [" not in capsys.readouterr().err


def test_still_improving_warning():
    md = _cite(n=200)
    model = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, seed=0)
    model.train(max_epochs=6, progress=False, validation_fraction=0.5, lr=1e-3)
    assert any("still improving" in w for w in model.warnings)
    # a converged fit (early stopping triggered) has no such warning
    fine = [s for s in model.train_summary if s["stopped_early"]]
    for s in fine:
        assert not any("still improving" in w for w in s["warnings"])


def test_diverged_loss_is_a_warning(monkeypatch):
    md = _cite()
    model = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, seed=0)
    from biostruct.multiomics import module as mod

    orig = mod.DAGModule.component_loss
    calls = {"n": 0}

    def poisoned(self, component, *a, **k):
        t = orig(self, component, *a, **k)
        if component == "prot":
            calls["n"] += 1
            if calls["n"] > 3:  # after the first epoch (1 minibatch per epoch here)
                t.recon = t.recon * float("nan")
        return t

    monkeypatch.setattr(mod.DAGModule, "component_loss", poisoned)
    model.train(max_epochs=5, progress=False, validation_fraction=0.2, batch_size=64)
    assert any("diverged" in w and "[prot]" in w for w in model.warnings)
    assert not any("still improving" in w and "[prot]" in w for w in model.warnings)
    assert np.isfinite(model.get_latent_representation("prot")).all()
    assert np.isfinite(model.get_latent_representation("rna", "z_hat")).all()


def test_concat_integration_keeps_parent_dims(tmp_path):
    md = _cite()
    model = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, integration="concat", seed=0)
    model.train(max_epochs=3, progress=False)
    zh = model.get_latent_representation("rna", "z_hat")
    z_prot = model.get_latent_representation("prot", "z_hat")
    assert zh.shape == (md.n_obs, 4)
    labels, probs = model.cluster("rna", integrated=True)
    assert probs.shape[0] == md.n_obs and np.allclose(probs.sum(1), 1.0, atol=1e-6)
    back = DAGVAE.load(model.save(tmp_path / "m"), md)
    np.testing.assert_allclose(back.get_latent_representation("rna", "z_hat"), zh, rtol=1e-5)
    assert np.isfinite(z_prot).all()
    with pytest.raises(ConfigError, match="integration"):
        DAGVAE(md, integration="sum")


def test_encoder_dropout_acts_only_while_a_component_trains(tmp_path, monkeypatch):
    """Dropout in the encoder regularises the training steps only: the validation ELBO, the
    frozen ancestors' posteriors and the k-means initialisation see every unit, the latents
    read afterwards are deterministic, and the setting survives save/load."""
    import torch

    import biostruct.multiomics.module as mod

    md = _cite()
    model = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, encoder_dropout=0.5, seed=0)
    drops = {
        c: [m for m in comp.modules() if isinstance(m, torch.nn.Dropout)]
        for c, comp in model.module.components.items()
    }
    assert all(drops.values()) and all(d.p == 0.5 for ds in drops.values() for d in ds)
    modes: dict[bool, set[bool]] = {True: set(), False: set()}
    real_loss = mod.DAGModule.component_loss
    real_encode = mod.ComponentModule.encode

    def loss(self, component, *a, **k):
        modes[torch.is_grad_enabled()].update(d.training for d in drops[component])
        return real_loss(self, component, *a, **k)

    def encode(self, *a, **k):
        if not torch.is_grad_enabled():  # ancestors' posteriors, k-means init, latents
            modes[False].update(d.training for d in drops[self.name])
        return real_encode(self, *a, **k)

    monkeypatch.setattr(mod.DAGModule, "component_loss", loss)
    monkeypatch.setattr(mod.ComponentModule, "encode", encode)
    model.train(max_epochs=4, progress=False, validation_fraction=0.2, batch_size=32)
    assert modes[True] == {True}  # every training step drops units
    assert modes[False] == {False}  # no evaluation does
    z1 = model.get_latent_representation("rna", "z_hat")
    np.testing.assert_array_equal(z1, model.get_latent_representation("rna", "z_hat"))
    back = DAGVAE.load(model.save(tmp_path / "m"), md)
    assert back.init_args["encoder_dropout"] == 0.5
    np.testing.assert_allclose(back.get_latent_representation("rna", "z_hat"), z1, rtol=1e-5)
    for bad in (1.0, -0.1, "0.1", None, True):
        with pytest.raises(ConfigError, match="encoder_dropout"):
            DAGVAE(md, encoder_dropout=bad)


def test_ancestor_weight_scales_the_decoded_proteins_and_survives_save_load(tmp_path):
    """'balanced' weights the proteins decoded from the RNA component's z_hat by the RNA's
    feature count over the proteins' (per feature they count as much as a gene), a number
    replaces that factor, and a saved model keeps its setting (older files: 1)."""
    md = _cite()
    n_rna, n_prot = md.mod["rna"].n_vars, md.mod["prot"].n_vars
    balanced = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, seed=0, ancestor_weight="balanced")
    assert balanced.module.ancestor_weights == {"prot": {}, "rna": {"prot": n_rna / n_prot}}
    plain = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, seed=0, ancestor_weight=1.0)
    assert plain.module.ancestor_weights["rna"] == {"prot": 1.0}
    balanced.train(max_epochs=3, progress=False)
    back = DAGVAE.load(balanced.save(tmp_path / "m"), md)
    assert back.init_args["ancestor_weight"] == "balanced"
    assert back.module.ancestor_weights == balanced.module.ancestor_weights
    with pytest.raises(ConfigError, match="ancestor_weight"):
        DAGVAE(md, ancestor_weight=-2.0)


def test_reading_latents_leaves_the_module_mode_as_it_was():
    """analysis.latents reads with dropout off and then restores every submodule's mode, so a
    call in the middle of training (e.g. from a callback) does not switch dropout off."""
    import torch

    from biostruct.multiomics.analysis import latents

    md = _cite()
    model = DAGVAE(md, n_latent=2, n_hidden=8, n_layers=1, encoder_dropout=0.5, seed=0)
    model.train(max_epochs=2, progress=False, batch_size=32)
    model.module.train()
    model.module.components["prot"].eval()  # a mixed state must come back as it was
    before = {n: m.training for n, m in model.module.named_modules()}
    a = latents(model.module, model.data, "rna", model.device)
    b = latents(model.module, model.data, "rna", model.device)
    np.testing.assert_array_equal(a["z_hat"], b["z_hat"])  # dropout was off while reading
    assert {n: m.training for n, m in model.module.named_modules()} == before
    assert any(isinstance(m, torch.nn.Dropout) and m.training for m in model.module.modules())


def test_default_mixture_size_shrinks_on_few_cells():
    from biostruct.multiomics.graph import default_n_clusters

    # 2d+1 needs 5 training cells per parameter of each component
    assert default_n_clusters(10, None) == 21
    assert default_n_clusters(10, 9_000) == 21
    assert default_n_clusters(10, 2_205) == 21  # 2,450 cells, 10 % held out
    assert default_n_clusters(10, 2_204) == 20
    assert default_n_clusters(10, 1_350) == 12  # 1,500 cells
    assert default_n_clusters(10, 495) == 4  # 550 cells
    assert default_n_clusters(3, 7) == 1


def test_given_mixture_sizes_win_over_the_small_data_default():
    md = _cite(n=60)  # 54 training cells, 2d+1 = 5 parameters: 54 // 25 = 2 components
    assert [c.n_clusters for c in DAGVAE(md, n_latent=2).graph.components] == [2, 2]
    assert [c.n_clusters for c in DAGVAE(md, n_latent=2, n_clusters=5).graph.components] == [5, 5]
    graph = {
        "modalities": {"rna": {}, "prot": {}},
        "components": [
            {"name": "prot", "modalities": ["prot"], "n_clusters": 3},
            {"name": "rna", "modalities": ["rna"], "parents": ["prot"]},
        ],
    }
    model = DAGVAE(md, graph=graph, n_latent=2)
    assert {c.name: c.n_clusters for c in model.graph.components} == {"prot": 3, "rna": 2}
