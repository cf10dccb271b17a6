"""Report section for a DAG-VAE's sparse feature links (``uns[key]["links"]``).

Three blocks: the top links by |weight| (with a CSV of all kept links), the distribution of the
kept links' peak-TSS distances (when coordinates are known) and the link density over the
training epochs (the pruning schedule, from ``uns[key]["history"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biostruct.report.render import Report, csv_data_uri, plotly_block, table_block, text_block

__all__ = ["links_section", "link_density_history"]


def link_density_history(history: Any) -> dict[str, pd.DataFrame]:
    """``{"parent_child": DataFrame(epoch, density)}`` from a DAG-VAE history table."""
    if not isinstance(history, pd.DataFrame) or "component" not in history.columns:
        return {}
    out = {}
    for col in history.columns:
        if str(col).startswith("link_density_"):
            d = history[["epoch", col]].copy()
            d[col] = pd.to_numeric(d[col], errors="coerce")
            d = d.dropna()
            if len(d):
                out[str(col)[len("link_density_") :]] = d.rename(columns={col: "density"})
    return out


def links_section(rep: Report, info: Any, n_top: int = 30) -> bool:
    """Add the "Feature links" section to ``rep`` if ``info`` (``uns[key]``) has links.

    Returns
    -------
    Whether a section was added.
    """
    import plotly.graph_objects as go

    table = info.get("links") if hasattr(info, "get") else None
    if not isinstance(table, pd.DataFrame):
        return False
    sec = rep.section("links", "Feature links")
    if table.empty:
        sec.add(text_block("The graph has links, but every candidate link was pruned."))
        return True
    w = pd.to_numeric(table["weight"], errors="coerce").to_numpy(dtype=float)
    for link, sub in table.groupby("link", sort=False):
        pos = float((sub["sign"] > 0).mean())
        per_child = sub["child_feature"].value_counts()
        sec.add(
            text_block(
                f"{link}: {len(sub):,} kept links ({pos:.0%} positive) into "
                f"{len(per_child):,} features (median {int(per_child.median())} per linked "
                "feature). A weight is the change of the child feature's log mean (logit for "
                "binary data) per sd of the parent feature, given the latent state."
            )
        )
    top = table.iloc[np.argsort(-np.abs(w), kind="stable")[:n_top]]
    sec.add(
        table_block(
            top.reset_index(drop=True),
            "mo-links-top",
            float_format="{:.3g}",
            caption=f"Top {len(top)} links by |weight|.",
            full_href=csv_data_uri(table),
            full_label=f"all {len(table):,} kept links (CSV)",
        )
    )
    dist = pd.to_numeric(table["distance_kb"], errors="coerce").dropna()
    if len(dist):
        fig = go.Figure(go.Histogram(x=dist.to_numpy(), nbinsx=40))
        fig.update_layout(
            title="Distance of kept links (peak to TSS)",
            xaxis_title="distance (kb)",
            yaxis_title="links",
            height=350,
        )
        sec.add(plotly_block(fig, "mo-links-distance", "Kept links by peak-TSS distance."))
    hist = link_density_history(info.get("history"))
    if hist:
        fig = go.Figure()
        for name, d in hist.items():
            fig.add_trace(
                go.Scatter(
                    x=d["epoch"],
                    y=1.0 - d["density"],
                    mode="lines+markers",
                    name=name.replace("_", " -> ", 1),
                )
            )
        fig.update_layout(
            title="Link sparsity over training",
            xaxis_title="epoch of the child component",
            yaxis_title="fraction of candidate links pruned",
            yaxis={"range": [0, 1]},
            height=350,
        )
        sec.add(
            plotly_block(
                fig,
                "mo-links-sparsity",
                "Pruning rounds of biostruct.sparsity during the child's annealing epochs.",
            )
        )
    return True
