"""The report builders: content, self-containment, atomic writes, clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from biostruct.errors import InputError
from biostruct.report import edge_table, graph_edges, grn_report, multiomics_report


def _section_ids(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', text)


def _assert_self_contained(text: str) -> None:
    assert "<script src" not in text.lower()
    assert not re.search(r'<link[^>]+href="https?:', text, re.I)
    assert not re.search(r'src="https?:', text, re.I)
    # plotly.js inlined exactly once, however many figures there are
    assert text.count("window.PlotlyConfig") == 1
    assert text.count('class="plotly-graph-div"') >= 2


def test_grn_report_sections_and_provenance(tmp_path, grn_adata):
    out = grn_report(grn_adata, tmp_path / "sub" / "grn.html")
    text = out.read_text()
    _assert_self_contained(text)
    ids = _section_ids(text)
    for sid in (
        "headline",
        "metrics",
        "training",
        "network",
        "edges",
        "evaluation",
        "trajectories",
        "knockouts",
        "parameters",
        "provenance",
    ):
        assert sid in ids
        assert f'href="#{sid}"' in text  # the sidebar links every section
    prov = json.loads(
        re.search(
            r'<script type="application/json" id="provenance-json">(.*?)</script>', text, re.S
        ).group(1)
    )
    assert prov["packages"]["numpy"] == np.__version__
    assert prov["seed"] == 0 and prov["device"] == "cpu"
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temp files left behind
    assert out.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_grn_report_without_truth_or_history(tmp_path, grn_adata):
    del grn_adata.varp["true_network"]
    grn_adata.uns["grn"] = {}
    del grn_adata.layers["grn_pred"]
    text = grn_report(grn_adata, tmp_path / "g.html").read_text()
    ids = _section_ids(text)
    assert "evaluation" not in ids and "trajectories" not in ids and "knockouts" not in ids
    assert "No loss history" in text


def test_grn_report_rejects_missing_key(tmp_path, grn_adata):
    with pytest.raises(InputError, match="varp\\['nope'\\]"):
        grn_report(grn_adata, tmp_path / "g.html", key="nope")
    with pytest.raises(InputError, match="truth"):
        grn_report(grn_adata, tmp_path / "g.html", truth="missing_key")
    assert not (tmp_path / "g.html").exists()


def test_edge_table_orders_by_strength():
    W = np.array([[5.0, -3.0, 0.0], [0.5, 0.0, 2.0], [0.0, -4.0, 1.0]])
    truth = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    df = edge_table(W, ["a", "b", "c"], truth=truth)
    assert list(zip(df.source, df.target)) == [("c", "b"), ("a", "b"), ("b", "c"), ("b", "a")]
    assert list(df.sign) == ["-", "-", "+", "+"]
    assert list(df.in_truth) == ["no", "yes", "yes", "no"]


def test_multiomics_report_agreement_matches_sklearn(tmp_path, dagvae_mdata):
    mdata, de = dagvae_mdata
    text = multiomics_report(mdata, tmp_path / "mo.html", differential=de).read_text()
    _assert_self_contained(text)
    for sid in ("dag", "training", "embeddings", "agreement", "differential", "provenance"):
        assert sid in _section_ids(text)
    ari = adjusted_rand_score(mdata.obs["cell_type"], mdata.obs["dagvae_cluster_rna"])
    assert f"{ari:.3f}" in text
    assert 'id="mo-volcano-0"' in text
    assert "UMAP" in text and "PCA of latent" in text  # stored UMAP for rna, fallback for atac


def test_multiomics_report_errors(tmp_path, dagvae_mdata):
    mdata, _ = dagvae_mdata
    with pytest.raises(InputError, match="label_key"):
        multiomics_report(mdata, tmp_path / "m.html", label_key="nope")
    with pytest.raises(InputError, match="X_other_"):
        multiomics_report(mdata, tmp_path / "m.html", key="other")


@pytest.mark.parametrize(
    "graph",
    [
        {
            "modalities": {"atac": {}, "rna": {}},
            "components": [
                {"name": "atac", "modalities": ["atac"]},
                {"name": "rna", "modalities": ["rna"], "conditioned_on_z_hat": ["atac"]},
            ],
        },
        {
            "components": [
                {"name": "atac", "modality": "atac"},
                {"name": "rna", "modality": "rna", "parents": ["atac"]},
            ]
        },
        {
            "atac": {"modality": "atac", "parents": []},
            "rna": {"modality": "rna", "parents": ["atac"]},
        },
        {
            "components": {
                "atac": {"modality": "atac"},
                "rna": {"modality": "rna", "conditioned_on": "atac"},
            }
        },
    ],
)
def test_graph_edges_forms(graph):
    nodes, edges, mods = graph_edges(graph)
    assert nodes == ["atac", "rna"]
    assert edges == [("atac", "rna")]
    assert mods == {"atac": "atac", "rna": "rna"}
