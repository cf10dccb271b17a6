"""infer_grn / GRNModel: outputs, save/load, extraction, perturbation, bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from biostruct.errors import ConfigError, InputError, PriorError, SolverError
from biostruct.grn import GRNModel, infer_grn, plotting
from biostruct.grn.extract import jacobian_effect
from biostruct.grn.field import PhoenixField

FAST = {"epochs": 4, "hidden": 6, "batch_size": 16, "start_epoch": 1, "every": 2}


@pytest.fixture()
def adata(small_network):
    a, truth, prior = small_network
    a = a[a.obs["trajectory"].astype(int) < 10].copy()
    a.varp["truth"] = truth
    a.varp["prior"] = prior
    return a


def test_infer_grn_writes_results(adata, tmp_path):
    adata.obs["split"] = np.where(adata.obs["trajectory"].astype(int) >= 8, "test", "train")
    model = infer_grn(adata, "prior", method="dash", truth="truth", predict=True, **FAST)
    e = adata.varp["grn"]
    assert e.shape == (adata.n_vars, adata.n_vars)
    np.testing.assert_allclose(e, model.effect_matrix(), rtol=1e-6)
    uns = adata.uns["grn"]
    assert uns["params"]["method"] == "dash"
    assert len(uns["history"]["epoch"]) == 4
    assert uns["history"]["density_sums"][-1] < 0.5  # pruned
    assert 0.5 < uns["sparsity"]["pooled"] < 1
    assert 0 <= uns["metrics"]["auroc"] <= 1
    assert 0 < uns["test_mse"] < 1  # the two "test" trajectories were held out
    assert len(uns["events"]["epoch"]) >= 2
    pred = adata.layers["grn_pred"]
    assert pred.shape == adata.shape and np.isfinite(pred).all()
    # first point of each trajectory is the observed start state
    first = adata.obs["time"].to_numpy() == 0
    np.testing.assert_allclose(pred[first], adata.X[first], atol=1e-5)
    adata.write_h5ad(tmp_path / "out.h5ad")  # everything written is h5ad-compatible
    for fig in (
        plotting.grn_training(adata),
        plotting.grn_heatmap(adata).figure,
        plotting.grn_network(adata, top=20).figure,
        plotting.grn_trajectories(adata, "grn"),
        plotting.grn_trajectories(adata, model, genes=["g10", "g11"]),
    ):
        assert len(fig.axes) >= 1


def test_copy_and_prior_formats(adata):
    before = set(adata.varp.keys())
    out, model = infer_grn(adata, adata.varp["prior"], method="imp", copy=True, **FAST)
    assert "grn" in out.varp and set(adata.varp.keys()) == before
    edges = pd.DataFrame(
        [(adata.var_names[i], adata.var_names[j], w) for i, j, w in [(0, 7, 1.0), (1, 9, -1.0)]],
        columns=["source", "target", "weight"],
    )
    m = GRNModel(adata, edges, hidden=4)
    assert m.prior[0, 7] == 1 and m.prior[1, 9] == -1 and np.count_nonzero(m.prior) == 2


def test_save_load_roundtrip(adata, tmp_path):
    model = GRNModel(adata, "prior", hidden=6, device="cpu").train(
        "dash", **{k: v for k, v in FAST.items() if k != "hidden"}
    )
    path = model.save(tmp_path / "m")
    model.save(tmp_path / "m")  # overwrite is atomic too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    back = GRNModel.load(path)
    np.testing.assert_allclose(back.effect_matrix(), model.effect_matrix(), rtol=1e-6)
    assert back.sparsity() == pytest.approx(model.sparsity())
    x0 = adata.X[:2]
    np.testing.assert_allclose(back.predict(x0, [0, 1, 2]), model.predict(x0, [0, 1, 2]), rtol=1e-5)
    with pytest.raises(InputError):
        GRNModel.load(tmp_path / "nothing")


def test_top_edges_table(adata):
    model = GRNModel(adata, "prior", hidden=6).train("phoenix", epochs=2)
    top = model.top_edges(10)
    assert list(top.columns) == ["source", "target", "weight", "sign", "rank"]
    assert len(top) == 10
    assert (top["source"] != top["target"]).all()
    assert top["weight"].abs().is_monotonic_decreasing
    assert set(top["sign"]) <= {-1, 1}


def _chain_field() -> PhoenixField:
    """Input gene 0 activates gene 1 through the additive branch; gene 2 is isolated."""
    f = PhoenixField(3, 2, seed=0)
    with torch.no_grad():
        for p in f.parameters():
            p.zero_()
        f.sums.weight[0, 0] = 2.0
        f.alpha_sums.weight[1, 0] = 1.0
        f.gene_rates.copy_(torch.tensor([0.0, 1.0, 1.0]))  # gene 0 is a constant input
    return f


def test_jacobian_effect_matches_finite_differences():
    f = PhoenixField(5, 3, seed=2)
    states = np.random.default_rng(0).uniform(0, 1, (7, 5))
    got = jacobian_effect(f, states)
    eps = 1e-3
    want = np.zeros((5, 5))
    x = torch.as_tensor(states, dtype=torch.float64)
    f64 = f.double()
    with torch.no_grad():
        for i in range(5):
            d = torch.zeros(5, dtype=torch.float64)
            d[i] = eps
            want[i] = ((f64(x + d) - f64(x - d)) / (2 * eps)).mean(0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    chain = jacobian_effect(_chain_field(), np.full((1, 3), 0.5))
    # d f1 / d x0 at x0 = 0.5: 2 * s'(0) = 2; no effect on gene 2
    assert chain[0, 1] == pytest.approx(2.0, rel=1e-5)
    assert chain[0, 2] == 0 and chain[2, 1] == 0


def test_knockout_changes_only_targets(adata):
    model = GRNModel(adata.copy(), None, hidden=2)
    model.module = _chain_field()
    model.var_names = ["a", "b", "c"]
    model.method = "dense"
    x0 = np.full((2, 3), 0.7)
    ko = model.knockout("a", x0=x0, times=[0, 1, 2, 5])
    assert "a" not in ko.index
    assert ko.loc["b", "delta"] < -0.1  # losing the activator lowers b
    # c only decays in both runs; differences are adaptive-solver error (rtol 1e-3)
    assert abs(ko.loc["c", "delta"]) < 1e-3 < abs(ko.loc["b", "delta"])
    over = model.knockout("a", value=1.0, x0=x0, times=[0, 1, 2, 5])
    assert over.loc["b", "delta"] > 0
    infl = model.influence_scores(n_states=5)
    assert infl["a"] > infl["c"]


# ------------------------------------------------------------------ bad input
def test_nan_expression(adata):
    bad = adata.copy()
    bad.X[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        infer_grn(bad, "prior", **FAST)
    assert "grn" not in bad.varp and "grn" not in bad.uns


def test_replicates_at_one_time_are_averaged(adata):
    """A time series with a repeated time point is not refused: replicates are averaged."""
    from biostruct.grn.data import trajectories_from_anndata

    rep = adata.copy()
    traj = rep.obs["trajectory"].astype(str).to_numpy()
    first = np.flatnonzero(traj == traj[0])
    t = rep.obs["time"].to_numpy().copy()
    t[first[1]] = t[first[0]]
    rep.obs["time"] = t
    data = trajectories_from_anndata(rep)
    k = data.names.index(str(traj[0]))
    assert len(data.times[k]) == len(first) - 1
    x = np.asarray(rep.X)
    np.testing.assert_allclose(data.values[k][0], x[first[:2]].mean(0), rtol=1e-6)
    model = infer_grn(rep, "prior", method="dash", **FAST)
    assert not model.cell_mode and "grn" in rep.varp


def test_single_point_trajectory(adata):
    bad = adata.copy()
    traj = bad.obs["trajectory"].astype(str).to_numpy().copy()
    traj[0] = "lonely"
    bad.obs["trajectory"] = traj
    with pytest.raises(InputError, match="single time point"):
        infer_grn(bad, "prior", **FAST)


def test_prior_problems(adata):
    edges = pd.DataFrame({"source": ["g0", "NOPE"], "target": ["g5", "g6"], "weight": [1, 1]})
    with pytest.raises(PriorError, match="NOPE"):
        infer_grn(adata, edges, **FAST)
    with pytest.raises(PriorError, match="all zero"):
        infer_grn(adata, np.zeros((adata.n_vars, adata.n_vars)), **FAST)
    with pytest.raises(PriorError, match="needs a prior"):
        infer_grn(adata, None, method="dash", **FAST)
    assert "grn" not in adata.uns


def test_bad_options(adata):
    with pytest.raises(ConfigError, match="method"):
        infer_grn(adata, "prior", method="magic", **FAST)
    with pytest.raises(ConfigError, match="learning"):
        infer_grn(adata, "prior", learning=3, **FAST)
    with pytest.raises(ConfigError, match="solver"):
        infer_grn(adata, "prior", solver="nope", **FAST)


def test_solver_failure_leaves_adata_untouched(adata):
    with pytest.raises(SolverError):
        infer_grn(adata, "prior", method="dense", epochs=2, hidden=6, lr=1e3, max_steps=3)
    assert "grn" not in adata.varp and "grn" not in adata.uns
