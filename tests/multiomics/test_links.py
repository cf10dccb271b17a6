"""Sparse feature-level links on a DAG edge: YAML, priors, the core's masks and schedule, outputs."""

from __future__ import annotations

import os

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sps
import torch

from biostruct import sparsity as sp
from biostruct.errors import ConfigError, PriorError
from biostruct.multiomics import DAGVAE, dag_vae, parse_graph
from biostruct.multiomics import links as L

os.environ.setdefault("OMP_NUM_THREADS", "1")

N_CELLS, N_GENES, N_PEAKS = 300, 30, 90
SPACING = 10_000  # bp between peaks


def _graph(**link):
    spec = {"from": "atac", "to": "rna", "prior": "proximity", "window_kb": 25, "sparsity": 0.8}
    spec.update(link)
    return {
        "components": [
            {"name": "atac", "modalities": ["atac"]},
            {"name": "rna", "modalities": ["rna"], "parents": ["atac"]},
        ],
        "links": spec,
    }


def _toy(seed: int = 0) -> mudata.MuData:
    """Gene g is driven by peaks 3g..3g+2 (its TSS sits between them); other nearby peaks are
    accessible as often but drive nothing."""
    rng = np.random.default_rng(seed)
    state = rng.integers(0, 3, N_CELLS)
    p_open = 0.08 + 0.3 * (state[:, None] == (np.arange(N_PEAKS) % 3))
    acc = (rng.random((N_CELLS, N_PEAKS)) < p_open).astype(np.float32)
    drive = np.stack([acc[:, 3 * g : 3 * g + 3].sum(1) for g in range(N_GENES)], 1)
    rna = rng.poisson(np.exp(0.3 + 0.9 * drive)).astype(np.float32)
    peaks = [f"chr1_{SPACING * i}_{SPACING * i + 500}" for i in range(N_PEAKS)]
    tss = [SPACING * 3 * g + 15_000 for g in range(N_GENES)]
    genes = pd.DataFrame({"chrom": "chr1", "tss": tss}, index=[f"g{g}" for g in range(N_GENES)])
    obs = pd.DataFrame(index=[f"c{i}" for i in range(N_CELLS)])
    return mudata.MuData(
        {
            "rna": ad.AnnData(sps.csr_matrix(rna), obs=obs, var=genes),
            "atac": ad.AnnData(sps.csr_matrix(acc), obs=obs, var=pd.DataFrame(index=peaks)),
        }
    )


@pytest.fixture(scope="module")
def toy():
    torch.set_num_threads(1)
    return _toy()


@pytest.fixture(scope="module")
def fitted(toy):
    model = DAGVAE(toy, _graph(), n_latent=4, seed=0)
    model.train(max_epochs=20, progress=False, batch_size=64)
    return model


# ---------------------------------------------------------------------------------- YAML
def test_links_yaml_is_parsed_and_round_trips():
    yaml_text = """
components:
  - {name: atac, modalities: [atac]}
  - {name: rna, modalities: [rna], parents: [atac]}
links: {from: atac, to: rna, prior: proximity, window_kb: 100, sparsity: 0.95, method: dash}
"""
    g = parse_graph(yaml_text)
    (lk,) = g.links
    assert (lk.parent, lk.child, lk.prior, lk.window_kb, lk.sparsity, lk.method) == (
        "atac",
        "rna",
        "proximity",
        100.0,
        0.95,
        "dash",
    )
    assert parse_graph(g.to_dict()).links == g.links
    assert parse_graph(g.to_h5_dict()).links == g.links
    assert g.with_defaults(10, None, 2, 64).links == g.links
    g2 = parse_graph(_graph(prior={"matrix": "GxR.npz"}))
    assert (g2.links[0].prior, g2.links[0].source) == ("matrix", "GxR.npz")


@pytest.mark.parametrize(
    ("link", "field", "fix_part"),
    [
        ({"windw_kb": 10}, "links[0].windw_kb", "window_kb"),
        ({"sparsity": 1.0}, "links[0].sparsity", "fraction"),
        ({"method": "dahs"}, "links[0].method", "dash"),
        ({"prior": "proximty"}, "links[0].prior", "proximity"),
        ({"prior": "matrix"}, "links[0].source", "matrix"),
        ({"from": "rna", "to": "atac"}, "links[0]", "swap"),
        ({"to": "rnaa"}, "links[0].to", "rna"),
        ({"window_kb": -5}, "links[0].window_kb", "window_kb"),
    ],
)
def test_bad_links_yaml_names_the_field_and_the_fix(link, field, fix_part):
    with pytest.raises(ConfigError) as err:
        parse_graph(_graph(**link))
    assert err.value.field == field
    assert fix_part in err.value.fix


# ---------------------------------------------------------------------------------- priors
def test_peak_names_in_three_formats_and_a_clear_error():
    df = L.parse_peaks(["chr1_100_200", "chr2:300-450", "chrX-5-9"])
    assert df["chrom"].tolist() == ["chr1", "chr2", "chrX"]
    assert df["start"].tolist() == [100, 300, 5] and df["end"].tolist() == [200, 450, 9]
    with pytest.raises(PriorError) as err:
        L.parse_peaks(["chr1_100_200", "peak_7"], field="atac.var_names")
    assert err.value.field == "atac.var_names" and "peak_7" in str(err.value)
    assert "prior: matrix" in err.value.fix


def test_gene_tss_from_var_columns_interval_and_table(tmp_path):
    var = pd.DataFrame(
        {
            "chromosome": ["chr1", "chr1"],
            "start": [100, 500],
            "end": [200, 900],
            "strand": ["+", "-"],
        },
        index=["a", "b"],
    )
    tss = L.gene_tss(ad.AnnData(np.zeros((2, 2)), var=var))
    assert tss["tss"].tolist() == [100, 900]  # minus strand: the end
    iv = pd.DataFrame({"gene_interval": ["chr2:10-20", "chr2:30-40"]}, index=["a", "b"])
    assert L.gene_tss(ad.AnnData(np.zeros((2, 2)), var=iv), "gene_interval")["tss"].tolist() == [
        10,
        30,
    ]
    path = tmp_path / "genes.csv"
    pd.DataFrame({"gene": ["b", "a"], "chrom": ["chr3", "chr3"], "tss": [7, 5]}).to_csv(
        path, index=False
    )
    got = L.gene_tss(ad.AnnData(np.zeros((2, 2)), var=pd.DataFrame(index=["a", "b"])), str(path))
    assert got["tss"].tolist() == [5, 7] and got["chrom"].tolist() == ["chr3", "chr3"]
    with pytest.raises(PriorError) as err:
        L.gene_tss(ad.AnnData(np.zeros((2, 2)), var=pd.DataFrame(index=["a", "b"])), name="rna")
    assert err.value.field == "rna.var" and "tss" in err.value.fix


def test_proximity_prior_distances_window_and_decay():
    peaks = L.parse_peaks(
        ["chr1_1000_1100", "chr1_5000_5200", "chr1_200000_200100", "chr2_1000_1100"]
    )
    tss = pd.DataFrame({"chrom": ["chr1", "chr2"], "tss": [1050, 30_000]}, index=["a", "b"])
    c = L.proximity_prior(peaks, tss, window_kb=10, decay_kb=2)
    pairs = sorted(
        zip(c.child_idx.tolist(), c.parent_idx.tolist(), c.distance_kb.tolist(), strict=True)
    )
    # peak 0 covers a's TSS (0 kb), peak 1 is 3.95 kb away; peak 2 too far; b's peak 29 kb away
    assert [(g, p) for g, p, _ in pairs] == [(0, 0), (0, 1)]
    assert np.allclose([d for *_, d in pairs], [0.0, 3.95])
    assert np.allclose(sorted(c.prior.tolist()), sorted(np.exp(-np.array([0.0, 3.95]) / 2)))
    with pytest.raises(PriorError) as err:
        L.proximity_prior(peaks, tss.assign(chrom=["1", "2"]), window_kb=10)
    assert err.value.field == "links.window_kb" and "chr1 vs 1" in err.value.fix


def test_matrix_names_and_table_priors():
    m = sps.csr_matrix(np.array([[0, 2, 0], [1, 0, 0]]))  # 2 children x 3 parents
    c = L.matrix_prior(m, n_child=2, n_parent=3)
    assert sorted(zip(c.child_idx.tolist(), c.parent_idx.tolist(), strict=True)) == [(0, 1), (1, 0)]
    c_t = L.matrix_prior(m.T, n_child=2, n_parent=3)  # parent x child is transposed
    assert sorted(zip(c_t.child_idx.tolist(), c_t.parent_idx.tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
    ]
    with pytest.raises(PriorError, match="shape"):
        L.matrix_prior(m, n_child=4, n_parent=3)
    c = L.names_prior(["ADT_CD19", "CD3_TotalSeqB", "HLA-DR"], ["Cd3", "Cd19", "Ms4a1"])
    assert sorted(zip(c.parent_idx.tolist(), c.child_idx.tolist(), strict=True)) == [(0, 1), (1, 0)]
    with pytest.raises(PriorError) as err:
        L.names_prior(["x1"], ["y1"])
    assert "table" in err.value.fix
    tab = pd.DataFrame(
        {"source": ["p1", "p9", "p0"], "target": ["g0", "g0", "g1"], "weight": [-2.0, 1, 1]}
    )
    c = L.table_prior(tab, ["p0", "p1"], ["g0", "g1"])
    assert sorted(
        zip(c.parent_idx.tolist(), c.child_idx.tolist(), c.prior.tolist(), strict=True)
    ) == [
        (0, 1, 1.0),
        (1, 0, 2.0),
    ]


def test_unparseable_peak_names_raise_through_the_model(toy):
    bad = toy.copy()
    bad.mod["atac"].var_names = [f"peak{i}" for i in range(N_PEAKS)]
    with pytest.raises(PriorError) as err:
        DAGVAE(bad, _graph(), n_latent=4)
    assert err.value.field == "atac.var_names"


# ---------------------------------------------------------------------------------- the core
def test_masks_are_the_cores_and_the_schedule_reaches_the_sparsity(fitted):
    layer = fitted.module.link_layer(fitted.graph.links[0])
    assert isinstance(layer.masked, sp.MaskedParams)
    assert layer.masked.fqns == ["weight"]
    state = fitted.module.state_dict()
    key = "components.rna.links.atac.weight_mask"
    assert key in state and state[key].dtype == torch.bool
    n = layer.n_links
    target = 1.0 - fitted.graph.links[0].sparsity
    kept = int(layer.masked.mask("weight").sum())
    assert kept == round(target * n) or abs(kept - target * n) <= 1
    # pruned weights are exactly zero, kept ones trained away from zero
    w = layer.weight.detach()
    mask = layer.masked.mask("weight")
    assert torch.all(w[~mask] == 0) and torch.count_nonzero(w[mask]) == kept
    # the density over the child's epochs: non-increasing, 1 at the start, the target at the end
    hist = pd.DataFrame(fitted.history)
    dens = hist.loc[hist["component"] == "rna", "link_density_atac_rna"].to_numpy()
    assert dens[0] == 1.0
    assert np.all(np.diff(dens) <= 1e-12) and abs(dens[-1] - kept / n) < 1e-9
    assert len(np.unique(dens)) >= fitted.graph.links[0].rounds  # several rounds, not one cut
    # weight decay ran during the pruning rounds and was switched off after the last one
    wd = hist.loc[hist["component"] == "rna", "link_weight_decay_atac_rna"].to_numpy()
    assert wd[0] > 0 and wd[-1] == 0


def test_kept_links_are_enriched_for_the_true_drivers(fitted):
    layer = fitted.module.link_layer(fitted.graph.links[0])
    true = (layer.parent_idx // 3) == layer.child_idx
    kept = layer.masked.mask("weight")
    frac_kept = float(true[kept].float().mean())
    frac_all = float(true.float().mean())
    assert frac_kept > frac_all + 0.2, (frac_kept, frac_all)
    # and most kept true links have the simulated (positive) sign
    assert float((layer.weight[kept & true] > 0).float().mean()) > 0.7


def test_link_term_enters_the_childs_decoder(fitted, toy):
    data = fitted.data
    b = data.minibatch(np.arange(50), fitted.device)
    z = {c: fitted.module.components[c].encode(b, b["_batch"])[0] for c in ("atac", "rna")}
    zh = fitted.module.propagate(z)["rna"]
    with torch.no_grad():
        without = fitted.module.decode_mean("rna", "rna", zh, b["_batch"])
        with_x = fitted.module.decode_mean("rna", "rna", zh, b["_batch"], b)
    assert not torch.allclose(without, with_x)
    # the hooks are removed after the block: decoding without x is unchanged afterwards
    with torch.no_grad():
        again = fitted.module.decode_mean("rna", "rna", zh, b["_batch"])
    assert torch.equal(without, again)


def test_random_method_and_a_no_link_model_agree_on_parents(toy):
    m = DAGVAE(toy, _graph(method="random", sparsity=0.5, rounds=2), n_latent=4, seed=1)
    m.train(max_epochs=6, progress=False, batch_size=64)
    layer = m.module.link_layer(m.graph.links[0])
    assert abs(layer.density() - 0.5) <= 1.0 / layer.n_links
    assert [r["epoch"] for r in layer.history] == sorted(r["epoch"] for r in layer.history)


# ---------------------------------------------------------------------------------- outputs
def test_save_load_keeps_links(fitted, tmp_path, toy):
    fitted.save(tmp_path / "m")
    back = DAGVAE.load(tmp_path / "m", toy)
    pd.testing.assert_frame_equal(back.get_links(), fitted.get_links())


def test_dag_vae_writes_links_table_and_counts_to_h5mu(toy, tmp_path):
    md = toy.copy()
    model = dag_vae(
        md, _graph(), n_latent=4, max_epochs=8, progress=False, leiden=False, batch_size=64
    )
    table = md.uns["dagvae"]["links"]
    assert list(table.columns) == list(L.LINK_COLUMNS)
    n_kept = int(model.module.link_layer(model.graph.links[0]).masked.mask("weight").sum())
    assert len(table) == n_kept and (table["weight"] != 0).all()
    assert set(np.sign(table["weight"])) <= {-1.0, 1.0}
    assert (np.sign(table["weight"]) == table["sign"]).all()
    assert table["distance_kb"].between(0, 25).all()
    counts = md.mod["rna"].var["dagvae_n_links_atac"]
    assert counts.sum() == n_kept
    assert counts.loc[table["child_feature"].iloc[0]] >= 1
    path = tmp_path / "fitted.h5mu"
    md.write(path)
    back = mudata.read_h5mu(path)
    pd.testing.assert_frame_equal(
        back.uns["dagvae"]["links"].reset_index(drop=True),
        table.reset_index(drop=True),
        check_dtype=False,
        check_categorical=False,
    )
    assert back.mod["rna"].var["dagvae_n_links_atac"].tolist() == counts.tolist()
    # the report section and the plot read the written file
    from biostruct.report.links import link_density_history, links_section
    from biostruct.report.render import Report

    info = dict(back.uns["dagvae"])
    hist = link_density_history(info["history"])
    assert list(hist) == ["atac_rna"] and hist["atac_rna"]["density"].iloc[-1] < 0.25
    rep = Report(title="t")
    assert links_section(rep, info)
    from biostruct.report import multiomics_report

    html = multiomics_report(back, tmp_path / "report.html", de_dir=None).read_text()
    assert "Feature links" in html and "mo-links-sparsity" in html and "mo-links-top" in html
    assert table["child_feature"].iloc[0] in html
    import matplotlib

    matplotlib.use("Agg")
    import biostruct as bs

    fig = bs.pl.dagvae_links(back)
    assert len(fig.axes) == 3 and fig.axes[2].lines


def test_links_csv_from_the_cli(toy, tmp_path):
    from biostruct.cli import main

    md = toy.copy()
    src = tmp_path / "prepared.h5mu"
    md.write(src)
    graph = tmp_path / "graph.yaml"
    import yaml

    graph.write_text(yaml.safe_dump(_graph()))
    out = tmp_path / "fitted.h5mu"
    csv = tmp_path / "links.csv"
    rc = main(
        [
            "multiomics",
            "fit",
            str(src),
            "--graph",
            str(graph),
            "--n-latent",
            "4",
            "--max-epochs",
            "6",
            "--links-csv",
            str(csv),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(csv)
    assert list(df.columns)[:3] == ["link", "parent_feature", "child_feature"]
    assert len(df) == round(
        0.2
        * len(
            L.proximity_prior(
                L.parse_peaks(list(md.mod["atac"].var_names)), L.gene_tss(md.mod["rna"]), 25
            )
        )
    )


# ---------------------------------------------------------------------------------- sparse decoders
def test_sparse_decoder_yaml_and_errors():
    g = _graph()
    g["components"][1]["sparse_decoder"] = {"sparsity": 0.7, "rounds": 2}
    spec = parse_graph(g)
    sd = spec["rna"].sparse_decoder
    assert (sd.sparsity, sd.rounds, sd.method) == (0.7, 2, "magnitude")
    assert parse_graph(spec.to_dict())["rna"].sparse_decoder == sd
    assert parse_graph(spec.to_h5_dict())["rna"].sparse_decoder == sd
    g["components"][1]["sparse_decoder"] = {"sparsty": 0.7}
    with pytest.raises(ConfigError) as err:
        parse_graph(g)
    assert err.value.field == "components.rna.sparse_decoder.sparsty"
    assert "sparsity" in err.value.fix


def test_sparse_decoder_loadings_are_pruned_by_the_core_and_written(toy, tmp_path):
    g = _graph()
    g["components"][1]["sparse_decoder"] = {"sparsity": 0.75, "rounds": 3}
    md = toy.copy()
    model = dag_vae(md, g, n_latent=4, max_epochs=10, progress=False, leiden=False, batch_size=64)
    part = model.module.components["rna"].loadings["rna"]
    assert isinstance(part.masked, sp.MaskedParams)
    assert abs(part.density() - 0.25) <= 1.0 / part.weight.numel()
    loadings = model.get_loadings("rna")
    assert loadings.shape == (N_GENES, model.module.components["rna"].z_hat_dim)
    assert np.isclose((loadings.to_numpy() != 0).mean(), part.density())
    hist = pd.DataFrame(model.history)
    dens = hist.loc[hist["component"] == "rna", "decoder_density_rna_rna"].to_numpy()
    assert dens[0] == 1.0 and len(np.unique(dens)) == 4 and np.all(np.diff(dens) <= 0)
    path = tmp_path / "sd.h5mu"
    md.write(path)
    back = mudata.read_h5mu(path)
    np.testing.assert_allclose(back.mod["rna"].varm["dagvae_loadings_rna"], loadings.to_numpy())
    with pytest.raises(Exception, match="no sparse decoder"):
        model.get_loadings("atac")
