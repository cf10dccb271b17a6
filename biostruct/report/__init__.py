"""Self-contained HTML reports of GRN and multi-omics fits.

One file per run: plotly.js inlined once, static figures as base64 PNG, a sidebar, and a
provenance section; the page opens offline and loads nothing from the network. The builders read
only the result objects (AnnData / MuData), so a report can be rebuilt from saved results.
"""

from __future__ import annotations

from biostruct.report.grn import edge_table, grn_report
from biostruct.report.multiomics import graph_edges, multiomics_report
from biostruct.report.provenance import collect_provenance, package_versions, sha256_file

__all__ = [
    "collect_provenance",
    "edge_table",
    "graph_edges",
    "grn_report",
    "multiomics_report",
    "package_versions",
    "sha256_file",
]
