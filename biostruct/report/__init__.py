"""Self-contained HTML reports of GRN and multi-omics fits.

One file per run: plotly.js inlined once, static figures as base64 PNG, a sidebar, and a
provenance section; the page opens offline and loads nothing from the network. The builders read
only the result objects (AnnData / MuData), so a report can be rebuilt from saved results.

The first screen (1400 x 900) answers "what did I get and can I trust it": a verdict banner fed by
the fit's own checks (``uns[key]["warnings"]``: red with every warning, green without), then the
headline result (top regulators and the strongest signed edges; clusters per component, their
agreement with labels and their DE features, with caveats), then the metrics grouped and
explained, with a glossary.
"""

from __future__ import annotations

from biostruct.report.grn import edge_table, grn_report
from biostruct.report.multiomics import de_rule, graph_edges, multiomics_report
from biostruct.report.provenance import collect_provenance, package_versions, sha256_file

__all__ = [
    "collect_provenance",
    "de_rule",
    "edge_table",
    "graph_edges",
    "grn_report",
    "multiomics_report",
    "package_versions",
    "sha256_file",
]
