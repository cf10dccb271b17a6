"""The single-cell path: pseudotime as scanpy gives it, ties, lineages, evidence, fit checks."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import biostruct as bs
from biostruct.errors import ConfigError, InputError
from biostruct.grn import baselines, metrics
from biostruct.grn.checks import fit_warnings, selection_check
from biostruct.grn.model import GRNModel
from biostruct.grn.pseudotime import (
    bin_lineages,
    lineage_times,
    successor_transitions,
)
from biostruct.grn.velocity import combine_with_prior, conditional_evidence

FAST = {"velocity": {"members": 2, "max_steps": 200, "patience": 60}}


@pytest.fixture(scope="module")
def boolode(data_dir):
    """A BEELINE-format DEV dataset (BoolODE, 2 lineages), 500 of its 2,000 cells."""
    adata = bs.datasets.read_beeline(data_dir / "grn" / "dev_boolode" / "randBool-2000-1")
    rng = np.random.default_rng(0)
    return adata[np.sort(rng.choice(adata.n_obs, 500, replace=False))].copy()


def _dpt_style(adata):
    """One pseudotime column (rounded to 2 decimals: many ties) and a categorical lineage."""
    keys = list(adata.uns["pseudotime_keys"])
    t = adata.obs[keys].to_numpy()
    out = adata.copy()
    out.obs["dpt_pseudotime"] = np.round(np.nanmax(t, axis=1), 2)
    out.obs["lineage"] = pd.Categorical(np.array(keys)[np.nanargmax(np.nan_to_num(t, nan=-1), 1)])
    out.obs = out.obs.drop(columns=keys)
    return out


def test_read_beeline_layout(boolode):
    keys = list(boolode.uns["pseudotime_keys"])
    assert keys == ["PseudoTime1", "PseudoTime2"]
    # every cell is on exactly one lineage in this set; NaN elsewhere
    on = np.isfinite(boolode.obs[keys].to_numpy())
    assert (on.sum(1) == 1).all()
    truth = boolode.varp["truth"]
    assert np.count_nonzero(truth) == 18 and set(np.unique(truth)) == {-1.0, 0.0, 1.0}


def test_ties_and_dpt_input_run_and_beat_random(boolode):
    adata = _dpt_style(boolode)
    t = adata.obs["dpt_pseudotime"].to_numpy()
    assert len(np.unique(t)) < 0.3 * len(t)  # heavily tied
    model = bs.tl.infer_grn(
        adata,
        time_key="dpt_pseudotime",
        lineage_key="lineage",
        truth=boolode.varp["truth"],
        seed=0,
        **FAST,
    )
    assert model.cell_mode and model.method == "velocity"
    uns = adata.uns["grn"]
    assert uns["params"]["lineages"] is not None
    assert adata.varp["grn"].shape == (10, 10)
    assert np.all(np.diag(adata.varp["grn"]) == 0)
    assert "Jacobian" in uns["score"]
    assert len(uns["warnings"]) == 0, uns["warnings"]
    # random ranking has ratio 1 in expectation; the evidence must do clearly better
    assert uns["metrics"]["auprc_ratio"] > 1.2
    stab = adata.varp["grn_stability"]
    assert stab.min() >= 0 and stab.max() <= 1


def test_lineage_columns_equal_categorical(boolode):
    """NaN-padded per-lineage columns and a categorical lineage are the same input."""
    keys = list(boolode.uns["pseudotime_keys"])
    a = boolode.copy()
    b = boolode.copy()
    t = b.obs[keys].to_numpy()
    b.obs["pt"] = np.nanmax(t, axis=1)
    b.obs["lin"] = pd.Categorical(np.array(keys)[np.nanargmax(np.nan_to_num(t, nan=-1), 1)])
    m1 = GRNModel(a, time_key=keys, seed=3, device="cpu")
    m2 = GRNModel(b, time_key="pt", lineage_key="lin", seed=3, device="cpu")
    assert m1.cell_mode and m2.cell_mode
    np.testing.assert_array_equal(m1._train_tr.x0.numpy(), m2._train_tr.x0.numpy())
    np.testing.assert_array_equal(m1._val_tr.x1.numpy(), m2._val_tr.x1.numpy())


def test_shared_progenitors_used_in_each_lineage():
    rng = np.random.default_rng(0)
    n = 60
    x = rng.random((n, 3))
    t = np.full((n, 2), np.nan)
    t[:20, :] = np.linspace(0, 0.3, 20)[:, None]  # shared progenitors
    t[20:40, 0] = np.linspace(0.31, 1, 20)
    t[40:, 1] = np.linspace(0.31, 1, 20)
    adata = ad.AnnData(x)
    adata.obs["a"], adata.obs["b"] = t[:, 0], t[:, 1]
    lt = lineage_times(adata, ["a", "b"])
    x0, _, dt, cell = successor_transitions(x, lt, k=3, window=0.1)
    assert (dt > 0).all()
    # a progenitor starts a transition on both lineages
    assert np.sum(cell == 0) == 2
    traj = bin_lineages(adata, lt, n_bins=5)
    assert traj.names == ["a", "b"] and all(np.all(np.diff(tk) > 0) for tk in traj.times)


def test_all_tied_lineage_is_a_clear_error():
    adata = ad.AnnData(np.random.default_rng(0).random((30, 3)))
    adata.obs["t"] = 0.5
    adata.obs["t"] = adata.obs["t"].astype(float)
    with pytest.raises(InputError, match="successor|pseudotime"):
        GRNModel(adata, time_key="t", trajectory_key=None, cells=True, device="cpu")


def test_bad_inputs_name_the_field(boolode):
    a = boolode.copy()
    with pytest.raises(InputError, match="no column 'nope'"):
        GRNModel(a, time_key=["PseudoTime1", "nope"], device="cpu")
    with pytest.raises(ConfigError, match="lineage_key"):
        lineage_times(a, ["PseudoTime1", "PseudoTime2"], "PseudoTime1")
    neg = a.copy()
    neg.X = neg.X - 5.0
    with pytest.raises(InputError, match="negative"):
        GRNModel(neg, time_key=list(a.uns["pseudotime_keys"]), device="cpu")
    with pytest.raises(ConfigError, match="predict"):
        bs.tl.infer_grn(a, time_key=list(a.uns["pseudotime_keys"]), predict=True, **FAST)


def test_baselines_recover_a_chain():
    """x0 -> x1 -> x2: partial correlation ranks the direct pairs above the indirect one."""
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=3000)
    x1 = x0 + 0.5 * rng.normal(size=3000)
    x2 = x1 + 0.5 * rng.normal(size=3000)
    x = np.column_stack([x0, x1, x2])
    pc = np.abs(baselines.partial_correlation(x))
    assert pc[0, 1] > pc[0, 2] and pc[1, 2] > pc[0, 2]
    r = baselines.pearson(x)
    np.testing.assert_allclose(r, r.T)
    assert np.all(np.diag(pc) == 0)


def test_sincerities_shape(boolode):
    keys = list(boolode.uns["pseudotime_keys"])
    s = baselines.sincerities(np.asarray(boolode.X), lineage_times(boolode, keys))
    assert s.shape == (10, 10) and np.all(np.diag(s) == 0) and np.abs(s).sum() > 0


def test_posterior_improves_on_a_noisy_prior():
    rng = np.random.default_rng(0)
    g = 30
    truth = (rng.random((g, g)) < 0.08).astype(float)
    np.fill_diagonal(truth, 0)
    prior = bs.datasets.corrupt_prior(truth, 0.125, seed=0)  # 25 % of edges moved
    evidence = truth * 1.0 + rng.normal(scale=0.6, size=(g, g))  # informative, noisy
    post, info = combine_with_prior(evidence, prior)
    assert info["beta"] > 0
    assert metrics.average_precision(post, truth) > metrics.average_precision(prior, truth)
    # useless evidence: prior edges keep their place above every non-prior pair
    noise = rng.normal(size=(g, g))
    post0, _ = combine_with_prior(noise, prior)
    off = ~np.eye(g, dtype=bool)
    in_prior = np.abs(post0[off & (prior != 0)])
    rest = np.abs(post0[off & (prior == 0)])
    assert in_prior.min() > rest.max()
    # ... and within the prior's edges the evidence breaks the prior's ties
    assert len(np.unique(in_prior)) == in_prior.size


def _hill_transitions(n=3000, seed=0):
    """Velocities of gene 2 = Hill activation by gene 0 - Hill repression by gene 1 - decay."""
    rng = np.random.default_rng(seed)
    x0 = rng.random((n, 4))
    hill = lambda x: x**4 / (0.3**4 + x**4)  # noqa: E731 (saturating: flat above ~0.5)
    vel = np.zeros((n, 4))
    vel[:, 2] = hill(x0[:, 0]) - hill(x0[:, 1]) - x0[:, 2] + 0.3 * rng.normal(size=n)
    vel[:, [0, 1, 3]] = 0.3 * rng.normal(size=(n, 3))
    dt = np.full(n, 0.01)
    return x0, x0 + vel * dt[:, None], dt


def test_conditional_evidence_tests_each_prior_edge_given_the_others():
    x0, x1, dt = _hill_transitions()
    prior = np.zeros((4, 4))
    prior[0, 2], prior[1, 2], prior[3, 2] = 1, -1, 1  # two true edges and a false one
    for basis in ("spline", "linear"):
        ev = conditional_evidence(x0, x1, dt, prior, basis=basis)
        assert ev[0, 2] > 0.2 and ev[1, 2] < -0.2  # the direction of each effect
        assert abs(ev[3, 2]) < 0.1  # a prior edge the velocity does not need
        assert np.all(np.diag(ev) == 0) and np.all(np.abs(ev) < 1)
    # a saturating effect: the spline basis explains more of it than a straight line
    lin = conditional_evidence(x0, x1, dt, prior, basis="linear")
    spl = conditional_evidence(x0, x1, dt, prior)
    assert abs(spl[0, 2]) > abs(lin[0, 2]) + 0.02
    # a true regulator missing from the prior is promoted by the same test (adding it)
    ev = conditional_evidence(x0, x1, dt, np.where(np.arange(4)[:, None] == 1, 0, prior))
    assert abs(ev[1, 2]) > 0.2 and abs(ev[1, 2]) > 5 * abs(ev[1, 0])
    with pytest.raises(ConfigError):
        conditional_evidence(x0, x1, dt, prior, basis="cubic")


def test_signed_prior_demotes_an_edge_whose_evidence_has_the_other_sign():
    g = 6
    prior = np.zeros((g, g))
    prior[0, 1], prior[2, 3], prior[4, 5] = 1.0, -1.0, 1.0
    rng = np.random.default_rng(0)
    evidence = 0.05 * rng.normal(size=(g, g))
    evidence[0, 1] = 0.5  # agrees with the prior's activation
    evidence[2, 3] = 0.5  # an activation where the prior claims repression
    evidence[4, 5] = 0.0  # the data are silent
    post, info = combine_with_prior(evidence, prior)
    assert info["signed"] == 1.0  # both signs in the prior: its signs are claims
    assert abs(post[0, 1]) > abs(post[4, 5]) > abs(post[2, 3])
    assert np.sign(post[2, 3]) == -1  # the prior's sign is kept on its edges
    # an unsigned reading ranks by |evidence|: the contradicted edge is back on top
    post_u, info_u = combine_with_prior(evidence, prior, signed=False)
    assert info_u["signed"] == 0.0 and abs(post_u[2, 3]) > abs(post_u[4, 5])
    # an all-positive prior is read as unsigned by default
    assert combine_with_prior(evidence, np.abs(prior))[1]["signed"] == 0.0


def test_selection_check_flags_init_and_rise():
    hist = [{"val_loss": v} for v in (1.0, 2.0, 5.0, 50.0)]
    w = selection_check(hist, best_epoch=1)
    assert any("first epoch" in s for s in w) and any("50-fold" in s for s in w)
    assert selection_check([{"val_loss": v} for v in (3.0, 2.0, 1.0)], best_epoch=3) == []


def test_deliberately_diverged_fit_is_reported(boolode, caplog, monkeypatch, tmp_path):
    """A field blown up after training: warning in the log, in uns and in the HTML report."""
    import torch

    from biostruct.grn import velocity

    real = velocity.fit_velocity_ensemble

    def sabotaged(*args, **kwargs):
        ens = real(*args, **kwargs)
        with torch.no_grad():
            for f in ens.fields:
                f.bound = None  # unbounded output ...
                f.alpha_sums.weight.mul_(200.0)  # ... and exploding weights
                f.gene_rates.abs_().add_(5.0)
        return ens

    monkeypatch.setattr(velocity, "fit_velocity_ensemble", sabotaged)
    adata = boolode.copy()
    with caplog.at_level(logging.WARNING, logger="biostruct.grn"):
        bs.tl.infer_grn(adata, time_key=list(adata.uns["pseudotime_keys"]), **FAST)
    warnings = list(adata.uns["grn"]["warnings"])
    assert warnings and any("range" in w or "diverge" in w or "failed" in w for w in warnings)
    assert any("infer_grn(grn)" in r.getMessage() for r in caplog.records)
    # the report opens on a red banner that lists the finding
    import html

    from biostruct.report import grn_report

    adata.write_h5ad(tmp_path / "fit.h5ad")  # the banner survives the file round trip
    text = grn_report(ad.read_h5ad(tmp_path / "fit.h5ad"), tmp_path / "r.html").read_text()
    assert 'class="verdict bad"' in text and html.escape(warnings[0]) in text
    monkeypatch.undo()
    model = GRNModel(boolode, time_key=list(boolode.uns["pseudotime_keys"]), device="cpu")
    model.train("velocity", **FAST)
    assert fit_warnings(model) == []  # the same model, not sabotaged, passes
