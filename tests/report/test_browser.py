"""Open reports in headless Chromium from file://: no console errors, no network, plots drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biostruct.report import grn_report, multiomics_report
from biostruct.report.browser import check_report, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary (install Debian's 'chromium': apt-get install -y chromium)",
)


def _assert_clean(check) -> None:
    assert check.console_errors == []
    assert check.network_requests == []
    assert check.empty_plots == []
    assert check.broken_images == []
    assert check.missing_anchors == []
    assert check.provenance_json
    assert check.ok


def _assert_first_screen(check, verdict: str) -> None:
    """At 1400 x 900: the verdict and the whole headline visible without scrolling, and no two
    text boxes overlapping there or inside any plot."""
    assert check.viewport == (1400, 900)
    assert check.in_first_screen(check.verdict_box), check.verdict_box
    assert check.in_first_screen(check.headline_box), check.headline_box
    assert check.verdict_box["bottom"] <= check.headline_box["top"]  # the verdict comes first
    assert check.verdict_class == f"verdict {verdict}"
    assert check.first_screen_texts > 30  # the overlap check saw the page's text
    assert check.first_screen_overlaps == []
    assert check.plot_overlaps == {}


def test_grn_report_renders_offline(tmp_path, grn_factory):
    # 60 genes: the network graph has more labels than fit without hiding some
    grn_adata = grn_factory(n_genes=60)
    # long names, as real regulators have: the headline tables must still not overlap
    grn_adata.var_names = [f"MBP{i}_SWI{i}_input_long" for i in range(60)]
    grn_adata.uns["grn"]["warnings"] = []
    path = grn_report(grn_adata, tmp_path / "grn.html")
    assert "labels left out where they would overlap" in path.read_text()
    check = check_report(path)
    _assert_clean(check)
    _assert_first_screen(check, "good")
    ids = {p["id"] for p in check.plots}
    assert {
        "grn-loss",
        "grn-density",
        "grn-heatmap",
        "grn-graph",
        "grn-roc",
        "grn-pr",
        "grn-trajectories",
        "grn-knockout",
    } <= ids
    assert len(check.images) == 1  # the static full-matrix heatmap


def test_multiomics_report_renders_offline(tmp_path, dagvae_mdata):
    mdata, de = dagvae_mdata
    # the worst case for the first screen: two fit warnings, 17 clusters (more than one
    # palette's 10 colours), ten comparisons with caveats
    mdata.uns["dagvae"]["warnings"] = [
        "[rna] the validation ELBO was still improving at the epoch cap (best at epoch 19 of "
        "20): the component may be under-trained; raise max_epochs (now 20).",
        "[atac] 3 clusters hold fewer than 5 cells.",
    ]
    rng = np.random.default_rng(0)
    mdata.obs["dagvae_cluster_rna"] = pd.Categorical(rng.integers(0, 17, mdata.n_obs).astype(str))
    (table,) = de.values()
    de = {f"rna: rna cluster {g} vs rest": table.copy() for g in range(10)}
    check = check_report(multiomics_report(mdata, tmp_path / "mo.html", differential=de))
    _assert_clean(check)
    _assert_first_screen(check, "bad")
    ids = {p["id"] for p in check.plots}
    assert {
        "mo-dag",
        "mo-elbo",
        "mo-emb-rna-cluster",
        "mo-emb-atac-label",
        "mo-contingency-rna",
        "mo-volcano-0",
    } <= ids


def test_checker_catches_errors_requests_and_empty_plots(tmp_path):
    # a negative control: the checks above can fail
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><nav id='sidebar'><a href='#gone'>x</a></nav>"
        "<div class='plotly-graph-div' id='empty'></div>"
        "<img alt='remote' src='http://127.0.0.1:9/x.png'>"
        "<div style='position:absolute;top:10px;left:10px'>first label</div>"
        "<div style='position:absolute;top:14px;left:30px'>second label</div>"
        "<div class='plotly-graph-div' id='svgplot'><svg width='300' height='80'>"
        "<text x='10' y='40'>gene A</text><text x='16' y='42'>gene B</text></svg></div>"
        "<div style='position:absolute;top:2000px'>below the first screen</div>"
        "<div style='position:absolute;top:2004px;left:8px'>also below</div>"
        "<script>console.error('boom')</script></body></html>"
    )
    check = check_report(page, timeout_s=3)
    assert not check.ok
    assert ["first label", "second label"] in check.first_screen_overlaps
    assert check.plot_overlaps == {"svgplot": [["gene A", "gene B"]]}
    assert not any("below" in a for pair in check.first_screen_overlaps for a in pair)
    assert check.headline_box is None and not check.in_first_screen(check.headline_box)
    assert any("boom" in e for e in check.console_errors)
    assert "http://127.0.0.1:9/x.png" in check.network_requests
    assert check.empty_plots == ["empty", "svgplot"]
    assert check.broken_images == ["remote"]
    assert check.missing_anchors == ["#gone"]
