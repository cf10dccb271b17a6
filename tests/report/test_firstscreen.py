"""The first screen of the reports and the DE views: verdict banner, headline, numbers for
people, one significance rule per DE view, honest truncation notes, palettes, caveats."""

from __future__ import annotations

import html as htmllib
import json
import re

import numpy as np
import pandas as pd
import pytest

from biostruct.report import grn as grn_mod
from biostruct.report import grn_report, multiomics_report
from biostruct.report._common import fmt, palette
from biostruct.report.firstscreen import verdict_block
from biostruct.report.multiomics import de_rule
from biostruct.report.render import table_block


def _first_screen(text: str) -> str:
    """The page up to the first section after the headline."""
    return text[: text.index('<section id="metrics"')]


def _plot_traces(text: str, div_id: str) -> list[dict]:
    """The traces of a plotly figure as embedded in the page."""
    m = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",\s*', text)
    assert m, div_id
    traces, _ = json.JSONDecoder().raw_decode(text[m.end() :])
    return traces


def _table_rows(text: str, table_id: str) -> tuple[list[str], list[list[str]]]:
    m = re.search(rf'<table[^>]*\bid="{table_id}"[^>]*>(.*?)</table>', text, re.S)
    assert m, table_id
    head = [htmllib.unescape(h) for h in re.findall(r"<th>(.*?)</th>", m.group(1))]
    body = m.group(1).split("<tbody>", 1)[1]
    rows = [
        [htmllib.unescape(c) for c in re.findall(r"<td>(.*?)</td>", r)]
        for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    return head, rows


# ------------------------------------------------------------------------- numbers, palettes
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42466.0, "42,466"),
        (np.float64(4.247e4), "42,470"),
        (0.38325, "0.383"),
        (0.043, "0.043"),
        (999.9, "1,000"),
        (123.4, "123"),
        (4.2e-05, "4.2 × 10⁻⁵"),
        (np.int64(1082), "1,082"),
        (float("nan"), "n/a"),
        (True, "yes"),
    ],
)
def test_numbers_are_formatted_for_people(value, text):
    assert fmt(value) == text
    assert "e+" not in fmt(value) and "e-" not in fmt(value)


def test_palette_of_15_and_30_distinct_colours_from_scanpy():
    from scanpy.plotting import palettes

    p15 = palette(15)
    assert len(p15) == 15 and len({c.lower() for c in p15}) == 15
    assert p15 == list(palettes.default_20[:15])  # scanpy's own choice for 15 categories
    p30 = palette(30)
    assert len({c.lower() for c in p30}) == 30
    assert p30 == list(palettes.default_102[:30])


def test_umap_scatter_uses_distinct_colours_past_10(tmp_path, dagvae_mdata):
    mdata, _ = dagvae_mdata
    rng = np.random.default_rng(1)
    mdata.obs["dagvae_cluster_rna"] = pd.Categorical(rng.integers(0, 15, mdata.n_obs).astype(str))
    text = multiomics_report(mdata, tmp_path / "mo.html").read_text()
    traces = _plot_traces(text, "mo-emb-rna-cluster")
    colours = [t["marker"]["color"].lower() for t in traces]
    assert len(colours) == 15 and len(set(colours)) == 15


# ------------------------------------------------------------------------------- verdict
def test_red_banner_lists_every_warning(tmp_path, grn_adata):
    warnings = ["validation loss rose for the last 20 epochs", "3 genes <never> change"]
    grn_adata.uns["grn"]["warnings"] = np.array(warnings, dtype=object)  # as h5ad stores it
    text = grn_report(grn_adata, tmp_path / "g.html").read_text()
    first = _first_screen(text)
    assert 'class="verdict bad"' in first
    for w in warnings:
        assert htmllib.escape(w) in first
    assert "2 fit warnings" in first
    assert 'class="verdict good"' not in text


@pytest.mark.parametrize(
    ("uns", "says"),
    [
        ({}, "No fit warnings recorded"),  # an older file: no warnings entry at all
        ({"warnings": []}, "Fit checks passed"),
        (
            {"warnings": np.array([], dtype=object), "checks": ["loss finite", "no dead genes"]},
            "Checked: loss finite; no dead genes.",
        ),
        ({"warnings": np.array(["", "nan"], dtype=object)}, "Fit checks passed"),
    ],
)
def test_green_verdict_without_warnings(uns, says):
    banner = verdict_block(uns, "grn")
    assert 'class="verdict good"' in banner and says in banner
    assert "verdict bad" not in banner


def test_green_verdict_in_the_report(tmp_path, grn_adata):
    grn_adata.uns["grn"].pop("warnings", None)  # a file written before the fit checks
    text = grn_report(grn_adata, tmp_path / "g.html").read_text()
    assert 'class="verdict good"' in _first_screen(text)
    assert "No fit warnings recorded" in text
    assert 'class="verdict bad"' not in text


def test_problems_found_by_the_report_turn_the_banner_red(tmp_path, grn_adata):
    grn_adata.varp["grn"] = np.zeros_like(grn_adata.varp["grn"])
    grn_adata.uns["grn"]["warnings"] = []
    text = grn_report(grn_adata, tmp_path / "g.html").read_text()
    first = _first_screen(text)
    assert 'class="verdict bad"' in first
    assert "The network has no edges" in first and "found by this report" in first
    assert "kept <b>no edges</b>" in first


def test_dagvae_warnings_give_a_red_banner(tmp_path, dagvae_mdata):
    mdata, de = dagvae_mdata
    mdata.uns["dagvae"]["warnings"] = ["[rna] the validation ELBO was still improving"]
    text = multiomics_report(mdata, tmp_path / "mo.html", differential=de).read_text()
    assert 'class="verdict bad"' in _first_screen(text)
    assert "[rna] the validation ELBO was still improving" in _first_screen(text)
    del mdata.uns["dagvae"]["warnings"]
    text = multiomics_report(mdata, tmp_path / "mo.html", differential=de).read_text()
    assert 'class="verdict bad"' not in text and 'class="verdict good"' in text


# ------------------------------------------------------------------------------ headline
def test_grn_headline_shows_top_regulators_and_signed_edges(tmp_path, grn_adata):
    grn_adata.uns["grn"]["metrics"]["n_predicted_nonzero"] = 42466.0
    grn_adata.uns["grn"]["metrics"]["signed_epr-"] = 2.5
    grn_adata.uns["grn"]["score"] = "ensemble mean Jacobian"
    text = grn_report(grn_adata, tmp_path / "g.html").read_text()
    first = _first_screen(text)
    assert (
        '<span class="k">edge score</span> <span class="v">ensemble mean Jacobian</span>' in first
    )
    edges = grn_mod.edge_table(grn_adata.varp["grn"], list(grn_adata.var_names))
    head, rows = _table_rows(first, "grn-top-edges")
    assert head[:4] == ["regulator", "target", "effect", "weight"]
    top = edges.iloc[0]
    assert re.sub("<[^>]+>", "", rows[0][0]) == top["source"]
    assert rows[0][1] == top["target"]
    assert ("activates" if top["weight"] > 0 else "represses") in rows[0][2]
    _, regs = _table_rows(first, "grn-top-regulators")
    strongest = edges.assign(a=edges.weight.abs()).groupby("source")["a"].sum().idxmax()
    assert re.sub("<[^>]+>", "", regs[0][0]) == strongest
    # metrics: plain labels, grouped; raw keys only as small grey notes, numbers for people
    metrics = text[text.index('id="grn-metrics"') :]
    assert "<th>Early precision ratio, repressing</th>" in metrics
    assert "<th>signed_epr-</th>" not in text
    assert '<code class="key">signed_epr-</code>' in metrics
    assert "42,466" in metrics and "4.247e+04" not in text
    assert 'id="grn-glossary"' in text


def test_heatmap_restricted_to_genes_with_edges(tmp_path, grn_adata):
    import anndata as ad

    n = 100
    W = np.zeros((n, n))
    W[np.arange(10), np.arange(1, 11)] = np.linspace(1, 2, 10)  # genes 0..10 have edges
    np.fill_diagonal(W, -1.0)  # self-effects do not count as edges
    adata = ad.AnnData(np.zeros((3, n)), var=pd.DataFrame(index=[f"g{i}" for i in range(n)]))
    adata.varp["grn"] = W
    text = grn_report(adata, tmp_path / "g.html").read_text()
    (trace,) = _plot_traces(text, "grn-heatmap")
    assert sorted(trace["x"], key=lambda s: int(s[1:])) == [f"g{i}" for i in range(11)]
    assert trace["x"] == trace["y"]
    assert "11 genes with edges" in text


# --------------------------------------------------------------------------- truncation
def test_truncation_note_is_honest():
    df = pd.DataFrame({"x": np.arange(1000.0)})
    cut = table_block(df, "t", max_rows=300, order="largest first", full_href="d/full.csv")
    assert "Showing the first 300 of 1,000 rows (largest first)." in cut
    assert '<a href="d/full.csv">' in cut
    assert cut.count("<tr>") == 301  # header + 300 rows
    whole = table_block(df.head(20), "t", max_rows=300)
    assert "All 20 rows." in whole and "Showing" not in whole


def test_edge_table_links_the_full_csv(tmp_path, grn_adata, monkeypatch):
    monkeypatch.setattr(grn_mod, "_EDGE_ROWS", 10)
    edges = grn_mod.edge_table(grn_adata.varp["grn"], list(grn_adata.var_names))
    assert len(edges) > 10
    # no CSV beside the report: the full table is embedded as a download
    text = grn_report(grn_adata, tmp_path / "a" / "report.html").read_text()
    assert f"Showing the first 10 of {len(edges):,} rows (strongest first)" in text
    assert 'href="data:text/csv;base64,' in text
    # the pipeline's edges.csv beside the report, with every edge: linked by relative path
    (tmp_path / "b").mkdir()
    edges.to_csv(tmp_path / "b" / "edges.csv", index=False)
    text = grn_report(grn_adata, tmp_path / "b" / "report.html").read_text()
    assert '<a href="edges.csv">edges.csv' in text
    assert "All non-zero edges" not in text


# --------------------------------------------------------------------------- DE views
def _de_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A DAG-VAE-style table where ``proba_de > 0.9`` and ``is_de_fdr`` disagree."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    called = np.zeros(n, bool)
    called[np.argsort(-p)[: n // 10]] = True
    called[np.argsort(-p)[0]] = False  # the most probable feature is not called
    return pd.DataFrame(
        {
            "feature": [f"gene{i}" for i in range(n)],
            "proba_de": p,
            "bayes_factor": np.log(p + 1e-8) - np.log(1 - p + 1e-8),
            "lfc_mean": rng.normal(0, 1, n),
            "is_de_fdr": called,
        }
    )


@pytest.mark.parametrize("kind", ["is_de_fdr", "pvals_adj"])
def test_de_rule_same_in_plot_colour_and_table_flag(tmp_path, dagvae_mdata, kind):
    mdata, _ = dagvae_mdata
    df = _de_frame(40)
    if kind == "pvals_adj":
        df = df.drop(columns=["is_de_fdr"]).assign(
            pvals_adj=np.random.default_rng(2).uniform(0, 0.2, 40)
        )
        expected = set(df.feature[df.pvals_adj < 0.05])
    else:
        expected = set(df.feature[df.is_de_fdr])
        assert set(df.feature[df.proba_de > 0.9]) != expected  # the two rules differ here
    text = multiomics_report(
        mdata, tmp_path / "mo.html", differential={"rna: rna cluster 1 vs rest": df}
    ).read_text()
    traces = _plot_traces(text, "mo-volcano-0")
    red = {f for t in traces if t["marker"]["color"] == "#c0392b" for f in t["text"]}
    grey = {f for t in traces if t["marker"]["color"] != "#c0392b" for f in t["text"]}
    head, rows = _table_rows(text, "mo-de-0")
    flag = head.index("DE")
    feat = head.index("feature")
    flagged = {r[feat] for r in rows if r[flag] == "yes"}
    assert red == flagged == expected
    assert grey.isdisjoint(red) and len(grey) + len(red) == 40
    rule = de_rule(df)
    assert rule is not None and htmllib.escape(rule.text) in text  # the caption states it
    # the headline counts the same features
    _, markers = _table_rows(_first_screen(text), "mo-markers")
    assert markers[0][2] == f"{len(expected)} of 40"


def test_de_table_cut_says_so_and_links_the_csv(tmp_path, dagvae_mdata):
    mdata, _ = dagvae_mdata
    folder = tmp_path / "differential"
    folder.mkdir()
    df = _de_frame(1200)
    df.to_csv(folder / "de_00.csv", index=False)
    pd.DataFrame(
        [{"file": "de_00.csv", "comparison": "rna: rna cluster 1 vs rest", "n_features": 1200}]
    ).to_csv(folder / "index.csv", index=False)
    text = multiomics_report(mdata, tmp_path / "report.html", differential=folder).read_text()
    assert "Showing the first 300 of 1,200 rows (DE features first" in text
    assert '<a href="differential/de_00.csv">de_00.csv</a>' in text
    # every DE feature comes first, so the cut keeps all of them
    head, rows = _table_rows(text, "mo-de-0")
    assert sum(r[head.index("DE")] == "yes" for r in rows) == int(df.is_de_fdr.sum())


def test_caveat_for_tiny_cluster_and_most_features_de(tmp_path, dagvae_mdata):
    mdata, _ = dagvae_mdata
    labels = np.array(["0"] * mdata.n_obs, dtype=object)
    labels[:12] = "7"  # a 12-cell cluster
    mdata.obs["dagvae_cluster_rna"] = pd.Categorical(labels)
    df = _de_frame(40)
    df["is_de_fdr"] = np.arange(40) < 30  # 75 % called DE
    text = multiomics_report(
        mdata, tmp_path / "mo.html", differential={"rna: rna cluster 7 vs rest": df}
    ).read_text()
    first = htmllib.unescape(_first_screen(text))
    assert 'class="caveat"' in first
    assert "Only 12 cells on one side" in first and "unreliable" in first
    _, comps = _table_rows(first, "mo-components")
    assert comps[1][4] == f"{mdata.n_obs - 12:,} to 12 cells (median 60)"  # 108 and 12 cells
    assert "30 of 40 features (75.0\u00a0%) are called DE" in first
    # a comparison without these problems gets no caveat
    labels[:60] = "7"
    mdata.obs["dagvae_cluster_rna"] = pd.Categorical(labels)
    df["is_de_fdr"] = np.arange(40) < 5
    text = multiomics_report(
        mdata, tmp_path / "mo.html", differential={"rna: rna cluster 7 vs rest": df}
    ).read_text()
    assert "unreliable" not in text and "are called DE" not in text


def test_component_without_structure_is_named(tmp_path, dagvae_mdata):
    mdata, de = dagvae_mdata
    rng = np.random.default_rng(3)
    mdata.obs["dagvae_cluster_atac"] = pd.Categorical(rng.integers(0, 4, mdata.n_obs).astype(str))
    text = multiomics_report(mdata, tmp_path / "mo.html").read_text()
    first = htmllib.unescape(_first_screen(text))
    assert "atac: its clusters do not follow obs['cell_type']" in first
    assert "no structure matching the labels" in first


def test_first_screen_keeps_many_comparisons_short(tmp_path, dagvae_mdata):
    mdata, _ = dagvae_mdata
    df = _de_frame(40)
    # clusters 10-19 do not exist: no cell counts, so one caveat each (most features DE)
    de = {f"rna: rna cluster {g} vs rest": df for g in range(10, 20)}
    df = df.assign(is_de_fdr=np.arange(40) < 30)  # every comparison: most features DE
    de = {name: df for name in de}
    text = multiomics_report(mdata, tmp_path / "mo.html", differential=de).read_text()
    first = htmllib.unescape(_first_screen(text))
    _, rows = _table_rows(first, "mo-markers")
    assert len(rows) == 6
    assert "Cluster markers (first 6 of 10 comparisons)" in first
    assert first.count("are called DE") == 3
    assert "and 7 more caveats" in first
    assert text.count('class="caveat"') == 1 + 10  # the headline's, and one per comparison


def test_embedded_csvs_share_one_size_budget(tmp_path, dagvae_mdata, monkeypatch):
    from biostruct.report import multiomics as mo_mod

    mdata, _ = dagvae_mdata
    df = _de_frame(400)
    size = len(df.to_csv(index=False).encode())
    monkeypatch.setattr(mo_mod, "_EMBED_BYTES", int(1.5 * size))  # room for one table
    de = {f"rna: rna cluster {g} vs rest": df for g in range(3)}
    text = multiomics_report(mdata, tmp_path / "x" / "mo.html", differential=de, de_dir=None)
    text = text.read_text()
    assert text.count('href="data:text/csv;base64,') == 1
    assert text.count("The full table is not embedded") == 2
    assert text.count("Showing the first 300 of 400 rows") == 3


def test_cluster_sizes_name_tiny_clusters():
    from biostruct.report.multiomics import _sizes_text

    counts = pd.Series({"0": 1500, "1": 300, "2": 7, "3": 2, "4": 0})
    assert _sizes_text(counts) == "1,500 to 2 cells (median 154); 2 under 10 cells"
    assert _sizes_text(pd.Series({"0": 50, "1": 40})) == "50 to 40 cells (median 45)"
