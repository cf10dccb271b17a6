"""Open reports in headless Chromium from file://: no console errors, no network, plots drawn."""

from __future__ import annotations

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


def test_grn_report_renders_offline(tmp_path, grn_adata):
    path = grn_report(grn_adata, tmp_path / "grn.html")
    check = check_report(path)
    _assert_clean(check)
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
    check = check_report(multiomics_report(mdata, tmp_path / "mo.html", differential=de))
    _assert_clean(check)
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
        "<script>console.error('boom')</script></body></html>"
    )
    check = check_report(page, timeout_s=3)
    assert not check.ok
    assert any("boom" in e for e in check.console_errors)
    assert "http://127.0.0.1:9/x.png" in check.network_requests
    assert check.empty_plots == ["empty"]
    assert check.broken_images == ["remote"]
    assert check.missing_anchors == ["#gone"]
